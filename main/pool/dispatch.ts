// Dispatch: send queued tasks to workers with a free slot (the least busy first, round
// robin among equals), each as one frame on the worker's inbox channel: no turn for a
// task whose frame fits a ring slot. When the segment is too full for the next input
// (or, which the rings' sizes rule out, an inbox is full), retry with backoff as
// results free memory, and give up on that task after segmentFullTimeoutMs with
// nothing running. Cancelling a task also lives here.
import { ShmError } from '../../core'
import { Backoff } from '../../common/backoff'
import { SLOT_WORDS, SlotFlag, SlotWord, type ToWorker } from '../../common/task_protocol'
import { abortedError } from './errors'
import { AUTO_PREFETCH, SHORT_TASK_US } from './options'
import type { PoolState } from './state'
import { shutdown } from './supervision'
import type { Scheduler, Task, Worker } from './types'

export class Dispatcher implements Scheduler {
  private readonly s: PoolState
  private scheduled = false
  private fullSince: number | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private readonly retry = new Backoff()
  private rotate = 0

  constructor(state: PoolState) {
    this.s = state
  }

  kick(): void {
    if (this.scheduled || this.s.closing) return
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      this.dispatch()
    })
  }

  /** No more retries (the pool is closing). */
  stop(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
  }

  private dispatch(): void {
    const s = this.s
    try {
      for (;;) {
        s.admission.admitWaiting()
        if (s.closing || s.admission.queued === 0 || !this.hasCapacity()) return
        const sent = this.assign()
        if (typeof sent !== 'number') {
          s.admission.admitWaiting()
          this.noRoom(sent)
          return
        }
        this.fullSince = undefined
        this.retry.reset()
        // Sending made room in the queue for run() calls that wait: go on while it sends.
        if (sent === 0) return
      }
    } catch (err) {
      if (!s.closing) void shutdown(s, err)
    }
  }

  private pickWorker(): Worker | undefined {
    let best: Worker | undefined
    const workers = this.s.workers
    const n = workers.length
    for (let k = 0; k < n; k++) {
      const w = workers[(this.rotate + k) % n]!
      if (!this.hasRoom(w)) continue
      if (best === undefined || w.tasks.size < best.tasks.size) best = w
    }
    if (best !== undefined) this.rotate = (best.index + 1) % n
    return best
  }

  private hasCapacity(): boolean {
    return this.s.workers.some((w) => this.hasRoom(w))
  }

  /** Whether `w` may be sent one more task: a free slot, and under prefetch 'auto' fewer ahead than its task length allows. */
  private hasRoom(w: Worker): boolean {
    if ((w.state !== 'ready' && w.state !== 'starting') || w.freeSlots.length === 0) return false
    const o = this.s.o
    if (o.prefetch !== 'auto') return true
    return w.tasks.size < o.concurrency + (w.runUs < SHORT_TASK_US ? AUTO_PREFETCH : 1)
  }

  /**
   * Sends queued tasks to workers with room, until one of them runs out: how many it
   * sent, or what was full. An inbox is full only while a slot is held by a worker that
   * died taking a message (the ring frees it after ring.STUCK_MS): its size covers the rest.
   */
  private assign(): number | 'segment' | 'inbox' {
    const s = this.s
    let sent = 0
    for (;; sent++) {
      if (s.closing || s.admission.queued === 0) return sent
      const w = this.pickWorker()
      if (w === undefined) return sent
      const task = s.admission.take()
      if (task === undefined) return sent
      const slot = w.freeSlots.pop()!
      const at = slot * SLOT_WORDS
      Atomics.store(s.slotTable, at + SlotWord.TaskId, task.id)
      Atomics.store(s.slotTable, at + SlotWord.Flags, 0)
      let put: true | 'ERR_CHANNEL_FULL'
      try {
        put = w.inbox.trySend({ t: 'task', id: task.id, slot, name: task.name, input: task.input })
      } catch (err) {
        w.freeSlots.push(slot)
        if ((err as ShmError).code === 'ERR_SHM_FULL') {
          s.admission.putBack(task)
          return 'segment'
        }
        // The input cannot be encoded (or holds a freed view): that is this task's error alone.
        task.state = 'done'
        s.settle(task, false, err)
        continue
      }
      if (put !== true) {
        w.freeSlots.push(slot)
        s.admission.putBack(task)
        return 'inbox'
      }
      task.state = 'sent'
      task.worker = w
      task.slot = slot
      w.tasks.set(task.id, task)
      s.inFlight.set(task.id, task)
    }
  }

  /**
   * The next task did not fit: retry as results free memory (or the inbox frees its
   * slot); give up on a task that does not fit the segment after fullTimeoutMs with nothing running.
   */
  private noRoom(what: 'segment' | 'inbox'): void {
    const s = this.s
    const now = performance.now()
    if (what === 'segment') this.fullSince ??= now
    if (what === 'segment' && s.inFlight.size === 0 && now - this.fullSince! >= s.o.fullTimeoutMs) {
      const task = s.admission.take()
      if (task !== undefined) {
        task.state = 'done'
        s.settle(task, false, new ShmError('ERR_SHM_FULL', `the input of task "${task.name}" did not fit in segment "${s.shm.name}" for ${s.o.fullTimeoutMs} ms: make the segment larger (segmentSize), or pass large data as a TypedArray put in pool.shm`))
      }
      this.fullSince = undefined
      this.kick()
      return
    }
    if (this.retryTimer !== undefined) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.kick()
    }, this.retry.delay)
    this.retry.grow()
  }
}

/** The caller cancelled: drop the task from its line, or flag it (and tell its worker) when it was sent. */
export function cancelTask(s: PoolState, task: Task): void {
  if (task.settled) return
  const reason = abortedError(task.name, task.id, task.signal)
  switch (task.state) {
    case 'waiting':
      s.admission.withdraw(task)
      break
    case 'queued':
      s.admission.withdraw(task)
      s.kick() // room for a waiting run()
      break
    case 'sent': {
      // The worker finds the flag before it starts the task, or gets the message while it runs.
      Atomics.or(s.slotTable, task.slot * SLOT_WORDS + SlotWord.Flags, SlotFlag.Cancel)
      const cancel: ToWorker = { t: 'cancel', id: task.id }
      try {
        task.worker!.inbox.trySend(cancel)
      } catch {
        // Closed: the flag alone still stops it before it starts, and ctx.cancelled sees it.
      }
      break
    }
    default:
      return
  }
  s.counters.cancelled++
  s.settle(task, false, reason)
}
