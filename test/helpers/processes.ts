// Real child processes for multi-process tests. Children are TypeScript files under
// test/children/, run through tsx so they import the same sources as the tests.
import { fork, type ChildProcess } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import * as path from 'node:path'
import { randomBytes } from 'node:crypto'

export const childrenDir = path.join(__dirname, '..', 'children')

/** A segment name no other test (or earlier run) uses. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`.slice(0, 26)
}

export interface Child {
  proc: ChildProcess
  /** Resolves with the next message the child sends. */
  next<T = unknown>(): Promise<T>
  send(message: unknown): void
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>
}

export function startChild(script: string, args: string[] = [], execArgv: string[] = []): Child {
  const proc = fork(path.join(childrenDir, script), args, {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const queue: unknown[] = []
  const waiting: Array<(m: unknown) => void> = []
  proc.on('message', (m) => {
    const w = waiting.shift()
    if (w) w(m)
    else queue.push(m)
  })
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown')
      for (const w of waiting.splice(0)) w({ exited: code ?? signal })
    })
  })
  return {
    proc,
    exited,
    send: (m) => proc.send(m as never),
    next: <T>() =>
      new Promise<T>((resolve) => {
        if (queue.length > 0) resolve(queue.shift() as T)
        else waiting.push(resolve as (m: unknown) => void)
      }),
  }
}

/** Runs a child to completion and returns its messages and exit code. */
export async function runChild(script: string, args: string[] = [], execArgv: string[] = []) {
  const child = startChild(script, args, execArgv)
  const messages: unknown[] = []
  child.proc.on('message', (m) => messages.push(m))
  const code = await child.exited
  return { code, messages }
}

/** A worker thread running test/children/<script> (TypeScript: tsx's require hook is registered inside the worker). */
export function startThread(script: string, workerData: unknown): Worker {
  return new Worker(`require('tsx/cjs/api').register(); require(${JSON.stringify(path.join(childrenDir, script))})`, { eval: true, workerData })
}

