// The channel object users hold: `shm.channel<Job>('jobs')`. It is a handle on one
// channel of the segment (core/channel.ts keeps the channel alive while any handle is
// open) and owns all waiting for it: one loop for sync waits (receiveSync, a full
// ring's send) and one for async ones (receive, for await), both over the same
// take/put steps. Messages are copied (core/messages.ts): receive returns an ordinary
// value and nothing needs destroying, except values the sender passed by reference.
// The module's binding, not the global: Node 20 defines globalThis.performance as a lazy getter, ~15 ns more per call in the spin loops.
import { performance } from 'node:perf_hooks'
import { ShmError } from './errors'
import type { Heap } from './heap'
import { Messages, LOST, type InTurn, type Outgoing } from './messages'
import { handleRuns } from './handles'
import { localNotifier, type Notifier } from './notifier'
import { checkWaitOptions } from './options'
import { Chan, Rec } from './records'
import { EMPTY, FULL, HELD, PENDING, Ring, SKIPPED, STUCK_MS } from './ring'
import type { Segment } from './segment'
import { channelLabel } from './channel'
import { aborted, SpinBeforeSleep, waitWord, type WaitMode } from './waiting'
import { addSleeper, arm, removeSleeper, stillListed, wakeReceivers, wakeSenders } from './wakeups'

export interface ChannelOpenOptions {
  /**
   * Ring slots (a power of two, 2–65536; default 64). Used when this call makes the channel.
   * A message takes one slot when its frame is at most 96 bytes and one more per 104 bytes
   * after that (up to half the ring; longer frames take one slot and a loan pool array or Frame record).
   */
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
  /** This handle's identity, stamped into the ring slots it claims (core/handles.ts). */
  readonly identity: number
  readonly heap: Heap
  readonly messages: Messages
  readonly inTurn: InTurn
  /** In a turn: drops this handle's reference to the channel. */
  closeChannel(ref: number): void
}

/** A spinning receive looks at the clock (its timeout) once per this many looks. */
const CLOCK_EVERY = 32

/** What take returns when no message could be taken. */
const NOTHING: unique symbol = Symbol('nothing')
const sendSpec = { wait: 'string', timeoutMs: 'number' } as const
const receiveSpec = { wait: 'string', timeoutMs: 'number', signal: 'object', keepAlive: 'boolean' } as const
const receiveSyncSpec = { wait: 'string', timeoutMs: 'number' } as const
/** The options of a call without any (shared: never written to). */
const NO_OPTIONS: ReceiveOptions = Object.freeze({})

interface Receiver {
  resolve(value: unknown): void
  /** Waits for a message without taking it (shm.waitForMessage). */
  peek: boolean
  reject(err: unknown): void
  keepAlive: boolean
  wait: WaitMode | undefined
  cleanup(): void
}

export class Channel<T = unknown> implements AsyncIterable<T> {
  readonly name: string
  private readonly host: ChannelHost
  /** @internal The channel record. */
  readonly ref: number
  private readonly ring: Ring
  private closed = false
  /** Async receivers of this handle, in arrival order. */
  private readonly receivers: Receiver[] = []
  /** This event loop's entry in the channel's sleeper table, while the handle is open (see listed). */
  private listing: Listing | null = null
  /** Holds the event loop open while a receiver that wants it waits. */
  private held: (() => void) | null = null
  /** The waiter-thread wait, when receivers wait without the notifier. */
  private futex: Waiting | null = null
  /** A position found claimed but unpublished (or a slot claimed but not freed) and since when. */
  private stuckPos = 0
  private stuckSince = -1
  /** The last sender (receiver) found gone while holding a position, pid and handle: the rest of its span is given up on at once. */
  private deadWriter = 0
  private deadWriterId = 0
  private deadReader = 0
  private deadReaderId = 0
  /** Messages a wait without taking had to take (a stalled sender published after all): the next takes return them. */
  private readonly stash: unknown[] = []
  /** Whether a receive that finds nothing spins before it sleeps (waiting.ts). */
  private readonly spinning = new SpinBeforeSleep()
  /** When the receiver at the head of the queue started to wait (-1: none waits); how long it waited teaches `spinning`. */
  private sleptSince = -1
  /** The head receiver's spin ran out before its message came (woke: then the next receive does not spin). */
  private spinMissed = false
  /** The spin of the waiting receivers, scheduled after the current work of the event loop. */
  private spinTimer: ReturnType<typeof setImmediate> | undefined
  /** What a wait looks at: a message to take, or (waitForMessage) whether there is one. */
  private readonly lookTake = (): unknown => this.take()
  private readonly lookReady = (): unknown => (this.ready() ? undefined : NOTHING)
  /** While receivers wait behind a stalled position: when to look again (a stall wakes no one). */
  private stallTimer: ReturnType<typeof setTimeout> | undefined

  /** @internal Made by shm.channel(). */
  constructor(host: ChannelHost, name: string, ref: number) {
    this.host = host
    this.name = name
    this.ref = ref
    this.ring = new Ring(host.heap.i32, ref, process.pid, host.identity)
  }

  /** Messages sent and not yet received (one still being written does not count yet). */
  get size(): number {
    this.checkOpen()
    return this.ring.size() + this.stash.length
  }

  stats(): ChannelStats {
    this.checkOpen()
    return { size: this.ring.size() + this.stash.length, capacity: this.ring.capacity, dropped: this.ring.dropped() }
  }

  /**
   * Sends a copy of `value` (values of the segment — tx.put results, mapped views —
   * go by reference: the receiver gets the live view). When the ring is full it waits
   * for room, blocking this thread (ERR_TIMEOUT after `timeoutMs`); trySend does not.
   * ERR_CHANNEL_FULL instead of a wait that could never end: receives of this handle are
   * pending and no other handle has the channel open.
   */
  send(value: T, options?: SendOptions): void {
    this.checkOpen()
    const o = options === undefined ? undefined : checkWaitOptions(options, sendSpec as never, 'channel.send')
    const out = this.host.messages.prepare(value, this.ring)
    if (this.put(out)) return
    this.waitForRoom(out, o?.wait ?? 'cpu-friendly', o?.timeoutMs ?? Infinity)
  }

  /** Sends if the ring has room: true, or 'ERR_CHANNEL_FULL' (nothing sent). */
  trySend(value: T): true | 'ERR_CHANNEL_FULL' {
    this.checkOpen()
    const out = this.host.messages.prepare(value, this.ring)
    if (this.put(out)) return true
    this.host.messages.abandon(out)
    return 'ERR_CHANNEL_FULL'
  }

  /**
   * A Uint8Array of `byteLength` bytes in the segment, to fill and send: the send passes
   * it by reference (zero-copy) and it moves into the message. Until sent it is this
   * handle's (release it if unused). Loans come from the segment's loan pool: once the
   * pool holds a released array of about this size, loan, send, receive and release take
   * no turn and allocate nothing. ERR_SHM_FULL when the heap has no room, or when all
   * 256 loans of the segment are held (release received loans once read).
   */
  loan(byteLength: number): Uint8Array {
    this.checkOpen()
    if (!Number.isInteger(byteLength) || byteLength < 0 || byteLength > this.host.heap.size) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `channel.loan(byteLength): byteLength must be an integer from 0 to the segment size (${this.host.heap.size}), got ${String(byteLength)}`)
    }
    return this.host.messages.loanPool.lend(byteLength)
  }

  /**
   * Gives back a value received by reference (a loan, or any value of the segment a
   * sender passed), or a loan never sent: this handle's claim on it is dropped (a loan
   * goes back to the pool, without a turn). Garbage collection does the same for
   * received values never released. Using it afterwards through the API is
   * ERR_SHM_STALE; its elements must not be read any more (a raw TypedArray cannot be
   * checked: they read whatever reuses the memory, the next loan's bytes).
   */
  release(view: object): void {
    this.checkOpen()
    if (typeof view !== 'object' || view === null) throw new ShmError('ERR_INVALID_ARGUMENT', `channel.release(view) takes a value received by reference or a loan, got ${view === null ? 'null' : typeof view}`)
    const messages = this.host.messages
    if (messages.loanPool.release(view)) return
    // A view received by reference whose record others still hold: no turn.
    if (messages.releaseWithoutTurn(view)) return
    const released = this.host.inTurn(() => messages.release(view))
    if (!released) {
      throw new ShmError('ERR_INVALID_ARGUMENT', 'channel.release(view): this process holds no reference through that value (not received by reference, not a loan, or released already)')
    }
  }

  /** Takes the oldest message, or undefined when there is none. */
  tryReceive(): T | undefined {
    this.checkOpen()
    const value = this.take()
    return value === NOTHING ? undefined : (value as T)
  }

  /** @internal tryReceive for tx.takeMessage, which must tell an undefined message from none: `none` when there is none. */
  tryReceiveOr<N>(none: N): T | N {
    this.checkOpen()
    const value = this.take()
    return value === NOTHING ? none : (value as T)
  }

  /**
   * Waits for a message and takes it, in one step: each message goes to exactly one
   * receiver. The event loop keeps running; a sender wakes it directly.
   */
  receive(options?: ReceiveOptions): Promise<T> {
    return this.awaitMessage(options, false, 'channel.receive') as Promise<T>
  }

  /** Blocks this thread until a message comes, and takes it. For worker loops that prefer blocking. */
  receiveSync(options?: ReceiveSyncOptions): T {
    return this.blockForMessage(options, false, 'channel.receiveSync') as T
  }

  /** @internal shm.waitForMessage: resolves once the channel has a message, without taking it. */
  whenNotEmpty(options: ReceiveOptions, call: string): Promise<void> {
    return this.awaitMessage(options, true, call) as Promise<void>
  }

  /** @internal shm.waitForMessageSync: blocks until the channel has a message, without taking it. */
  blockUntilNotEmpty(options: ReceiveSyncOptions, call: string): void {
    this.blockForMessage(options, true, call)
  }

  /** The one async wait: takes a message (or, `peek`, only waits for one). */
  private awaitMessage(options: ReceiveOptions | undefined, peek: boolean, call: string): Promise<unknown> {
    try {
      this.checkOpen()
      const o = options === undefined ? NO_OPTIONS : checkWaitOptions(options, receiveSpec as never, call)
      if (this.receivers.length === 0) {
        const look = peek ? this.lookReady : this.lookTake
        const value = look()
        if (value !== NOTHING) return Promise.resolve(value)
        // No spin here: this call's caller (and the microtasks after it) may be what
        // produces the message — a request sent right after this receive, a worker's
        // task dispatched in a microtask. The spin runs once they have (sleep()).
        this.sleptSince = performance.now()
      }
      if (o.signal?.aborted) return Promise.reject(aborted(o.signal))
      if (o.timeoutMs === 0) return Promise.reject(timedOut(this.name, 0))
      return new Promise<unknown>((resolve, reject) => this.enqueue(resolve, reject, o, peek))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The one sync wait: futex (or spin, 'low-latency') until a message comes; takes it unless `peek`. */
  private blockForMessage(options: ReceiveSyncOptions | undefined, peek: boolean, call: string): unknown {
    this.checkOpen()
    const o = options === undefined ? NO_OPTIONS : checkWaitOptions(options, receiveSyncSpec as never, call)
    const look = peek ? this.lookReady : this.lookTake
    const first = look()
    if (first !== NOTHING) return first
    const start = performance.now()
    const deadline = start + (o.timeoutMs ?? Infinity)
    if (o.wait !== 'low-latency') {
      const spun = this.spinning.spin(Math.min(this.spinning.budgetUs(o.wait), (o.timeoutMs ?? Infinity) * 1000), look, NOTHING)
      if (spun !== NOTHING) return spun
    }
    const { segment, heap } = this.host
    const i32 = heap.i32
    for (let polls = 0; ; polls++) {
      const value = look()
      if (value !== NOTHING) {
        this.spinning.waited((performance.now() - start) * 1000)
        return value
      }
      // Spinning reads the clock on every CLOCK_EVERY-th look only: a clock read costs
      // about as much as a look, and halving the gaps between looks halves the delay.
      if (o.wait === 'low-latency' && polls % CLOCK_EVERY !== 0) continue
      const left = deadline - performance.now()
      if (left <= 0) throw timedOut(this.name, o.timeoutMs ?? 0)
      if (o.wait === 'low-latency') continue
      Atomics.add(i32, (this.ref + Chan.FutexWaiters) >>> 2, 1)
      try {
        const seen = Atomics.load(i32, (this.ref + Chan.Signal) >>> 2)
        const again = look()
        if (again !== NOTHING) {
          this.spinning.waited((performance.now() - start) * 1000)
          return again
        }
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
    this.rejectAll(() => new ShmError('ERR_SHM_CLOSED', `${channelLabel(this.name)}: this handle was closed`))
    this.unlist()
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
      const slot = ring.claimSend(out.span)
      if (slot === FULL) return false
      if (slot === HELD) {
        if (!this.freeHeldSlot(ring.pos)) return false
        continue
      }
      const pos = ring.pos
      this.host.messages.write(ring, slot, pos, out)
      if (ring.publish(slot, pos)) {
        wakeReceivers(this.host.segment, this.ref)
        return true
      }
      // A receiver took this sender for a dead one and skipped the slot: send again,
      // unless it gave the loans the message carries back to the pool meanwhile.
      if (out.launched && !this.host.messages.loanPool.allInFlight(out.loans)) {
        this.host.messages.abandon(out)
        throw new ShmError('ERR_SHM_STALE', `${channelLabel(this.name)}: this send stalled for over ${STUCK_MS} ms, a receiver gave it up as the send of a dead process and gave the loans it carried back to the pool; nothing was sent: loan the data again`)
      }
    }
  }

  /** The ring is full because a receiver claimed a slot and never freed it: frees it once that receiver is gone for STUCK_MS. */
  private freeHeldSlot(pos: number): boolean {
    const ring = this.ring
    const prev = (pos - ring.capacity) | 0
    const reader = ring.readerOf(prev)
    const readerId = ring.readerIdOf(prev)
    // The rest of a span whose receiver was found gone: no second wait.
    if (reader === 0 || reader !== this.deadReader || readerId !== this.deadReaderId) {
      if (!this.stalledFor(pos)) return false
      if (reader !== 0 && handleRuns(this.host.segment, reader, readerId)) return false
      this.deadReader = reader
      this.deadReaderId = readerId
    }
    const messages = this.host.messages
    return this.host.inTurn(() => {
      const before = ring.freeHeld(pos)
      if (before === undefined) return false
      if (before === ((prev + 1) | 0)) messages.discardSlot(ring, ring.slotAt(prev), prev)
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
    // Blocking this thread would keep its own receives from ever making room, when no
    // other handle has the channel open: a certain deadlock, refused instead.
    if (this.receivers.length > 0 && heap.u32[(this.ref + Rec.RefCount) >>> 2] === 1) {
      this.host.messages.abandon(out)
      throw new ShmError(
        'ERR_CHANNEL_FULL',
        `${channelLabel(this.name)} is full (${this.ring.capacity} slots) and the only receives waiting on it are this thread's own (${this.receivers.length}), which cannot run while send blocks it; no other handle has the channel open: send would wait for ever. Use trySend, or await the receives first, or open the channel with a larger capacity`,
      )
    }
    // Waiting may take long: what the message retained is listed as this handle's meanwhile.
    try {
      this.host.messages.listPending(out)
    } catch (err) {
      // No room to list them: the send waits unlisted. Anything else ends it (nothing sent).
      if (!(err instanceof ShmError) || err.code !== 'ERR_SHM_FULL') {
        this.host.messages.abandon(out)
        throw err
      }
    }
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
    if (this.stash.length > 0) return this.stash.shift()
    const ring = this.ring
    for (;;) {
      let slot = ring.claimReceive()
      if (slot === EMPTY) {
        this.stuckSince = -1
        return NOTHING
      }
      if (slot === PENDING) {
        slot = this.giveUpOnPending(ring.pos)
        if (slot === PENDING) return NOTHING
        if (slot === EMPTY) continue
      }
      const value = this.readClaimed(slot)
      if (value !== LOST) return value
    }
  }

  /** Whether a message can be taken now (waits that do not take: shm.waitForMessage). */
  private ready(): boolean {
    if (this.stash.length > 0) return true
    const ring = this.ring
    for (;;) {
      const head = ring.peek()
      if (head >= 0) return true
      if (head === EMPTY) {
        this.stuckSince = -1
        return false
      }
      const slot = this.giveUpOnPending(ring.pos)
      if (slot === PENDING) return false
      if (slot === EMPTY) continue
      // Published after all, and claimed by the skip: kept for the next take.
      const value = this.readClaimed(slot)
      if (value !== LOST) this.stash.push(value)
    }
  }

  /**
   * Position `pos` is claimed by a sender that has not published it: PENDING while that
   * may still happen; once it stalled for STUCK_MS and its sender is gone, the position
   * is skipped (EMPTY: look again), or the slot when it was published after all (claimed).
   */
  private giveUpOnPending(pos: number): number {
    const ring = this.ring
    const writer = ring.writerOf(pos)
    const writerId = ring.writerIdOf(pos)
    // The rest of a span whose sender was found gone: no second wait, not counted again.
    const first = writer === 0 || writer !== this.deadWriter || writerId !== this.deadWriterId
    if (first) {
      if (!this.stalledFor(pos)) return PENDING
      if (writer !== 0 && handleRuns(this.host.segment, writer, writerId)) return PENDING
      this.deadWriter = writer
      this.deadWriterId = writerId
    }
    if (!ring.takePending(pos)) {
      this.stuckSince = -1
      return EMPTY
    }
    // What the frame carries in flight, read while the slot is still its sender's: a
    // sender killed between marking its loans in flight and publishing leaves them so.
    const carried = this.host.messages.carriedInFlight(ring, ring.slotAt(pos), pos)
    const slot = ring.skipPending(pos, first)
    this.stuckSince = -1
    if (slot !== SKIPPED) return slot
    this.host.messages.loanPool.dropInFlight(carried)
    return EMPTY
  }

  private readClaimed(slot: number): unknown {
    const ring = this.ring
    const value = this.host.messages.read(ring, slot, ring.pos, ring.span)
    wakeSenders(this.host.segment, this.ref)
    return value
  }

  // ---- async receiving

  private enqueue(resolve: (v: unknown) => void, reject: (e: unknown) => void, o: ReceiveOptions, peek: boolean): void {
    let timer: ReturnType<typeof setTimeout> | undefined
    const onAbort = (): void => {
      this.drop(receiver)
      reject(aborted(o.signal))
    }
    const receiver: Receiver = {
      resolve,
      reject,
      peek,
      keepAlive: o.keepAlive ?? true,
      wait: o.wait,
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
    this.sleep()
  }

  /** The head receiver got its message: how long it waited decides whether the next one spins. */
  private woke(): void {
    if (this.sleptSince < 0) return
    this.spinning.waited(this.spinMissed ? Infinity : (performance.now() - this.sleptSince) * 1000)
    this.spinMissed = false
    this.sleptSince = -1
  }

  /** A receiver that gave up (timeout, abort) leaves the queue. */
  private drop(receiver: Receiver): void {
    const i = this.receivers.indexOf(receiver)
    if (i < 0) return
    if (i === 0 && this.sleptSince >= 0) {
      // It waited in vain: a long wait, as far as spinning is concerned.
      this.spinning.waited(Infinity)
      this.sleptSince = -1
    }
    this.receivers.splice(i, 1)
    receiver.cleanup()
    if (this.receivers.length === 0) this.idle()
  }

  /** Hands messages to waiting receivers while there are both. */
  private deliver(): void {
    while (this.receivers.length > 0 && !this.closed) {
      if (this.receivers[0]!.peek) {
        if (!this.ready()) break
        const r = this.receivers.shift()!
        r.cleanup()
        this.woke()
        r.resolve(undefined)
        continue
      }
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
      this.woke()
      r.resolve(value)
    }
    if (this.receivers.length === 0) this.idle()
    else if (this.stuckSince >= 0 && this.stallTimer === undefined) {
      this.stallTimer = setTimeout(
        () => {
          this.stallTimer = undefined
          this.deliver()
        },
        Math.max(1, this.stuckSince + STUCK_MS - performance.now()),
      )
      if (!this.receivers.some((r) => r.keepAlive)) this.stallTimer.unref()
    }
  }

  /**
   * Receivers wait (after their spin, if any: SpinBeforeSleep): make sure a send wakes
   * this loop, then look at the ring once more (what was sent before is seen now, what
   * comes after wakes us). One hop through this thread's notifier where it can; else
   * (no notifier, a full sleeper table) a waiter thread on the channel's futex word.
   * 'low-latency' has spun already: an event loop sleeps like any other afterwards.
   */
  private sleep(): void {
    if (this.spinTimer !== undefined) return
    const head = this.receivers[0]
    const budget = head === undefined ? 0 : this.spinning.budgetUs(head.wait)
    if (budget > 0) {
      // After this turn of the event loop's work (setImmediate runs once the loop has
      // looked at I/O without blocking): spin, then arm and sleep if nothing came.
      // Nothing is armed while it spins, so a sender sends no datagram meanwhile.
      this.spinTimer = setImmediate(() => {
        this.spinTimer = undefined
        this.spinThenSleep(budget)
      })
      if (!this.receivers.some((r) => r.keepAlive)) this.spinTimer.unref()
      return
    }
    this.armAndLook()
  }

  /** Looks at the ring for up to `us` microseconds (delivering what comes), then sleeps for real. */
  private spinThenSleep(us: number): void {
    const until = performance.now() + us / 1000
    // The clock every 8th look, as the sync spin does (SpinBeforeSleep.spin): a clock read costs about as much as a look.
    for (let looks = 1; ; looks++) {
      if (this.closed || this.receivers.length === 0) return
      this.deliver()
      if (this.receivers.length === 0) return
      if ((looks & 7) === 0 && performance.now() >= until) break
    }
    // Missed: the next receive sleeps at once, however soon this one's message comes. A
    // spin blocks this event loop, and the sender may be on it (then the message can only
    // come after the spin: every wait would look short, and every receive spin in vain).
    this.spinMissed = true
    this.armAndLook()
  }

  /** Arms this loop's sleeper entry (or starts the waiter thread), then looks once more. */
  private armAndLook(): void {
    if (this.closed) return
    if (this.listed()) {
      const keepAlive = this.receivers.some((r) => r.keepAlive)
      if (keepAlive && this.held === null) this.held = this.listing!.notifier.keepAlive()
      else if (!keepAlive && this.held !== null) this.releaseHold()
      arm(this.host.heap.i32, this.ref, this.listing!.entry)
    } else if (this.futex === null) {
      this.futex = this.waitOnFutex(this.receivers.some((r) => r.keepAlive))
    }
    this.deliver()
  }

  /** No receiver waits any more: nothing holds the loop open. The sleeper entry stays (unarmed, it costs senders nothing). */
  private idle(): void {
    if (this.spinTimer !== undefined) clearImmediate(this.spinTimer)
    this.spinTimer = undefined
    this.releaseHold()
    const futex = this.futex
    this.futex = null
    futex?.stop()
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer)
    this.stallTimer = undefined
  }

  private releaseHold(): void {
    const held = this.held
    this.held = null
    held?.()
  }

  /**
   * True when this loop is listed in the channel's sleeper table (listing it now if it
   * is not): kept while the handle is open, so a receive costs an arm, not a listing.
   */
  private listed(): boolean {
    const i32 = this.host.heap.i32
    const l = this.listing
    if (l !== null) {
      if (stillListed(i32, this.ref, l.entry, l.notifier.nonce)) return true
      // A sender freed our entry (it could not reach us once): list this loop again.
      this.unlist()
    }
    const notifier = localNotifier()
    if (notifier === null) return false
    const entry = addSleeper(i32, this.ref, notifier.pid, notifier.nonce)
    if (entry < 0) return false
    const unlisten = notifier.listen(() => this.onWake(), false)
    const listing: Listing = { notifier, entry, unlisten }
    // (segment.onClose's disposer runs the callback: this one does nothing once unlisted.)
    this.host.segment.onClose(() => {
      if (this.listing !== listing) return
      this.listing = null
      unlisten()
      // Withdrawals run before the segment is unmapped (and before this handle's channel
      // references go): the entry is taken out of the table.
      removeSleeper(i32, this.ref, entry, notifier.nonce)
      this.rejectAll(() => closedError(this.host.segment))
    })
    this.listing = listing
    return true
  }

  private unlist(): void {
    const l = this.listing
    if (l === null) return
    this.listing = null
    l.unlisten()
    if (!this.host.segment.closed) removeSleeper(this.host.heap.i32, this.ref, l.entry, l.notifier.nonce)
  }

  /** This thread's notifier woke: a send on this channel (or another; a wake only says "look again"). */
  private onWake(): void {
    if (this.receivers.length === 0 || this.futex !== null) return
    const l = this.listing
    if (l === null || !stillListed(this.host.heap.i32, this.ref, l.entry, l.notifier.nonce)) {
      this.sleep()
      return
    }
    this.deliver()
    if (this.receivers.length > 0) {
      // Still waiting: sleep again, and look once more (a send between deliver and arm woke no one).
      arm(this.host.heap.i32, this.ref, l.entry)
      this.deliver()
    }
  }

  /** A waiter thread on the channel's futex word. */
  private waitOnFutex(keepAlive: boolean): Waiting {
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
          await waitWord(segment, this.ref + Chan.Signal, seen, { timeoutMs: this.stuckSince >= 0 ? STUCK_MS : Infinity, mode: 'cpu-friendly', signal: abort.signal, keepAlive })
        } finally {
          // Takes the count back (once: close() may have done it already).
          withdraw()
        }
        this.deliver()
      }
    }
    loop().catch((err: unknown) => {
      if (stopped) return
      this.rejectAll(() => err)
    })
    return {
      stop: () => {
        stopped = true
        abort.abort()
      },
    }
  }

  /** Rejects every waiting receive with `reason()` (made only when one waits: an Error captures a stack, ~4 µs). */
  private rejectAll(reason: () => unknown): void {
    const all = this.receivers.splice(0)
    this.idle()
    const err = all.length === 0 ? undefined : reason()
    for (const r of all) {
      r.cleanup()
      r.reject(err)
    }
  }
}

interface Listing {
  readonly notifier: Notifier
  readonly entry: number
  unlisten(): void
}

interface Waiting {
  stop(): void
}


function timedOut(name: string, ms: number): ShmError {
  return new ShmError('ERR_TIMEOUT', `no message on ${channelLabel(name)} within ${ms} ms`)
}

function closedError(segment: Segment): ShmError {
  return new ShmError('ERR_SHM_CLOSED', `segment "${segment.name}" was closed while waiting`)
}
