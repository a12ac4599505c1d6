// The worker side of the offload: a script started by WorkerPool calls
// serveTasks(handlers) and from then on runs the tasks the pool sends it.
// See common/task_protocol.ts for what travels where.
import { SharedMemory, ShmError } from '../core'
import { listenToParent, type ParentChannel } from './parent_port'
import {
  CONFIG_ENV, inboxChannel, plainError, restoreViews, resultsChannel, shareViews, SLOT_WORDS, SlotFlag, SlotWord, takeAll,
  type DoneMessage, type TaskMessage, type ToPool, type ToWorker, type WorkerConfig,
} from '../common/task_protocol'
import { segmentView } from '../common/segment_view'
import { Backoff } from '../common/backoff'
import type { TaskContext, TaskHandlers } from './tasks'

export interface ServeOptions {
  /** End the process once the pool stops this worker (default true). */
  exitOnStop?: boolean
}

/**
 * Serves `handlers` to the WorkerPool that started this process: connects to its
 * segment, takes tasks, calls the handler named by each task with `(input, ctx)`,
 * and puts the result (or the error thrown) back. Resolves when the pool stops
 * this worker (then, by default, the process exits).
 *
 * Throws at once if this process was not started by a WorkerPool, or if a
 * handler is not a function.
 *
 * Export the handler object so the caller can type its pool:
 * `WorkerPool.start<typeof handlers>(…)` with `import type { handlers }`.
 */
export function serveTasks<H extends TaskHandlers>(handlers: H, options: ServeOptions = {}): Promise<void> {
  if (typeof handlers !== 'object' || handlers === null) {
    throw new ShmError('ERR_INVALID_ARGUMENT', 'serveTasks expects an object of handler functions, e.g. serveTasks({ resize: (input, ctx) => … })')
  }
  for (const [name, fn] of Object.entries(handlers)) {
    if (typeof fn !== 'function') throw new ShmError('ERR_INVALID_ARGUMENT', `serveTasks: handler "${name}" is a ${typeof fn}, not a function`)
  }
  const server = new TaskServer(handlers, readConfig(), options.exitOnStop ?? true)
  return server.serve()
}

function readConfig(): WorkerConfig {
  const raw = process.env[CONFIG_ENV]
  if (raw === undefined) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `serveTasks: this process was not started by a WorkerPool (${CONFIG_ENV} is not set); start this script with WorkerPool.start({ script }) in the main process`)
  }
  // Processes this worker starts must not take the pool's configuration for theirs.
  delete process.env[CONFIG_ENV]
  let c: WorkerConfig
  try {
    c = JSON.parse(raw) as WorkerConfig
  } catch {
    throw new ShmError('ERR_INVALID_ARGUMENT', `serveTasks: ${CONFIG_ENV} is not valid JSON`)
  }
  const ints = ['worker', 'generation', 'slotTable', 'slotCount', 'concurrency', 'fullTimeoutMs'] as const
  if (typeof c?.segment !== 'string' || typeof c.prefix !== 'string' || ints.some((k) => typeof c[k] !== 'number')) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `serveTasks: ${CONFIG_ENV} lacks a field (segment, prefix, ${ints.join(', ')}); the pool and this worker use different library versions?`)
  }
  return c
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function'
}

function errorCode(err: unknown): string | undefined {
  return (err as { code?: unknown })?.code as string | undefined
}

class Context implements TaskContext {
  private readonly controller = new AbortController()

  constructor(
    private readonly server: TaskServer,
    readonly taskId: number,
    readonly name: string,
    readonly slot: number,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal
  }

  get workerIndex(): number {
    return this.server.config.worker
  }

  get shm(): SharedMemory {
    return this.server.shm
  }

  get cancelled(): boolean {
    if (this.controller.signal.aborted) return true
    if (!this.server.cancelRequested(this.slot, this.taskId)) return false
    this.abort()
    return true
  }

  throwIfCancelled(): void {
    if (this.cancelled) throw this.controller.signal.reason as Error
  }

  abort(why = 'cancelled by the caller'): void {
    if (!this.controller.signal.aborted) this.controller.abort(new ShmError('ERR_ABORTED', `task "${this.name}" (#${this.taskId}) was ${why}`))
  }
}

class TaskServer {
  readonly shm: SharedMemory
  readonly config: WorkerConfig
  private readonly handlers: TaskHandlers
  private readonly exitOnStop: boolean
  private readonly slots: Int32Array
  private readonly inbox: string
  private readonly results: string
  /** Taken from the inbox, not started yet (at most `concurrency` run at once). */
  private readonly waiting: TaskMessage[] = []
  private readonly running = new Map<number, Context>()
  /** Results that did not fit in the segment yet, with when they first failed. */
  private readonly unsent: Array<{ msg: DoneMessage; since: number }> = []
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private readonly retry = new Backoff()
  private starting = false
  private stopping = false
  private parent: ParentChannel | undefined

  constructor(handlers: TaskHandlers, config: WorkerConfig, exitOnStop: boolean) {
    this.handlers = handlers
    this.config = config
    this.exitOnStop = exitOnStop
    this.shm = SharedMemory.open({ name: config.segment })
    const bytes = config.slotCount * SLOT_WORDS * 4
    if (config.slotTable % 8 !== 0 || config.slotTable <= 0 || config.slotTable + bytes > this.shm.size) {
      this.shm.close()
      throw new ShmError('ERR_SHM_CORRUPT', `serveTasks: the slot table (offset ${config.slotTable}, ${bytes} bytes) does not fit segment "${config.segment}"`)
    }
    this.slots = segmentView(this.shm, Int32Array, config.slotTable, config.slotCount * SLOT_WORDS)
    this.inbox = inboxChannel(config.prefix, config.worker)
    this.results = resultsChannel(config.prefix)
  }

  async serve(): Promise<void> {
    this.parent = listenToParent(
      (m) => {
        if ((m as { t?: unknown })?.t === 'stop') this.stop()
      },
      () => {
        // The pool's process is gone: nobody will take our results.
        this.stop()
        process.exit(0)
      },
    )
    try {
      this.putNow({ t: 'ready', worker: this.config.worker, generation: this.config.generation, pid: process.pid, names: Object.keys(this.handlers) })
      while (!this.stopping) {
        await this.shm.waitForMessage({ channel: this.inbox, wait: this.config.wait })
        const messages = await this.shm.accessAsync((tx) => takeAll<ToWorker>(tx, this.inbox), { wait: this.config.wait })
        for (const m of messages) this.receive(m)
        this.startWaiting()
      }
    } catch (err) {
      // stop() closes the segment under a pending wait: that is how a stop from the parent ends the loop.
      if (!this.stopping) throw err
    } finally {
      this.stop()
    }
    if (this.exitOnStop) process.exit(0)
  }

  /** Stops taking tasks, aborts the running ones and lets go of the segment and the parent channel. */
  private stop(): void {
    if (this.stopping && this.shm.closed) return
    this.stopping = true
    for (const ctx of this.running.values()) ctx.abort('stopped: the pool is closing')
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.parent?.close()
    this.shm.close()
  }

  private receive(m: ToWorker): void {
    switch (m.t) {
      case 'task':
        this.waiting.push(m)
        break
      case 'cancel': {
        const ctx = this.running.get(m.id)
        if (ctx !== undefined) {
          ctx.abort()
          break
        }
        const i = this.waiting.findIndex((w) => w.id === m.id)
        if (i >= 0) {
          this.waiting.splice(i, 1)
          this.send({ t: 'done', id: m.id, outcome: 'skipped' })
        }
        break
      }
      case 'stop':
        this.stopping = true
        break
    }
  }

  cancelRequested(slot: number, id: number): boolean {
    const at = slot * SLOT_WORDS
    return (Atomics.load(this.slots, at + SlotWord.Flags) & SlotFlag.Cancel) !== 0 && Atomics.load(this.slots, at + SlotWord.TaskId) === id
  }

  private startWaiting(): void {
    if (this.starting) return // a synchronous handler finished inside the loop below: it goes on by itself
    this.starting = true
    try {
      while (!this.stopping && this.running.size < this.config.concurrency && this.waiting.length > 0) this.start(this.waiting.shift()!)
    } finally {
      this.starting = false
    }
  }

  private start(m: TaskMessage): void {
    if (!Number.isInteger(m.slot) || m.slot < 0 || m.slot >= this.config.slotCount) {
      this.send({ t: 'done', id: m.id, outcome: 'error', error: new ShmError('ERR_SHM_CORRUPT', `task #${m.id} names slot ${m.slot}, outside the slot table`) })
      return
    }
    const flags = Atomics.or(this.slots, m.slot * SLOT_WORDS + SlotWord.Flags, SlotFlag.Started)
    if ((flags & SlotFlag.Cancel) !== 0) {
      this.send({ t: 'done', id: m.id, outcome: 'skipped' })
      return
    }
    const handler = Object.hasOwn(this.handlers, m.name) ? this.handlers[m.name] : undefined
    if (handler === undefined) {
      const known = Object.keys(this.handlers)
      this.send({
        t: 'done', id: m.id, outcome: 'error',
        error: new ShmError('ERR_INVALID_ARGUMENT', `unknown task "${m.name}": this worker serves ${known.length > 0 ? known.map((k) => `"${k}"`).join(', ') : 'no tasks'}`),
      })
      return
    }
    const ctx = new Context(this, m.id, m.name, m.slot)
    this.running.set(m.id, ctx)
    let result: unknown
    try {
      // The input was encoded by a caller typed against this very handler.
      result = handler(restoreViews(m.input, this.shm) as never, ctx)
    } catch (err) {
      this.finish(ctx, false, err)
      return
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.finish(ctx, true, value),
        (err) => this.finish(ctx, false, err),
      )
    } else {
      this.finish(ctx, true, result)
    }
  }

  private finish(ctx: Context, ok: boolean, value: unknown): void {
    this.running.delete(ctx.taskId)
    if (this.stopping) return
    if (ok) this.send({ t: 'done', id: ctx.taskId, outcome: 'ok', value })
    else if (value instanceof Error) this.send({ t: 'done', id: ctx.taskId, outcome: 'error', error: value })
    else this.send({ t: 'done', id: ctx.taskId, outcome: 'thrown', value })
    this.startWaiting()
  }

  /** Puts a result on the results channel, degrading what cannot be shared and retrying while the segment is full. */
  private send(msg: DoneMessage): void {
    if (this.unsent.length > 0) {
      this.unsent.push({ msg, since: performance.now() })
      return
    }
    if (!this.trySend(msg)) {
      this.unsent.push({ msg, since: performance.now() })
      this.scheduleRetry()
    }
  }

  /** False if the segment is full (try again later); anything else is settled here. */
  private trySend(msg: DoneMessage): boolean {
    if (this.shm.closed) return true
    try {
      this.putNow(msg.outcome === 'ok' || msg.outcome === 'thrown' ? { ...msg, value: shareViews(msg.value, this.shm) } : msg)
      return true
    } catch (err) {
      // Full: wait for room. Reentrant: an async turn of this process is being entered; it is over by the retry.
      if (errorCode(err) === 'ERR_SHM_FULL' || errorCode(err) === 'ERR_SHM_REENTRANT') return false
      if (this.shm.closed) return true
      // The value (or the error's fields) cannot be shared: report that instead.
      const error = msg.outcome === 'error'
        ? plainError(msg.error)
        : new ShmError((errorCode(err) as 'ERR_UNSUPPORTED_TYPE' | undefined) ?? 'ERR_UNSUPPORTED_TYPE', `task #${msg.id} ${msg.outcome === 'ok' ? 'returned' : 'threw'} a value that cannot be sent back: ${(err as Error).message}`)
      try {
        this.putNow({ t: 'done', id: msg.id, outcome: 'error', error })
        return true
      } catch (again) {
        if (errorCode(again) === 'ERR_SHM_FULL') return false
        throw again
      }
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.stopping) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      while (this.unsent.length > 0) {
        const head = this.unsent[0]!
        if (!this.trySend(head.msg)) {
          if (performance.now() - head.since < this.config.fullTimeoutMs) break
          // Give up on the value; a short error has a better chance to fit.
          head.msg = {
            t: 'done', id: head.msg.id, outcome: 'error',
            error: new ShmError('ERR_SHM_FULL', `the result of task #${head.msg.id} did not fit in segment "${this.shm.name}" for ${this.config.fullTimeoutMs} ms: make the segment larger, or return less (write large outputs into a TypedArray the caller put in the segment)`),
          }
          head.since = performance.now()
          if (!this.trySend(head.msg)) break
        }
        this.unsent.shift()
        this.retry.reset()
      }
      if (this.unsent.length > 0) {
        this.retry.grow()
        this.scheduleRetry()
      } else {
        this.startWaiting()
      }
    }, this.retry.delay)
  }

  private putNow(msg: ToPool): void {
    this.shm.access((tx) => {
      tx.putMessage(msg, { channel: this.results })
    }, { wait: this.config.wait })
  }
}
