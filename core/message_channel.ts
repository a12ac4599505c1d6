// The channel object users hold: `shm.channel<Job>('jobs')`. It is a handle on one
// channel of the segment (core/channel.ts keeps the channel alive while any handle is
// open) and owns all waiting for it: one loop for sync waits (receiveSync, a full
// ring's send) and one for async ones (receive, for await), both over the same
// take/put steps. Messages are copied (core/messages.ts): receive returns an ordinary
// value and nothing needs destroying, except values the sender passed by reference.
import { ShmError } from './errors'
import type { Heap } from './heap'
import { Messages, LOST, type InTurn, type Outgoing } from './messages'
import { native } from './native'
import { localNotifier } from './notifier'
import { checkOptions } from './options'
import { Chan, RingSlot } from './records'
import { EMPTY, FULL, HELD, PENDING, Ring, STUCK_MS } from './ring'
import type { Segment } from './segment'
import { channelLabel } from './channel'
import { waitWord, type WaitMode } from './waiting'
import { addSleeper, arm, removeSleeper, stillListed, wakeReceivers, wakeSenders } from './wakeups'

export interface ChannelOpenOptions {
  /** Messages the ring holds before send waits (a power of two, 2–65536; default 64). Used when this call makes the channel. */
  capacity?: number
}

export interface SendOptions {
  /** How to wait while the ring is full: sleep ('cpu-friendly', the default) or spin ('low-latency'). */
  wait?: WaitMode
  /** Give up with ERR_TIMEOUT after this long (default: wait as long as it takes). */
  timeoutMs?: number
}

export interface ReceiveOptions {
  /** 'cpu-friendly' (default): sleep until a sender wakes this event loop. 'low-latency': a waiter thread spins. */
  wait?: WaitMode
  /** Give up with ERR_TIMEOUT after this long (default: wait as long as it takes). */
  timeoutMs?: number
  /** Abort the wait: the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /** Keep the process alive while waiting (default true). */
  keepAlive?: boolean
}

export interface ReceiveSyncOptions {
  wait?: WaitMode
  timeoutMs?: number
}

export interface ChannelStats {
  /** Messages sent and not yet received. */
  size: number
  /** Messages the ring holds. */
  capacity: number
  /** Messages lost because their sender or receiver was killed in the middle of the operation. */
  dropped: number
}

/** What the channel object needs from its segment handle. */
export interface ChannelHost {
  readonly segment: Segment
  readonly heap: Heap
  readonly messages: Messages
  readonly inTurn: InTurn
  /** In a turn: drops this handle's reference to the channel. */
  closeChannel(ref: number): void
}

/** What tryTake returns when no message could be taken. */
export const NOTHING: unique symbol = Symbol('nothing')
const sendSpec = { wait: 'string', timeoutMs: 'number' } as const
const receiveSpec = { wait: 'string', timeoutMs: 'number', signal: 'object', keepAlive: 'boolean' } as const
const receiveSyncSpec = { wait: 'string', timeoutMs: 'number' } as const

interface Receiver {
  resolve(value: unknown): void
  reject(err: unknown): void
  keepAlive: boolean
  cleanup(): void
}

export class Channel<T = unknown> implements AsyncIterable<T> {
  readonly name: string
  private readonly host: ChannelHost
  /** @internal The channel record. */
  readonly ref: number
  private readonly ring: Ring
  private readonly inlineBytes: number
  private closed = false
  /** Async receivers of this handle, in arrival order. */
  private readonly receivers: Receiver[] = []
  /** While receivers wait: how this event loop is woken (see startWaiting). */
  private waiting: Waiting | null = null
  /** A position found claimed but unpublished (or a slot claimed but not freed) and since when. */
  private stuckPos = 0
  private stuckSince = -1

  /** @internal Made by shm.channel(). */
  constructor(host: ChannelHost, name: string, ref: number) {
    this.host = host
    this.name = name
    this.ref = ref
    this.ring = new Ring(host.heap.i32, ref, process.pid)
    this.inlineBytes = this.ring.slotBytes - RingSlot.Data
  }

  /** Messages sent and not yet received. */
  get size(): number {
    this.checkOpen()
    return this.ring.size()
  }

  stats(): ChannelStats {
    this.checkOpen()
    return { size: this.ring.size(), capacity: this.ring.capacity, dropped: this.ring.dropped() }
  }

  /**
   * Sends a copy of `value` (values of the segment — tx.put results, mapped views —
   * go by reference: the receiver gets the live view). When the ring is full it waits
   * for room, blocking this thread (ERR_TIMEOUT after `timeoutMs`); trySend does not.
   */
  send(value: T, options?: SendOptions): void {
    this.checkOpen()
    const o = options === undefined ? undefined : checkOptions<SendOptions>(options, sendSpec as never, 'channel.send')
    if (o !== undefined) checkWait(o.wait, o.timeoutMs, 'channel.send')
    const out = this.host.messages.prepare(value, this.inlineBytes)
    if (this.put(out)) return
    this.waitForRoom(out, o?.wait ?? 'cpu-friendly', o?.timeoutMs ?? Infinity)
  }

  /** Sends if the ring has room: true, or 'ERR_CHANNEL_FULL' (nothing sent). */
  trySend(value: T): true | 'ERR_CHANNEL_FULL' {
    this.checkOpen()
    const out = this.host.messages.prepare(value, this.inlineBytes)
    if (this.put(out)) return true
    this.host.messages.abandon(out)
    return 'ERR_CHANNEL_FULL'
  }

  /** Takes the oldest message, or undefined when there is none. */
  tryReceive(): T | undefined {
    this.checkOpen()
    const value = this.take()
    return value === NOTHING ? undefined : (value as T)
  }

  /** @internal tx.takeMessage: the oldest message, or NOTHING (tryReceive's undefined could be a message). */
  tryTake(): unknown {
    this.checkOpen()
    return this.take()
  }

  /**
   * Waits for a message and takes it, in one step: each message goes to exactly one
   * receiver. The event loop keeps running; a sender wakes it directly.
   */
  receive(options?: ReceiveOptions): Promise<T> {
    try {
      this.checkOpen()
      const o = options === undefined ? {} : checkOptions<ReceiveOptions>(options, receiveSpec as never, 'channel.receive')
      checkWait(o.wait, o.timeoutMs, 'channel.receive')
      if (this.receivers.length === 0) {
        const value = this.take()
        if (value !== NOTHING) return Promise.resolve(value as T)
      }
      if (o.signal?.aborted) return Promise.reject(aborted(o.signal))
      if (o.timeoutMs === 0) return Promise.reject(timedOut(this.name, 0))
      return new Promise<T>((resolve, reject) => this.enqueue(resolve as (v: unknown) => void, reject, o))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Blocks this thread until a message comes, and takes it. For worker loops that prefer blocking. */
  receiveSync(options?: ReceiveSyncOptions): T {
    this.checkOpen()
    const o = options === undefined ? {} : checkOptions<ReceiveSyncOptions>(options, receiveSyncSpec as never, 'channel.receiveSync')
    checkWait(o.wait, o.timeoutMs, 'channel.receiveSync')
    const deadline = performance.now() + (o.timeoutMs ?? Infinity)
    const { segment, heap } = this.host
    const i32 = heap.i32
    for (;;) {
      const value = this.take()
      if (value !== NOTHING) return value as T
      const left = deadline - performance.now()
      if (left <= 0) throw timedOut(this.name, o.timeoutMs ?? 0)
      if (o.wait === 'low-latency') continue
      const signal = (this.ref + Chan.Signal) >>> 2
      Atomics.add(i32, (this.ref + Chan.FutexWaiters) >>> 2, 1)
      try {
        const seen = Atomics.load(i32, signal)
        const again = this.take()
        if (again !== NOTHING) return again as T
        segment.wait(this.ref + Chan.Signal, seen, this.stuckSince >= 0 ? Math.min(left, STUCK_MS) : left)
      } finally {
        Atomics.sub(i32, (this.ref + Chan.FutexWaiters) >>> 2, 1)
      }
    }
  }

  /** `for await (const job of jobs)`: receives until the handle is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for (;;) {
      try {
        yield await this.receive()
      } catch (err) {
        if (this.closed && err instanceof ShmError && err.code === 'ERR_SHM_CLOSED') return
        throw err
      }
    }
  }

  /**
   * Closes this handle: its waiting receives reject with ERR_SHM_CLOSED. The channel
   * itself is freed when its last handle (in any process) closes while it is empty.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.rejectAll(new ShmError('ERR_SHM_CLOSED', `${channelLabel(this.name)}: this handle was closed`))
    if (!this.host.segment.closed) this.host.inTurn(() => this.host.closeChannel(this.ref))
  }

  [Symbol.dispose](): void {
    this.close()
  }

  get [Symbol.toStringTag](): string {
    return 'Channel'
  }

  // ---------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new ShmError('ERR_SHM_CLOSED', `${channelLabel(this.name)}: this handle was closed; open another with shm.channel(${JSON.stringify(this.name)})`)
    this.host.segment.assertOpen()
  }

  /** One attempt to put a prepared frame into the ring. */
  private put(out: Outgoing): boolean {
    const ring = this.ring
    for (;;) {
      const slot = ring.claimSend()
      if (slot === FULL) return false
      if (slot === HELD) {
        if (!this.freeHeldSlot(ring.pos)) return false
        continue
      }
      const pos = ring.pos
      this.host.messages.write(slot, out)
      if (ring.publish(slot, pos)) {
        wakeReceivers(this.host.segment, this.ref)
        return true
      }
      // A receiver took this sender for a dead one and skipped the slot: send again.
    }
  }

  /** The ring is full because a receiver claimed a slot and never freed it: frees it once that receiver is gone for STUCK_MS. */
  private freeHeldSlot(pos: number): boolean {
    if (!this.stalledFor(pos)) return false
    const reader = this.ring.readerOf((pos - this.ring.capacity) | 0)
    if (reader !== 0 && native.processAlive(reader)) return false
    const messages = this.host.messages
    const ring = this.ring
    return this.host.inTurn(() => {
      const before = ring.freeHeld(pos)
      if (before === undefined) return false
      if (before === ((pos - ring.capacity + 1) | 0)) messages.discardSlot(ring.slotAt(pos))
      this.stuckSince = -1
      return true
    })
  }

  /** True once position `pos` has been seen stuck for STUCK_MS (the first sighting starts the clock). */
  private stalledFor(pos: number): boolean {
    const now = performance.now()
    if (this.stuckSince < 0 || this.stuckPos !== pos) {
      this.stuckPos = pos
      this.stuckSince = now
      return false
    }
    return now - this.stuckSince >= STUCK_MS
  }

  private waitForRoom(out: Outgoing, mode: WaitMode, timeoutMs: number): void {
    const { segment, heap } = this.host
    const i32 = heap.i32
    const deadline = performance.now() + timeoutMs
    const space = (this.ref + Chan.SpaceSignal) >>> 2
    for (;;) {
      const left = deadline - performance.now()
      if (left <= 0) {
        this.host.messages.abandon(out)
        throw new ShmError('ERR_TIMEOUT', `${channelLabel(this.name)} stayed full (${this.ring.capacity} messages) for ${timeoutMs} ms: receive faster, or open it with a larger capacity`)
      }
      if (mode === 'low-latency') {
        if (this.put(out)) return
        continue
      }
      Atomics.add(i32, (this.ref + Chan.SpaceWaiters) >>> 2, 1)
      try {
        const seen = Atomics.load(i32, space)
        if (this.put(out)) return
        segment.wait(this.ref + Chan.SpaceSignal, seen, this.stuckSince >= 0 ? Math.min(left, STUCK_MS) : left)
      } finally {
        Atomics.sub(i32, (this.ref + Chan.SpaceWaiters) >>> 2, 1)
      }
    }
  }

  /** Takes the oldest message, or NOTHING. */
  private take(): unknown {
    const ring = this.ring
    for (;;) {
      let slot = ring.claimReceive()
      if (slot === EMPTY) {
        this.stuckSince = -1
        return NOTHING
      }
      if (slot === PENDING) {
        const pos = ring.pos
        if (!this.stalledFor(pos)) return NOTHING
        const writer = ring.writerOf(pos)
        if (writer !== 0 && native.processAlive(writer)) return NOTHING
        slot = ring.skipPending(pos)
        this.stuckSince = -1
        if (slot === EMPTY) continue
      }
      const value = this.host.messages.read(ring, slot, ring.pos)
      wakeSenders(this.host.segment, this.ref)
      if (value !== LOST) return value
    }
  }

  // ---- async receiving

  private enqueue(resolve: (v: unknown) => void, reject: (e: unknown) => void, o: ReceiveOptions): void {
    let timer: ReturnType<typeof setTimeout> | undefined
    const onAbort = (): void => {
      this.drop(receiver)
      reject(aborted(o.signal))
    }
    const receiver: Receiver = {
      resolve,
      reject,
      keepAlive: o.keepAlive ?? true,
      cleanup: () => {
        if (timer !== undefined) clearTimeout(timer)
        o.signal?.removeEventListener('abort', onAbort)
      },
    }
    if (o.timeoutMs !== undefined && o.timeoutMs !== Infinity) {
      timer = setTimeout(() => {
        this.drop(receiver)
        reject(timedOut(this.name, o.timeoutMs!))
      }, o.timeoutMs)
      if (!receiver.keepAlive) timer.unref()
    }
    o.signal?.addEventListener('abort', onAbort, { once: true })
    this.receivers.push(receiver)
    this.restartWaiting(o.wait ?? 'cpu-friendly')
  }

  /** A receiver that gave up (timeout, abort) leaves the queue. */
  private drop(receiver: Receiver): void {
    const i = this.receivers.indexOf(receiver)
    if (i < 0) return
    this.receivers.splice(i, 1)
    receiver.cleanup()
    if (this.receivers.length === 0) this.stopWaiting()
  }

  /** Hands messages to waiting receivers while there are both. */
  private deliver = (): void => {
    while (this.receivers.length > 0 && !this.closed) {
      let value: unknown
      try {
        value = this.take()
      } catch (err) {
        const r = this.receivers.shift()!
        r.cleanup()
        r.reject(err)
        continue
      }
      if (value === NOTHING) break
      const r = this.receivers.shift()!
      r.cleanup()
      r.resolve(value)
    }
    if (this.receivers.length === 0) this.stopWaiting()
  }

  private restartWaiting(mode: WaitMode): void {
    const keepAlive = this.receivers.some((r) => r.keepAlive)
    if (this.waiting !== null && !(keepAlive && !this.waiting.keepAlive)) return
    this.stopWaiting()
    this.waiting = mode === 'low-latency' ? this.waitOnFutex(mode, keepAlive) : (this.waitOnNotifier(keepAlive) ?? this.waitOnFutex(mode, keepAlive))
    // Registered: whatever was sent before is seen now, whatever comes after wakes us.
    this.deliver()
  }

  private stopWaiting(): void {
    const w = this.waiting
    this.waiting = null
    w?.stop()
  }

  /** One hop: this event loop's notifier, listed in the channel's sleeper table. Null when there is none or the table is full. */
  private waitOnNotifier(keepAlive: boolean): Waiting | null {
    const notifier = localNotifier()
    if (notifier === null) return null
    const i32 = this.host.heap.i32
    const entry = addSleeper(i32, this.ref, notifier.pid, notifier.nonce)
    if (entry < 0) return null
    let stuckTimer: ReturnType<typeof setTimeout> | undefined
    const wake = (): void => {
      if (!stillListed(i32, this.ref, entry, notifier.nonce)) {
        // A sender freed our entry (it could not reach us once): list this loop again.
        if (this.waiting === waiting) {
          this.waiting = null
          waiting.stop()
          this.restartWaiting('cpu-friendly')
        }
        return
      }
      this.deliver()
      if (this.waiting === waiting) {
        // Still waiting: sleep again, and look once more (a send between deliver and arm woke no one).
        arm(i32, this.ref, entry)
        this.deliver()
      }
      // A stalled position wakes no one: look again when it may be given up on.
      if (this.receivers.length > 0 && this.stuckSince >= 0 && stuckTimer === undefined) {
        stuckTimer = setTimeout(() => {
          stuckTimer = undefined
          wake()
        }, STUCK_MS)
        if (!keepAlive) stuckTimer.unref()
      }
    }
    const unlisten = notifier.listen(wake, keepAlive)
    arm(i32, this.ref, entry)
    const withdraw = this.host.segment.onClose(() => this.rejectAll(closedError(this.host.segment)))
    const waiting: Waiting = {
      keepAlive,
      stop: () => {
        unlisten()
        withdraw()
        if (stuckTimer !== undefined) clearTimeout(stuckTimer)
        if (!this.host.segment.closed) removeSleeper(i32, this.ref, entry, notifier.nonce)
      },
    }
    return waiting
  }

  /** A waiter thread on the channel's futex word: where no notifier exists, the sleeper table is full, or 'low-latency' asks to spin. */
  private waitOnFutex(mode: WaitMode, keepAlive: boolean): Waiting {
    const { segment, heap } = this.host
    const i32 = heap.i32
    const abort = new AbortController()
    let stopped = false
    const loop = async (): Promise<void> => {
      while (!stopped && this.receivers.length > 0) {
        Atomics.add(i32, (this.ref + Chan.FutexWaiters) >>> 2, 1)
        const withdraw = segment.onClose(() => Atomics.sub(i32, (this.ref + Chan.FutexWaiters) >>> 2, 1))
        try {
          const seen = Atomics.load(i32, (this.ref + Chan.Signal) >>> 2)
          this.deliver()
          if (stopped || this.receivers.length === 0) return
          await waitWord(segment, this.ref + Chan.Signal, seen, { timeoutMs: this.stuckSince >= 0 ? STUCK_MS : Infinity, mode, signal: abort.signal, keepAlive })
        } finally {
          withdraw()
          if (!segment.closed) Atomics.sub(i32, (this.ref + Chan.FutexWaiters) >>> 2, 1)
        }
        this.deliver()
      }
    }
    loop().catch((err: unknown) => {
      if (stopped) return
      this.rejectAll(err)
    })
    return {
      keepAlive,
      stop: () => {
        stopped = true
        abort.abort()
      },
    }
  }

  private rejectAll(err: unknown): void {
    const all = this.receivers.splice(0)
    this.stopWaiting()
    for (const r of all) {
      r.cleanup()
      r.reject(err)
    }
  }
}

interface Waiting {
  readonly keepAlive: boolean
  stop(): void
}

function checkWait(wait: unknown, timeoutMs: number | undefined, call: string): void {
  if (wait !== undefined && wait !== 'cpu-friendly' && wait !== 'low-latency') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: wait must be 'cpu-friendly' or 'low-latency', got '${String(wait)}'`)
  }
  if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: option "timeoutMs" must be a number of milliseconds, 0 or more (Infinity waits as long as it takes), got ${String(timeoutMs)}`)
  }
}

function timedOut(name: string, ms: number): ShmError {
  return new ShmError('ERR_TIMEOUT', `no message on ${channelLabel(name)} within ${ms} ms`)
}

function aborted(signal: AbortSignal | undefined): ShmError {
  const reason = signal?.reason as unknown
  return new ShmError('ERR_ABORTED', `the wait was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`)
}

function closedError(segment: Segment): ShmError {
  return new ShmError('ERR_SHM_CLOSED', `segment "${segment.name}" was closed while waiting`)
}
