// WorkerPool: runs named tasks in worker processes (Electron utility processes, or
// Node child processes) and moves their inputs and results through a shared
// segment. The wire protocol is common/task_protocol.ts; the worker side is
// utility/serve_tasks.ts. The pool's parts are in main/pool/:
//
//   run() ─▶ waiting (no room) ─▶ queued (≤ maxQueued) ─▶ sent to a worker ─▶ result taken
//            └── admission.ts ────────────────────┘     dispatch.ts          results.ts
//   options.ts (checks and defaults), supervision.ts (start, exits, restarts, shutdown),
//   state.ts (what the parts share), types.ts, errors.ts
//
// A task's input is encoded into the segment when it is sent to a worker, not when
// run() is called: do not change an input object after passing it to run().
import * as path from 'node:path'
import { ShmError, type SharedMemory } from '../core'
import { checkOptions } from '../core/options'
import type { TaskHandlers, TaskName, TaskOutput, UntypedHandlers } from '../utility/tasks'
import { cancelTask, Dispatcher } from './pool/dispatch'
import { abortedError, closedError, invalid } from './pool/errors'
import type { WorkerPoolOptions } from './pool/options'
import { PoolState } from './pool/state'
import { pump, shutdown, startWorker } from './pool/supervision'
import type { PoolStats, RunArgs, RunOptions, Task, WorkerInfo } from './pool/types'

/**
 * A pool of worker processes that run named tasks, with arguments and results in
 * shared memory. `H` is the type of the worker's handler object, which types
 * run() end to end:
 *
 * ```ts
 * import type { handlers } from './worker'
 * const pool = await WorkerPool.start<typeof handlers>({ script: require.resolve('./worker') })
 * const out = await pool.run('resize', { image, width: 640 })
 * await pool.close()
 * ```
 */
export class WorkerPool<H extends TaskHandlers = UntypedHandlers> {
  /** The segment tasks and results travel through. Put large outputs here (tx.put) and pass them in the input. */
  readonly shm: SharedMemory
  private readonly state: PoolState

  /**
   * Creates (or takes) the segment, starts the workers and resolves once every one
   * of them is connected. Rejects, leaving nothing behind, if a worker fails to
   * start (its exit code in the message) or does not connect within startTimeoutMs.
   */
  static async start<H extends TaskHandlers = TaskHandlers>(options: WorkerPoolOptions): Promise<WorkerPool<H>> {
    const pool = new WorkerPool<H>(options)
    try {
      await pool.whenReady()
    } catch (err) {
      await pool.close()
      throw err
    }
    pool.state.starting = false
    return pool
  }

  private constructor(options: WorkerPoolOptions) {
    const state = new PoolState(options, (s) => new Dispatcher(s))
    this.state = state
    this.shm = state.shm
    state.pumpDone = pump(state)
    for (const w of state.workers) startWorker(state, w)
  }

  private async whenReady(): Promise<void> {
    const s = this.state
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const late = s.workers.filter((w) => w.state !== 'ready').map((w) => w.index)
        reject(new ShmError('ERR_TIMEOUT', `WorkerPool.start: worker${late.length > 1 ? 's' : ''} ${late.join(', ')} did not connect within ${s.o.startTimeoutMs} ms; does ${s.script} call serveTasks(), and can it load (a .ts script needs execArgv such as ['--import', 'tsx'])?`))
      }, s.o.startTimeoutMs)
    })
    try {
      await Promise.race([Promise.all(s.workers.map((w) => w.ready.promise)), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  // ── the caller's side ──────────────────────────────────────────────────────

  /**
   * Runs the handler `name` in a worker with `input` and resolves with what it
   * returned. The handler's error is re-thrown here (name, message, stack and
   * own fields such as `code`; TypeError, RangeError, ShmError… keep their class).
   *
   * Zero-copy: a TypedArray, DataView or Buffer that lies in `pool.shm` — made with
   * tx.put, or any view of `pool.shm.bytes` — reaches the handler as a view over the
   * same bytes, and so does one the handler returns. The handler writes into it
   * without a turn, so the caller must not touch that region until the task has
   * settled. Values of the segment (tx.put results) are lent to the handler for the
   * task; one the handler put in the segment and returns is the caller's to destroy.
   * Other mapped values (containers put with tx.put) arrive as live views too: read
   * them in a turn.
   *
   * With `maxQueued` tasks already waiting, the call waits for room. Rejects with
   * ShmError ERR_ABORTED when `options.signal` aborts, WorkerExitError when the
   * worker dies running it (the worker is restarted), ERR_SHM_CLOSED after close().
   */
  run<K extends TaskName<H>>(name: K, ...args: RunArgs<H[K]>): Promise<TaskOutput<H[K]>> {
    const [input, options] = args as [unknown, RunOptions | undefined]
    return new Promise((resolve, reject) => {
      if (this.state.closing) return reject(closedError())
      if (this.state.broken !== undefined) return reject(this.state.broken)
      if (typeof name !== 'string') return reject(invalid(`run: the task name must be a string, got ${typeof name}`))
      if (this.state.knownNames !== undefined && !this.state.knownNames.has(name)) return reject(this.unknownTask(name))
      let signal: AbortSignal | undefined
      if (options !== undefined) {
        checkOptions<RunOptions>(options, { signal: 'object' }, 'pool.run')
        signal = options.signal
        if (signal !== undefined && !(signal instanceof AbortSignal)) return reject(invalid('run: options.signal must be an AbortSignal'))
      }
      if (signal?.aborted) {
        this.state.counters.cancelled++
        return reject(abortedError(name, undefined, signal))
      }
      const task: Task = {
        id: this.state.nextId++, name, input, resolve: resolve as (v: unknown) => void, reject, signal,
        onAbort: undefined, state: 'waiting', settled: false, worker: undefined, slot: -1,
      }
      if (signal !== undefined) {
        task.onAbort = () => cancelTask(this.state, task)
        signal.addEventListener('abort', task.onAbort, { once: true })
      }
      this.state.admission.add(task)
      this.state.kick()
    })
  }

  stats(): PoolStats {
    const s = this.state
    return {
      workers: s.workers.length,
      ready: s.workers.filter((w) => w.state === 'ready').length,
      queued: s.admission.queued,
      waiting: s.admission.waiting,
      running: s.inFlight.size,
      ...s.counters,
    }
  }

  workerInfo(): WorkerInfo[] {
    return this.state.workers.map((w) => ({ index: w.index, pid: w.handle?.pid, state: w.state, tasks: w.tasks.size }))
  }

  /**
   * Stops the workers (pending and running tasks reject with ERR_SHM_CLOSED),
   * then closes the segment if the pool created it (which also unlinks it). A
   * segment passed in as `shm` stays open; the pool only frees what it put there.
   */
  close(): Promise<void> {
    return (this.state.closed ??= shutdown(this.state, closedError()))
  }

  /** `await using pool = await WorkerPool.start(…)`: closes at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  private unknownTask(name: string): ShmError {
    const known = [...(this.state.knownNames ?? [])].map((n) => `"${n}"`).join(', ')
    return invalid(`unknown task "${name}": ${path.basename(this.state.script)} serves ${known || 'no tasks'}`)
  }
}
