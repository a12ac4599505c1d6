// Messages in and out of a channel's ring: a value becomes one flat frame
// (values/frame.ts), written into the ring slot when it fits (no allocation, no
// turn) or into a Frame record when it does not. Taking it reads an ordinary JS value
// and frees the slot (and record) at once: there is nothing to destroy.
//
// A value that already lives in the segment (a tx.put result, a mapped view, a
// TypedArray or struct of the segment) travels by reference: the frame lists its
// record, the send retains it, and the reference passes to whoever takes the message
// (it gets the live view and owns it, as tx.put's caller does). A frame with references
// takes no turn when the sender owns a reference to each record it sends (a tx.put
// result, a view it received by reference: nothing else can drop those, so an atomic
// count is enough) and the receiver finds only byte and struct records and room in its
// holder list; otherwise, and for containers (whose headers change in turns), it is
// handled in a turn. Frames of plain values (and loans) never take one.
// A TypedArray, DataView or Buffer over the segment's bytes that is no record (a
// subarray of shm.bytes, a view made by hand) travels as its place in the segment
// (a SegmentView): the receiver gets a view of the same bytes, and nobody owns it.
// A frame too long for the ring's slots goes into an array of the loan pool (no turn
// once the pool has one that fits), or into a Frame record in the turn of a frame with
// references (or when every pool entry is held). A loan (Channel.loan,
// core/loan_pool.ts) travels as its loan pool entry: sending and receiving it takes no
// turn, and it passes from sender to receiver.
import { corrupt, ShmError } from './errors'
import type { Heap } from './heap'
import { Header } from './layout'
import type { Holders } from './holders'
import { Chan, FIRST_REF_TAG, FRAME_LENGTH, FrameRec, InternalKind, LAST_VALUE_TAG, OUT_OF_LINE, POOLED_FRAME_MAX, Rec, RingSlot, Tag, WITH_REFS } from './records'
import type { Ring } from './ring'
import { LoanPool } from './loan_pool'
import { FrameEncoder, frameLoans, frameRefs, readFrame, type FrameLoan, type FrameSegmentView } from './values/frame'
import { readRecord } from './values/decode'
import { shareRecordOf, sharedRecordOf } from './values/mapped_handle'
import { releaseRecord } from './values/release'
import type { ViewHolds } from './view_holds'


/** readWithRefs could not read the message without a turn. */
const NEEDS_TURN: unique symbol = Symbol('needs a turn')

/** The shared empty list for the common message without references or loans (never written to). */
const NO_REFS: readonly number[] = []

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
  /** The Frame record, or 1 + the loan pool entry holding the frame (pooled); 0: in the ring. */
  record: number
  generation: number
  pooled: boolean
  /** Record references the frame lists, retained for it. */
  refs: readonly number[]
  /** The loans it carries, (entry, generation) pairs: still held by this handle until launch marks them in flight. */
  loans: readonly number[]
  /** launch marked the loans (and a pooled frame's array) in flight: abandon must take them back. */
  launched: boolean
  /** The retained references and the Frame record are listed in this handle's holder slot while the send waits (listPending). */
  listed: boolean
  /** Ring slots it takes: 1 for a Frame record, more for a frame that spans slots. */
  span: number
}

/** A view at segment offset 0 of at most this many bytes lies in the header: never sent by place (refHook). */
const HEADER_VIEW_BYTES = 64

export class Messages {
  private readonly heap: Heap
  private readonly holders: Holders
  private readonly inTurn: InTurn
  private readonly encoder = new FrameEncoder()
  private readonly refGenerations: number[] = []
  private readonly refHook = (value: object): number | FrameSegmentView | FrameLoan | undefined => {
    // A small view before the segment's 65th byte is no loan, record or place worth sending:
    // copied, without the lookups below. Reading `buffer` of a small array V8 keeps on its
    // own heap (byteOffset 0, at most 64 bytes: a fresh new Uint8Array(64)) would move it
    // into an ArrayBuffer of its own, ~0.5 µs per message; such a view never is one of the
    // segment: its first 64 bytes are the header, nothing to send.
    if (ArrayBuffer.isView(value) && value.byteOffset - this.heap.byteOffset < HEADER_VIEW_BYTES && value.byteLength <= HEADER_VIEW_BYTES) return undefined
    if (value instanceof Uint8Array) {
      const ticket = this.loanPool.ticketOf(value)
      if (ticket !== undefined) return { loan: ticket.entry, generation: ticket.generation }
    }
    const ref = shareRecordOf(this.heap, value)
    if (ref < 0) {
      // A raw view of the segment (not a record) travels as its place: the same bytes.
      const heap = this.heap
      if (!ArrayBuffer.isView(value)) return undefined
      const offset = value.byteOffset - heap.byteOffset
      // A view reaching outside the segment (into the memory around it) is copied. (Small
      // views before its 65th byte were copied above, before `buffer` could be read.)
      return offset >= 0 && offset + value.byteLength <= heap.size && value.buffer === heap.buffer ? { segmentView: offset } : undefined
    }
    this.refGenerations.push(this.heap.generationOf(ref))
    return ref
  }
  /** The byte arrays Channel.loan lends: sending one moves it into the message, receiving it makes it the receiver's. */
  readonly loanPool: LoanPool
  /** Loans the frame being read handed out so far (given back when it cannot be delivered after all). */
  private receivedLoans: Uint8Array[] = []
  private readonly receiveLoan = (entry: number, generation: number): Uint8Array => {
    const view = this.loanPool.receive(entry, generation)
    this.receivedLoans.push(view)
    return view
  }
  /**
   * Copies a frame's large payloads into and out of the segment with the addon's memcpy
   * (V8's set into or out of a SharedArrayBuffer is ~3× slower for 400 KB); views that
   * are both outside the segment (a spanned frame's scratch) are copied by set.
   */
  private readonly bulk = (target: Uint8Array, source: Uint8Array): void => {
    const heap = this.heap
    if (target.buffer === heap.buffer) heap.segment.copy(target.byteOffset - heap.byteOffset, source, true)
    else if (source.buffer === heap.buffer) heap.segment.copy(source.byteOffset - heap.byteOffset, target, false)
    else target.set(source)
  }
  /** Where frames that span slots are put together (read) and laid out (write). */
  private scratch = new Uint8Array(4096)
  /** The scratch buffer as 32-bit words (ring.scatter and gather copy a word at a time). */
  private scratchWords = new Int32Array(this.scratch.buffer)
  /** Views received by reference are released by garbage collection if the receiver does not. */
  private readonly viewHolds: ViewHolds

  constructor(heap: Heap, holders: Holders, inTurn: InTurn, viewHolds: ViewHolds) {
    this.heap = heap
    this.holders = holders
    this.inTurn = inTurn
    this.viewHolds = viewHolds
    this.loanPool = new LoanPool(heap, inTurn)
  }

  /**
   * Encodes `value` for a ring whose slots carry `inlineBytes`: ERR_UNSUPPORTED_TYPE
   * (naming the path) for what a message cannot carry, ERR_SHM_STALE for a freed view,
   * ERR_SHM_FULL when a large frame finds no room (nothing is changed then). By-reference
   * values are retained here; `abandon` undoes a frame that is not sent after all.
   */
  prepare(value: unknown, ring: Ring): Outgoing {
    const enc = this.encoder
    if (this.refGenerations.length !== 0) this.refGenerations.length = 0
    const length = enc.encode(value, this.refHook)
    const listed = enc.refs()
    const refs = listed.length === 0 ? NO_REFS : listed.slice()
    const carried = enc.loans()
    const loans = carried.length === 0 ? NO_REFS : carried.slice()
    const inRing = length <= ring.maxFrame
    if (refs.length === 0 && inRing) return { length, bytes: null, record: 0, generation: 0, pooled: false, refs, loans, launched: false, listed: false, span: ring.slotsFor(length) }
    if (length > FRAME_LENGTH) throw new ShmError('ERR_SHM_FULL', `a message frame of ${length} bytes is larger than a channel carries (1 GiB); send the data by reference: put it with tx.put and send the view`)
    if (refs.length === 0) {
      const pooled = this.pooledFrame(length, loans)
      if (pooled !== undefined) return pooled
    }
    if (inRing && this.ownsAll(refs)) {
      // By reference without a turn: this process owns a reference to each record, which
      // nothing else can drop, so none can be freed before the frame's own are counted.
      for (let i = 0; i < refs.length; i++) this.heap.retainHeld(refs[i]!)
      return { length: length | WITH_REFS, bytes: null, record: 0, generation: 0, pooled: false, refs, loans, launched: false, listed: false, span: ring.slotsFor(length) }
    }
    const generations = this.refGenerations.slice()
    const out = this.inTurn(() => {
      const heap = this.heap
      return heap.atomically((): Outgoing => {
        for (let i = 0; i < refs.length; i++) {
          const ref = refs[i]!
          if (heap.generationOf(ref) !== generations[i]) throw new ShmError('ERR_SHM_STALE', `a value sent by reference (record ${ref}) was freed while its message was being written: send values that something still holds`)
          heap.retain(ref)
        }
        const flagged = refs.length > 0 ? length | WITH_REFS : length
        if (inRing) return { length: flagged, bytes: enc.toBytes(), record: 0, generation: 0, pooled: false, refs, loans, launched: false, listed: false, span: ring.slotsFor(length) }
        const record = heap.allocRecord(InternalKind.Frame, FrameRec.Data + length)
        heap.u32[(record + FrameRec.ByteLength) >>> 2] = length
        enc.writeTo(heap.u8, record + FrameRec.Data, this.bulk)
        return { length: flagged, bytes: null, record, generation: heap.generationOf(record), pooled: false, refs, loans, launched: false, listed: false, span: 1 }
      })
    })
    return out
  }

  /** True when this process owns a reference to each of `refs`, still in the generation the encoder saw (a getter may have destroyed one meanwhile). */
  private ownsAll(refs: readonly number[]): boolean {
    const heap = this.heap
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i]!
      if (!heap.owns(ref) || heap.generationOf(ref) !== this.refGenerations[i]) return false
    }
    return true
  }

  /**
   * The encoder's frame of `length` bytes (too long for the ring, no references) written
   * into an array of the loan pool, which goes in flight with it; undefined when the pool
   * has none to lend (every entry held, or no room for a new array: a Frame record then).
   */
  private pooledFrame(length: number, loans: readonly number[]): Outgoing | undefined {
    let frame: { entry: number; generation: number; data: number }
    try {
      frame = this.loanPool.lendFrame(length)
    } catch (err) {
      if (err instanceof ShmError && err.code === 'ERR_SHM_FULL') return undefined
      throw err
    }
    this.encoder.writeTo(this.heap.u8, frame.data, this.bulk)
    return { length, bytes: null, record: frame.entry + 1, generation: frame.generation, pooled: true, refs: NO_REFS, loans, launched: false, listed: false, span: 1 }
  }

  /**
   * release() without a turn, when the reference this process owns through `view` is not
   * the record's last (the other holders keep it alive). False when it takes a turn
   * after all (release then): not owned here, or the last reference, which frees.
   */
  releaseWithoutTurn(view: object): boolean {
    const heap = this.heap
    const ref = sharedRecordOf(heap, view)
    if (ref < 0 || !heap.owns(ref) || Atomics.load(heap.i32, (ref + Rec.RefCount) >>> 2) <= 1) return false
    // Unlisted first: killed before the count drops, the reference leaks; the other
    // order could drop it twice (once here, once when the dead handle is swept).
    if (!this.holders.unholdWithoutTurn(ref)) return false
    if (!heap.dropShared(ref)) {
      // Another holder let go meanwhile: this one is the last. (Room: one was just unlisted.)
      this.holders.holdWithoutTurn(ref)
      return false
    }
    heap.takeOwned(ref)
    this.viewHolds.forget(view)
    return true
  }

  /** In a turn: drops the reference this process owns through `view` (a value received by reference). */
  release(view: object): boolean {
    const heap = this.heap
    const ref = sharedRecordOf(heap, view)
    if (ref < 0 || !heap.takeOwned(ref)) return false
    this.viewHolds.forget(view)
    this.holders.unhold(ref)
    releaseRecord(heap, ref, heap.kindOf(ref), true)
    return true
  }

  /** Copies an inline frame out of the encoder, so that other sends can run before this one is written (a send that waits). */
  keep(out: Outgoing): void {
    if (out.record === 0 && out.bytes === null) out.bytes = this.encoder.toBytes()
  }

  /**
   * Writes a prepared frame into the `out.span` slots a send claimed at `pos` and marks
   * what it carries in flight (publish the head next). Not before: a sender killed while
   * it waits for room still holds its loans, and they come back like a dead holder's.
   */
  write(ring: Ring, slot: number, pos: number, out: Outgoing): void {
    this.writeSlots(ring, slot, pos, out)
    if (out.listed) this.inTurn(() => this.unlistPending(out))
    if (!out.launched) this.launch(out)
  }

  /**
   * A send with references (or a Frame record) is about to wait for room: what it
   * retained is listed in this handle's holder slot until it is sent, so that if this
   * process dies meanwhile the next one to sweep the slot gives it all back.
   */
  listPending(out: Outgoing): void {
    const frame = frameRecordOf(out)
    if (out.listed || (out.refs.length === 0 && frame === 0)) return
    this.inTurn(() => {
      // Room first: ERR_SHM_FULL leaves nothing half listed (the send then waits unlisted, as before).
      this.holders.reserve(out.refs.length + (frame === 0 ? 0 : 1))
      for (const ref of out.refs) this.holders.hold(ref)
      if (frame !== 0) this.holders.hold(frame)
      out.listed = true
    })
  }

  /** In a turn: the message (or abandon) takes over what listPending listed. */
  private unlistPending(out: Outgoing): void {
    for (const ref of out.refs) this.holders.unhold(ref)
    const frame = frameRecordOf(out)
    if (frame !== 0) this.holders.unhold(frame)
    out.listed = false
  }

  /** The loans a frame carries, and the pool array a pooled frame is in, leave this handle. Nothing can fail after this. */
  private launch(out: Outgoing): void {
    if (out.pooled) this.loanPool.sendAll([out.record - 1, out.generation, ...out.loans])
    else if (out.loans.length !== 0) this.loanPool.sendAll(out.loans)
    out.launched = true
  }

  private writeSlots(ring: Ring, slot: number, pos: number, out: Outgoing): void {
    const heap = this.heap
    if (out.record === 0) {
      if (out.span === 1) {
        if (out.bytes === null) this.encoder.writeTo(heap.u8, slot + RingSlot.Data)
        else heap.u8.set(out.bytes, slot + RingSlot.Data)
      } else {
        const length = out.length & FRAME_LENGTH
        if (out.bytes !== null) ring.scatter(pos, out.bytes, length)
        else {
          // Straight from the encoder's scratch when the frame lies there whole (one copy, not two).
          const whole = this.encoder.inPlace()
          if (whole !== undefined) ring.scatter(pos, whole, length, this.encoder.scratchWords())
          else {
            const bytes = this.scratchOf(length)
            this.encoder.writeTo(bytes, 0)
            ring.scatter(pos, bytes, length, this.scratchWords)
          }
        }
      }
      heap.u32[(slot + RingSlot.Length) >>> 2] = out.length
    } else {
      heap.u32[(slot + RingSlot.Ref) >>> 2] = out.record
      heap.u32[(slot + RingSlot.Generation) >>> 2] = out.generation
      heap.u32[(slot + RingSlot.Length) >>> 2] = out.length | OUT_OF_LINE
    }
  }

  /** Undoes `prepare` for a frame that was not sent (a full ring, a timeout). */
  abandon(out: Outgoing): void {
    // Launched by a write whose slot a receiver then skipped (it took this sender for a dead one).
    if (out.launched && out.loans.length !== 0) this.loanPool.unsendAll(out.loans)
    if (out.pooled) {
      if (out.launched) this.loanPool.dropInFlight([out.record - 1, out.generation])
      else this.loanPool.giveBack([out.record - 1, out.generation])
      return
    }
    if (out.record === 0 && out.refs.length === 0) return
    this.inTurn(() => {
      if (out.listed) this.unlistPending(out)
      const heap = this.heap
      // Retained for the frame: dropped again.
      for (const ref of out.refs) releaseRecord(heap, ref, heap.kindOf(ref))
      if (out.record !== 0) heap.freeRecord(out.record)
    })
  }

  /**
   * Reads the message in the slot claimed at `pos` and frees the slot. LOST when a
   * sender gave up on this receive meanwhile (it stalled for ring.STUCK_MS).
   */
  read(ring: Ring, slot: number, pos: number, span: number): unknown {
    const heap = this.heap
    const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
    const ref = heap.u32[(slot + RingSlot.Ref) >>> 2]!
    if ((word & WITH_REFS) === 0 && ((word & OUT_OF_LINE) === 0 || (ref !== 0 && ref <= POOLED_FRAME_MAX))) {
      // No references: no turn. The frame is in the slot, its span, or a loan pool array.
      if (this.receivedLoans.length !== 0) this.receivedLoans.length = 0
      let bytes: Uint8Array | null = heap.u8
      let at = slot + RingSlot.Data
      let length = word & FRAME_LENGTH
      let entry = -1
      let value: unknown
      try {
        if ((word & OUT_OF_LINE) !== 0) {
          bytes = null // (not known to hold a frame until it is taken)
          at = this.loanPool.takeFrame(ref - 1, heap.u32[(slot + RingSlot.Generation) >>> 2]!, length)
          entry = ref - 1
          bytes = heap.u8
        } else if (span === 1) length = Math.min(length, ring.headBytes)
        else {
          bytes = this.gather(ring, pos, length)
          at = 0
        }
        value = readFrame(bytes, at, length, undefined, heap.u8, this.bulk, this.receiveLoan)
      } catch (err) {
        this.giveBackLoans(bytes, at, length)
        if (entry >= 0) this.loanPool.freeFrame(entry)
        // Read by a sender that gave up on us meanwhile: nothing was lost here.
        if (!ring.release(slot, pos, span)) return LOST
        throw undeliverable(ring, err)
      }
      const released = ring.release(slot, pos, span)
      // Not released: a sender gave up on us and dropped the message; the loans it carried go back.
      if (!released) this.giveBackLoans(bytes, at, length)
      if (entry >= 0) this.loanPool.freeFrame(entry)
      // (Not kept: a received loan nobody holds must stay collectable.)
      if (this.receivedLoans.length !== 0) this.receivedLoans.length = 0
      return released ? value : LOST
    }
    if ((word & OUT_OF_LINE) === 0) {
      const value = this.readWithRefs(ring, slot, pos, span, word)
      if (value !== NEEDS_TURN) return value
    }
    return this.inTurn(() => {
      // Whoever gives up on a slot with a record or references does it in a turn: if
      // the slot is still ours now, it stays ours until this turn ends.
      if (Atomics.load(heap.i32, slot >>> 2) !== ((pos + 1) | 0)) return LOST
      this.receivedLoans.length = 0
      try {
        const value = this.readInTurn(ring, slot, pos, span, word)
        this.receivedLoans.length = 0
        return value
      } catch (err) {
        this.giveBackLoans(null, 0, 0)
        // The message cannot be delivered (a damaged frame, no room to list its
        // references): its slot is freed so that the channel goes on, and it is counted.
        // Its Frame record and references are dropped only when they are known sound.
        if (err instanceof ShmError && err.code === 'ERR_SHM_FULL') this.discardSlot(ring, slot, pos)
        ring.release(slot, pos, span)
        throw undeliverable(ring, err)
      }
    })
  }

  /**
   * A message in the ring with references, read without a turn when every record it
   * refers to is a TypedArray, DataView, Buffer or struct (whose headers never change
   * while referenced: containers' do, in their holders' turns) and this handle's list
   * has room to hold them all. NEEDS_TURN (nothing changed) otherwise: read it in a turn.
   * The message holds a reference to each record, so none is freed while it is read;
   * if a sender frees the slot meanwhile (it took this receiver for a dead one: the
   * release below fails), that sender drops them in its turn and what was read is LOST.
   */
  private readWithRefs(ring: Ring, slot: number, pos: number, span: number, word: number): unknown {
    const heap = this.heap
    const length = word & FRAME_LENGTH
    let bytes: Uint8Array
    let at: number
    let refs: number[]
    try {
      ;({ bytes, at } = this.frameIn(ring, slot, pos, span, word))
      refs = frameRefs(bytes, at, length)
      if (!this.holders.hasRoom(refs.length)) return NEEDS_TURN
      for (const ref of refs) {
        checkValueRecord(heap, ref)
        const kind = heap.kindOf(ref)
        if (kind !== Tag.Binary && kind !== Tag.Struct) return NEEDS_TURN
      }
    } catch {
      // A damaged frame: reported by the read in a turn.
      return NEEDS_TURN
    }
    if (this.receivedLoans.length !== 0) this.receivedLoans.length = 0
    const received = this.received
    let value: unknown
    try {
      value = this.decodeWithRefs(bytes, at, length)
    } catch (err) {
      // As in a turn: the loans handed out go back, the slot is freed, the message counted.
      this.giveBackLoans(null, 0, 0)
      if (!ring.release(slot, pos, span)) return LOST
      throw undeliverable(ring, err)
    }
    if (!ring.release(slot, pos, span)) {
      // A sender gave up on us and drops the message (references and loans) in its turn.
      this.giveBackLoans(bytes, at, length)
      received.length = 0
      return LOST
    }
    this.receivedLoans.length = 0
    this.adopt(refs, received)
    received.length = 0
    return value
  }

  /** Decodes a frame that may list references: their views gather in `received` (emptied if it throws). */
  private decodeWithRefs(bytes: Uint8Array, at: number, length: number): unknown {
    this.received.length = 0
    try {
      return readFrame(bytes, at, length, this.readReceived, this.heap.u8, this.bulk, this.receiveLoan)
    } catch (err) {
      this.received.length = 0
      throw err
    }
  }

  /** The views a frame being read received by reference, in the order of its refs trailer. */
  private readonly received: object[] = []
  private readonly readReceived = (ref: number): unknown => {
    const heap = this.heap
    const view = readRecord(heap, heap.kindOf(ref) as Tag, ref, true)
    this.received.push(view as object)
    return view
  }

  /**
   * The references of a message this handle took (its slot freed) become this handle's:
   * listed in its holder slot (room made before), owned, and released when collected if
   * the receiver neither releases nor destroys them. The slot is freed first: killed in
   * between, they leak. The other order would leave them both listed for this (dead)
   * process, released when it is swept, and in the slot, released again when a sender
   * frees the slot its dead receiver held.
   */
  private adopt(refs: readonly number[], received: readonly object[]): void {
    const heap = this.heap
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i]!
      this.holders.holdWithoutTurn(ref)
      heap.addOwned(ref)
      const view = received[i]
      if (typeof view === 'object' && view !== null) this.viewHolds.watch(ref, view)
    }
  }

  /** In a turn, the slot still ours: a message with a Frame record or references. */
  private readInTurn(ring: Ring, slot: number, pos: number, span: number, word: number): unknown {
    const heap = this.heap
    const length = word & FRAME_LENGTH
    const { bytes, at, record } = this.frameIn(ring, slot, pos, span, word)
    const refs = (word & WITH_REFS) !== 0 ? frameRefs(bytes, at, length) : []
    for (const ref of refs) checkValueRecord(heap, ref)
    // Room to list the references this process takes over: ERR_SHM_FULL leaves the message queued.
    if (refs.length > 0) this.holders.reserve(refs.length)
    const received = this.received
    const value = this.decodeWithRefs(bytes, at, length)
    ring.release(slot, pos, span)
    this.adopt(refs, received)
    received.length = 0
    // Grown ahead, as hold() does, so that the next messages with references find room without a turn.
    if (refs.length > 0) this.holders.reserveAhead()
    if (record !== 0) heap.freeRecord(record)
    return value
  }

  /** Where the frame of a claimed message is: its Frame record, its slot, or gathered from its span. */
  private frameIn(ring: Ring, slot: number, pos: number, span: number, word: number): { bytes: Uint8Array; at: number; record: number } {
    const heap = this.heap
    const length = word & FRAME_LENGTH
    if ((word & OUT_OF_LINE) !== 0) {
      const record = heap.record(heap.u32[(slot + RingSlot.Ref) >>> 2]!, InternalKind.Frame)
      if (heap.generationOf(record) !== heap.u32[(slot + RingSlot.Generation) >>> 2]) throw corruptSlot(ring, pos, 'its frame record was freed')
      heap.block(record, FrameRec.Data + length, 'message frame record')
      return { bytes: heap.u8, at: record + FrameRec.Data, record }
    }
    if (length > ring.maxFrame || ring.slotsFor(length) !== span) throw corruptSlot(ring, pos, `a frame of ${length} bytes does not fill the ${span} slot(s) it was received in`)
    return span === 1 ? { bytes: heap.u8, at: slot + RingSlot.Data, record: 0 } : { bytes: this.gather(ring, pos, length), at: 0, record: 0 }
  }

  /** A scratch buffer of at least `n` bytes (reused: what is read from it is copied out). */
  private scratchOf(n: number): Uint8Array {
    if (this.scratch.length < n) {
      this.scratch = new Uint8Array((Math.max(n, this.scratch.length * 2) + 3) & ~3)
      this.scratchWords = new Int32Array(this.scratch.buffer)
    }
    return this.scratch
  }

  /** The frame of the span received at `pos`, copied together into the scratch buffer. */
  private gather(ring: Ring, pos: number, length: number): Uint8Array {
    const out = this.scratchOf(length)
    ring.gather(pos, length, out, this.scratchWords)
    return out
  }

  /**
   * In a turn: drops what a slot given up on held (its Frame record and the references
   * its frame lists). `published`: the slot held a whole message (a receiver stalled);
   * otherwise a sender stalled mid-write and nothing in it can be trusted (it leaks).
   */
  discardSlot(ring: Ring, slot: number, pos: number): void {
    const heap = this.heap
    const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
    const length = word & FRAME_LENGTH
    let bytes = heap.u8
    let at = slot + RingSlot.Data
    let record = 0
    if ((word & OUT_OF_LINE) !== 0) {
      record = heap.u32[(slot + RingSlot.Ref) >>> 2]!
      if (record !== 0 && record <= POOLED_FRAME_MAX) {
        // A frame in a loan pool array: only while it is still in flight is it intact
        // (taken, it is its receiver's, given back by its death).
        const generation = heap.u32[(slot + RingSlot.Generation) >>> 2]!
        const data = this.loanPool.inFlightFrame(record - 1, generation, length)
        if (data < 0) return
        this.loanPool.dropInFlight(frameLoans(heap.u8, data, length))
        this.loanPool.dropInFlight([record - 1, generation])
        return
      }
      // Freed already (by its receiver, before it stalled): nothing to do.
      if (record < Header.HeapStart || record + FrameRec.Data > heap.size) return
      if (heap.kindOf(record) !== InternalKind.Frame || heap.generationOf(record) !== heap.u32[(slot + RingSlot.Generation) >>> 2]) return
      at = record + FrameRec.Data
    } else if (length > ring.maxFrame) return
    else if (length > ring.headBytes) {
      bytes = this.gather(ring, pos, length)
      at = 0
    }
    if ((word & WITH_REFS) !== 0) {
      for (const ref of frameRefs(bytes, at, length)) {
        checkValueRecord(heap, ref)
        releaseRecord(heap, ref, heap.kindOf(ref))
      }
    }
    this.loanPool.dropInFlight(frameLoans(bytes, at, length))
    if (record !== 0) heap.freeRecord(record)
  }

  /**
   * The (entry, generation) pairs a position given up on carries in flight — the loans its
   * frame lists and the pool array a pooled frame is in — read while the slot is still
   * its dead sender's. Only a frame this lap's sender finished writing counts (claimSend
   * clears Length, writeSlots writes it last). A frame in a Frame record is not read (the
   * dead holder's sweep may free the record meanwhile), and the references any frame
   * lists are left to that sweep too (they are listed while the send waits). A frame that
   * cannot be read gives nothing: what it carried stays in flight (leaks), as before.
   */
  carriedInFlight(ring: Ring, slot: number, pos: number): number[] {
    const heap = this.heap
    const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
    const length = word & FRAME_LENGTH
    if (length === 0) return []
    try {
      if ((word & OUT_OF_LINE) === 0) {
        if (length > ring.maxFrame) return []
        return length > ring.headBytes ? frameLoans(this.gather(ring, pos, length), 0, length) : frameLoans(heap.u8, slot + RingSlot.Data, length)
      }
      const entry = heap.u32[(slot + RingSlot.Ref) >>> 2]!
      if (entry === 0 || entry > POOLED_FRAME_MAX) return []
      const generation = heap.u32[(slot + RingSlot.Generation) >>> 2]!
      const data = this.loanPool.inFlightFrame(entry - 1, generation, length)
      if (data < 0) return []
      return [...frameLoans(heap.u8, data, length), entry - 1, generation]
    } catch (err) {
      if (err instanceof ShmError && err.code === 'ERR_SHM_CORRUPT') return []
      throw err
    }
  }

  /**
   * A frame being read cannot be delivered: the loans it handed out go back to the pool,
   * and (given `bytes`: the frame, still intact) those it carries that are still in flight.
   */
  private giveBackLoans(bytes: Uint8Array | null, at: number, length: number): void {
    for (const view of this.receivedLoans) this.loanPool.release(view)
    this.receivedLoans.length = 0
    if (bytes === null) return
    try {
      this.loanPool.dropInFlight(frameLoans(bytes, at, length))
    } catch {
      // A damaged trailer: what it listed cannot be known (those loans stay in flight).
    }
  }
}

/** The Frame record a prepared frame is in; 0 when it is in the ring or in a loan pool array. */
function frameRecordOf(out: Outgoing): number {
  return out.pooled ? 0 : out.record
}

function checkValueRecord(heap: Heap, ref: number): void {
  heap.range(ref, Rec.Body) // before its kind is read
  const kind = heap.kindOf(heap.record(ref, heap.kindOf(ref)))
  if (kind < FIRST_REF_TAG || kind > LAST_VALUE_TAG || heap.u32[(ref + Rec.RefCount) >>> 2] === 0) {
    throw corrupt(`a queued message refers to record ${ref}, which is not a live value record`)
  }
}

/** A message taken but not deliverable: counted as dropped, and the error passed on. */
function undeliverable(ring: Ring, err: unknown): unknown {
  Atomics.add(ring.i32, (ring.ch + Chan.Dropped) >>> 2, 1)
  return err
}

function corruptSlot(ring: Ring, pos: number, why: string): ShmError {
  return corrupt(`channel ring ${ring.ch}, position ${pos >>> 0}: ${why}`)
}
