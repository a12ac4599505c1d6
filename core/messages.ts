// Messages in and out of a channel's ring: a value becomes one flat frame
// (values/frame.ts), written into the ring slot when it fits (no allocation, no
// turn) or into a Frame record when it does not. Taking it reads an ordinary JS value
// and frees the slot (and record) at once: there is nothing to destroy.
//
// A value that already lives in the segment (a tx.put result, a mapped view, a
// TypedArray or struct of the segment) travels by reference: the frame lists its
// record, the send retains it, and the reference passes to whoever takes the message
// (it gets the live view and owns it, as tx.put's caller does). Frames with references,
// and Frame records, are handled in a turn; inline frames of plain values never are.
import { corrupt, ShmError } from './errors'
import type { Heap } from './heap'
import type { Holders } from './holders'
import { Header } from './layout'
import { FIRST_REF_TAG, FrameRec, InternalKind, LAST_VALUE_TAG, OUT_OF_LINE, Rec, RingSlot, type Tag } from './records'
import type { Ring } from './ring'
import { FrameEncoder, frameRefs, readFrame } from './values/frame'
import { readRecord } from './values/decode'
import { sharedRecordOf } from './values/mapped_handle'
import { releaseRecord } from './values/release'

/** Length bit: the frame lists record references (its receiver takes them in a turn). */
export const WITH_REFS = 0x40000000
/** The frame's byte length in a slot's Length word. */
export const FRAME_LENGTH = 0x3fffffff

/** Runs `fn` in a turn of the segment (at once when the caller is in one already). */
export type InTurn = <T>(fn: () => T) => T

/** What receive found in a claimed slot when a sender had given up on it meanwhile. */
export const LOST: unique symbol = Symbol('lost message')

/** A frame ready to go into a slot: inline bytes, or a Frame record already written (refs retained). */
export interface Outgoing {
  /** The frame's byte length (with WITH_REFS when it lists references). */
  length: number
  /** An inline frame's bytes; null while it is still in the encoder (keep() copies it out) or when it is in `record`. */
  bytes: Uint8Array | null
  /** The Frame record (0: inline). */
  record: number
  generation: number
  /** Record references the frame lists, retained for it. */
  refs: readonly number[]
}

export class Messages {
  private readonly heap: Heap
  private readonly holders: Holders
  private readonly inTurn: InTurn
  private readonly encoder = new FrameEncoder()
  private readonly refGenerations: number[] = []
  private readonly refHook = (value: object): number | undefined => {
    const ref = sharedRecordOf(this.heap, value)
    if (ref < 0) return undefined
    this.refGenerations.push(this.heap.generationOf(ref))
    return ref
  }

  constructor(heap: Heap, holders: Holders, inTurn: InTurn) {
    this.heap = heap
    this.holders = holders
    this.inTurn = inTurn
  }

  /**
   * Encodes `value` for a ring whose slots carry `inlineBytes`: ERR_UNSUPPORTED_TYPE
   * (naming the path) for what a message cannot carry, ERR_SHM_STALE for a freed view,
   * ERR_SHM_FULL when a large frame finds no room (nothing is changed then). By-reference
   * values are retained here; `abandon` undoes a frame that is not sent after all.
   */
  prepare(value: unknown, inlineBytes: number): Outgoing {
    const enc = this.encoder
    this.refGenerations.length = 0
    const length = enc.encode(value, this.refHook)
    const refs = enc.refs().slice()
    if (refs.length === 0 && length <= inlineBytes) return { length, bytes: null, record: 0, generation: 0, refs }
    if (length > FRAME_LENGTH) throw new ShmError('ERR_SHM_FULL', `a message frame of ${length} bytes is larger than a channel carries (1 GiB); send the data by reference: put it with tx.put and send the view`)
    const generations = this.refGenerations.slice()
    return this.inTurn(() => {
      const heap = this.heap
      return heap.atomically(() => {
        for (let i = 0; i < refs.length; i++) {
          const ref = refs[i]!
          if (heap.generationOf(ref) !== generations[i]) throw new ShmError('ERR_SHM_STALE', `a value sent by reference (record ${ref}) was freed while its message was being written: send values that something still holds`)
          heap.retain(ref)
        }
        const flagged = refs.length > 0 ? length | WITH_REFS : length
        if (length <= inlineBytes) return { length: flagged, bytes: enc.toBytes(), record: 0, generation: 0, refs }
        const record = heap.allocRecord(InternalKind.Frame, FrameRec.Data + length)
        heap.u32[(record + FrameRec.ByteLength) >>> 2] = length
        enc.writeTo(heap.u8, record + FrameRec.Data)
        return { length: flagged, bytes: null, record, generation: heap.generationOf(record), refs }
      })
    })
  }

  /** Copies an inline frame out of the encoder, so that other sends can run before this one is written (a send that waits). */
  keep(out: Outgoing): void {
    if (out.record === 0 && out.bytes === null) out.bytes = this.encoder.toBytes()
  }

  /** Writes a prepared frame into the slot a send claimed (publish it next). */
  write(slot: number, out: Outgoing): void {
    const heap = this.heap
    if (out.record === 0) {
      if (out.bytes === null) this.encoder.writeTo(heap.u8, slot + RingSlot.Data)
      else heap.u8.set(out.bytes, slot + RingSlot.Data)
      heap.u32[(slot + RingSlot.Length) >>> 2] = out.length
    } else {
      heap.u32[(slot + RingSlot.Ref) >>> 2] = out.record
      heap.u32[(slot + RingSlot.Generation) >>> 2] = out.generation
      heap.u32[(slot + RingSlot.Length) >>> 2] = out.length | OUT_OF_LINE
    }
  }

  /** Undoes `prepare` for a frame that was not sent (a full ring, a timeout). */
  abandon(out: Outgoing): void {
    if (out.record === 0 && out.refs.length === 0) return
    this.inTurn(() => {
      const heap = this.heap
      for (const ref of out.refs) releaseRecord(heap, ref, heap.kindOf(ref))
      if (out.record !== 0) heap.freeRecord(out.record)
    })
  }

  /**
   * Reads the message in the slot claimed at `pos` and frees the slot. LOST when a
   * sender gave up on this receive meanwhile (it stalled for ring.STUCK_MS).
   */
  read(ring: Ring, slot: number, pos: number): unknown {
    const heap = this.heap
    const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
    if ((word & (OUT_OF_LINE | WITH_REFS)) === 0) {
      const value = readFrame(heap.u8, slot + RingSlot.Data, Math.min(word, ring.slotBytes - RingSlot.Data))
      return ring.release(slot, pos) ? value : LOST
    }
    return this.inTurn(() => {
      // Whoever gives up on a slot with a record or references does it in a turn: if
      // the slot is still ours now, it stays ours until this turn ends.
      if (Atomics.load(heap.i32, slot >>> 2) !== ((pos + 1) | 0)) return LOST
      const length = word & FRAME_LENGTH
      let at = slot + RingSlot.Data
      let record = 0
      if ((word & OUT_OF_LINE) !== 0) {
        record = heap.record(heap.u32[(slot + RingSlot.Ref) >>> 2]!, InternalKind.Frame)
        if (heap.generationOf(record) !== heap.u32[(slot + RingSlot.Generation) >>> 2]) throw corruptSlot(ring, pos, 'its frame record was freed')
        heap.block(record, FrameRec.Data + length, 'message frame record')
        at = record + FrameRec.Data
      } else if (length > ring.slotBytes - RingSlot.Data) {
        throw corruptSlot(ring, pos, `an inline frame of ${length} bytes does not fit its ${ring.slotBytes - RingSlot.Data}`)
      }
      const refs = (word & WITH_REFS) !== 0 ? frameRefs(heap.u8, at, length) : []
      for (const ref of refs) checkValueRecord(heap, ref)
      // Room to list the references this process takes over: ERR_SHM_FULL leaves the message queued.
      if (refs.length > 0) this.holders.reserve(refs.length)
      const value = readFrame(heap.u8, at, length, (ref) => readRecord(heap, heap.kindOf(ref) as Tag, ref, true))
      // The slot is freed before this process lists the references as its own: killed in
      // between, they leak. The other order would leave them both listed for this (dead)
      // process, released when it is swept, and in the slot, released again when a sender
      // frees the slot its dead receiver held.
      ring.release(slot, pos)
      for (const ref of refs) {
        this.holders.hold(ref)
        heap.addOwned(ref)
      }
      if (record !== 0) heap.freeRecord(record)
      return value
    })
  }

  /**
   * In a turn: drops what a slot given up on held (its Frame record and the references
   * its frame lists). `published`: the slot held a whole message (a receiver stalled);
   * otherwise a sender stalled mid-write and nothing in it can be trusted (it leaks).
   */
  discardSlot(slot: number): void {
    const heap = this.heap
    const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
    const length = word & FRAME_LENGTH
    let at = slot + RingSlot.Data
    let record = 0
    if ((word & OUT_OF_LINE) !== 0) {
      record = heap.u32[(slot + RingSlot.Ref) >>> 2]!
      // Freed already (by its receiver, before it stalled): nothing to do.
      if (record < Header.HeapStart || record + FrameRec.Data > heap.size) return
      if (heap.kindOf(record) !== InternalKind.Frame || heap.generationOf(record) !== heap.u32[(slot + RingSlot.Generation) >>> 2]) return
      at = record + FrameRec.Data
    }
    if ((word & WITH_REFS) !== 0) {
      for (const ref of frameRefs(heap.u8, at, length)) {
        checkValueRecord(heap, ref)
        releaseRecord(heap, ref, heap.kindOf(ref))
      }
    }
    if (record !== 0) heap.freeRecord(record)
  }
}

function checkValueRecord(heap: Heap, ref: number): void {
  heap.range(ref, Rec.Body) // before its kind is read
  const kind = heap.kindOf(heap.record(ref, heap.kindOf(ref)))
  if (kind < FIRST_REF_TAG || kind > LAST_VALUE_TAG || heap.u32[(ref + Rec.RefCount) >>> 2] === 0) {
    throw corrupt(`a queued message refers to record ${ref}, which is not a live value record`)
  }
}

function corruptSlot(ring: Ring, pos: number, why: string): ShmError {
  return corrupt(`channel ring ${ring.ch}, position ${pos >>> 0}: ${why}`)
}
