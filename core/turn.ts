// What a turn can do: `shm.access(tx => …)` hands the callback one of these. It
// is only valid inside that callback.
import type { AllocatorStats } from './allocator'
import { pooledArrays } from './loan_pool'
import { DEFAULT_CHANNEL } from './channel'
import type { Channel } from './message_channel'
import { EncodeContext, encodeValue } from './values/encode'
import { readRecord } from './values/decode'
import { dataLength, dataOffset, mappedHandleOf, sharedRecordOf } from './values/mapped_handle'
import type { Holders } from './holders'
import { releaseRecord } from './values/release'
// Registers the live views with the decoder (see ViewFactories in values/decode.ts).
import './values/views'
import { ShmError } from './errors'
import type { Heap } from './heap'
import { checkOptions } from './options'
import { FIRST_REF_TAG, Rec, Tag } from './records'


/** tx.stats() and shm.stats(): the allocator's figures, and the loan pool's. */
export interface SegmentStats extends AllocatorStats {
  /**
   * Bytes of released loans the pool keeps for the next loans (counted in `used`; given
   * back to the allocator whenever an allocation would not fit without them).
   */
  pooled: number
}

export interface ChannelOptions {
  /** Channel name; the default channel when omitted. */
  channel?: string
}

export interface TakeOptions extends ChannelOptions {
  /** @deprecated Messages are always copies now (values sent by reference excepted); accepted and ignored. */
  copy?: boolean
}

/** The channel handles the in-turn forms use, one per name, held by the segment handle. */
export interface TurnChannels {
  /** The handle for `name`; undefined when there is no such channel and `create` is false. */
  get(name: string, create: boolean): Channel | undefined
  /** Closes the handle for `name` (a channel made for a put that then failed goes with it). */
  drop(name: string): void
}

const channelSpec = { channel: 'string' } as const
/** What takeMessage's channel gives when nothing is published (a message may be undefined). */
const NO_MESSAGE: unique symbol = Symbol('no message')
const takeSpec = { channel: 'string', copy: 'boolean' } as const

/**
 * Your turn on the segment: the `tx` that `shm.access(tx => …)` and
 * `shm.accessAsync(tx => …)` hand the callback. Each call takes effect when it returns
 * (there is no commit or rollback); the object is valid only inside that callback.
 */
export class Turn {
  private readonly heap: Heap
  private readonly holders: Holders
  private readonly channels: TurnChannels

  /** @internal */
  constructor(heap: Heap, holders: Holders, channels: TurnChannels) {
    this.heap = heap
    this.holders = holders
    this.channels = channels
  }

  /**
   * The view that tx.put or tx.takeMessage returns holds the reference the operation
   * made: counted here (for destroy) and listed in the segment (for a process that dies).
   */
  private own(value: unknown): unknown {
    const handle = typeof value === 'object' && value !== null ? mappedHandleOf(value) : undefined
    if (handle === undefined || handle.heap !== this.heap) {
      // A copy holds nothing: the room reserved for it goes again.
      this.holders.trim()
      return value
    }
    this.ownRef(handle.ref)
    return value
  }

  private ownRef(ref: number): void {
    this.holders.hold(ref)
    this.heap.addOwned(ref)
  }

  /**
   * Stores `value` in the segment and returns its live view: Arrays, plain objects,
   * Maps, Sets, registered class instances, TypedArrays and struct views come back
   * mapped (reads and writes go to shared memory). Values without a mapped form
   * (primitives, strings, Dates…) are returned as they are and nothing is stored.
   */
  put<T>(value: T): T {
    this.heap.checkTurn()
    // A function or symbol is not "copied": encodeValue refuses it with ERR_UNSUPPORTED_TYPE.
    if (isCopiedValue(value) && typeof value !== 'function' && typeof value !== 'symbol') return value
    const heap = this.heap
    // Room to list the reference the view will hold first: ERR_SHM_FULL there leaves nothing stored.
    this.holders.reserve()
    let encoded: { tag: Tag; num: number }
    try {
      encoded = heap.atomically(() => {
        const ctx = new EncodeContext(heap)
        encodeValue(ctx, value)
        return { tag: ctx.tag, num: ctx.num }
      })
    } catch (err) {
      this.holders.trim()
      throw err
    }
    const { tag, num } = encoded
    if (tag === Tag.Serialized) {
      // v8.serialize output has no live form: nothing to keep.
      releaseRecord(heap, num, tag)
      this.holders.trim()
      return value
    }
    try {
      // A fresh record only its caller refers to: its view is cached once it is shared (Heap.adoptView).
      const fresh = heap.u32[(num + Rec.RefCount) >>> 2] === 1
      const view = (fresh ? heap.viewUncached(num, () => readRecord(heap, tag, num, true)) : readRecord(heap, tag, num, true)) as T
      // The record is the view's (an Instance's view stands for the Instance record).
      this.ownRef(num)
      return view
    } catch (err) {
      releaseRecord(heap, num, tag, true)
      throw err
    }
  }

  /**
   * Appends a copy of `value` to a channel (values of the segment — tx.put results,
   * mapped views — go by reference). ERR_CHANNEL_FULL when its ring is full: a turn
   * cannot wait for room (use shm.channel(name).send outside the turn).
   */
  putMessage(value: unknown, options?: ChannelOptions): void {
    this.heap.checkTurn()
    const name = this.channelName(options, 'putMessage')
    const existed = this.channels.get(name, false) !== undefined
    let sent: true | 'ERR_CHANNEL_FULL'
    try {
      sent = this.channels.get(name, true)!.trySend(value)
    } catch (err) {
      // A value that cannot be sent leaves no channel behind.
      if (!existed) this.channels.drop(name)
      throw err
    }
    if (sent !== true) {
      throw new ShmError('ERR_CHANNEL_FULL', `tx.putMessage: ${name === DEFAULT_CHANNEL ? 'the default channel' : `channel "${name}"`} is full; receive from it, send outside the turn with shm.channel(name).send (which waits for room), or open it with a larger capacity`)
    }
  }

  hasMessages(options?: ChannelOptions): boolean {
    return this.messageCount(options) > 0
  }

  messageCount(options?: ChannelOptions): number {
    this.heap.checkTurn()
    return this.channels.get(this.channelName(options, 'messageCount'), false)?.size ?? 0
  }

  /**
   * Removes the oldest message and returns it as an ordinary value: nothing to
   * destroy. Values its sender passed by reference come back as live views this
   * process now owns (free them with destroy). ERR_NO_MESSAGES when the channel is empty.
   */
  takeMessage<T = unknown>(options?: TakeOptions): T {
    this.heap.checkTurn()
    const o = options === undefined ? undefined : checkOptions<TakeOptions>(options, takeSpec, 'tx.takeMessage')
    const name = o?.channel ?? DEFAULT_CHANNEL
    const ch = this.channels.get(name, false)
    if (ch === undefined || ch.size === 0) {
      throw new ShmError('ERR_NO_MESSAGES', `${name === DEFAULT_CHANNEL ? 'the default channel' : `channel "${name}"`} has no messages: check tx.hasMessages() first, or await shm.channel(name).receive()`)
    }
    const value = ch.tryReceiveOr(NO_MESSAGE)
    // Another process took it first (a consumer outside turns).
    if (value === NO_MESSAGE) throw new ShmError('ERR_NO_MESSAGES', `${name === DEFAULT_CHANNEL ? 'the default channel' : `channel "${name}"`} has no messages`)
    return value as T
  }

  /**
   * Frees a mapped value (and what only it references). Using it afterwards is an
   * error. Values that came out as copies (primitives, strings, Dates, RegExps,
   * Errors) own nothing in the segment, so destroying them does nothing.
   */
  destroy(mapped: unknown): void {
    this.heap.checkTurn()
    if (isCopiedValue(mapped)) return
    const ref = this.refOf(mapped as object, 'destroy')
    if (!this.heap.takeOwned(ref)) {
      throw new ShmError(
        'ERR_INVALID_ARGUMENT',
        'tx.destroy takes a value returned by tx.put or tx.takeMessage, once per call that returned it: each of those holds a reference to its record. This one holds none — it was read out of a container or a message (destroying it would free a record its parent still points to), it is a copy (messages are copies unless sent by reference), or it was destroyed already. Remove it from its container, or destroy the value you put or took',
      )
    }
    this.holders.unhold(ref)
    // The caller is done with it: freed now (not at the end of the turn) when this was its last reference.
    releaseRecord(this.heap, ref, this.heap.kindOf(ref), true)
  }

  /** The bytes of a mapped TypedArray, DataView, Buffer or struct: a Uint8Array over the segment. */
  bufferOf(mapped: object): Uint8Array {
    this.heap.checkTurn()
    const ref = this.refOf(mapped, 'bufferOf')
    const kind = this.heap.kindOf(ref)
    if (kind !== Tag.Binary && kind !== Tag.Struct) {
      throw new ShmError('ERR_INVALID_ARGUMENT', 'bufferOf takes a mapped TypedArray, DataView, Buffer or struct view; containers have no single byte range')
    }
    const data = ref + dataOffset(this.heap, ref)
    return this.heap.u8.subarray(data, data + dataLength(this.heap, ref))
  }

  /**
   * A plain deep copy of a mapped value, usable after the turn. A value that is not
   * mapped (a message taken from a channel is a copy already) comes back as it is.
   */
  copy<T>(mapped: T): T {
    this.heap.checkTurn()
    if (isCopiedValue(mapped) || sharedRecordOf(this.heap, mapped as object) < 0) return mapped
    const ref = this.refOf(mapped as object, 'copy')
    return readRecord(this.heap, this.heap.kindOf(ref) as Tag, ref, false) as T
  }

  stats(): SegmentStats {
    this.heap.checkTurn()
    return { ...this.heap.allocator.stats(), pooled: pooledArrays(this.heap).bytes }
  }

  private channelName(options: ChannelOptions | undefined, call: string): string {
    if (options === undefined) return DEFAULT_CHANNEL
    return checkOptions<ChannelOptions>(options, channelSpec, `tx.${call}`).channel ?? DEFAULT_CHANNEL
  }

  /** The record a mapped value stands for, checked to belong to this segment (ERR_SHM_STALE once freed). */
  private refOf(mapped: object, call: string): number {
    const heap = this.heap
    const ref = sharedRecordOf(heap, mapped)
    if (ref < 0 || heap.kindOf(ref) < FIRST_REF_TAG) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `tx.${call} needs a value mapped from this segment (returned by put, putMessage or takeMessage)`)
    }
    return heap.record(ref, heap.kindOf(ref))
  }
}

/** Values that never come back mapped: they are copied in and out (put stores nothing for them). */
function isCopiedValue(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true
  // A mapped view first: one MAPPED lookup, where each `instanceof` below would call a
  // Proxy view's getPrototypeOf trap (four traps were 8% of a destroy).
  if (mappedHandleOf(value) !== undefined) return false
  return value instanceof Date || value instanceof RegExp || value instanceof Error || value instanceof ArrayBuffer
}

/** @deprecated use Turn (the same object: the `tx` of `shm.access(tx => …)`). */
export type Transaction = Turn
