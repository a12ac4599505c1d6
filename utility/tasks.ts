// What a worker script declares and what the caller's types are derived from. The
// caller imports only the *type* of a worker's handler object:
//
//   // worker.ts                                 // main.ts
//   export const handlers = {                    import type { handlers } from './worker'
//     sum: (xs: number[]) => xs.reduce(…),       const pool = await WorkerPool.start<typeof handlers>({ script })
//   }                                            const n = await pool.run('sum', [1, 2, 3])   // number
//   serveTasks(handlers)
import type { SharedMemory } from '../core'

/** The second argument of every handler. */
export interface TaskContext {
  /**
   * Aborts when the caller cancels the task (its `run` signal fired) or the pool
   * stops. It fires between turns of the event loop, so a handler that computes in
   * one long synchronous stretch should poll `ctx.cancelled` instead.
   */
  readonly signal: AbortSignal
  /**
   * True once the caller cancelled. Reads a flag in shared memory, so it changes
   * even while this handler never yields; reading it also aborts `signal`.
   */
  readonly cancelled: boolean
  /** Throws ShmError ERR_ABORTED when `cancelled`. */
  throwIfCancelled(): void
  /** The pool's number for this task (unique within the pool). */
  readonly taskId: number
  /** The handler name the caller asked for. */
  readonly name: string
  /** Which worker of the pool this is (0 … workers − 1; stays the same across restarts). */
  readonly workerIndex: number
  /** The segment the pool shares with this worker: put large outputs here to return them without a copy. */
  readonly shm: SharedMemory
}

/**
 * A task handler: sync or async, takes one input value. The input is `never` here
 * so that a handler of any input type fits; callers see its real type via TaskInput.
 */
export type TaskHandler = (input: never, ctx: TaskContext) => unknown

/** A worker's handlers by task name. */
export type TaskHandlers = Record<string, TaskHandler>

/** What a pool knows when it is not given the worker's handler types: any name, any input. */
export type UntypedHandlers = Record<string, (input: unknown, ctx: TaskContext) => unknown>

/** The task names of a handler object. */
export type TaskName<H> = Extract<keyof H, string>

/** What a handler takes (`unknown` for a handler that declares no input). */
export type TaskInput<F> = F extends (input: infer I, ctx: TaskContext) => unknown ? I : never

/** What a handler's task resolves to in the caller. */
export type TaskOutput<F> = F extends (...args: never[]) => infer O ? Awaited<O> : never
