// WorkerPool: runs named tasks in worker processes (Electron utility processes, or
// Node child processes) and moves their inputs and results through a shared
// segment. The wire protocol is common/task_protocol.ts; the worker side is
// utility/serve_tasks.ts.
//
//   run() ─▶ waiting (no room) ─▶ queued (≤ maxQueued) ─▶ sent to a worker ─▶ result taken
//
// A task's input is encoded into the segment when it is sent to a worker, not when
// run() is called: do not change an input object after passing it to run().
import * as fs from 'node:fs'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { SharedMemory, ShmError, type Turn, type WaitMode } from '../core'
import { checkOptions } from '../core/options'
import {
  CONFIG_ENV, inboxChannel, restoreViews, resultsChannel, reviveError, shareViews, SLOT_WORDS, SlotFlag, SlotWord, takeAll,
  type DoneMessage, type ToPool, type ToWorker, type WorkerConfig,
} from '../common/task_protocol'
import type { TaskHandlers, TaskInput, TaskName, TaskOutput, UntypedHandlers } from '../utility/tasks'
import { defaultHost, ElectronHost, NodeHost, type WorkerExit, type WorkerHandle, type WorkerHost } from './hosts'

export interface WorkerPoolOptions {
  /** The worker script (a path or file: URL); it calls serveTasks(handlers). */
  script: string | URL
  /** Worker processes (default: available cores − 1, at least 1). */
  workers?: number
  /** Use this segment instead of creating one. The pool neither closes nor unlinks it. */
  shm?: SharedMemory
  /** Name of the segment the pool creates (default: a fresh unique name). */
  segmentName?: string
  /** Size of the segment the pool creates (default 64 MiB). */
  segmentSize?: number
  /**
   * How many tasks may wait in the pool for a worker (default 1024). Beyond that,
   * run() waits for room (back-pressure) instead of failing.
   */
  maxQueued?: number
  /** Tasks one worker runs at once (default 1; raise it for async handlers that wait on I/O). */
  concurrency?: number
  /**
   * Tasks sent to a worker ahead of need, so it goes on without a round trip through
   * the pool (default 1). Also what a cancelled-but-unaware handler may hold up.
   */
  prefetch?: number
  /** Arguments for the worker script (process.argv.slice(2) there). */
  args?: string[]
  /** Extra environment for the workers. */
  env?: Record<string, string>
  /** Runtime flags for the workers, e.g. ['--import', 'tsx'] to run a .ts script. */
  execArgv?: string[]
  /**
   * Where workers run: a WorkerHost, or 'node' / 'electron'. Default: Electron's
   * utility processes in an Electron main process, Node child processes elsewhere.
   */
  host?: WorkerHost | 'node' | 'electron'
  /** How the pool and its workers wait (default 'cpu-friendly'). */
  wait?: WaitMode
  /** How long start() waits for every worker to connect (default 30 000 ms). */
  startTimeoutMs?: number
  /** How long close() lets workers exit before killing them (default 2000 ms). */
  stopTimeoutMs?: number
  /** How long a task (or a result) waits for room while the segment is full (default 10 000 ms). */
  segmentFullTimeoutMs?: number
  /** Restart a worker that exits (default true). */
  restart?: boolean
}

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


/** run()'s arguments after the name: the input is optional when the handler accepts undefined. */
export type RunArgs<F> = undefined extends TaskInput<F> ? [input?: TaskInput<F>, options?: RunOptions] : [input: TaskInput<F>, options?: RunOptions]

type TaskState = 'waiting' | 'queued' | 'sent' | 'done'

interface Task {
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

interface Worker {
  readonly index: number
  generation: number
  handle: WorkerHandle | undefined
  state: WorkerInfo['state']
  readonly tasks: Map<number, Task>
  readonly freeSlots: number[]
  /** Exits before becoming ready, in a row. */
  startFailures: number
  ready: Deferred<void>
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {}) // observed by whoever awaits it; never an unhandled rejection
  return { promise, resolve, reject }
}

/** A FIFO whose entries may go stale (a cancelled task): stale ones are skipped when taken. */
class Fifo<T> {
  private items: T[] = []
  private head = 0

  push(item: T): void {
    this.items.push(item)
  }

  unshift(item: T): void {
    if (this.head > 0) this.items[--this.head] = item
    else this.items.unshift(item)
  }

  shift(live: (item: T) => boolean): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head]!
      this.items[this.head++] = undefined as T
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head)
        this.head = 0
      }
      if (live(item)) return item
    }
    return undefined
  }

  drain(): T[] {
    const out = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return out
  }
}

const MAX_START_FAILURES = 3
const RETRY_MIN_MS = 2
const RETRY_MAX_MS = 100

const optionSpec = {
  script: 'object', workers: 'number', shm: 'object', segmentName: 'string', segmentSize: 'number', maxQueued: 'number',
  concurrency: 'number', prefetch: 'number', args: 'object', env: 'object', execArgv: 'object', host: 'object', wait: 'string',
  startTimeoutMs: 'number', stopTimeoutMs: 'number', segmentFullTimeoutMs: 'number', restart: 'boolean',
} as const

function invalid(message: string): ShmError {
  return new ShmError('ERR_INVALID_ARGUMENT', `WorkerPool: ${message}`)
}

/** More workers, or tasks per worker, than this is a mistake, not a configuration (and would size tables by it). */
const MAX_COUNT = 1024

function positiveInt(value: number | undefined, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${name} must be an integer from ${min} to ${max}, got ${value}`)
  return value
}

function resolveScript(script: unknown): string {
  let file: string
  if (script instanceof URL) file = fileURLToPath(script)
  else if (typeof script === 'string') file = script.startsWith('file:') ? fileURLToPath(script) : path.resolve(script)
  else throw invalid(`script must be a path or a file: URL, got ${script === undefined ? 'nothing' : typeof script}`)
  if (!fs.existsSync(file)) throw invalid(`worker script ${file} does not exist`)
  return file
}

function resolveHost(host: WorkerPoolOptions['host']): WorkerHost {
  if (host === undefined) return defaultHost()
  if (host === 'node') return new NodeHost()
  if (host === 'electron') return new ElectronHost()
  if (typeof host === 'object' && host !== null && typeof host.start === 'function') return host
  throw invalid(`host must be 'node', 'electron' or a WorkerHost, got ${String(host)}`)
}

function describeExit(exit: WorkerExit): string {
  if (exit.error !== undefined) return exit.code === null && exit.signal === null ? `could not be started (${exit.error.message})` : `died of ${exit.error.message} (exit code ${exit.code})`
  if (exit.signal !== null) return `was killed by ${exit.signal}`
  return `exited with code ${exit.code}`
}

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
  private readonly ownsSegment: boolean
  private readonly host: WorkerHost
  private readonly script: string
  private readonly prefix: string
  private readonly results: string
  private readonly workers: Worker[] = []
  private readonly perWorker: number
  private readonly slotTable: Int32Array
  private readonly o: {
    maxQueued: number; concurrency: number; args: string[]; env: Record<string, string>; execArgv: string[] | undefined
    wait: WaitMode; startTimeoutMs: number; stopTimeoutMs: number; fullTimeoutMs: number; restart: boolean
  }

  private nextId = 1
  private readonly waitingList = new Fifo<Task>()
  private readonly queue = new Fifo<Task>()
  private waitingCount = 0
  private queuedCount = 0
  private readonly inFlight = new Map<number, Task>()
  private readonly counters = { peakQueued: 0, completed: 0, failed: 0, cancelled: 0, crashed: 0, restarts: 0 }
  private knownNames: Set<string> | undefined
  /** Set when no worker is left and none will be started: every run() rejects with it. */
  private broken: Error | undefined

  private dispatchScheduled = false
  private dispatching = false
  private dispatchAgain = false
  private fullSince: number | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private retryDelay = RETRY_MIN_MS
  private rotate = 0

  private starting = true
  private closing = false
  private closed: Promise<void> | undefined
  private readonly pumpStop = new AbortController()
  private pumpDone: Promise<void> = Promise.resolve()

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
    pool.starting = false
    return pool
  }

  private constructor(options: WorkerPoolOptions) {
    if (options === null || typeof options !== 'object') throw invalid(`WorkerPool.start expects an options object such as { script: require.resolve('./worker'), workers: 2 }, got ${options === null ? 'null' : typeof options}`)
    checkOptions<Record<string, unknown>>({ ...options, host: undefined, script: undefined, shm: undefined }, optionSpec as never, 'WorkerPool.start')
    const script = resolveScript(options.script)
    const workers = positiveInt(options.workers, 'workers', Math.max(1, availableParallelism() - 1), 1, MAX_COUNT)
    const concurrency = positiveInt(options.concurrency, 'concurrency', 1, 1, MAX_COUNT)
    const prefetch = positiveInt(options.prefetch, 'prefetch', 1, 0, MAX_COUNT)
    const wait = options.wait ?? 'cpu-friendly'
    if (wait !== 'cpu-friendly' && wait !== 'low-latency') throw invalid(`wait must be 'cpu-friendly' or 'low-latency', got '${String(wait)}'`)
    for (const k of ['args', 'execArgv'] as const) {
      const v = options[k]
      if (v !== undefined && (!Array.isArray(v) || v.some((a) => typeof a !== 'string'))) throw invalid(`${k} must be an array of strings`)
    }
    if (options.shm !== undefined && !(options.shm instanceof SharedMemory)) throw invalid('shm must be a SharedMemory')
    if (options.shm?.closed) throw invalid(`segment "${options.shm.name}" is closed`)
    this.o = {
      maxQueued: positiveInt(options.maxQueued, 'maxQueued', 1024),
      concurrency,
      args: options.args ?? [],
      env: options.env ?? {},
      execArgv: options.execArgv,
      wait,
      startTimeoutMs: positiveInt(options.startTimeoutMs, 'startTimeoutMs', 30_000),
      stopTimeoutMs: positiveInt(options.stopTimeoutMs, 'stopTimeoutMs', 2000, 0),
      fullTimeoutMs: positiveInt(options.segmentFullTimeoutMs, 'segmentFullTimeoutMs', 10_000, 0),
      restart: options.restart ?? true,
    }
    this.host = resolveHost(options.host)
    this.script = script
    this.perWorker = concurrency + prefetch

    this.ownsSegment = options.shm === undefined
    this.shm = options.shm ?? SharedMemory.create({
      name: options.segmentName ?? `wp-${process.pid}-${randomBytes(4).toString('hex')}`,
      size: options.segmentSize ?? 64 << 20,
    })
    this.prefix = `offload/${randomBytes(6).toString('hex')}`
    this.results = resultsChannel(this.prefix)
    try {
      this.slotTable = this.shm.access((tx) => tx.put(new Int32Array(workers * this.perWorker * SLOT_WORDS)))
    } catch (err) {
      if (this.ownsSegment) this.shm.close()
      throw err
    }
    for (let index = 0; index < workers; index++) {
      const freeSlots: number[] = []
      for (let s = (index + 1) * this.perWorker - 1; s >= index * this.perWorker; s--) freeSlots.push(s)
      this.workers.push({ index, generation: 0, handle: undefined, state: 'starting', tasks: new Map(), freeSlots, startFailures: 0, ready: deferred() })
    }
    this.pumpDone = this.pump()
    for (const w of this.workers) this.startWorker(w)
  }

  private async whenReady(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const late = this.workers.filter((w) => w.state !== 'ready').map((w) => w.index)
        reject(new ShmError('ERR_TIMEOUT', `WorkerPool.start: worker${late.length > 1 ? 's' : ''} ${late.join(', ')} did not connect within ${this.o.startTimeoutMs} ms; does ${this.script} call serveTasks(), and can it load (a .ts script needs execArgv such as ['--import', 'tsx'])?`))
      }, this.o.startTimeoutMs)
    })
    try {
      await Promise.race([Promise.all(this.workers.map((w) => w.ready.promise)), timeout])
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
   * Zero-copy: a TypedArray that lies in `pool.shm` (made with tx.put) reaches the
   * handler as a view over the same bytes, and so does one the handler returns. The
   * handler writes into it without a turn, so the caller must not touch that region
   * until the task has settled.
   *
   * With `maxQueued` tasks already waiting, the call waits for room. Rejects with
   * ShmError ERR_ABORTED when `options.signal` aborts, WorkerExitError when the
   * worker dies running it (the worker is restarted), ERR_SHM_CLOSED after close().
   */
  run<K extends TaskName<H>>(name: K, ...args: RunArgs<H[K]>): Promise<TaskOutput<H[K]>> {
    const [input, options] = args as [unknown, RunOptions | undefined]
    return new Promise((resolve, reject) => {
      if (this.closing) return reject(this.closedError())
      if (this.broken !== undefined) return reject(this.broken)
      if (typeof name !== 'string') return reject(invalid(`run: the task name must be a string, got ${typeof name}`))
      if (this.knownNames !== undefined && !this.knownNames.has(name)) return reject(this.unknownTask(name))
      let signal: AbortSignal | undefined
      if (options !== undefined) {
        checkOptions<RunOptions>(options, { signal: 'object' }, 'pool.run')
        signal = options.signal
        if (signal !== undefined && !(signal instanceof AbortSignal)) return reject(invalid('run: options.signal must be an AbortSignal'))
      }
      if (signal?.aborted) {
        this.counters.cancelled++
        return reject(abortedError(name, undefined, signal))
      }
      let shared: unknown
      try {
        shared = shareViews(input, this.shm)
      } catch (err) {
        return reject(err)
      }
      const task: Task = {
        id: this.nextId++, name, input: shared, resolve: resolve as (v: unknown) => void, reject, signal,
        onAbort: undefined, state: 'waiting', settled: false, worker: undefined, slot: -1,
      }
      if (signal !== undefined) {
        task.onAbort = () => this.abortTask(task)
        signal.addEventListener('abort', task.onAbort, { once: true })
      }
      if (this.waitingCount === 0 && this.queuedCount < this.o.maxQueued) this.enqueue(task)
      else {
        this.waitingList.push(task)
        this.waitingCount++
      }
      this.kick()
    })
  }

  stats(): PoolStats {
    return {
      workers: this.workers.length,
      ready: this.workers.filter((w) => w.state === 'ready').length,
      queued: this.queuedCount,
      waiting: this.waitingCount,
      running: this.inFlight.size,
      ...this.counters,
    }
  }

  workerInfo(): WorkerInfo[] {
    return this.workers.map((w) => ({ index: w.index, pid: w.handle?.pid, state: w.state, tasks: w.tasks.size }))
  }

  /**
   * Stops the workers (pending and running tasks reject with ERR_SHM_CLOSED),
   * then closes the segment if the pool created it (which also unlinks it). A
   * segment passed in as `shm` stays open; the pool only frees what it put there.
   */
  close(): Promise<void> {
    return (this.closed ??= this.shutdown(this.closedError()))
  }

  /** `await using pool = await WorkerPool.start(…)`: closes at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  // ── queue and dispatch ─────────────────────────────────────────────────────

  private enqueue(task: Task): void {
    task.state = 'queued'
    this.queue.push(task)
    this.queuedCount++
    if (this.queuedCount > this.counters.peakQueued) this.counters.peakQueued = this.queuedCount
  }

  /** Moves run() calls that waited for room into the queue. */
  private admitWaiting(): void {
    while (this.queuedCount < this.o.maxQueued && this.waitingCount > 0) {
      const task = this.waitingList.shift((t) => t.state === 'waiting')
      if (task === undefined) break
      this.waitingCount--
      this.enqueue(task)
    }
  }

  private kick(): void {
    if (this.dispatchScheduled || this.closing) return
    this.dispatchScheduled = true
    queueMicrotask(() => {
      this.dispatchScheduled = false
      void this.dispatch()
    })
  }

  private pickWorker(): Worker | undefined {
    let best: Worker | undefined
    const n = this.workers.length
    for (let k = 0; k < n; k++) {
      const w = this.workers[(this.rotate + k) % n]!
      if ((w.state !== 'ready' && w.state !== 'starting') || w.freeSlots.length === 0) continue
      if (best === undefined || w.tasks.size < best.tasks.size) best = w
    }
    if (best !== undefined) this.rotate = (best.index + 1) % n
    return best
  }

  private hasCapacity(): boolean {
    return this.workers.some((w) => (w.state === 'ready' || w.state === 'starting') && w.freeSlots.length > 0)
  }

  private async dispatch(): Promise<void> {
    if (this.dispatching) {
      this.dispatchAgain = true
      return
    }
    this.dispatching = true
    try {
      for (;;) {
        this.dispatchAgain = false
        this.admitWaiting()
        if (this.closing || this.queuedCount === 0 || !this.hasCapacity()) {
          if (!this.dispatchAgain) break
          continue
        }
        let full = false
        await this.shm.accessAsync((tx) => {
          full = this.assign(tx)
        }, { wait: this.o.wait })
        this.admitWaiting()
        if (full) {
          this.segmentFull()
          break
        }
        this.fullSince = undefined
        this.retryDelay = RETRY_MIN_MS
      }
    } catch (err) {
      if (!this.closing) void this.shutdown(err)
    } finally {
      this.dispatching = false
    }
  }

  /** In a turn: sends queued tasks to workers with room. True if the segment was full. */
  private assign(tx: Turn): boolean {
    for (;;) {
      if (this.closing || this.queuedCount === 0) return false
      const w = this.pickWorker()
      if (w === undefined) return false
      const task = this.queue.shift((t) => t.state === 'queued')
      if (task === undefined) return false
      this.queuedCount--
      const slot = w.freeSlots.pop()!
      const at = slot * SLOT_WORDS
      Atomics.store(this.slotTable, at + SlotWord.TaskId, task.id)
      Atomics.store(this.slotTable, at + SlotWord.Flags, 0)
      try {
        const m: ToWorker = { t: 'task', id: task.id, slot, name: task.name, input: task.input }
        tx.putMessage(m, { channel: inboxChannel(this.prefix, w.index) })
      } catch (err) {
        w.freeSlots.push(slot)
        if ((err as ShmError).code === 'ERR_SHM_FULL') {
          this.queue.unshift(task)
          this.queuedCount++
          return true
        }
        // The input cannot be encoded: that is this task's error alone.
        task.state = 'done'
        this.settle(task, false, err)
        continue
      }
      task.state = 'sent'
      task.worker = w
      task.slot = slot
      w.tasks.set(task.id, task)
      this.inFlight.set(task.id, task)
    }
  }

  /** The next task did not fit: retry as results free memory, give up after fullTimeoutMs with nothing running. */
  private segmentFull(): void {
    const now = performance.now()
    this.fullSince ??= now
    if (this.inFlight.size === 0 && now - this.fullSince >= this.o.fullTimeoutMs) {
      const task = this.queue.shift((t) => t.state === 'queued')
      if (task !== undefined) {
        this.queuedCount--
        task.state = 'done'
        this.settle(task, false, new ShmError('ERR_SHM_FULL', `the input of task "${task.name}" did not fit in segment "${this.shm.name}" for ${this.o.fullTimeoutMs} ms: make the segment larger (segmentSize), or pass large data as a TypedArray put in pool.shm`))
      }
      this.fullSince = undefined
      this.kick()
      return
    }
    if (this.retryTimer !== undefined) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.kick()
    }, this.retryDelay)
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2)
  }

  private abortTask(task: Task): void {
    if (task.settled) return
    const reason = abortedError(task.name, task.id, task.signal)
    switch (task.state) {
      case 'waiting':
        this.waitingCount--
        task.state = 'done'
        break
      case 'queued':
        this.queuedCount--
        task.state = 'done'
        this.kick() // room for a waiting run()
        break
      case 'sent': {
        // The worker finds the flag before it starts the task, or gets the message while it runs.
        Atomics.or(this.slotTable, task.slot * SLOT_WORDS + SlotWord.Flags, SlotFlag.Cancel)
        const channel = inboxChannel(this.prefix, task.worker!.index)
        const cancel: ToWorker = { t: 'cancel', id: task.id }
        this.shm.accessAsync((tx) => void tx.putMessage(cancel, { channel }), { wait: this.o.wait }).catch(() => {
          // Full or closed: the flag alone still stops it before it starts, and ctx.cancelled sees it.
        })
        break
      }
      default:
        return
    }
    this.counters.cancelled++
    this.settle(task, false, reason)
  }

  private settle(task: Task, ok: boolean, value: unknown): void {
    if (task.settled) return
    task.settled = true
    if (task.onAbort !== undefined) task.signal!.removeEventListener('abort', task.onAbort)
    if (ok) task.resolve(value)
    else task.reject(value)
  }

  // ── results ────────────────────────────────────────────────────────────────

  private async pump(): Promise<void> {
    while (!this.closing) {
      try {
        await this.shm.waitForMessage({ channel: this.results, wait: this.o.wait, signal: this.pumpStop.signal })
        await this.drainResults()
      } catch (err) {
        if (!this.closing) void this.shutdown(err)
        return
      }
    }
  }

  private async drainResults(): Promise<void> {
    const messages = await this.shm.accessAsync((tx) => takeAll<ToPool>(tx, this.results), { wait: this.o.wait })
    for (const m of messages) {
      if (m.t === 'ready') this.onReady(m.worker, m.generation, m.names)
      else this.onDone(m)
    }
    if (messages.length > 0) this.kick()
  }

  private onReady(index: number, generation: number, names: string[]): void {
    const w = this.workers[index]
    if (w === undefined || w.generation !== generation || w.state !== 'starting') return
    w.state = 'ready'
    w.startFailures = 0
    this.knownNames ??= new Set(names)
    w.ready.resolve()
  }

  private onDone(m: DoneMessage): void {
    const task = this.inFlight.get(m.id)
    if (task === undefined) return // its worker was declared dead meanwhile
    this.release(task)
    if (task.settled) return // cancelled: nobody waits for it
    switch (m.outcome) {
      case 'ok': {
        let value: unknown
        try {
          value = restoreViews(m.value, this.shm)
        } catch (err) {
          this.counters.failed++
          return this.settle(task, false, err)
        }
        this.counters.completed++
        return this.settle(task, true, value)
      }
      case 'error':
        this.counters.failed++
        return this.settle(task, false, reviveError(m.error!))
      case 'thrown':
        this.counters.failed++
        return this.settle(task, false, m.value)
      case 'skipped':
        this.counters.cancelled++
        return this.settle(task, false, abortedError(task.name, task.id, undefined))
    }
  }

  /** The task's result is in (or its worker is gone): its slot is free again. */
  private release(task: Task): void {
    this.inFlight.delete(task.id)
    task.state = 'done'
    const w = task.worker!
    w.tasks.delete(task.id)
    w.freeSlots.push(task.slot)
  }

  // ── workers ────────────────────────────────────────────────────────────────

  private startWorker(w: Worker): void {
    w.generation++
    w.state = 'starting'
    w.ready = deferred()
    const config: WorkerConfig = {
      segment: this.shm.name,
      prefix: this.prefix,
      worker: w.index,
      generation: w.generation,
      slotTable: this.slotTable.byteOffset - this.shm.bytes.byteOffset,
      slotCount: this.workers.length * this.perWorker,
      concurrency: this.o.concurrency,
      wait: this.o.wait,
      fullTimeoutMs: this.o.fullTimeoutMs,
    }
    const generation = w.generation
    let handle: WorkerHandle
    try {
      handle = this.host.start({
        script: this.script,
        args: this.o.args,
        env: { ...this.o.env, [CONFIG_ENV]: JSON.stringify(config) },
        execArgv: this.o.execArgv,
        name: `offload worker ${w.index}`,
      })
    } catch (err) {
      w.handle = undefined
      void this.onExit(w, generation, { code: null, signal: null, error: err as Error })
      return
    }
    w.handle = handle
    void handle.exited.then((exit) => this.onExit(w, generation, exit))
  }

  private async onExit(w: Worker, generation: number, exit: WorkerExit): Promise<void> {
    if (w.generation !== generation || w.state === 'dead' || w.state === 'failed') return
    const wasReady = w.state === 'ready'
    w.state = 'dead'
    const who = `worker ${w.index}${w.handle?.pid !== undefined ? ` (pid ${w.handle.pid})` : ''}`
    if (!wasReady) {
      w.ready.reject(new WorkerExitError(`WorkerPool: ${who} ${describeExit(exit)} before it connected; check that ${this.script} runs and calls serveTasks() (a .ts script needs execArgv such as ['--import', 'tsx'])`, { index: w.index, pid: w.handle?.pid }, exit))
    }
    if (this.closing) return
    let untaken: Set<number>
    try {
      // Results it put before it died still count; tasks still in its inbox never reached it.
      await this.drainResults()
      untaken = await this.shm.accessAsync((tx) => {
        const ids = new Set<number>()
        const channel = inboxChannel(this.prefix, w.index)
        while (tx.hasMessages({ channel })) {
          const m = tx.takeMessage<ToWorker>({ channel })
          const id = m.t === 'task' ? m.id : undefined
          tx.destroy(m)
          if (id !== undefined) ids.add(id)
        }
        return ids
      }, { wait: this.o.wait })
    } catch (err) {
      if (!this.closing) void this.shutdown(err)
      return
    }
    if (this.closing) return
    const back: Task[] = []
    for (const task of [...w.tasks.values()]) {
      const flags = Atomics.load(this.slotTable, task.slot * SLOT_WORDS + SlotWord.Flags)
      const started = !untaken.has(task.id) && (flags & SlotFlag.Started) !== 0
      this.release(task)
      if (task.settled) continue
      if (started) {
        this.counters.crashed++
        this.settle(task, false, new WorkerExitError(
          `${who} ${describeExit(exit)} while running task "${task.name}" (#${task.id}); the pool ${this.o.restart ? 'restarts the worker' : 'does not restart workers (restart: false)'}`,
          { index: w.index, pid: w.handle?.pid }, exit,
        ))
      } else back.push(task)
    }
    // Tasks it never started go first in line again, in their order.
    for (let i = back.length - 1; i >= 0; i--) {
      const task = back[i]!
      task.state = 'queued'
      task.worker = undefined
      this.queue.unshift(task)
      this.queuedCount++
    }
    if (!wasReady) w.startFailures++
    if (this.starting) return // start() fails and closes the pool
    if (this.o.restart && w.startFailures < MAX_START_FAILURES) {
      this.counters.restarts++
      this.startWorker(w)
    } else {
      w.state = 'failed'
      if (!this.workers.some((x) => x.state === 'ready' || x.state === 'starting')) {
        const why = w.startFailures >= MAX_START_FAILURES
          ? `the worker script ${this.script} failed to start ${w.startFailures} times in a row (last: ${describeExit(exit)})`
          : `every worker has exited and restart is off (last: ${who} ${describeExit(exit)})`
        this.broken = new WorkerExitError(`WorkerPool: no worker left: ${why}`, { index: w.index, pid: w.handle?.pid }, exit)
        this.failPending(this.broken)
      }
    }
    this.kick()
  }

  /** Rejects every task not yet settled (waiting, queued and in flight). */
  private failPending(err: unknown): void {
    for (const t of this.waitingList.drain()) if (t.state === 'waiting') this.settle(t, false, err)
    for (const t of this.queue.drain()) if (t.state === 'queued') this.settle(t, false, err)
    this.waitingCount = 0
    this.queuedCount = 0
    for (const t of this.inFlight.values()) this.settle(t, false, err)
  }

  private async shutdown(reason: unknown): Promise<void> {
    if (this.closing) return this.closed
    this.closing = true
    this.closed ??= (async () => {
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
      // Handlers that poll ctx.cancelled stop now rather than at the kill.
      if (!this.shm.closed) for (const t of this.inFlight.values()) Atomics.or(this.slotTable, t.slot * SLOT_WORDS + SlotWord.Flags, SlotFlag.Cancel)
      this.failPending(reason)
      const live = this.workers.filter((w) => w.handle !== undefined && w.state !== 'dead' && w.state !== 'failed')
      // Ask politely through the segment; fall back to the process channel.
      let asked = false
      if (!this.shm.closed) {
        try {
          await this.shm.accessAsync((tx) => {
            for (const w of live) tx.putMessage({ t: 'stop' } satisfies ToWorker, { channel: inboxChannel(this.prefix, w.index) })
          }, { wait: this.o.wait, timeoutMs: 1000 })
          asked = true
        } catch {
          // fall through
        }
      }
      if (!asked) for (const w of live) w.handle!.postMessage({ t: 'stop' })
      const exits = live.map((w) => w.handle!.exited)
      let timer: ReturnType<typeof setTimeout> | undefined
      const allExited = Promise.all(exits).then(() => true)
      const late = await Promise.race([allExited, new Promise<false>((r) => (timer = setTimeout(() => r(false), this.o.stopTimeoutMs)))])
      clearTimeout(timer)
      if (!late) {
        for (const w of live) w.handle!.kill(true)
        await allExited
      }
      for (const w of this.workers) if (w.state !== 'failed') w.state = 'dead'
      this.pumpStop.abort()
      await this.pumpDone
      if (this.shm.closed) return
      if (this.ownsSegment) {
        this.shm.close()
        return
      }
      // A segment we were lent: free what the pool put there (channel records stay; core cannot remove channels).
      try {
        await this.shm.accessAsync((tx) => {
          for (const channel of [this.results, ...this.workers.map((w) => inboxChannel(this.prefix, w.index))]) {
            while (tx.hasMessages({ channel })) tx.destroy(tx.takeMessage({ channel }))
          }
          tx.destroy(this.slotTable)
        }, { wait: this.o.wait, timeoutMs: 5000 })
      } catch {
        // Best effort: the segment's owner may be tearing it down too.
      }
    })()
    return this.closed
  }

  private closedError(): ShmError {
    return new ShmError('ERR_SHM_CLOSED', 'the worker pool is closed: start a new one with WorkerPool.start()')
  }

  private unknownTask(name: string): ShmError {
    const known = [...(this.knownNames ?? [])].map((n) => `"${n}"`).join(', ')
    return invalid(`unknown task "${name}": ${path.basename(this.script)} serves ${known || 'no tasks'}`)
  }
}

function abortedError(name: string, id: number | undefined, signal: AbortSignal | undefined): ShmError {
  const reason = signal?.reason as unknown
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : ''
  return new ShmError('ERR_ABORTED', `task "${name}"${id !== undefined ? ` (#${id})` : ''} was cancelled${why}`)
}
