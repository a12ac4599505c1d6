// Admission: run() calls wait for room (beyond maxQueued), then queue for a worker.
//
//   run() ─▶ waiting (no room) ─▶ queued (≤ maxQueued) ─▶ taken by dispatch
//
// A cancelled task stays in its line as a stale entry and is skipped when reached.
import type { Task } from './types'

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

/** The two lines a task passes before it is sent: waiting for room, then queued. */
export class Admission {
  private readonly waitingList = new Fifo<Task>()
  private readonly queue = new Fifo<Task>()
  private waitingCount = 0
  private queuedCount = 0
  private readonly maxQueued: number
  private readonly counters: { peakQueued: number }

  constructor(maxQueued: number, counters: { peakQueued: number }) {
    this.maxQueued = maxQueued
    this.counters = counters
  }

  /** Tasks accepted and waiting for a worker. */
  get queued(): number {
    return this.queuedCount
  }

  /** run() calls waiting for room in the queue. */
  get waiting(): number {
    return this.waitingCount
  }

  /** A new task: queued when nobody waits before it and there is room, otherwise it waits for room. */
  add(task: Task): void {
    if (this.waitingCount === 0 && this.queuedCount < this.maxQueued) this.enqueue(task)
    else {
      this.waitingList.push(task)
      this.waitingCount++
    }
  }

  /** Moves run() calls that waited for room into the queue. */
  admitWaiting(): void {
    while (this.queuedCount < this.maxQueued && this.waitingCount > 0) {
      const task = this.waitingList.shift((t) => t.state === 'waiting')
      if (task === undefined) break
      this.waitingCount--
      this.enqueue(task)
    }
  }

  /** The first queued task, out of the queue (its state stays 'queued' until the caller changes it). */
  take(): Task | undefined {
    const task = this.queue.shift((t) => t.state === 'queued')
    if (task !== undefined) this.queuedCount--
    return task
  }

  /** A taken task goes first in line again (it did not fit, or its worker never started it). */
  putBack(task: Task): void {
    task.state = 'queued'
    this.queue.unshift(task)
    this.queuedCount++
  }

  /** A waiting or queued task was cancelled: it no longer counts (its entry is skipped when reached). */
  withdraw(task: Task): void {
    if (task.state === 'waiting') this.waitingCount--
    else if (task.state === 'queued') this.queuedCount--
    else return
    task.state = 'done'
  }

  /** Empties both lines: the tasks still in them, waiting ones first. */
  drain(): Task[] {
    const live = [
      ...this.waitingList.drain().filter((t) => t.state === 'waiting'),
      ...this.queue.drain().filter((t) => t.state === 'queued'),
    ]
    this.waitingCount = 0
    this.queuedCount = 0
    return live
  }

  private enqueue(task: Task): void {
    task.state = 'queued'
    this.queue.push(task)
    this.queuedCount++
    if (this.queuedCount > this.counters.peakQueued) this.counters.peakQueued = this.queuedCount
  }
}
