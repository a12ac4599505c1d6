// Forks a bench peer (a TypeScript file run through tsx) and talks to it over the
// fork IPC channel. Used for sequencing only, unless the IPC is what is measured.
import { fork, type ChildProcess, type SerializationType } from 'node:child_process'
import * as path from 'node:path'

export interface Peer {
  proc: ChildProcess
  next<T = unknown>(): Promise<T>
  send(message: unknown): void
  exited: Promise<number | string>
  /** Stops queueing messages for next(): the caller listens on `proc` itself from now on. */
  detach(): void
}

export function startPeer(script: string, args: string[], serialization: SerializationType = 'json'): Peer {
  const proc = fork(path.join(__dirname, script), args, {
    execArgv: ['--import', 'tsx'],
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
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => {
      const result = code ?? signal ?? 'unknown'
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
        else waiting.push({ resolve: resolve as (m: unknown) => void, reject })
      }),
  }
}
