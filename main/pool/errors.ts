// The pool's errors: a worker's exit, a cancelled task, a closed pool, a bad argument.
import { ShmError } from '../../core'
import type { WorkerExit } from '../hosts'

/** The error (code ERR_WORKER_EXITED) of a task whose worker exited while running it. */
export class WorkerExitError extends ShmError {
  readonly workerIndex: number
  readonly pid: number | undefined
  readonly exitCode: number | null
  readonly signal: string | null

  constructor(message: string, worker: { index: number; pid: number | undefined }, exit: WorkerExit) {
    super('ERR_WORKER_EXITED', message)
    this.workerIndex = worker.index
    this.pid = worker.pid
    this.exitCode = exit.code
    this.signal = exit.signal
  }
}


export function invalid(message: string): ShmError {
  return new ShmError('ERR_INVALID_ARGUMENT', `WorkerPool: ${message}`)
}

export function describeExit(exit: WorkerExit): string {
  if (exit.error !== undefined) return exit.code === null && exit.signal === null ? `could not be started (${exit.error.message})` : `died of ${exit.error.message} (exit code ${exit.code})`
  if (exit.signal !== null) return `was killed by ${exit.signal}`
  return `exited with code ${exit.code}`
}

export function abortedError(name: string, id: number | undefined, signal: AbortSignal | undefined): ShmError {
  const reason = signal?.reason as unknown
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : ''
  return new ShmError('ERR_ABORTED', `task "${name}"${id !== undefined ? ` (#${id})` : ''} was cancelled${why}`)
}

export function closedError(): ShmError {
  return new ShmError('ERR_SHM_CLOSED', 'the worker pool is closed: start a new one with WorkerPool.start()')
}
