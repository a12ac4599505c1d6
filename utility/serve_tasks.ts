// The worker side of the offload: a script started by WorkerPool calls
// serveTasks(handlers) and from then on runs the tasks the pool sends it.
// See common/task_protocol.ts for what travels where.
import { SharedMemory, ShmError, type Channel } from '../core'
import { sharedRecordOf } from '../core/values/mapped_handle'
import { listenToParent, type ParentChannel } from './parent_port'
import {
  CONFIG_ENV, inboxChannel, plainError, resultsChannel, sharedValuesIn, SLOT_WORDS, SlotFlag, SlotWord,
  type TaskMessage, type ToPool, type ToWorker, type WorkerConfig,
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

  /** When the handler started (performance.now()): the result reports how long it ran. */
  readonly started = performance.now()

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

/** A result on its way to the pool, with the input of its task (whose references go once it is sent). */
interface Outgoing {
  msg: ToPool
  input: unknown
  /** When it first found the segment full (-1: it has not). */
  since: number
  /** Its value could not be sent: msg is the error that says so. */
  substituted?: boolean
}

class TaskServer {
  readonly shm: SharedMemory
  readonly config: WorkerConfig
  private readonly handlers: TaskHandlers
  private readonly exitOnStop: boolean
  private readonly slots: Int32Array
  private readonly inbox: Channel<ToWorker>
  private readonly results: Channel<ToPool>
  private readonly isShared: (v: object) => boolean
  /** Taken from the inbox, not started yet (at most `concurrency` run at once). */
  private readonly waiting: TaskMessage[] = []
  private readonly running = new Map<number, Context>()
  /** Results not sent yet (the segment or the ring was full), oldest first. */
  private readonly unsent: Outgoing[] = []
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
    try {
      // The pool made both channels (with their capacities) before starting this process.
      this.inbox = this.shm.channel<ToWorker>(inboxChannel(config.prefix, config.worker))
      this.results = this.shm.channel<ToPool>(resultsChannel(config.prefix))
    } catch (err) {
      this.shm.close()
      throw err
    }
    const heap = this.shm.heap
    this.isShared = (v) => {
      try {
        return sharedRecordOf(heap, v) >= 0
      } catch {
        return false
      }
    }
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
      this.send({ t: 'ready', worker: this.config.worker, generation: this.config.generation, pid: process.pid, names: Object.keys(this.handlers) }, undefined)
      while (!this.stopping) {
        this.receive(await this.inbox.receive({ wait: this.config.wait }))
        // Whatever else came meanwhile (a cancel for a running task is seen now).
        while (!this.stopping) {
          const more = this.inbox.tryReceive()
          if (more === undefined) break
          this.receive(more)
        }
        this.startWaiting()
      }
    } catch (err) {
      // stop() closes the inbox under a pending receive: that is how a stop from the parent ends the loop.
      if (!this.stopping) throw err
    } finally {
      this.stop()
    }
    if (this.exitOnStop) process.exit(0)
  }

  /** Stops taking tasks, aborts the running ones and lets go of the channels, the segment and the parent channel. */
  private stop(): void {
    if (this.stopping && this.shm.closed) return
    this.stopping = true
    for (const ctx of this.running.values()) ctx.abort('stopped: the pool is closing')
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.parent?.close()
    // Closing the segment drops every reference this process holds (tasks' inputs included).
    if (!this.shm.closed) {
      try {
        this.inbox.close()
        this.results.close()
      } catch {
        // The segment's close below lets go of them all the same.
      }
    }
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
          const [task] = this.waiting.splice(i, 1)
          this.send({ t: 'done', id: m.id, outcome: 'skipped' }, task!.input)
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
      this.send({ t: 'done', id: m.id, outcome: 'error', error: new ShmError('ERR_SHM_CORRUPT', `task #${m.id} names slot ${m.slot}, outside the slot table`) }, m.input)
      return
    }
    const flags = Atomics.or(this.slots, m.slot * SLOT_WORDS + SlotWord.Flags, SlotFlag.Started)
    if ((flags & SlotFlag.Cancel) !== 0) {
      this.send({ t: 'done', id: m.id, outcome: 'skipped' }, m.input)
      return
    }
    const handler = Object.hasOwn(this.handlers, m.name) ? this.handlers[m.name] : undefined
    if (handler === undefined) {
      const known = Object.keys(this.handlers)
      this.send({
        t: 'done', id: m.id, outcome: 'error',
        error: new ShmError('ERR_INVALID_ARGUMENT', `unknown task "${m.name}": this worker serves ${known.length > 0 ? known.map((k) => `"${k}"`).join(', ') : 'no tasks'}`),
      }, m.input)
      return
    }
    const ctx = new Context(this, m.id, m.name, m.slot)
    this.running.set(m.id, ctx)
    let result: unknown
    try {
      // The input was encoded by a caller typed against this very handler; views of the segment came as views.
      result = handler(m.input as never, ctx)
    } catch (err) {
      this.finish(ctx, m.input, false, err)
      return
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.finish(ctx, m.input, true, value),
        (err) => this.finish(ctx, m.input, false, err),
      )
    } else {
      this.finish(ctx, m.input, true, result)
    }
  }

  private finish(ctx: Context, input: unknown, ok: boolean, value: unknown): void {
    this.running.delete(ctx.taskId)
    if (this.stopping) return
    const runUs = Math.round((performance.now() - ctx.started) * 1000)
    if (ok) this.send({ t: 'done', id: ctx.taskId, outcome: 'ok', value, runUs }, input)
    else if (value instanceof Error) this.send({ t: 'done', id: ctx.taskId, outcome: 'error', error: value, runUs }, input)
    else this.send({ t: 'done', id: ctx.taskId, outcome: 'thrown', value, runUs }, input)
    this.startWaiting()
  }

  /** Puts a message on the results channel, in order: later ones wait behind one that could not go yet. */
  private send(msg: ToPool, input: unknown): void {
    const out: Outgoing = { msg, input, since: -1 }
    if (this.unsent.length > 0 || !this.trySend(out)) {
      this.unsent.push(out)
      this.scheduleRetry()
    }
  }

  /** False if the segment or the ring is full (try again later); anything else is settled here. */
  private trySend(out: Outgoing): boolean {
    if (this.shm.closed) return true
    const msg = out.msg
    try {
      if (this.results.trySend(msg) !== true) return false
    } catch (err) {
      if (this.shm.closed) return true
      if (errorCode(err) === 'ERR_SHM_FULL') {
        if (out.since < 0) out.since = performance.now()
        return false
      }
      // Reentrant: this thread holds a turn (a handler's access callback sent it); it is over by the retry.
      if (errorCode(err) === 'ERR_SHM_REENTRANT') return false
      if (msg.t !== 'done' || out.substituted) throw err
      out.substituted = true
      // The value (or the error's fields) cannot be shared: report that instead.
      const error = msg.outcome === 'error'
        ? plainError(msg.error)
        : new ShmError((errorCode(err) as 'ERR_UNSUPPORTED_TYPE' | undefined) ?? 'ERR_UNSUPPORTED_TYPE', `task #${msg.id} ${msg.outcome === 'ok' ? 'returned' : 'threw'} a value that cannot be sent back: ${(err as Error).message}`)
      out.msg = { t: 'done', id: msg.id, outcome: 'error', error }
      return this.trySend(out)
    }
    this.sent(out)
    return true
  }

  /**
   * A result is in the ring (which holds its own references now): the references the
   * task's input brought go, and so do this process's own references to values of the
   * segment it returned (put by the handler: the caller owns them now).
   */
  private sent(out: Outgoing): void {
    const lent = sharedValuesIn(out.input, this.isShared)
    const msg = out.msg
    const returned = msg.t === 'done' && msg.outcome !== 'error' ? sharedValuesIn(msg.value, this.isShared) : []
    if (lent.length === 0 && returned.length === 0) return
    const drop = [...lent, ...returned.filter((v) => !lent.includes(v))]
    try {
      this.shm.access((tx) => {
        for (const v of drop) {
          try {
            tx.destroy(v)
          } catch {
            // Not owned here (read out of a container, or the handler destroyed it): nothing to drop.
          }
        }
      }, { wait: this.config.wait })
    } catch {
      // No turn now: what stays held goes when this worker closes the segment.
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.stopping) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      while (this.unsent.length > 0) {
        const head = this.unsent[0]!
        if (!this.trySend(head)) {
          const msg = head.msg
          if (head.since < 0 || performance.now() - head.since < this.config.fullTimeoutMs || msg.t !== 'done') break
          // Give up on the value; a short error has a better chance to fit.
          head.msg = {
            t: 'done', id: msg.id, outcome: 'error',
            error: new ShmError('ERR_SHM_FULL', `the result of task #${msg.id} did not fit in segment "${this.shm.name}" for ${this.config.fullTimeoutMs} ms: make the segment larger, or return less (write large outputs into a TypedArray the caller put in the segment)`),
          }
          head.since = -1
          if (!this.trySend(head)) break
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
}
