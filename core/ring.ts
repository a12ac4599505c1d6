// The lock-free ring of a channel (records.ts Chan): Dmitry Vyukov's bounded
// multi-producer multi-consumer queue, over the segment. Each slot has a sequence
// word; a sender claims a position by compare-and-swap on Enqueue, writes the slot,
// and publishes it by moving the slot's Seq to position + 1; a receiver claims by
// compare-and-swap on Dequeue, reads, and frees the slot for the next lap by moving
// Seq to position + capacity. One sender and one receiver touch different words
// except for the slot they hand over, and neither waits for the other unless the
// ring is full or empty. No turn: the channel record cannot be freed while this
// process holds a handle to it (core/channel.ts).
//
// A frame longer than one slot's room spans consecutive positions, claimed together
// (one compare-and-swap of Enqueue by their number) and received together; only the
// first (the head) is ever published, so the others never look like messages.
//
// A sender and a receiver write their pid into the slot they claim. A receiver that
// finds a position claimed but unpublished for STUCK_MS, by a process that no longer
// runs (killed mid-send), skips it; a sender that finds a slot claimed by a receiver
// that no longer runs and never freed it frees it. Both count it in Chan.Dropped.
// Publishing and freeing are compare-and-swaps, not stores, so that even a wrong
// verdict (a pid reused within the second) is detected by the one it was about: a
// sender that was skipped sends again, a receiver that was overtaken drops what it read.
import { corrupt } from './errors'
import { Chan, FRAME_LENGTH, OUT_OF_LINE, RingSlot, SPAN_DATA } from './records'

/** How long a half-done send or receive may hold up a channel before it is given up on. */
export const STUCK_MS = 1000

/** claimReceive found nothing to take. */
export const EMPTY = -1
/** claimReceive: a sender claimed the next position but has not published it yet. */
export const PENDING = -2
/** skipPending: the position was given up on and its slot freed. */
export const SKIPPED = -3
/** claimSend: every slot holds an unreceived message. */
export const FULL = -1
/** claimSend: the ring is full because a receiver claimed a slot and has not freed it yet. */
export const HELD = -2

export class Ring {
  readonly i32: Int32Array
  /** The same memory as bytes (scatter and gather copy chunks a word at a time through i32, the tail through this). */
  private readonly u8: Uint8Array
  /** This process's pid and this handle's identity (core/handles.ts), stamped into the slots it claims. */
  private readonly pid: number
  private readonly identity: number
  readonly ch: number
  readonly capacity: number
  readonly slotBytes: number
  private readonly mask: number
  /** Frame bytes the head slot holds, and each further slot of a span. */
  readonly headBytes: number
  readonly spanBytes: number
  /** The most slots one frame may span: half the ring. */
  readonly maxSpan: number
  private readonly enqueueWord: number
  private readonly dequeueWord: number
  /** The position the last claim took or stopped at. */
  pos = 0
  /** Slots the last claimReceive (or skipPending that found a message) took. */
  span = 1

  constructor(i32: Int32Array, ch: number, pid = 0, identity = 0) {
    this.i32 = i32
    this.u8 = new Uint8Array(i32.buffer, i32.byteOffset, i32.byteLength)
    this.pid = pid
    this.identity = identity
    this.ch = ch
    this.capacity = i32[(ch + Chan.Capacity) >>> 2]!
    this.slotBytes = i32[(ch + Chan.SlotBytes) >>> 2]!
    this.mask = this.capacity - 1
    this.headBytes = this.slotBytes - RingSlot.Data
    this.spanBytes = this.slotBytes - SPAN_DATA
    this.maxSpan = this.capacity >>> 1
    this.enqueueWord = (ch + Chan.Enqueue) >>> 2
    this.dequeueWord = (ch + Chan.Dequeue) >>> 2
  }

  /** Every slot free for the first lap. Called once, in the turn that makes the channel. */
  static format(i32: Int32Array, ch: number, capacity: number, slotBytes: number): void {
    i32[(ch + Chan.Capacity) >>> 2] = capacity
    i32[(ch + Chan.SlotBytes) >>> 2] = slotBytes
    i32[(ch + Chan.Enqueue) >>> 2] = 0
    i32[(ch + Chan.Dequeue) >>> 2] = 0
    for (let i = 0; i < capacity; i++) i32[(ch + Chan.Slots + i * slotBytes + RingSlot.Seq) >>> 2] = i
  }

  slotAt(pos: number): number {
    return this.ch + Chan.Slots + (pos & this.mask) * this.slotBytes
  }

  /** Slots a frame of `length` bytes takes (in the ring; 1 for a frame in a Frame record). */
  slotsFor(length: number): number {
    return length <= this.headBytes ? 1 : 1 + Math.ceil((length - this.headBytes) / this.spanBytes)
  }

  /** The largest frame the ring carries in its slots. */
  get maxFrame(): number {
    return this.headBytes + (this.maxSpan - 1) * this.spanBytes
  }

  /** Slots the published message at `slot` spans, from its Length word. */
  spanAt(slot: number): number {
    // A plain load: callers read it after the slot's Seq said published, and the sender wrote it before publishing.
    const word = this.i32[(slot + RingSlot.Length) >>> 2]! >>> 0
    if ((word & OUT_OF_LINE) !== 0) return 1
    const n = this.slotsFor(word & FRAME_LENGTH)
    return n > this.maxSpan ? 1 : n
  }

  /**
   * Messages that can be taken now: published and not yet claimed, up to the first one
   * still being written (which holds up those behind it; a span counts once).
   */
  size(): number {
    const i32 = this.i32
    const enqueue = Atomics.load(i32, this.enqueueWord)
    let pos = Atomics.load(i32, this.dequeueWord)
    let n = 0
    for (let seen = 0; ((enqueue - pos) | 0) > 0 && seen < this.capacity; ) {
      const slot = this.slotAt(pos)
      if (Atomics.load(i32, slot >>> 2) !== ((pos + 1) | 0)) break
      const step = this.spanAt(slot)
      n++
      pos = (pos + step) | 0
      seen += step
    }
    return n
  }

  /** What claimReceive would find, without claiming: the head slot when published, else EMPTY / PENDING (pos set). */
  peek(): number {
    const i32 = this.i32
    const pos = Atomics.load(i32, this.dequeueWord)
    const slot = this.slotAt(pos)
    this.pos = pos
    if (Atomics.load(i32, slot >>> 2) === ((pos + 1) | 0)) return slot
    return Atomics.load(i32, this.enqueueWord) === pos ? EMPTY : PENDING
  }

  /**
   * Claims the next `span` send positions: the head slot's offset (pos set), or FULL /
   * HELD (pos: the position that is not free yet).
   */
  claimSend(span = 1): number {
    const i32 = this.i32
    let pos = Atomics.load(i32, this.enqueueWord)
    retry: for (;;) {
      // Every slot of the span must be free for this lap; a later sender's claim (a
      // slot ahead of this lap) means Enqueue moved on: look again.
      for (let i = 0; i < span; i++) {
        const at = (pos + i) | 0
        const dif = (Atomics.load(i32, this.slotAt(at) >>> 2) - at) | 0
        if (dif > 0) {
          // Another sender claimed it and moved Enqueue on; unmoved, a stray write put it out of step.
          pos = this.moved(this.enqueueWord, pos, dif, 'send')
          continue retry
        }
        if (dif < 0) {
          this.pos = at
          // The slot still holds the previous lap's message: unreceived (full), or claimed
          // by a receiver that has not freed it (Dequeue moved past it).
          return ((Atomics.load(i32, this.dequeueWord) - ((at - this.capacity) | 0)) | 0) > 0 ? HELD : FULL
        }
      }
      const seen = Atomics.compareExchange(i32, this.enqueueWord, pos, (pos + span) | 0)
      if (seen !== pos) {
        pos = seen
        continue
      }
      this.pos = pos
      // Plain stores (an Atomics.store is a builtin call, ~20 ns each, on every send): the
      // publish compare-and-swap makes them visible with the message, and whoever reads
      // them before that (writerOf) does so only after the position stalled for STUCK_MS.
      for (let i = 0; i < span; i++) {
        const slot = this.slotAt((pos + i) | 0)
        // No Length until this send wrote its frame (writeSlots writes it last): a receiver
        // that gives up on the position knows whether the slot's frame is this lap's.
        i32[(slot + RingSlot.Length) >>> 2] = 0
        i32[(slot + RingSlot.WriterId) >>> 2] = this.identity
        i32[(slot + RingSlot.ReaderId) >>> 2] = 0
        i32[(slot + RingSlot.Writer) >>> 2] = this.pid
        i32[(slot + RingSlot.Reader) >>> 2] = 0
      }
      return this.slotAt(pos)
    }
  }

  /**
   * The position counter at `word` again, after the slot of `pos` was found a lap (or
   * more) ahead of it: only a claim of `pos` by someone else moves a slot there, and
   * that claim moved the counter first. Unmoved, the ring is damaged (ERR_SHM_CORRUPT):
   * looking again would loop forever.
   */
  private moved(word: number, pos: number, dif: number, what: string): number {
    const next = Atomics.load(this.i32, word)
    if (next === pos) throw corrupt(`channel ring ${this.ch}: the slot of ${what} position ${pos >>> 0} is ${dif} ahead of it (its ${what === 'send' ? 'Enqueue' : 'Dequeue'} or the slot was overwritten)`)
    return next
  }

  /** Publishes the slot claimed at `pos`. False: a receiver skipped it meanwhile (send it again). */
  publish(slot: number, pos: number): boolean {
    return Atomics.compareExchange(this.i32, slot >>> 2, pos, (pos + 1) | 0) === pos
  }

  /** Claims the oldest published message: its slot (pos set), or EMPTY / PENDING (pos: the position waited for). */
  claimReceive(): number {
    const i32 = this.i32
    let pos = Atomics.load(i32, this.dequeueWord)
    for (;;) {
      const slot = this.slotAt(pos)
      const dif = (Atomics.load(i32, slot >>> 2) - ((pos + 1) | 0)) | 0
      if (dif === 0) {
        // Published, so its Length is written and stays until the slot is received.
        const span = this.spanAt(slot)
        // The rest of a span stays claimed (never published) until it is received: anything
        // else there is a stray write (a Length that claims more slots than were sent).
        // (Another receiver may have taken it meanwhile and freed its slots: then Dequeue moved.)
        let intact = true
        for (let i = 1; i < span && intact; i++) intact = Atomics.load(i32, this.slotAt((pos + i) | 0) >>> 2) === ((pos + i) | 0)
        if (!intact) {
          pos = this.moved(this.dequeueWord, pos, 1, 'receive')
          continue
        }
        const seen = Atomics.compareExchange(i32, this.dequeueWord, pos, (pos + span) | 0)
        if (seen === pos) {
          this.pos = pos
          this.span = span
          // Plain stores, as in claimSend: read (readerOf) only after the slot stayed held for STUCK_MS.
          for (let i = 0; i < span; i++) {
            const at = this.slotAt((pos + i) | 0)
            i32[(at + RingSlot.ReaderId) >>> 2] = this.identity
            i32[(at + RingSlot.Reader) >>> 2] = this.pid
          }
          return slot
        }
        pos = seen
      } else if (dif < 0) {
        this.pos = pos
        return Atomics.load(i32, this.enqueueWord) === pos ? EMPTY : PENDING
      } else {
        // Another receiver claimed `pos` and moved Dequeue on; unmoved, a stray write put it out of step.
        pos = this.moved(this.dequeueWord, pos, dif, 'receive')
      }
    }
  }

  /**
   * Frees the `span` slots received at `pos` for the next lap, the head last. False: a
   * sender freed one meanwhile (what was read is dropped).
   */
  release(slot: number, pos: number, span = 1): boolean {
    const i32 = this.i32
    let ok = true
    for (let i = span - 1; i > 0; i--) {
      const at = (pos + i) | 0
      if (Atomics.compareExchange(i32, this.slotAt(at) >>> 2, at, (at + this.capacity) | 0) !== at) ok = false
    }
    return Atomics.compareExchange(i32, slot >>> 2, (pos + 1) | 0, (pos + this.capacity) | 0) === ((pos + 1) | 0) && ok
  }

  /**
   * The pid of the sender that claimed position `pos` (PENDING), or 0 when it died
   * before it could even write it (the slot still names the previous lap's receiver).
   */
  writerOf(pos: number): number {
    const slot = this.slotAt(pos)
    if (Atomics.load(this.i32, (slot + RingSlot.Reader) >>> 2) !== 0) return 0
    return Atomics.load(this.i32, (slot + RingSlot.Writer) >>> 2)
  }

  /** The pid of the receiver that claimed the slot send position `pos` waits for (HELD), or 0 when it died before writing it. */
  readerOf(pos: number): number {
    return Atomics.load(this.i32, (this.slotAt(pos) + RingSlot.Reader) >>> 2)
  }

  /** The identity of the handle that wrote writerOf(pos) (or readerOf) into the slot of `pos`: core/handles.ts. */
  writerIdOf(pos: number): number {
    return Atomics.load(this.i32, (this.slotAt(pos) + RingSlot.WriterId) >>> 2) >>> 0
  }

  readerIdOf(pos: number): number {
    return Atomics.load(this.i32, (this.slotAt(pos) + RingSlot.ReaderId) >>> 2) >>> 0
  }

  /**
   * Takes position `pos`, claimed by a sender that has not published it (call after it
   * stayed so for STUCK_MS and its sender is gone), to give up on it: false when another
   * receiver moved on first. Its slot stays as it is (its sender's, never to be written
   * again) until skipPending.
   */
  takePending(pos: number): boolean {
    return Atomics.compareExchange(this.i32, this.dequeueWord, pos, (pos + 1) | 0) === pos
  }

  /**
   * Gives up on position `pos`, taken by takePending. `count`: the first position of what
   * that sender claimed (one dropped message, however many slots it spans). Returns the
   * slot when the sender published after all (it is then claimed like any message: read
   * and release it), or SKIPPED when the position was skipped (counted as dropped) and
   * its slot freed for the next lap.
   */
  skipPending(pos: number, count: boolean): number {
    const i32 = this.i32
    const slot = this.slotAt(pos)
    if (Atomics.compareExchange(i32, slot >>> 2, pos, (pos + this.capacity) | 0) === pos) {
      if (count) Atomics.add(i32, (this.ch + Chan.Dropped) >>> 2, 1)
      return SKIPPED
    }
    // Published after all: a message of one slot (a span's head claims its whole span, and
    // this claimed only one position), else it cannot be read — give its slot up too.
    const span = this.spanAt(slot)
    if (span !== 1) {
      // (Only a wrong verdict — a pid reused within the second — gets here.) Its other
      // slots follow the head, still claimed: take them too, or no one ever will.
      if (Atomics.compareExchange(i32, this.dequeueWord, (pos + 1) | 0, (pos + span) | 0) === ((pos + 1) | 0)) {
        for (let i = 1; i < span; i++) Atomics.store(i32, this.slotAt((pos + i) | 0) >>> 2, (pos + i + this.capacity) | 0)
      }
      Atomics.store(i32, slot >>> 2, (pos + this.capacity) | 0)
      Atomics.add(i32, (this.ch + Chan.Dropped) >>> 2, 1)
      return SKIPPED
    }
    this.pos = pos
    this.span = 1
    return slot
  }

  /**
   * Frees the slot that send position `pos` needs, held by a receiver that claimed it a
   * lap ago and never freed it (call after claimSend said HELD for STUCK_MS and that
   * receiver is gone). In a turn when the slot may hold a Frame record or references. Returns
   * the Seq it replaced (the caller cleans up what the slot referenced: its message was
   * published when that is pos − capacity + 1), or undefined when it was freed meanwhile.
   */
  freeHeld(pos: number): number | undefined {
    const i32 = this.i32
    const slot = this.slotAt(pos)
    const seq = Atomics.load(i32, slot >>> 2)
    const prev = (pos - this.capacity) | 0
    if (seq !== prev && seq !== ((prev + 1) | 0)) return undefined
    if (((Atomics.load(i32, this.dequeueWord) - prev) | 0) <= 0) return undefined
    if (Atomics.compareExchange(i32, slot >>> 2, seq, pos) !== seq) return undefined
    // A published message lost (the head of one; the rest of its span is not counted again).
    if (seq === ((prev + 1) | 0)) Atomics.add(i32, (this.ch + Chan.Dropped) >>> 2, 1)
    return seq
  }

  /**
   * Copies a frame of `length` bytes into the slots of the span claimed at `pos`.
   * `words`: an Int32Array over `bytes` (4-aligned), when the caller keeps one.
   */
  scatter(pos: number, bytes: Uint8Array, length: number, words = wordsOver(bytes)): void {
    let from = Math.min(length, this.headBytes)
    copyChunk(bytes, words, 0, this.u8, this.i32, this.slotAt(pos) + RingSlot.Data, from)
    for (let i = 1; from < length; i++) {
      const n = Math.min(length - from, this.spanBytes)
      copyChunk(bytes, words, from, this.u8, this.i32, this.slotAt((pos + i) | 0) + SPAN_DATA, n)
      from += n
    }
  }

  /** Copies the frame of `length` bytes of the span at `pos` together into `out` (`words`: as in scatter). */
  gather(pos: number, length: number, out: Uint8Array, words = wordsOver(out)): void {
    let to = Math.min(length, this.headBytes)
    copyChunk(this.u8, this.i32, this.slotAt(pos) + RingSlot.Data, out, words, 0, to)
    for (let i = 1; to < length; i++) {
      const n = Math.min(length - to, this.spanBytes)
      copyChunk(this.u8, this.i32, this.slotAt((pos + i) | 0) + SPAN_DATA, out, words, to, n)
      to += n
    }
  }

  dropped(): number {
    return Atomics.load(this.i32, (this.ch + Chan.Dropped) >>> 2) >>> 0
  }
}

/** An Int32Array over the same bytes, when they start 4-aligned (undefined: copy them as bytes). */
function wordsOver(bytes: Uint8Array): Int32Array | undefined {
  return (bytes.byteOffset & 3) === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2) : undefined
}

/**
 * Copies `n` bytes from `from` at byte `at` to `to` at byte `into` (slot offsets and frame
 * chunks are multiples of 4): a word at a time through the Int32Arrays when both are
 * given, the last 0–3 bytes one by one. A frame spanning slots is ~100-byte chunks, for
 * which subarray + set (a view allocated per chunk) cost several times the copy itself.
 */
function copyChunk(from: Uint8Array, fromWords: Int32Array | undefined, at: number, to: Uint8Array, toWords: Int32Array | undefined, into: number, n: number): void {
  if (fromWords === undefined || toWords === undefined || ((at | into) & 3) !== 0) {
    to.set(from.subarray(at, at + n), into)
    return
  }
  const words = n >>> 2
  const a = at >>> 2
  const b = into >>> 2
  for (let k = 0; k < words; k++) toWords[b + k] = fromWords[a + k]!
  for (let k = words << 2; k < n; k++) to[into + k] = from[at + k]!
}
