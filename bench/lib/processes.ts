// Forks a bench peer and talks to it over the fork IPC channel. Used for
// sequencing only, unless the IPC is what is measured.
//
// `npm run bench` runs the compiled JavaScript in build/bench-js/ (see
// tsconfig.bench.json): peers then run compiled too, so every process measures
// what users get from dist/. Run from the TypeScript sources (tsx bench/run.ts),
// peers go through tsx as well, and const enums are not inlined across files:
// figures are then several times too low.
import { fork, type ChildProcess, type SerializationType } from 'node:child_process'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

/** True when this file is compiled JavaScript (npm run bench), false under tsx. */
export const compiled = path.extname(__filename) === '.js'

/** `execArgv` a peer process or worker needs to run a bench/lib script. */
export const peerExecArgv: string[] = compiled ? [] : ['--import', 'tsx']

/** Absolute path of a bench/lib script given as 'name', 'name.ts' or 'name.js'. */
export function scriptPath(script: string): string {
  const base = script.replace(/\.(ts|js)$/, '')
  return path.join(__dirname, base + path.extname(__filename))
}

export interface Peer {
  proc: ChildProcess
  next<T = unknown>(): Promise<T>
  send(message: unknown): void
  exited: Promise<number | string>
  /** Stops queueing messages for next(): the caller listens on `proc` itself from now on. */
  detach(): void
  /** Waits up to `ms` for the peer to exit, then kills it. */
  stop(ms?: number): Promise<void>
}

export function startPeer(script: string, args: string[], serialization: SerializationType = 'json'): Peer {
  const proc = fork(scriptPath(script), args, {
    execArgv: peerExecArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization,
  })
  const queue: unknown[] = []
  const waiting: Array<{ resolve: (m: unknown) => void; reject: (e: Error) => void }> = []
  const onMessage = (m: unknown) => {
    const w = waiting.shift()
    if (w) w.resolve(m)
    else queue.push(m)
  }
  proc.on('message', onMessage)
  let exitCode: number | string | undefined
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => {
      const result = code ?? signal ?? 'unknown'
      exitCode = result
      for (const w of waiting.splice(0)) w.reject(new Error(`bench peer ${script} exited (${result}) before answering`))
      resolve(result)
    })
  })
  return {
    proc,
    exited,
    send: (m) => proc.send(m as never),
    detach: () => {
      proc.off('message', onMessage)
    },
    next: <T>() =>
      new Promise<T>((resolve, reject) => {
        if (queue.length > 0) resolve(queue.shift() as T)
        else if (exitCode !== undefined) reject(new Error(`bench peer ${script} exited (${exitCode}) before answering`))
        else waiting.push({ resolve: resolve as (m: unknown) => void, reject })
      }),
    stop: async (ms = 5000) => {
      if (exitCode !== undefined) return
      let timer: NodeJS.Timeout | undefined
      const code = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, ms, 'timeout')))])
      clearTimeout(timer)
      if (code === 'timeout') proc.kill()
    },
  }
}

/** A worker thread running a bench/lib script (compiled or through tsx, like startPeer). */
export function startWorker(script: string, workerData?: unknown): Worker {
  return new Worker(scriptPath(script), { execArgv: peerExecArgv, workerData })
}

/** The next message a worker posts. */
export function nextFromWorker<T = unknown>(worker: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    worker.once('message', (m: T) => {
      worker.off('error', onError)
      resolve(m)
    })
    worker.once('error', onError)
  })
}

// A segment name no other run uses: the tests' helper, one definition for tests and benches.
export { uniqueName } from '../../test/helpers/processes'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
