// Flat message frames: a JavaScript value as one self-contained byte string, the
// format of copied messages (issue #14, "Messages v2: copied by default"). Unlike
// the records of encode.ts, a frame is not a live structure: it is written once,
// read once into an ordinary value and freed. What it must be is compact (at most
// v8.serialize's size), quick to write and read, and safe to read when damaged.
//
// Layout (little-endian):
//   u8 version (FRAME_VERSION) · u8 flags · value · [loans trailer] · [refs trailer]
// The refs trailer, present when flags has FLAG_REFS, is `count` u32 record references
// followed by `count` as a u32: whoever frees a frame lists its references from the
// last bytes (frameRefs) without parsing the value. The loans trailer (FLAG_LOANS),
// just before it, is `count` (u32 loan pool entry, u32 generation) pairs followed by
// `count` as a u32: the loans (core/loan_pool.ts) the message carries (frameLoans).
//
// A value is a one-byte tag and its payload:
//   0x80–0xff            the integer tag − 0x80 (0…127)
//   0x40–0x7f            a Latin-1 string of tag − 0x40 (0…63) chars, one byte each
//   0x00–0x3f            the kinds of enum T below
// A view over the segment itself that is not a record of it (a subarray of shm.bytes,
// a TypedArray made by hand over shm.buffer) travels as SegmentView: its place in the
// segment, not its bytes; the reader maps the same bytes again (zero-copy).
// Lengths and counts are unsigned LEB128 varints. Object keys (and class names) have
// no tag: a varint h whose low two bits say Latin-1 / UTF-8 / UTF-16 / "key seen
// before" and whose high bits are the length or the key's index, so a repeated key
// (an array of similar objects) costs one or two bytes and is decoded once.
// Every object gets an id in the order its tag is first met (writer) and created
// (reader); BackRef names an id, which carries shared references and cycles.
// TypedArray payloads are aligned to their element size relative to the frame's
// start, so a reader could map them in place when the frame itself is 8-aligned.
//
// No Node import: renderers load this file. core/utf8.ts decodes SharedArrayBuffer views.
import { corrupt, ShmError } from '../errors'
import { BinaryKind } from '../records'
import { BINARY_VIEWS, binaryKindOf, isSmallTypedArray, type SmallTypedArray } from './binary_kinds'
import { formatPath, mergeEqualKeys, unsupportedAt } from './encode'
import { hashKey, isTuple, MAX_TUPLE_DEPTH, timeOf } from './hash'
import { classNameOf, prototypeOfClass, structOf, structTypeOf, v8Deserialize, v8Serialize } from './registry'
import { decodeUtf8 } from '../utf8'

export const FRAME_VERSION = 1
const FLAG_REFS = 1
const FLAG_LOANS = 2

/**
 * Containers nested deeper than this are refused: ERR_UNSUPPORTED_TYPE when writing,
 * ERR_SHM_CORRUPT when reading. Both walks recurse, and a forged frame of 2 bytes per
 * level must not overflow the reader's stack. Measured on Node 20 (default stack,
 * cold code): the walks overflow at ~1,300–2,600 levels, and v8.serialize and
 * structuredClone overflow before 10,000 too; 1,000 leaves the caller's own stack
 * room. A stack that runs out anyway (a caller already deep) is reported the same way.
 */
export const MAX_FRAME_DEPTH = 1000

/** Payloads at least this large are not copied into the scratch buffer: writeTo copies them once, from the source. */
const DEFER_BYTES = 4096

const enum T {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Hole = 4, // an array element that does not exist
  PosInt = 5, // varint, integers 128 … 2^53 − 1
  NegInt = 6, // varint of −n, integers −(2^53 − 1) … −1
  Float64 = 7, // 8 bytes (also −0, NaN, ±Infinity)
  BigPos = 8, // varint byte length, magnitude little-endian
  BigNeg = 9,
  Ascii = 10, // varint length, bytes < 0x80
  Latin1 = 11, // varint length, bytes
  Utf8 = 12, // varint byte length, UTF-8
  Utf16 = 13, // varint code units, 2 bytes each (strings with lone surrogates)
  Date = 14, // 8-byte time value (NaN: an invalid Date)
  RegExp = 15, // source string, flags string
  Array = 16, // varint length, elements (Hole for holes)
  Object = 17, // varint count, (key, value) pairs
  NullObject = 18, // the same, with a null prototype
  Map = 19, // varint count, (key, value) pairs; keys as readKey reads them
  Set = 20, // varint count, keys
  Error = 21, // varint count, (key, value) pairs: name, message, stack, cause, own fields
  Instance = 22, // class name (a key), varint count, (key, value) pairs
  Binary = 23, // u8 BinaryKind, varint byte length, padding to the element size, bytes
  Struct = 24, // u32 fingerprint, varint byte length, padding to 8, bytes
  Serialized = 25, // varint length, v8.serialize bytes (enableV8Fallback)
  Ref = 26, // varint index into the refs trailer: a value that lives in the segment
  BackRef = 27, // varint object id
  Tuple = 28, // Map/Set keys only: varint length, keys; read as a frozen array
  KeyDate = 29, // Map/Set keys only: a Date without an object id (keys are values)
  SegmentView = 30, // u8 BinaryKind, varint byte offset in the segment, varint byte length: a view of the segment's own bytes
  Loan = 31, // varint index into the loans trailer: a loan of the segment's loan pool, passed on by reference
}
const SHORT_STRING = 0x40
const SMALL_INT = 0x80

const enum KeyKind {
  Latin1 = 0,
  Utf8 = 1,
  Utf16 = 2,
  Seen = 3,
}

/** What a ref hook returns for a TypedArray, DataView or Buffer over the segment's bytes that is no record: its byte offset in the segment. */
export interface FrameSegmentView {
  segmentView: number
}
/**
 * Returns the record reference of a value that already lives in the segment, a
 * FrameSegmentView for a view of the segment's bytes that is not a record, or
 * undefined to copy the value.
 */
export type FrameRefHook = (value: object) => number | FrameSegmentView | FrameLoan | undefined
/** Turns a record reference of the refs trailer back into a value (a mapped view). */
export type FrameRefResolver = (ref: number) => unknown
/** What a ref hook returns for a loan of the segment's loan pool: its entry and the generation it was lent in. */
export interface FrameLoan {
  loan: number
  generation: number
}
/** Turns a loan of the loans trailer back into a value (the loaned bytes, now the reader's). */
export type FrameLoanResolver = (entry: number, generation: number) => unknown

/** Copies `source` into `target` (the same byte length); large payloads only. */
export type BulkCopy = (target: Uint8Array, source: Uint8Array) => void

type Step = string | number

/**
 * Thrown inside the writer for an unsupported value: each container it passes on
 * the way out adds its step, so the path costs nothing while nothing goes wrong.
 */
class Unsupported {
  readonly steps: Step[] = []
  constructor(readonly make: (path: string) => ShmError) {}
}

function unsupportedValue(value: unknown, hint?: string): Unsupported {
  return new Unsupported((path) => unsupportedAt(path, value, hint))
}

function addStep(err: unknown, step: Step): unknown {
  if (err instanceof Unsupported) err.steps.unshift(step)
  return err
}

const textEncoder = new TextEncoder()
const LINEAR_SEEN = 64
/** Keys of a frame looked for by scanning before the key Map is used (FrameEncoder.keyList). */
const LINEAR_KEYS = 16
/** Frames up to this long are copied out of the scratch word by word (copySmall). */
const SMALL_COPY_BYTES = 256
const MAX_KEPT_SCRATCH = 4 << 20
const KEY_MEMORY = 4096
const MAX_SAFE = 9007199254740991
/** V8 caps BigInts at 2^30 bits. */
const MAX_BIGINT_BYTES = 2 ** 27

interface Deferred {
  /** Scratch position the payload goes before. */
  at: number
  bytes: Uint8Array
}

/**
 * Writes frames into a growable scratch buffer in one walk; `writeTo` then copies the
 * frame once to where it belongs (a ring slot, a segment allocation). One walk and a
 * copy beat a measuring walk plus a writing walk: the copy is a memcpy, the walk is
 * the cost (see bench/frames.ts). Large binary payloads are not copied into the
 * scratch at all: writeTo copies them straight from the source.
 *
 * The frame stays valid until the next `encode`; `writeTo` must follow `encode`
 * before the value changes (large payloads are read at writeTo).
 */
export class FrameEncoder {
  private buf: Uint8Array
  private view: DataView
  /** The scratch's ArrayBuffer (reading `buffer` is a runtime call), as words (copySmall), and the last target of copySmall (a ring's segment bytes, mostly) as words. */
  private scratchBuffer: ArrayBuffer
  private words: Int32Array
  private target: Uint8Array | undefined
  private targetWords: Int32Array | undefined
  /** The last target's byteOffset and length, read once: on a view of the segment (a SharedArrayBuffer) V8 reads them through a generic property load, ~2% of a small send each. */
  private targetOffset = 0
  private targetLength = 0
  private pos = 0
  /** Bytes of deferred payloads before `pos`: frame position = pos + shift. */
  private shift = 0
  private deferred: Deferred[] = []
  /**
   * Objects met so far, id = index: scanned linearly while few, then a Map. A Map
   * costs ~100 ns per fresh object on Node 20 (its identity hash is made on first
   * use; messages are mostly fresh objects) and regrows after every clear; comparing
   * pointers is ~1 ns, so up to LINEAR_SEEN objects the scan is cheaper.
   */
  private readonly seenList: Array<object | null> = new Array<object | null>(LINEAR_SEEN).fill(null)
  private seenMap: Map<object, number> | undefined
  private nextId = 0
  /**
   * Key → keyBase + its index in the frame's key table, kept across frames (an entry
   * below keyBase is from an earlier frame): clearing the Map per frame made it regrow,
   * its cost in a profile of the 3 KB document. Only short keys are kept, and it is
   * cleared past KEY_MEMORY entries, so what it holds on to stays small.
   */
  private readonly keys = new Map<string, number>()
  private keyBase = 0
  private keyCount = 0
  /**
   * The frame's first LINEAR_KEYS keys, scanned while the frame has no more: a message of
   * a few fields then costs no Map lookups and stores (each new key of a frame was a get
   * and a set: ~6% of a small object's send in a profile). Past them the Map takes over,
   * seeded with the short ones (scanning first on every key of a large frame cost more).
   */
  private readonly keyList: string[] = new Array<string>(LINEAR_KEYS).fill('')
  private refList: number[] = []
  /** (entry, generation) pairs of the loans the frame carries. */
  private loanList: number[] = []
  private hook: FrameRefHook | undefined
  private depth = 0
  private busy = false
  private frameLength = 0

  constructor(initialBytes = 1024) {
    this.buf = new Uint8Array(initialBytes)
    this.scratchBuffer = this.buf.buffer as ArrayBuffer
    this.view = new DataView(this.scratchBuffer)
    this.words = new Int32Array(this.scratchBuffer, 0, initialBytes >>> 2)
  }

  /** Encodes `value` and returns the frame's byte length. Throws ERR_UNSUPPORTED_TYPE naming the path. */
  encode(value: unknown, refs?: FrameRefHook): number {
    if (this.busy) throw new ShmError('ERR_INVALID_ARGUMENT', 'FrameEncoder.encode was called again from inside its own ref hook; use another FrameEncoder')
    this.busy = true
    if (this.buf.length > MAX_KEPT_SCRATCH) {
      // One huge message must not pin its scratch for the encoder's lifetime.
      this.buf = new Uint8Array(1024)
      this.scratchBuffer = this.buf.buffer as ArrayBuffer
      this.view = new DataView(this.scratchBuffer)
      this.words = new Int32Array(this.scratchBuffer)
    }
    this.pos = 0
    this.shift = 0
    // (Setting an array's length is a runtime call even when it is 0 already: per message, that shows.)
    if (this.deferred.length !== 0) this.deferred.length = 0
    if (this.refList.length !== 0) this.refList = []
    if (this.loanList.length !== 0) this.loanList = []
    this.nextId = 0
    this.depth = 0
    this.hook = refs
    this.frameLength = 0
    try {
      this.ensure(2)
      this.buf[0] = FRAME_VERSION
      this.buf[1] = 0
      this.pos = 2
      this.value(value)
      const loans = this.loanList.length
      if (loans > 0) {
        this.buf[1] |= FLAG_LOANS
        this.ensure(4 * loans + 4)
        for (let i = 0; i < loans; i++) this.u32(this.loanList[i]!)
        this.u32(loans >>> 1)
      }
      const n = this.refList.length
      if (n > 0) {
        this.buf[1] |= FLAG_REFS
        this.ensure(4 * n + 4)
        for (let i = 0; i < n; i++) this.u32(this.refList[i]!)
        this.u32(n)
      }
      this.frameLength = this.pos + this.shift
      return this.frameLength
    } catch (err) {
      this.deferred.length = 0
      if (err instanceof Unsupported) throw err.make(formatPath(err.steps))
      if (err instanceof RangeError && /call stack/i.test(err.message)) {
        throw new ShmError('ERR_UNSUPPORTED_TYPE', `value is nested too deeply to be copied into a message (the stack ran out); nest it less, or put it in the segment with tx.put and send that`)
      }
      throw err
    } finally {
      // Nothing of the value stays reachable from the encoder (but short key strings).
      for (let i = Math.min(this.nextId, LINEAR_SEEN) - 1; i >= 0; i--) this.seenList[i] = null
      this.seenMap = undefined
      for (let i = Math.min(this.keyCount, LINEAR_KEYS) - 1; i >= 0; i--) this.keyList[i] = ''
      this.keyBase += this.keyCount
      this.keyCount = 0
      if (this.keys.size > KEY_MEMORY) this.keys.clear()
      this.hook = undefined
      this.busy = false
    }
  }

  /** Byte length of the last frame. */
  get length(): number {
    return this.frameLength
  }

  /** Record references the last frame carries (what its trailer lists). */
  refs(): readonly number[] {
    return this.refList
  }

  /** (entry, generation) pairs of the loans the last frame carries (what its loans trailer lists). */
  loans(): readonly number[] {
    return this.loanList
  }

  /**
   * Copies the last frame to `target` at `offset` (keep `offset` 8-aligned so TypedArray
   * payloads stay aligned). `bulk`, when given, copies the large payloads (a native memcpy
   * where V8's set into a SharedArrayBuffer is ~3× slower).
   */
  writeTo(target: Uint8Array, offset: number, bulk?: BulkCopy): void {
    if (target !== this.target) this.adopt(target)
    // (A length-tracking target may have grown since it was adopted: its length is read again before refusing.)
    if (offset < 0 || (offset + this.frameLength > this.targetLength && offset + this.frameLength > target.length)) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `writeTo: ${this.frameLength} bytes do not fit at offset ${offset} of ${target.length}`)
    }
    let from = 0
    let to = offset
    for (const d of this.deferred) {
      target.set(this.buf.subarray(from, d.at), to)
      to += d.at - from
      if (bulk !== undefined) bulk(target.subarray(to, to + d.bytes.byteLength), d.bytes)
      else target.set(d.bytes, to)
      to += d.bytes.byteLength
      from = d.at
    }
    if (this.pos - from <= SMALL_COPY_BYTES) this.copySmall(target, to, from, this.pos)
    else target.set(this.buf.subarray(from, this.pos), to)
  }

  /**
   * Copies scratch bytes [from, end) to `target` at `to` word by word where both sides
   * are 4-aligned: for a message frame of a few dozen bytes, subarray + set (into a
   * SharedArrayBuffer, V8's slow copy for shared memory) cost ~5× as much. Nothing past
   * `end` is written (a Frame record's bytes may end there).
   */
  private copySmall(target: Uint8Array, to: number, from: number, end: number): void {
    const src = this.buf
    let i = from
    let j = to
    // (writeTo adopted `target`: targetOffset is its byteOffset.)
    if (((this.targetOffset + j) & 3) === 0 && (i & 3) === 0) {
      let w = (this.targetOffset + j) >>> 2
      // Made again if the buffer grew (a length-tracking view of a growable buffer).
      if (this.targetWords === undefined || w + ((end - i) >>> 2) > this.targetWords.length) {
        this.targetWords = new Int32Array(target.buffer, 0, target.buffer.byteLength >>> 2)
      }
      const words = this.targetWords
      const scratch = this.words
      for (const stop = end - 3; i < stop; i += 4, j += 4) words[w++] = scratch[i >>> 2]!
    }
    for (; i < end; i++, j++) target[j] = src[i]!
  }

  /**
   * The last frame where it lies, at the start of the encoder's scratch buffer, when
   * nothing is deferred (undefined otherwise: writeTo puts it together). Valid until the
   * next encode; scratchWords is the same buffer as 32-bit words.
   */
  inPlace(): Uint8Array | undefined {
    return this.deferred.length === 0 ? this.buf : undefined
  }

  /** The scratch buffer as 32-bit words (see inPlace). */
  scratchWords(): Int32Array {
    return this.words
  }

  /** The last frame as a fresh Uint8Array of its own. */
  toBytes(): Uint8Array {
    // One copy of the scratch when nothing is deferred (copySmall into a fresh small array
    // would read its `buffer`, moving it off V8's heap).
    if (this.deferred.length === 0) return this.buf.slice(0, this.pos)
    const out = new Uint8Array(this.frameLength)
    this.writeTo(out, 0)
    return out
  }

  /**
   * Makes `target` the one writeTo writes into: its byteOffset and length; copySmall makes
   * the word view of its whole buffer when it first needs it (keyed by the array, not its
   * buffer: reading `buffer` is a call into the runtime, and moves a small on-heap array
   * off V8's heap).
   */
  private adopt(target: Uint8Array): void {
    this.target = target
    this.targetOffset = target.byteOffset
    this.targetLength = target.length
    this.targetWords = undefined
  }

  /** Forgets the last target of writeTo (the one-call forms' shared encoder must not keep a caller's array alive). */
  forgetTarget(): void {
    this.target = undefined
    this.targetWords = undefined
  }

  // ---- writing primitives

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.scratchBuffer = next.buffer
    this.view = new DataView(this.scratchBuffer)
    this.words = new Int32Array(this.scratchBuffer, 0, next.length >>> 2)
  }

  /** Callers ensure 5 bytes. */
  private varint(n: number): void {
    const buf = this.buf
    let pos = this.pos
    while (n > 127) {
      buf[pos++] = (n & 127) | 128
      n >>>= 7
    }
    buf[pos++] = n
    this.pos = pos
  }

  /** Integers up to 2^53 (arithmetic: bit operators stop at 32 bits). Callers ensure 8 bytes. */
  private bigVarint(n: number): void {
    while (n > 0x7fffffff) {
      this.buf[this.pos++] = (n % 128) | 128
      n = Math.floor(n / 128)
    }
    this.varint(n)
  }

  private u32(n: number): void {
    this.view.setUint32(this.pos, n, true)
    this.pos += 4
  }

  private f64(n: number): void {
    this.view.setFloat64(this.pos, n, true)
    this.pos += 8
  }

  private framePos(): number {
    return this.pos + this.shift
  }

  // ---- values

  private value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        return this.number(v)
      case 'string':
        return this.string(v)
      case 'boolean':
        this.ensure(1)
        this.buf[this.pos++] = v ? T.True : T.False
        return
      case 'undefined':
        this.ensure(1)
        this.buf[this.pos++] = T.Undefined
        return
      case 'object':
        if (v === null) {
          this.ensure(1)
          this.buf[this.pos++] = T.Null
          return
        }
        return this.object(v)
      case 'bigint':
        return this.bigint(v)
      default:
        throw unsupportedValue(v)
    }
  }

  private number(v: number): void {
    this.ensure(10)
    if (Number.isInteger(v) && v <= MAX_SAFE && v >= -MAX_SAFE) {
      if (v >= 0) {
        if (v < 128) {
          if (v === 0 && 1 / v < 0) {
            this.buf[this.pos++] = T.Float64
            this.f64(v)
            return
          }
          this.buf[this.pos++] = SMALL_INT | v
          return
        }
        this.buf[this.pos++] = T.PosInt
        if (v <= 0x7fffffff) this.varint(v)
        else this.bigVarint(v)
        return
      }
      this.buf[this.pos++] = T.NegInt
      if (v >= -0x7fffffff) this.varint(-v)
      else this.bigVarint(-v)
      return
    }
    this.buf[this.pos++] = T.Float64
    this.f64(v)
  }

  private string(s: string): void {
    const n = s.length
    if (n < 32) {
      // Latin-1 in place, the tag holding the length: most keys and short values.
      // Per char this loop costs ~5 ns, TextEncoder.encodeInto ~160 ns a call
      // whatever the length (Node 20): the loop wins below ~32 chars.
      this.ensure(1 + n)
      const buf = this.buf
      const start = this.pos
      let pos = start + 1
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c > 0xff) break
        buf[pos++] = c
      }
      if (i === n) {
        buf[start] = SHORT_STRING | n
        this.pos = pos
        return
      }
    }
    this.longString(s)
  }

  private longString(s: string): void {
    const n = s.length
    // Room for tag, a varint of the largest byte length (3 per unit) and the bytes.
    this.ensure(6 + 3 * n)
    const start = this.pos
    // Laid out for ASCII, the likely case: a short string's length is in its tag.
    const lenBytes = n < 64 ? 0 : varintSize(n)
    const data = start + 1 + lenBytes
    const { written } = textEncoder.encodeInto(s, this.buf.subarray(data, data + 3 * n))
    if (written === n) {
      // Only ASCII is one byte per unit in UTF-8.
      if (n < 64) this.buf[start] = SHORT_STRING | n
      else {
        this.buf[start] = T.Ascii
        this.pos = start + 1
        this.varint(n)
      }
      this.pos = data + n
      return
    }
    if (!s.isWellFormed()) {
      // TextEncoder wrote U+FFFD for the lone surrogates: UTF-16 keeps them.
      this.pos = start
      this.buf[this.pos++] = T.Utf16
      this.utf16(s)
      return
    }
    // The room ensured above holds the longer varint too (written ≤ 3n).
    const moved = varintSize(written) - lenBytes
    if (moved !== 0) this.buf.copyWithin(data + moved, data, data + written)
    this.buf[start] = T.Utf8
    this.pos = start + 1
    this.varint(written)
    this.pos += written
  }

  /** Varint unit count and the units; callers ensure 5 + 2·length bytes. */
  private utf16(s: string): void {
    this.varint(s.length)
    const buf = this.buf
    let pos = this.pos
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      buf[pos++] = c & 0xff
      buf[pos++] = c >>> 8
    }
    this.pos = pos
  }

  /** An object key or class name: no tag, a repeated one by index. */
  private key(s: string): void {
    const count = this.keyCount
    const list = this.keyList
    if (count <= LINEAR_KEYS) {
      for (let i = 0; i < count; i++) {
        if (list[i] === s) {
          this.ensure(5)
          this.varint(i * 4 + KeyKind.Seen)
          return
        }
      }
    } else {
      const index = this.keys.get(s)
      if (index !== undefined && index >= this.keyBase) {
        this.ensure(5)
        this.varint((index - this.keyBase) * 4 + KeyKind.Seen)
        return
      }
    }
    // Every new key takes the next index (the reader numbers them all alike); past the
    // list, only short ones are looked for again.
    const n = s.length
    if (count < LINEAR_KEYS) list[count] = s
    else {
      // Past the list the Map takes over, with the list's keys (short ones only, as always:
      // a long key is written out again rather than kept across frames).
      if (count === LINEAR_KEYS) for (let i = 0; i < LINEAR_KEYS; i++) if (list[i]!.length <= KEY_CACHE_MAX * 2) this.keys.set(list[i]!, this.keyBase + i)
      if (n <= KEY_CACHE_MAX * 2) this.keys.set(s, this.keyBase + count)
    }
    this.keyCount++
    this.ensure(5 + n)
    const start = this.pos
    this.varint(n * 4 + KeyKind.Latin1)
    const buf = this.buf
    let pos = this.pos
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c > 0xff) {
        this.pos = start
        return this.wideKey(s)
      }
      buf[pos++] = c
    }
    this.pos = pos
  }

  private wideKey(s: string): void {
    const n = s.length
    this.ensure(5 + 3 * n)
    if (!s.isWellFormed()) {
      this.varint(n * 4 + KeyKind.Utf16)
      this.ensure(2 * n)
      const buf = this.buf
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i)
        buf[this.pos++] = c & 0xff
        buf[this.pos++] = c >>> 8
      }
      return
    }
    const bytes = textEncoder.encode(s)
    this.varint(bytes.length * 4 + KeyKind.Utf8)
    this.ensure(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  private bigint(v: bigint): void {
    const negative = v < 0n
    let hex = (negative ? -v : v).toString(16)
    if (hex.length & 1) hex = '0' + hex
    const n = hex === '00' ? 0 : hex.length >>> 1
    this.ensure(6 + n)
    this.buf[this.pos++] = negative ? T.BigNeg : T.BigPos
    this.varint(n)
    // Little-endian: the last hex pair is the least significant byte.
    for (let i = 0; i < n; i++) {
      const p = hex.length - 2 * (i + 1)
      this.buf[this.pos++] = parseInt(hex.slice(p, p + 2), 16)
    }
  }

  private idOf(v: object): number | undefined {
    if (this.seenMap !== undefined) return this.seenMap.get(v)
    const list = this.seenList
    const n = this.nextId
    for (let i = 0; i < n; i++) if (list[i] === v) return i
    return undefined
  }

  private remember(v: object): void {
    const id = this.nextId++
    if (this.seenMap !== undefined) this.seenMap.set(v, id)
    else if (id < LINEAR_SEEN) this.seenList[id] = v
    else {
      const map = new Map<object, number>()
      for (let i = 0; i < id; i++) map.set(this.seenList[i]!, i)
      map.set(v, id)
      this.seenMap = map
    }
  }

  private object(v: object): void {
    const id = this.idOf(v)
    if (id !== undefined) {
      this.ensure(6)
      this.buf[this.pos++] = T.BackRef
      this.varint(id)
      return
    }
    if (this.hook !== undefined) {
      const ref = this.hook(v)
      if (typeof ref === 'number') {
        this.remember(v)
        this.ensure(6)
        this.buf[this.pos++] = T.Ref
        this.varint(this.refList.length)
        this.refList.push(ref >>> 0)
        return
      }
      if (ref !== undefined) {
        if ('loan' in ref) {
          this.remember(v)
          this.ensure(6)
          this.buf[this.pos++] = T.Loan
          this.varint(this.loanList.length >>> 1)
          this.loanList.push(ref.loan >>> 0, ref.generation >>> 0)
          return
        }
        return this.segmentView(v, ref.segmentView)
      }
    }
    if (++this.depth > MAX_FRAME_DEPTH) {
      throw new Unsupported(() => new ShmError('ERR_UNSUPPORTED_TYPE', `value is nested more than ${MAX_FRAME_DEPTH} levels deep, more than a message carries; nest it less, or put it in the segment with tx.put and send that`))
    }
    this.remember(v)
    if (Array.isArray(v)) this.array(v)
    // Before getPrototypeOf, which V8 runs as a runtime call for a TypedArray.
    else if (ArrayBuffer.isView(v)) this.binary(v)
    else {
      const proto = Object.getPrototypeOf(v) as object | null
      if (proto === Object.prototype || proto === null) this.plain(v, proto === null ? T.NullObject : T.Object)
      else this.special(v)
    }
    this.depth--
  }

  private array(v: unknown[]): void {
    const n = v.length
    this.ensure(6)
    this.buf[this.pos++] = T.Array
    this.varint(n)
    let i = 0
    try {
      for (; i < n; i++) {
        const x = v[i]
        if (x === undefined && !(i in v)) {
          this.ensure(1)
          this.buf[this.pos++] = T.Hole
        } else this.value(x)
      }
    } catch (err) {
      throw addStep(err, i)
    }
  }

  private plain(v: object, tag: T): void {
    const keys = Object.keys(v)
    const n = keys.length
    this.ensure(6)
    this.buf[this.pos++] = tag
    this.varint(n)
    this.fields(v, keys)
  }

  private fields(v: object, keys: readonly string[]): void {
    let k = ''
    try {
      for (let i = 0; i < keys.length; i++) {
        k = keys[i]!
        this.key(k)
        this.value((v as Record<string, unknown>)[k])
      }
    } catch (err) {
      throw addStep(err, k)
    }
  }

  private special(v: object): void {
    if (v instanceof Date) {
      this.ensure(9)
      this.buf[this.pos++] = T.Date
      this.f64(timeOf(v) ?? NaN)
      return
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return this.binary(v)
    if (v instanceof Map) return this.table(v, T.Map, v.size, v.entries())
    if (v instanceof Set) return this.table(v, T.Set, v.size, v.entries())
    if (v instanceof RegExp) {
      this.ensure(1)
      this.buf[this.pos++] = T.RegExp
      this.string(v.source)
      this.string(v.flags)
      return
    }
    if (v instanceof Error) return this.error(v)
    const struct = structOf(v)
    if (struct !== undefined) {
      const n = struct.bytes.byteLength
      this.ensure(1 + 4 + 5 + 7 + n)
      this.buf[this.pos++] = T.Struct
      this.u32(struct.fingerprint)
      this.varint(n)
      this.pad(8)
      this.buf.set(struct.bytes, this.pos)
      this.pos += n
      return
    }
    const className = classNameOf(v)
    if (className !== undefined) {
      this.ensure(1)
      this.buf[this.pos++] = T.Instance
      this.key(className)
      const keys = Object.keys(v)
      this.ensure(5)
      this.varint(keys.length)
      return this.fields(v, keys)
    }
    const serialized = v8Serialize(v)
    if (serialized !== undefined) {
      this.ensure(6 + serialized.byteLength)
      this.buf[this.pos++] = T.Serialized
      this.varint(serialized.byteLength)
      this.buf.set(serialized, this.pos)
      this.pos += serialized.byteLength
      return
    }
    const name = (v as { constructor?: { name?: string } }).constructor?.name ?? 'TheClass'
    throw unsupportedValue(v, `: register its class with registerClass(${name}) in every process, or convert it to a plain object`)
  }

  /**
   * A small TypedArray (isSmallTypedArray: V8 may keep it on its own heap, and reading its
   * `buffer` would move it out) copied as its own kind into the scratch, when the scratch
   * position is aligned for its elements (false: nothing written).
   */
  private smallTyped(v: SmallTypedArray, kind: BinaryKind): boolean {
    const [Ctor, width] = BINARY_VIEWS[kind]!
    const n = v.byteLength
    this.ensure(1 + 1 + 5 + 7 + n)
    const start = this.pos
    this.buf[this.pos++] = T.Binary
    this.buf[this.pos++] = kind
    this.varint(n)
    this.pad(width)
    if (this.pos % width !== 0) {
      this.pos = start
      return false
    }
    ;(new Ctor(this.scratchBuffer, this.pos, n / width) as SmallTypedArray).set(v)
    this.pos += n
    return true
  }

  /** Zero bytes up to the next multiple of `align` of the frame position; callers ensure align − 1 bytes. */
  private pad(align: number): void {
    let n = -this.framePos() & (align - 1)
    while (n-- > 0) this.buf[this.pos++] = 0
  }

  private binary(v: ArrayBufferView | ArrayBuffer): void {
    const kind = binaryKindOf(v)
    if (kind === undefined) throw unsupportedValue(v)
    if (isSmallTypedArray(v, kind) && this.smallTyped(v, kind)) return
    const bytes = kind === BinaryKind.Uint8 ? (v as Uint8Array) : v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    const n = bytes.byteLength
    const width = BINARY_VIEWS[kind]![1]
    const big = n >= DEFER_BYTES
    this.ensure(1 + 1 + 5 + 7 + (big ? 0 : n))
    this.buf[this.pos++] = T.Binary
    this.buf[this.pos++] = kind
    this.varint(n)
    this.pad(width)
    if (big) {
      this.deferred.push({ at: this.pos, bytes })
      this.shift += n
    } else {
      this.buf.set(bytes, this.pos)
      this.pos += n
    }
  }

  /** A view of the segment's own bytes: its kind and place, not its bytes. */
  private segmentView(v: object, offset: number): void {
    const kind = ArrayBuffer.isView(v) ? binaryKindOf(v) : undefined
    if (kind === undefined || kind === BinaryKind.ArrayBuffer) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `a frame ref hook returned a segment view for ${Object.prototype.toString.call(v)}, which is no TypedArray, DataView or Buffer`)
    }
    const n = (v as ArrayBufferView).byteLength
    if (!Number.isInteger(offset) || offset < 0 || offset + n > 0xffffffff) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `a frame ref hook returned segment offset ${offset} for a view of ${n} bytes`)
    }
    this.remember(v)
    this.ensure(12)
    this.buf[this.pos++] = T.SegmentView
    this.buf[this.pos++] = kind
    this.varint(offset)
    this.varint(n)
  }

  private error(e: Error): void {
    // As encode.ts stores them: name, message and stack (own or inherited), cause when present, own enumerable fields.
    const entries: Array<[string, unknown]> = [['name', e.name], ['message', e.message]]
    if (e.stack !== undefined) entries.push(['stack', e.stack])
    if ('cause' in e) entries.push(['cause', e.cause])
    for (const k of Object.keys(e)) if (k !== 'cause') entries.push([k, (e as unknown as Record<string, unknown>)[k]])
    this.ensure(6)
    this.buf[this.pos++] = T.Error
    this.varint(entries.length)
    let k = ''
    try {
      for (const [key, val] of entries) {
        k = key
        this.key(key)
        this.value(val)
      }
    } catch (err) {
      throw addStep(err, k)
    }
  }

  private table(v: object, tag: T.Map | T.Set, size: number, entries: IterableIterator<[unknown, unknown]>): void {
    let list: Array<[unknown, unknown]> = []
    let objectKeys = false
    for (const e of entries) {
      list.push(e)
      if (typeof e[0] === 'object' && e[0] !== null) objectKeys = true
    }
    if (objectKeys || list.length !== size) {
      // Dates and tuples are keys by value, as the segment's tables hold them: equal ones merge.
      const hashes: number[] = []
      for (let i = 0; i < list.length; i++) {
        const key = list[i]![0]
        try {
          hashes.push(hashKey(key, () => '\u0000'))
        } catch (err) {
          const message = (err as Error).message
          throw addStep(new Unsupported((path) => new ShmError('ERR_UNSUPPORTED_TYPE', message.replace('\u0000', path))), `<key ${String(key)}>`)
        }
      }
      list = mergeEqualKeys(list, hashes)[0]
    }
    this.ensure(6)
    this.buf[this.pos++] = tag
    this.varint(list.length)
    let step: Step = 0
    try {
      for (let i = 0; i < list.length; i++) {
        const [key, val] = list[i]!
        step = `<key ${String(key)}>`
        this.mapKey(key, 0)
        if (tag === T.Map) {
          step = typeof key === 'string' ? key : String(key)
          this.value(val)
        }
      }
    } catch (err) {
      throw addStep(err, step)
    }
  }

  /** A Map or Set key: a primitive, a Date or a tuple, never an object id (keys are values). */
  private mapKey(key: unknown, depth: number): void {
    if (typeof key !== 'object' || key === null) {
      if (typeof key === 'symbol' || typeof key === 'function') throw unsupportedValue(key)
      // -0 is 0 as a key (Map itself does so for plain keys, and a tuple's too).
      return this.value(key === 0 ? 0 : key)
    }
    if (key instanceof Date) {
      this.ensure(9)
      this.buf[this.pos++] = T.KeyDate
      this.f64(timeOf(key) ?? NaN)
      return
    }
    if (depth >= MAX_TUPLE_DEPTH || !isTuple(key)) throw unsupportedValue(key)
    this.ensure(6)
    this.buf[this.pos++] = T.Tuple
    this.varint(key.length)
    for (let i = 0; i < key.length; i++) this.mapKey(key[i], depth + 1)
  }
}

function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

// ---------------------------------------------------------------------------
// One-call forms, over a shared encoder (a hook that encodes again gets a fresh one).

let shared: FrameEncoder | undefined
let sharedBusy = false

function withEncoder<R>(fn: (enc: FrameEncoder) => R): R {
  if (sharedBusy) return fn(new FrameEncoder(256))
  sharedBusy = true
  try {
    return fn((shared ??= new FrameEncoder()))
  } finally {
    shared?.forgetTarget()
    sharedBusy = false
  }
}

/** The frame of `value` as a fresh Uint8Array. */
export function encodeFrame(value: unknown, refs?: FrameRefHook): Uint8Array {
  return withEncoder((enc) => {
    enc.encode(value, refs)
    return enc.toBytes()
  })
}

/** Byte length of `value`'s frame. Walks the value; to measure and then write, use one FrameEncoder (encode, then writeTo). */
export function measureFrame(value: unknown, refs?: FrameRefHook): number {
  return withEncoder((enc) => enc.encode(value, refs))
}

/** Writes `value`'s frame into `target` at `offset` and returns its byte length (ERR_INVALID_ARGUMENT when it does not fit). */
export function writeFrame(value: unknown, target: Uint8Array, offset: number, refs?: FrameRefHook): number {
  return withEncoder((enc) => {
    const n = enc.encode(value, refs)
    enc.writeTo(target, offset)
    return n
  })
}

// ---------------------------------------------------------------------------
// Reading

function frameBounds(bytes: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `a frame of ${length} bytes at offset ${offset} does not lie within the ${bytes.length} bytes given`)
  }
}

interface FrameLayout {
  /** Where the refs trailer starts, and how many refs it lists. */
  refsAt: number
  refCount: number
  /** Where the loans trailer starts (the value ends: it is right before the refs trailer when there are no loans), and how many loans it lists. */
  loansAt: number
  loanCount: number
}

/** Where the value and its trailers are; ERR_SHM_CORRUPT when the header or a trailer is damaged. */
function frameLayout(bytes: Uint8Array, offset: number, length: number): FrameLayout {
  frameBounds(bytes, offset, length)
  if (length < 3) throw corrupt(`a message frame of ${length} bytes is shorter than the smallest frame (3)`)
  const version = bytes[offset]!
  if (version !== FRAME_VERSION) throw corrupt(`message frame has format version ${version}, this code reads version ${FRAME_VERSION}`)
  const flags = bytes[offset + 1]!
  if ((flags & ~(FLAG_REFS | FLAG_LOANS)) !== 0) throw corrupt(`message frame has unknown flags 0x${flags.toString(16)}`)
  let end = offset + length
  const refCount = (flags & FLAG_REFS) !== 0 ? trailerCount(bytes, offset, end, 4, 'refs', length) : 0
  end -= refCount === 0 ? 0 : 4 + 4 * refCount
  const refsAt = end
  const loanCount = (flags & FLAG_LOANS) !== 0 ? trailerCount(bytes, offset, end, 8, 'loans', length) : 0
  end -= loanCount === 0 ? 0 : 4 + 8 * loanCount
  return { refsAt, refCount, loansAt: end, loanCount }
}

/**
 * The count that ends the trailer of `entryBytes`-byte entries before `end`: the trailer
 * and at least one value byte must fit after the 2-byte header (ERR_SHM_CORRUPT otherwise).
 */
function trailerCount(bytes: Uint8Array, offset: number, end: number, entryBytes: number, what: string, length: number): number {
  if (end - offset < 2 + 1 + 4) throw corrupt(`message frame is too short for its ${what} trailer`)
  const count = readU32(bytes, end - 4)
  if (count === 0 || count > (end - offset - 2 - 1 - 4) / entryBytes) throw corrupt(`message frame lists ${count} ${what}, which do not fit its ${length} bytes`)
  return count
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
}

/**
 * The record references a frame carries, from its trailer only (no parse): what
 * whoever frees the frame must release. ERR_SHM_CORRUPT when header or trailer is damaged.
 */
export function frameRefs(bytes: Uint8Array, offset = 0, length = bytes.length - offset): number[] {
  const { refsAt, refCount } = frameLayout(bytes, offset, length)
  const out: number[] = new Array(refCount)
  for (let i = 0; i < refCount; i++) out[i] = readU32(bytes, refsAt + 4 * i)
  return out
}

/** The loans a frame carries, (entry, generation) pairs, from its trailer only (no parse): what whoever drops the frame gives back. */
export function frameLoans(bytes: Uint8Array, offset = 0, length = bytes.length - offset): number[] {
  const { loansAt, loanCount } = frameLayout(bytes, offset, length)
  const out: number[] = new Array(2 * loanCount)
  for (let i = 0; i < 2 * loanCount; i++) out[i] = readU32(bytes, loansAt + 4 * i)
  return out
}

/**
 * The value of the frame at `offset` (`length` bytes) of `bytes`, as an ordinary JS
 * value owing nothing to `bytes` (which may be SharedArrayBuffer-backed). Values sent
 * by reference come from `refs(ref)`; views of the segment's bytes (SegmentView) are
 * made over `segment`, exactly the segment's bytes (byte 0 is segment offset 0). A
 * damaged frame is ERR_SHM_CORRUPT: every read is checked against `length`, every
 * count against the bytes left, every segment view against `segment`.
 */
export function readFrame(bytes: Uint8Array, offset = 0, length = bytes.length - offset, refs?: FrameRefResolver, segment?: Uint8Array, bulk?: BulkCopy, loans?: FrameLoanResolver): unknown {
  const layout = frameLayout(bytes, offset, length)
  const bodyEnd = layout.loansAt
  const reader = new FrameReader(bytes, offset, offset + 2, bodyEnd, layout, refs, segment, bulk, loans)
  let value: unknown
  try {
    value = reader.value(0)
  } catch (err) {
    if (err instanceof RangeError && !(err instanceof ShmError)) {
      // The stack ran out (the caller was already deep) or an engine limit was hit: the frame cannot be read here.
      throw corrupt(`message frame cannot be read (${err.message})`)
    }
    throw err
  }
  if (reader.pos !== bodyEnd) throw corrupt(`message frame has ${bodyEnd - reader.pos} bytes after its value`)
  return value
}

const KEY_CACHE_SIZE = 2048
const KEY_CACHE_MAX = 32
/** charCodes[n]: an array of n small integers, refilled by FrameReader.latin1 for each string of 7–32 chars. */
const charCodes: number[][] = Array.from({ length: 33 }, (_, n) => new Array<number>(n).fill(0))
const keyCache: string[] = new Array<string>(KEY_CACHE_SIZE).fill('\u0000'.repeat(KEY_CACHE_MAX + 1))

/**
 * A DataView over `bytes`, one per byte array: frames are mostly read out of the same
 * few (the segment's bytes, a channel's scratch), and making a DataView per frame with a
 * number in it cost ~2% of a small message's round trip (its constructor and `buffer`).
 */
const dataViews = new WeakMap<Uint8Array, DataView>()

function dataViewOf(bytes: Uint8Array): DataView {
  let dv = dataViews.get(bytes)
  if (dv === undefined) {
    dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    dataViews.set(bytes, dv)
  }
  return dv
}

/** Node's Buffer, where there is one (looked up, not imported: renderers load this file). */
const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(n: number): { buffer: ArrayBuffer } } }).Buffer

const enum Fields {
  Plain,
  Error,
  Instance,
}

class FrameReader {
  pos: number
  private readonly objs: unknown[] = []
  private readonly keys: string[] = []
  private dv: DataView | undefined

  constructor(
    private readonly b: Uint8Array,
    private readonly base: number,
    start: number,
    private readonly end: number,
    private readonly trailers: FrameLayout,
    private readonly resolve: FrameRefResolver | undefined,
    private readonly segment: Uint8Array | undefined,
    /** Copies large payloads out (see writeTo). */
    private readonly bulk?: BulkCopy,
    private readonly resolveLoan?: FrameLoanResolver,
  ) {
    this.pos = start
  }

  private byte(): number {
    if (this.pos >= this.end) throw corrupt(`message frame ends inside a value (at byte ${this.pos - this.base})`)
    return this.b[this.pos++]!
  }

  /** A varint of at most 5 bytes (lengths, counts, indexes: < 2^32). */
  private varint(): number {
    let result = 0
    let shift = 0
    for (;;) {
      const c = this.byte()
      if (shift === 28) {
        if (c > 0x0f) throw corrupt(`message frame has a varint over 32 bits at byte ${this.pos - 1 - this.base}`)
        return result + c * 2 ** 28
      }
      result |= (c & 127) << shift
      if (c < 128) return result >>> 0
      shift += 7
    }
  }

  /** A varint of at most 8 bytes (integers up to 2^53 − 1). */
  private bigVarint(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const c = this.byte()
      result += (c & 127) * scale
      if (c < 128) {
        if (result > MAX_SAFE) break
        return result
      }
      scale *= 128
    }
    throw corrupt(`message frame has an integer over 2^53 at byte ${this.pos - this.base}`)
  }

  /** A length or count of items each at least `unit` bytes: no more than the bytes left can hold. */
  private count(unit: number, what: string): number {
    const n = this.varint()
    if (n * unit > this.end - this.pos) throw corrupt(`message frame claims ${n} ${what}, more than its remaining ${this.end - this.pos} bytes hold`)
    return n
  }

  private f64(): number {
    if (this.end - this.pos < 8) throw corrupt('message frame ends inside a number')
    const dv = (this.dv ??= dataViewOf(this.b))
    const v = dv.getFloat64(this.pos, true)
    this.pos += 8
    return v
  }

  private id(obj: unknown): void {
    this.objs.push(obj)
  }

  value(depth: number): unknown {
    const tag = this.byte()
    if (tag >= SMALL_INT) return tag - SMALL_INT
    if (tag >= SHORT_STRING) return this.latin1(tag - SHORT_STRING)
    switch (tag as T) {
      case T.Undefined:
        return undefined
      case T.Null:
        return null
      case T.False:
        return false
      case T.True:
        return true
      case T.PosInt:
        return this.bigVarint()
      case T.NegInt:
        return -this.bigVarint()
      case T.Float64:
        return this.f64()
      case T.Ascii:
      case T.Latin1:
      case T.Utf8:
      case T.Utf16:
        return this.longString(tag)
      case T.BigPos:
      case T.BigNeg:
        return this.bigint(tag === T.BigNeg)
      case T.Date: {
        const d = new Date(this.f64())
        this.id(d)
        return d
      }
      case T.RegExp: {
        const source = this.stringValue()
        const flags = this.stringValue()
        let re: RegExp
        try {
          re = new RegExp(source, flags)
        } catch (err) {
          throw corrupt(`message frame holds an invalid RegExp (${(err as Error).message})`)
        }
        this.id(re)
        return re
      }
      case T.Array:
        return this.array(depth)
      case T.Object:
        return this.fields({}, depth, this.count(2, 'object fields'), Fields.Plain)
      case T.NullObject:
        return this.fields(Object.create(null) as object, depth, this.count(2, 'object fields'), Fields.Plain)
      case T.Map:
        return this.map(depth)
      case T.Set:
        return this.set(depth)
      case T.Error:
        return this.fields(new Error(), depth, this.count(2, 'error fields'), Fields.Error)
      case T.Instance: {
        const name = this.key()
        const proto = prototypeOfClass(name)
        if (proto === undefined) {
          throw new ShmError('ERR_UNSUPPORTED_TYPE', `an instance of class "${name}" was sent, but this process has not registered it: call registerClass(${name}) here too`)
        }
        return this.fields(Object.create(proto) as object, depth, this.count(2, 'instance fields'), Fields.Instance)
      }
      case T.Binary:
        return this.binary()
      case T.Struct:
        return this.struct()
      case T.Serialized: {
        const n = this.count(1, 'serialized bytes')
        const copy = this.b.slice(this.pos, this.pos + n)
        this.pos += n
        let v: unknown
        try {
          v = v8Deserialize(copy)
        } catch (err) {
          if (err instanceof ShmError) throw err
          throw corrupt(`message frame holds v8-serialized bytes that cannot be deserialized (${(err as Error).message})`)
        }
        this.id(v)
        return v
      }
      case T.Ref: {
        const index = this.varint()
        const { refCount, refsAt } = this.trailers
        if (index >= refCount) throw corrupt(`message frame refers to ref #${index}, its trailer lists ${refCount}`)
        const ref = readU32(this.b, refsAt + 4 * index)
        if (this.resolve === undefined) throw new ShmError('ERR_INVALID_ARGUMENT', 'this message frame carries values by reference: readFrame needs a refs resolver')
        const v = this.resolve(ref)
        this.id(v)
        return v
      }
      case T.SegmentView:
        return this.segmentView()
      case T.Loan: {
        const index = this.varint()
        const { loanCount, loansAt } = this.trailers
        if (index >= loanCount) throw corrupt(`message frame refers to loan #${index}, its trailer lists ${loanCount}`)
        if (this.resolveLoan === undefined) throw new ShmError('ERR_INVALID_ARGUMENT', 'this message frame carries loans: readFrame needs a loans resolver')
        const v = this.resolveLoan(readU32(this.b, loansAt + 8 * index), readU32(this.b, loansAt + 8 * index + 4))
        this.id(v)
        return v
      }
      case T.BackRef: {
        const id = this.varint()
        if (id >= this.objs.length) throw corrupt(`message frame refers back to object #${id}, only ${this.objs.length} came before`)
        return this.objs[id]
      }
      default:
        throw corrupt(`message frame holds unknown tag 0x${tag.toString(16)} at byte ${this.pos - 1 - this.base}`)
    }
  }

  private enter(depth: number): number {
    if (depth >= MAX_FRAME_DEPTH) throw corrupt(`message frame nests values more than ${MAX_FRAME_DEPTH} deep`)
    return depth + 1
  }

  private array(depth: number): unknown[] {
    const n = this.count(1, 'array elements')
    const out: unknown[] = new Array(n)
    this.id(out)
    const d = this.enter(depth)
    for (let i = 0; i < n; i++) {
      if (this.pos < this.end && this.b[this.pos] === T.Hole) this.pos++
      else out[i] = this.value(d)
    }
    return out
  }

  private fields<O extends object>(out: O, depth: number, n: number, mode: Fields): O {
    this.id(out)
    const d = this.enter(depth)
    const target = out as Record<string, unknown>
    for (let i = 0; i < n; i++) {
      const key = this.key()
      const value = this.value(d)
      if (mode === Fields.Plain && key !== '__proto__') target[key] = value
      else {
        // An own data property, as it was sent: assigning "__proto__" would set the
        // prototype, and a registered class's prototype may have setters. Like the
        // Error tx.copy makes: name, message, stack and cause are not enumerable.
        const hidden = mode === Fields.Error && (key === 'name' || key === 'message' || key === 'stack' || key === 'cause')
        Object.defineProperty(out, key, { value, writable: true, enumerable: !hidden, configurable: true })
      }
    }
    return out
  }

  private map(depth: number): Map<unknown, unknown> {
    const n = this.count(2, 'Map entries')
    const out = new Map<unknown, unknown>()
    this.id(out)
    const d = this.enter(depth)
    for (let i = 0; i < n; i++) {
      const k = this.mapKey(0)
      out.set(k, this.value(d))
    }
    return out
  }

  private set(depth: number): Set<unknown> {
    const n = this.count(1, 'Set elements')
    const out = new Set<unknown>()
    this.id(out)
    this.enter(depth)
    for (let i = 0; i < n; i++) out.add(this.mapKey(0))
    return out
  }

  private mapKey(depth: number): unknown {
    if (this.pos >= this.end) throw corrupt('message frame ends inside a Map or Set key')
    const tag = this.b[this.pos]!
    if (tag === T.KeyDate) {
      this.pos++
      return new Date(this.f64())
    }
    if (tag === T.Tuple) {
      this.pos++
      if (depth >= MAX_TUPLE_DEPTH) throw corrupt(`message frame nests a tuple key more than ${MAX_TUPLE_DEPTH} deep`)
      const n = this.count(1, 'tuple elements')
      const out: unknown[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = this.mapKey(depth + 1)
      return Object.freeze(out)
    }
    // Primitives only: an object here would take an id the writer never gave.
    if (tag >= SHORT_STRING || tag <= T.Utf16) return this.value(MAX_FRAME_DEPTH)
    throw corrupt(`message frame holds tag 0x${tag.toString(16)} as a Map or Set key, which no key has`)
  }

  private stringValue(): string {
    const tag = this.byte()
    if (tag >= SHORT_STRING && tag < SMALL_INT) return this.latin1(tag - SHORT_STRING)
    if (tag >= T.Ascii && tag <= T.Utf16) return this.longString(tag)
    throw corrupt(`message frame holds tag 0x${tag.toString(16)} where a string belongs`)
  }

  /**
   * Latin-1 bytes as a string. Measured on Node 20 (ns for n chars): `s +=` per char
   * is quickest up to ~6 and then grows fast (340 for 55); charCodes gathered in an
   * array and passed to fromCharCode once, 45–165 for 8–24; TextDecoder, ~125 + n/2
   * whatever n, wins past ~32 but decodes only ASCII the same way.
   */
  private latin1(n: number): string {
    if (n > this.end - this.pos) throw corrupt(`message frame claims a ${n}-char string, more than its remaining ${this.end - this.pos} bytes`)
    const b = this.b
    let pos = this.pos
    const stop = pos + n
    this.pos = stop
    if (n <= 6) {
      let s = ''
      while (pos < stop) s += String.fromCharCode(b[pos++]!)
      return s
    }
    if (n <= 32) {
      // One array per length, reused: a fresh one per string was most of a decoded
      // document's garbage (the string itself is all that is left).
      const codes = charCodes[n]!
      for (let i = 0; i < n; i++) codes[i] = b[pos + i]!
      return String.fromCharCode.apply(null, codes)
    }
    let ascii = true
    for (let i = pos; i < stop; i++) {
      if (b[i]! >= 0x80) {
        ascii = false
        break
      }
    }
    if (ascii) return decodeUtf8(b.subarray(pos, stop))
    let s = ''
    while (pos < stop) {
      const next = Math.min(stop, pos + 8192)
      s += String.fromCharCode.apply(null, b.subarray(pos, next) as unknown as number[])
      pos = next
    }
    return s
  }

  private longString(tag: number): string {
    if (tag === T.Latin1) return this.latin1(this.varint())
    if (tag === T.Utf16) {
      const units = this.count(2, 'UTF-16 units')
      return this.utf16(units)
    }
    const n = this.count(1, 'string bytes')
    const s = decodeUtf8(this.b.subarray(this.pos, this.pos + n))
    this.pos += n
    return s
  }

  private utf16(units: number): string {
    const b = this.b
    let s = ''
    const chunk: number[] = []
    for (let i = 0; i < units; i++) {
      chunk.push(b[this.pos]! | (b[this.pos + 1]! << 8))
      this.pos += 2
      if (chunk.length === 4096) {
        s += String.fromCharCode(...chunk)
        chunk.length = 0
      }
    }
    return s + String.fromCharCode(...chunk)
  }

  private key(): string {
    const h = this.varint()
    const kind = h & 3
    const n = (h - kind) / 4
    if (kind === KeyKind.Seen) {
      if (n >= this.keys.length) throw corrupt(`message frame refers to key #${n}, only ${this.keys.length} came before`)
      return this.keys[n]!
    }
    let s: string
    if (kind === KeyKind.Latin1) s = n <= KEY_CACHE_MAX ? this.cachedLatin1(n) : this.latin1(n)
    else if (kind === KeyKind.Utf16) {
      if (2 * n > this.end - this.pos) throw corrupt(`message frame claims a ${n}-unit key, more than its remaining bytes`)
      s = this.utf16(n)
    } else {
      if (n > this.end - this.pos) throw corrupt(`message frame claims a ${n}-byte key, more than its remaining bytes`)
      s = decodeUtf8(this.b.subarray(this.pos, this.pos + n))
      this.pos += n
    }
    this.keys.push(s)
    return s
  }

  /**
   * A short Latin-1 key through a process-wide cache: the same keys recur from frame
   * to frame, and reusing the string that was already used as a property name spares
   * building it and V8 looking it up in its string table on every store.
   */
  private cachedLatin1(n: number): string {
    if (n > this.end - this.pos) throw corrupt(`message frame claims a ${n}-char key, more than its remaining ${this.end - this.pos} bytes`)
    const b = this.b
    const start = this.pos
    let h = n
    for (let i = start; i < start + n; i++) h = (Math.imul(h, 31) + b[i]!) | 0
    const slot = (h ^ (h >>> 15)) & (KEY_CACHE_SIZE - 1)
    const known = keyCache[slot]!
    if (known.length === n) {
      let i = 0
      while (i < n && known.charCodeAt(i) === b[start + i]) i++
      if (i === n) {
        this.pos = start + n
        return known
      }
    }
    const s = this.latin1(n)
    keyCache[slot] = s
    return s
  }

  private bigint(negative: boolean): bigint {
    const n = this.count(1, 'bigint bytes')
    if (n > MAX_BIGINT_BYTES) throw corrupt(`message frame claims a ${n}-byte bigint, more than any BigInt holds`)
    let hex = ''
    for (let i = n - 1; i >= 0; i--) hex += this.b[this.pos + i]!.toString(16).padStart(2, '0')
    this.pos += n
    const magnitude = hex === '' ? 0n : BigInt('0x' + hex)
    return negative ? -magnitude : magnitude
  }

  /** Skips the padding that aligns the next `n` bytes to `align` from the frame's start. */
  private align(align: number): void {
    const pad = -(this.pos - this.base) & (align - 1)
    if (pad > this.end - this.pos) throw corrupt('message frame ends inside padding')
    this.pos += pad
  }

  /** A private copy (never a SharedArrayBuffer) of the next `n` bytes. */
  private copy(n: number): Uint8Array<ArrayBuffer> {
    // Node's allocUnsafeSlow skips zero-filling memory that set() overwrites at once:
    // 27 µs instead of 38 µs for 400 KB. Its own ArrayBuffer, exactly n bytes.
    const at = this.pos
    this.pos += n
    // slice makes the copy in one call, into a new (unshared) ArrayBuffer of its own.
    if (n < DEFER_BYTES || NodeBuffer === undefined) return this.b.slice(at, at + n) as Uint8Array<ArrayBuffer>
    const out = new Uint8Array(NodeBuffer.allocUnsafeSlow(n).buffer, 0, n)
    if (this.bulk !== undefined) this.bulk(out, this.b.subarray(at, at + n))
    else out.set(this.b.subarray(at, at + n))
    return out
  }

  private binary(): unknown {
    const kind = this.byte()
    const entry = BINARY_VIEWS[kind]
    if (entry === undefined) throw corrupt(`message frame holds binary kind ${kind}, which is none`)
    const n = this.varint()
    const [Ctor, width] = entry
    this.align(width)
    if (n > this.end - this.pos) throw corrupt(`message frame claims ${n} binary bytes, more than its remaining ${this.end - this.pos}`)
    if (n % width !== 0) throw corrupt(`message frame holds ${n} bytes for elements of ${width}`)
    const bytes = this.copy(n)
    let out: unknown
    if (kind === BinaryKind.ArrayBuffer) out = bytes.buffer
    else if (kind === BinaryKind.Buffer) {
      const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, l: number): Uint8Array } }).Buffer
      out = NodeBuffer ? NodeBuffer.from(bytes.buffer, 0, n) : bytes
    } else if (kind === BinaryKind.Uint8) out = bytes
    else out = new Ctor(bytes.buffer, 0, Ctor === (DataView as unknown) ? n : n / width)
    this.id(out)
    return out
  }

  /** A view of the segment's bytes, mapped again over `segment`: no copy. */
  private segmentView(): unknown {
    const kind = this.byte()
    const entry = kind === BinaryKind.ArrayBuffer ? undefined : BINARY_VIEWS[kind]
    if (entry === undefined) throw corrupt(`message frame holds a segment view of binary kind ${kind}, which is none`)
    const offset = this.varint()
    const n = this.varint()
    const segment = this.segment
    if (segment === undefined) throw new ShmError('ERR_INVALID_ARGUMENT', 'this message frame carries views of a segment: readFrame needs the segment\'s bytes')
    const [Ctor, width] = entry
    if (offset + n > segment.length) throw corrupt(`message frame holds a view of ${n} bytes at segment offset ${offset}, outside the segment's ${segment.length} bytes`)
    const at = segment.byteOffset + offset
    if (n % width !== 0 || at % width !== 0) throw corrupt(`message frame holds a view of ${n} bytes at segment offset ${offset}, not aligned to its ${width}-byte elements`)
    const buffer = segment.buffer as ArrayBuffer
    let out: unknown
    if (kind === BinaryKind.Buffer) {
      const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, l: number): Uint8Array } }).Buffer
      out = NodeBuffer ? NodeBuffer.from(buffer, at, n) : new Uint8Array(buffer, at, n)
    } else out = new Ctor(buffer, at, Ctor === (DataView as unknown) ? n : n / width)
    this.id(out)
    return out
  }

  private struct(): unknown {
    if (this.end - this.pos < 4) throw corrupt('message frame ends inside a struct')
    const fingerprint = readU32(this.b, this.pos)
    this.pos += 4
    const n = this.varint()
    this.align(8)
    if (n > this.end - this.pos) throw corrupt(`message frame claims a ${n}-byte struct, more than its remaining ${this.end - this.pos}`)
    const type = structTypeOf(fingerprint)
    if (type === undefined) {
      throw new ShmError('ERR_UNSUPPORTED_TYPE', `a struct with fingerprint 0x${fingerprint.toString(16)} was sent, but no defineStruct schema with that layout exists in this process: define the same schema here`)
    }
    if (type.byteLength !== n) throw corrupt(`message frame holds ${n} bytes for struct ${type.name}, its schema needs ${type.byteLength}`)
    const view = type.view(this.copy(n), 0)
    this.id(view)
    return view
  }
}
