// What the pool's parts share: the segment, its slot table and the pool's channels, the
// workers, the tasks in line and in flight, the counters, and where the pool is in its life. WorkerPool
// (main/worker_pool.ts) holds one; admission, dispatch, results and supervision work on it.
import { randomBytes } from 'node:crypto'
import { SharedMemory, type Channel } from '../../core'
import { inboxCapacity, inboxChannel, resultsCapacity, resultsChannel, SLOT_WORDS, type ToPool, type ToWorker } from '../../common/task_protocol'
import type { WorkerHost } from '../hosts'
import { Admission } from './admission'
import { parseOptions, type PoolConfig, type WorkerPoolOptions } from './options'
import { deferred, type Scheduler, type Task, type Worker } from './types'

export class PoolState {
  /** The segment tasks and results travel through. */
  readonly shm: SharedMemory
  readonly ownsSegment: boolean
  readonly host: WorkerHost
  readonly script: string
  /** Channel names of this pool start with it. */
  readonly prefix: string
  /** The channel workers put results on (this pool's handle, open until close). */
  readonly results: Channel<ToPool>
  readonly workers: Worker[] = []
  /** Slots (tasks sent ahead) per worker: concurrency + prefetch. */
  readonly perWorker: number
  readonly slotTable: Int32Array
  readonly o: PoolConfig

  nextId = 1
  readonly counters = { peakQueued: 0, completed: 0, failed: 0, cancelled: 0, crashed: 0, restarts: 0 }
  readonly admission: Admission
  readonly inFlight = new Map<number, Task>()
  knownNames: Set<string> | undefined
  /** Set when no worker is left and none will be started: every run() rejects with it. */
  broken: Error | undefined
  readonly dispatcher: Scheduler

  starting = true
  closing = false
  closed: Promise<void> | undefined
  readonly pumpStop = new AbortController()
  pumpDone: Promise<void> = Promise.resolve()
  /** Turns under way that drop references results brought in (main/pool/results.ts). */
  readonly releasing = new Set<Promise<void>>()

  /** Checks the options and creates (or takes) the segment and the slot table; starts nothing. */
  constructor(options: WorkerPoolOptions, makeScheduler: (state: PoolState) => Scheduler) {
    const { script, workers, perWorker, host, config } = parseOptions(options)
    this.o = config
    this.host = host
    this.script = script
    this.perWorker = perWorker
    this.admission = new Admission(config.maxQueued, this.counters)
    this.dispatcher = makeScheduler(this)

    this.ownsSegment = options.shm === undefined
    this.shm = options.shm ?? SharedMemory.create({
      name: options.segmentName ?? `wp-${process.pid}-${randomBytes(4).toString('hex')}`,
      size: options.segmentSize ?? 64 << 20,
    })
    this.prefix = `offload/${randomBytes(6).toString('hex')}`
    // The rings hold every message the pool's limits allow at once (see task_protocol).
    const inboxes: Array<Channel<ToWorker>> = []
    let results: Channel<ToPool> | undefined
    let table: Int32Array | undefined
    try {
      table = this.shm.access((tx) => tx.put(new Int32Array(workers * this.perWorker * SLOT_WORDS)))
      results = this.shm.channel<ToPool>(resultsChannel(this.prefix), { capacity: resultsCapacity(workers, this.perWorker) })
      for (let index = 0; index < workers; index++) inboxes.push(this.shm.channel<ToWorker>(inboxChannel(this.prefix, index), { capacity: inboxCapacity(this.perWorker) }))
    } catch (err) {
      for (const ch of inboxes) ch.close()
      results?.close()
      if (this.ownsSegment) this.shm.close()
      else if (table !== undefined) {
        try {
          this.shm.access((tx) => tx.destroy(table))
        } catch {
          // Best effort: the error that brought us here is the one to report.
        }
      }
      throw err
    }
    this.slotTable = table
    this.results = results
    for (let index = 0; index < workers; index++) {
      const freeSlots: number[] = []
      for (let s = (index + 1) * this.perWorker - 1; s >= index * this.perWorker; s--) freeSlots.push(s)
      this.workers.push({ index, generation: 0, handle: undefined, inbox: inboxes[index]!, state: 'starting', tasks: new Map(), freeSlots, runUs: Infinity, startFailures: 0, ready: deferred() })
    }
  }

  /** Resolves once the references being dropped now are dropped. */
  async pendingReleases(): Promise<void> {
    while (this.releasing.size > 0) await Promise.all(this.releasing)
  }

  /** Runs dispatch soon (once per microtask, however often it is asked). */
  kick(): void {
    this.dispatcher.kick()
  }

  settle(task: Task, ok: boolean, value: unknown): void {
    if (task.settled) return
    task.settled = true
    if (task.onAbort !== undefined) task.signal!.removeEventListener('abort', task.onAbort)
    if (ok) task.resolve(value)
    else task.reject(value)
  }

  /** The task's result is in (or its worker is gone): its slot is free again. */
  release(task: Task): void {
    this.inFlight.delete(task.id)
    task.state = 'done'
    const w = task.worker!
    w.tasks.delete(task.id)
    w.freeSlots.push(task.slot)
  }

  /** Rejects every task not yet settled (waiting, queued and in flight). */
  failPending(err: unknown): void {
    for (const t of this.admission.drain()) this.settle(t, false, err)
    for (const t of this.inFlight.values()) this.settle(t, false, err)
  }
}
