// The pool's records: what callers see of it (run()'s options, stats, worker info) and
// the task and worker records its parts share (main/pool/*.ts, main/worker_pool.ts).
import type { Channel } from '../../core'
import type { ToWorker } from '../../common/task_protocol'
import type { TaskInput } from '../../utility/tasks'
import type { WorkerHandle } from '../hosts'

export interface RunOptions {
  /**
   * Cancels the task: the caller's promise rejects at once with ShmError
   * ERR_ABORTED, a task not yet started is dropped, and a running one sees
   * ctx.signal abort (and ctx.cancelled turn true). A handler may still be
   * writing into a shared output until it notices.
   */
  signal?: AbortSignal
}

export interface PoolStats {
  /** Worker processes wanted. */
  workers: number
  /** Workers connected and serving now. */
  ready: number
  /** Tasks accepted and waiting for a worker (≤ maxQueued, except briefly when a crashed worker's unstarted tasks come back). */
  queued: number
  /** run() calls waiting for room in the queue. */
  waiting: number
  /** Tasks sent to a worker whose result has not come back. */
  running: number
  /** The largest `queued` seen. */
  peakQueued: number
  completed: number
  /** Rejected with the error their handler threw. */
  failed: number
  cancelled: number
  /** Rejected because their worker exited while running them. */
  crashed: number
  /** Workers started again after exiting. */
  restarts: number
}

export interface WorkerInfo {
  index: number
  pid: number | undefined
  state: 'starting' | 'ready' | 'dead' | 'failed'
  /** Tasks sent to it whose result has not come back. */
  tasks: number
}

/** run()'s arguments after the name: the input is optional when the handler accepts undefined. */
export type RunArgs<F> = undefined extends TaskInput<F> ? [input?: TaskInput<F>, options?: RunOptions] : [input: TaskInput<F>, options?: RunOptions]

export type TaskState = 'waiting' | 'queued' | 'sent' | 'done'

export interface Task {
  readonly id: number
  readonly name: string
  readonly input: unknown
  readonly resolve: (value: unknown) => void
  readonly reject: (reason: unknown) => void
  readonly signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  state: TaskState
  /** The caller's promise is settled (a sent task may still be running in its worker). */
  settled: boolean
  worker: Worker | undefined
  slot: number
}

export interface Worker {
  readonly index: number
  generation: number
  handle: WorkerHandle | undefined
  /** The pool's handle on this worker's inbox (the same channel across restarts). */
  readonly inbox: Channel<ToWorker>
  state: WorkerInfo['state']
  readonly tasks: Map<number, Task>
  readonly freeSlots: number[]
  /** Running mean of how long its handlers ran (µs; Infinity: nothing known yet): prefetch 'auto' sends short tasks ahead. */
  runUs: number
  /** Exits before becoming ready, in a row. */
  startFailures: number
  ready: Deferred<void>
}

export interface Deferred<T> {
  promise: Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {}) // observed by whoever awaits it; never an unhandled rejection
  return { promise, resolve, reject }
}

/**
 * What the pool's state asks of the dispatcher (main/pool/dispatch.ts): the state only
 * knows this shape, so the dispatcher can import the state without a cycle.
 */
export interface Scheduler {
  /** Runs dispatch soon (once per microtask, however often it is asked). */
  kick(): void
  stop(): void
}
