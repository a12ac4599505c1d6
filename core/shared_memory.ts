import { Allocator } from './allocator'
import { checkCapacity, closeChannel, DEFAULT_CHANNEL, findChannel, formatChannels, openChannel } from './channel'
import { Channel, type ChannelHost, type ChannelOpenOptions } from './message_channel'
import { Messages } from './messages'
import { checkSegment, recoverTurn, refuseMarkedCorrupt, type CheckOptions, type HeapReport, type TurnRecovery } from './check'
import { ShmError } from './errors'
import { Heap } from './heap'
import { mappedHandleOf } from './values/mapped_handle'
import { releaseRecord } from './values/release'
import { Holders } from './holders'
import { ViewHolds } from './view_holds'
import { HandleListing } from './handles'
import { TurnLock } from './lock'
import type { WaitMode } from './waiting'
import { osNameOf } from './names'
import { Turn, type TurnChannels } from './turn'
import { native, OpenMode } from './native'
import { checkOptions, checkTimeout, checkWaitOptions } from './options'
import { Segment } from './segment'

export interface CreateOptions {
  /** 1–26 characters of [A-Za-z0-9._-]. */
  name: string
  /** Bytes; rounded up to whole pages. */
  size: number
  /** Touch every page now (MAP_POPULATE) so the first writes are not slowed by page faults. */
  prefault?: boolean
  /** Remove the name when the creator closes the segment or exits (default true). */
  unlinkOnExit?: boolean
}

export interface OpenOptions {
  name: string
  /** How long to wait for a creator that is still initializing (default 2000 ms). */
  readyTimeoutMs?: number
}

export interface OpenOrCreateOptions extends CreateOptions {
  readyTimeoutMs?: number
}

export interface AccessOptions {
  /** How to wait while another process holds the turn (default 'cpu-friendly'). */
  wait?: WaitMode
  /** Give up with ERR_TIMEOUT after this long (default: wait as long as it takes). */
  timeoutMs?: number
}

export interface AsyncAccessOptions extends AccessOptions {
  /** Abort the wait: the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /** Keep the process alive while waiting (default true). */
  keepAlive?: boolean
}

export interface WaitForMessageOptions extends AsyncAccessOptions {
  channel?: string
}

export interface ShmCheckOptions extends CheckOptions, AccessOptions {}

const accessSpec = { wait: 'string', timeoutMs: 'number' } as const
const asyncAccessSpec = { ...accessSpec, signal: 'object', keepAlive: 'boolean' } as const
const waitSpec = { ...asyncAccessSpec, channel: 'string' } as const
const checkSpec = { ...accessSpec, repair: 'boolean' } as const
const waitSyncSpec = { ...accessSpec, channel: 'string' } as const
const channelSpec = { capacity: 'number' } as const

const createSpec = { name: 'name', size: 'number', prefault: 'boolean', unlinkOnExit: 'boolean' } as const
const openSpec = { name: 'name', readyTimeoutMs: 'number' } as const
const openOrCreateSpec = { ...createSpec, ...openSpec } as const

/**
 * A named shared-memory segment. One process creates it, any number open it.
 * `bytes` and `buffer` are the segment itself: a write is visible to every other
 * process that has it open, without a copy.
 */
export class SharedMemory {
  /** @internal */
  readonly segment: Segment
  /** @internal */
  readonly heap: Heap
  private readonly lock: TurnLock
  private readonly holders: Holders
  /** This handle's entry in the segment's handle table (core/handles.ts). */
  private readonly listing: HandleListing
  private readonly messages: Messages
  /** What TypedArrays read out of containers hold (core/view_holds.ts). */
  private readonly viewHolds: ViewHolds
  /** What Channel objects of this handle use of it. */
  private readonly channelHost: ChannelHost
  /** Handles the in-turn forms (tx.putMessage, tx.takeMessage…) use, one per channel name, held until close. */
  private readonly turnChannels = new Map<string, Channel>()
  private recovery: TurnRecovery | null = null

  private constructor(segment: Segment) {
    this.segment = segment
    this.heap = new Heap(segment)
    this.lock = new TurnLock(segment)
    this.holders = new Holders(this.heap)
    this.listing = new HandleListing(segment)
    const inTurn = <T>(fn: () => T): T => (this.heap.inTurn ? fn() : this.access(() => fn()))
    const viewHolds = (this.viewHolds = new ViewHolds(this.heap, this.holders, inTurn))
    this.heap.viewHolds = viewHolds
    this.messages = new Messages(this.heap, this.holders, inTurn, viewHolds)
    // A full heap takes back the loan pool's free arrays, and what views this handle no
    // longer reaches held, before it says so.
    const loanPool = this.messages.loanPool
    this.heap.allocator.whenFull = () => loanPool.drain() + viewHolds.reclaim()
    this.heap.allocator.fullHint = () => viewHolds.pinnedHint()
    const holders = this.holders
    const heap = this.heap
    this.channelHost = {
      segment,
      identity: this.listing.identity,
      heap,
      messages: this.messages,
      inTurn,
      closeChannel(ref: number): void {
        holders.unhold(ref)
        closeChannel(heap, ref)
      },
    }
  }

  /** Creates a new segment; ERR_SHM_EXISTS if the name is taken. */
  static create(options: CreateOptions): SharedMemory {
    const o = checkOptions<CreateOptions>(options, createSpec, 'SharedMemory.create')
    return SharedMemory.start({ ...o, mode: OpenMode.Create })
  }

  /** Opens an existing segment; ERR_SHM_NOT_FOUND, ERR_SHM_CORRUPT or ERR_SHM_VERSION otherwise. */
  static open(options: OpenOptions): SharedMemory {
    const o = checkOptions<OpenOptions>(options, openSpec, 'SharedMemory.open')
    return SharedMemory.start({ ...o, mode: OpenMode.Open })
  }

  /** Opens the segment if it exists, else creates it. `created` tells which happened. */
  static openOrCreate(options: OpenOrCreateOptions): SharedMemory {
    const o = checkOptions<OpenOrCreateOptions>(options, openOrCreateSpec, 'SharedMemory.openOrCreate')
    return SharedMemory.start({ ...o, mode: OpenMode.OpenOrCreate })
  }

  private static start(o: OpenOptions & Partial<CreateOptions> & { mode: OpenMode }): SharedMemory {
    checkTimeout(o.readyTimeoutMs, 'readyTimeoutMs', o.mode === OpenMode.Open ? 'SharedMemory.open' : o.mode === OpenMode.Create ? 'SharedMemory.create' : 'SharedMemory.openOrCreate')
    const segment = Segment.open({
      name: o.name,
      size: o.size,
      mode: o.mode,
      prefault: o.prefault ?? false,
      unlinkOnCreatorExit: o.unlinkOnExit ?? true,
      readyTimeoutMs: o.readyTimeoutMs ?? 2000,
    })
    try {
      const shm = new SharedMemory(segment)
      if (segment.created) {
        Allocator.format(segment)
        shm.heap.inTurn = true
        formatChannels(shm.heap)
        Holders.format(shm.heap)
        shm.heap.inTurn = false
        segment.publish()
      }
      // Listed, so that another process can tell this handle's thread ended (core/handles.ts).
      shm.listing.list()
      return shm
    } catch (err) {
      // Never leave a half-initialized segment behind under its name.
      if (segment.created) segment.unlinkName()
      segment.close()
      throw err
    }
  }

  /** Removes a segment's name. Processes that have it open keep using it. */
  static unlink(name: string): void {
    native.unlink(osNameOf(name))
  }

  get name(): string {
    return this.segment.name
  }

  /** Total bytes, a whole number of pages. */
  get size(): number {
    return this.segment.size
  }

  /** True in the process that created the segment. */
  get created(): boolean {
    return this.segment.created
  }

  get closed(): boolean {
    return this.segment.closed
  }

  get creatorPid(): number {
    return this.segment.creatorPid
  }

  /**
   * Whether the process that created the segment is still running. Opening a
   * segment whose creator died is allowed: this is how you tell. (A creator that
   * exited but was not yet reaped by its parent — a zombie — still counts as running.)
   */
  get creatorAlive(): boolean {
    return native.processAlive(this.segment.creatorPid)
  }

  /**
   * The last turn this handle took over from a process that died holding it, with
   * the heap check (and repairs) that ran before the turn was used; null if none.
   */
  get lastRecovery(): TurnRecovery | null {
    return this.recovery
  }

  /** Exactly the segment: `bytes[0]` is segment offset 0. */
  get bytes(): Uint8Array {
    this.segment.assertOpen()
    return this.segment.bytes
  }

  /**
   * The SharedArrayBuffer that holds the segment. V8 never hands out page-aligned
   * memory, so the segment starts `bytes.byteOffset` bytes in (less than one page):
   * build views at `shm.bytes.byteOffset + offset`. It cannot be detached: a transfer
   * list naming it (`structuredClone`, `postMessage`) throws and leaves it working.
   * A worker_threads Worker given it by `postMessage` shares the segment, zero-copy;
   * `Atomics.wait`/`notify` on it reach threads of this process only (processes wait
   * through the turn and channels). It is one page larger than the segment.
   */
  get buffer(): SharedArrayBuffer {
    return this.segment.buffer
  }

  /**
   * Copies `source` into `target` (the same number of bytes) where either lies in this
   * segment, at memcpy speed: V8's `TypedArray.prototype.set` copies into and out of a
   * SharedArrayBuffer element by element, about half as fast from a few KiB up. Like
   * `shm.bytes`, it needs no turn: coordinate who writes which bytes yourself.
   */
  copyBytes(target: ArrayBufferView, source: ArrayBufferView): void {
    if (!ArrayBuffer.isView(target) || !ArrayBuffer.isView(source)) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `shm.copyBytes(target, source) takes two TypedArrays or DataViews, got ${describe(target)} and ${describe(source)}`)
    }
    if (target.byteLength !== source.byteLength) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `shm.copyBytes: target holds ${target.byteLength} bytes, source ${source.byteLength}; pass views of the same byte length (subarray one of them)`)
    }
    const segment = this.segment
    segment.assertOpen()
    const into = target.buffer === segment.buffer
    if (!into && source.buffer !== segment.buffer) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `shm.copyBytes: neither view lies in segment "${this.name}"; use target.set(source) for memory outside it`)
    }
    const inSegment = into ? target : source
    const offset = inSegment.byteOffset - segment.bytes.byteOffset
    if (offset < 0 || offset + inSegment.byteLength > segment.size) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `shm.copyBytes: the ${into ? 'target' : 'source'} lies in the buffer's spare page, outside the segment (offset ${offset}); build views at shm.bytes.byteOffset + offset`)
    }
    segment.copy(offset, into ? source : target, into)
  }

  /**
   * Runs `fn` with exclusive access to the segment's shared structures (the turn).
   * Other processes wait until it returns. Values mapped inside may be kept and used
   * in later turns, never between them (ERR_SHM_NO_TURN). `fn` must be synchronous:
   * holding a turn across an await would stall every other process.
   */
  access<T>(fn: (tx: Turn) => T, options?: AccessOptions): T {
    checkCallback(fn, 'shm.access')
    const o = options === undefined ? {} : checkWaitOptions(options, accessSpec, 'shm.access')
    this.segment.assertOpen()
    const { recovered } = this.lock.acquire(o.wait, o.timeoutMs)
    return this.runTurn(fn, recovered)
  }

  /**
   * Like access, but waits for the turn without blocking the event loop (on a
   * waiter thread). The callback itself still runs synchronously.
   */
  async accessAsync<T>(fn: (tx: Turn) => T, options?: AsyncAccessOptions): Promise<T> {
    checkCallback(fn, 'shm.accessAsync')
    const o = options === undefined ? {} : checkWaitOptions(options, asyncAccessSpec, 'shm.accessAsync')
    this.segment.assertOpen()
    return this.lock.acquireAsync(o.wait ?? 'cpu-friendly', o.timeoutMs ?? Infinity, o.signal, o.keepAlive ?? true, (recovered) => this.runTurn(fn, recovered))
  }

  private runTurn<T>(fn: (tx: Turn) => T, recovered: boolean, checking = false): T {
    const heap = this.heap
    const tx = new Turn(heap, this.holders, this.turnChannelSet)
    heap.inTurn = true
    try {
      // After a dead owner the heap may be mid-update: the full check repairs it or
      // marks it corrupt (for every process) and throws. Never work on a broken heap.
      if (recovered) {
        this.recovery = recoverTurn(heap, this.lock.tookOverFrom)
        this.holders.sweepDead()
      } else if (!checking) refuseMarkedCorrupt(heap)
      if (!checking) this.viewHolds.onTurn()
      const result = fn(tx)
      if (isThenable(result)) {
        // Its rejection (often ERR_SHM_NO_TURN from code after an await) is ours to drop:
        // left unhandled it would end the process.
        try {
          void (result as PromiseLike<unknown>).then(undefined, () => {})
        } catch {
          // a thenable whose then throws: nothing to silence
        }
        throw new ShmError('ERR_INVALID_ARGUMENT', 'the shm.access callback returned a Promise: turns are synchronous (what it did up to its first await stays done); await outside the callback and pass the results in')
      }
      return result
    } finally {
      try {
        heap.endTurn((ref) => releaseRecord(heap, ref, heap.kindOf(ref)))
      } finally {
        heap.inTurn = false
        this.lock.release()
      }
    }
  }

  /**
   * A handle on channel `name` (made if it does not exist, with `capacity` slots): send
   * copies values in, receive takes them out as ordinary values. Close it when done
   * (or `using`): a channel is freed when its last handle closes while it is empty.
   */
  channel<T = unknown>(name: string, options?: ChannelOpenOptions): Channel<T> {
    if (typeof name !== 'string') throw new ShmError('ERR_INVALID_ARGUMENT', `shm.channel(name, options?): name must be a string, got ${typeof name}`)
    const o = options === undefined ? {} : checkOptions<ChannelOpenOptions>(options, channelSpec, 'shm.channel')
    const capacity = checkCapacity(o.capacity, 'shm.channel')
    this.segment.assertOpen()
    const run = (): Channel<T> => {
      this.holders.reserve()
      let ref: number
      try {
        ref = openChannel(this.heap, name, capacity)
      } catch (err) {
        this.holders.trim()
        throw err
      }
      this.holders.hold(ref)
      return new Channel<T>(this.channelHost, name, ref)
    }
    return this.heap.inTurn ? run() : this.access(run)
  }

  /** The handles the in-turn forms use (see Turn). */
  private readonly turnChannelSet: TurnChannels = {
    get: (name, create) => this.turnChannel(name, create),
    drop: (name) => {
      this.turnChannels.get(name)?.close()
      this.turnChannels.delete(name)
    },
  }

  /** The handle the in-turn forms use for `name`; undefined when the channel does not exist and `create` is false. */
  private turnChannel(name: string, create: boolean): Channel | undefined {
    let ch = this.turnChannels.get(name)
    if (ch !== undefined) return ch
    if (!create && findChannel(this.heap, name) === 0) return undefined
    ch = this.channel(name)
    this.turnChannels.set(name, ch)
    return ch
  }

  /**
   * Resolves when the channel has a message; ERR_TIMEOUT after `timeoutMs`,
   * ERR_ABORTED on `signal`, ERR_SHM_CLOSED if the segment is closed meanwhile.
   * The event loop keeps running. With several consumers on one channel, another
   * may take the message first: prefer `await shm.channel(name).receive()`, which
   * waits and takes in one step.
   */
  async waitForMessage(options: WaitForMessageOptions = {}): Promise<void> {
    const o = checkWaitOptions(options, waitSpec, 'shm.waitForMessage')
    this.segment.assertOpen()
    const channel = o.channel ?? DEFAULT_CHANNEL
    const started = performance.now()
    const ch = this.turnChannels.get(channel) ?? (await this.accessAsync(() => this.turnChannel(channel, true)!, { wait: o.wait, timeoutMs: o.timeoutMs, signal: o.signal, keepAlive: o.keepAlive }))
    const timeoutMs = o.timeoutMs === undefined ? undefined : Math.max(0, o.timeoutMs - (performance.now() - started))
    await ch.whenNotEmpty({ wait: o.wait, timeoutMs, signal: o.signal, keepAlive: o.keepAlive }, 'shm.waitForMessage')
  }

  /**
   * Blocks this thread until the channel has a message (or the timeout passes:
   * ERR_TIMEOUT). For utility processes that prefer a blocking loop; everywhere
   * else use the promise-returning waitForMessage.
   */
  waitForMessageSync(options: AccessOptions & { channel?: string } = {}): void {
    const o = checkWaitOptions(options, waitSyncSpec, 'shm.waitForMessageSync')
    this.segment.assertOpen()
    const channel = o.channel ?? DEFAULT_CHANNEL
    const ch = this.turnChannels.get(channel) ?? this.access(() => this.turnChannel(channel, true)!, { wait: o.wait, timeoutMs: o.timeoutMs })
    ch.blockUntilNotEmpty({ wait: o.wait, timeoutMs: o.timeoutMs }, 'shm.waitForMessageSync')
  }

  /**
   * Checks the whole heap in a turn: the allocator (block chain, free lists,
   * counters) and the channels (directory, queues, every queued message's values).
   * Returns what it found; throws ERR_SHM_CORRUPT with the first inconsistency when
   * the heap is broken. With `{ repair: true }` it first repairs what a process
   * killed mid-operation leaves behind, and lists the repairs in the report.
   */
  check(options: ShmCheckOptions = {}): HeapReport {
    const o = checkWaitOptions(options, checkSpec, 'shm.check')
    // Before the turn: taking it touches the header, which SIGBUSes if the OS object
    // was truncated under us.
    this.segment.assertBacked()
    const { recovered } = this.lock.acquire(o.wait, o.timeoutMs)
    return this.runTurn(() => checkSegment(this.heap, { repair: o.repair ?? false }), recovered, true)
  }

  /** Allocator figures for the segment (taken in a turn). */
  stats() {
    return this.access((tx) => tx.stats())
  }

  /**
   * Unmaps the segment. Private zeroed memory takes its place in `buffer` (a
   * SharedArrayBuffer cannot be detached): views kept from before read zeros and their
   * writes reach no other process. The creator also removes the name unless
   * `unlinkOnExit: false`. Pending waits of this handle reject with ERR_SHM_CLOSED, and
   * what they registered in the segment (waiter counts, a claim on the next turn) is
   * withdrawn first, so no other process waits on a closed handle. Refused inside this
   * handle's own turn (ERR_SHM_REENTRANT): close after the callback returns.
   */
  close(): void {
    if (this.segment.closed) return
    if (this.lock.holdsTurn) {
      throw new ShmError('ERR_SHM_REENTRANT', `shm.close() inside this handle's own turn on segment "${this.segment.name}": the turn must be released first; close after the access callback returns`)
    }
    // What this handle registered in shared words (waiter counts, sleeper entries, an heir
    // claim) is withdrawn first: those words live in records, channels among them, that
    // dropping the references below may free (and another process reuse at once).
    this.segment.withdrawAll()
    // The loans this handle holds go back to the pool (no turn: they change hands by compare-and-swap).
    this.messages.loanPool.releaseAll()
    // The references this handle's views hold go with it (a view used after close throws).
    if (this.holders.registered) {
      try {
        this.access(() => this.holders.releaseAll(), { timeoutMs: CLOSE_RELEASE_TIMEOUT_MS })
        this.turnChannels.clear()
      } catch {
        // No turn in time (or a damaged heap): they are released once this handle is unlisted.
      }
    }
    // Unlisted last: from then on another process may release what this handle held.
    this.listing.unlist()
    this.segment.close()
  }

  /** `using shm = SharedMemory.create(…)`: closes at the end of the block (idempotent). */
  [Symbol.dispose](): void {
    if (!this.closed) this.close()
  }
}


/** How long close() waits for a turn to drop the references its views held. */
const CLOSE_RELEASE_TIMEOUT_MS = 1000

function checkCallback(fn: unknown, call: string): void {
  if (typeof fn !== 'function') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}(fn, options?): fn must be a function such as (tx) => tx.put(value), got ${fn === null ? 'null' : typeof fn}`)
  }
  // Refused before it runs: an async callback would do its work up to the first await
  // inside the turn and the rest outside it (ERR_SHM_NO_TURN, as an unhandled rejection).
  const kind = (fn as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag]
  if (kind === 'AsyncFunction' || kind === 'AsyncGeneratorFunction') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}(fn): fn is an async function, but a turn is synchronous (holding it across an await would stall every other process): await outside the callback and pass the results in, e.g. const data = await load(); ${call === 'shm.accessAsync' ? 'await ' : ''}${call}((tx) => tx.put(data))`)
  }
}

/** A Promise or anything else with a then method (what await would wait for). */
function isThenable(value: unknown): boolean {
  if (value instanceof Promise) return true
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false
  // A mapped view is never a thenable; asking it for "then" could read freed memory.
  if (mappedHandleOf(value) !== undefined) return false
  return typeof (value as { then?: unknown }).then === 'function'
}

function describe(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v
}
