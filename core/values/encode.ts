// JavaScript values → records. `encodeValue` leaves the value's slot contents in
// the context (tag, aux, num) and the caller writes them where they belong, so a
// value can be fully built before it is linked into an existing structure.
import { ShmError } from '../errors'
import type { Heap } from '../heap'
import {
  Arr, Big, Bin, BinaryKind, Entry, ENTRY_SIZE, FIRST_REF_TAG, Hash, Inst, RecFlag, Slot, SLOT_SIZE, StructRec, Tag,
} from '../records'
import { classNameOf, isFrozenRequest, structOf, v8Serialize } from './registry'
import { shareRecordOf } from './mapped_handle'
import { writeStringRecord } from './strings'
import { BINARY_VIEWS, binaryKindOf, isSmallTypedArray, type SmallTypedArray } from './binary_kinds'
import { hashKey, sameKey, timeOf } from './hash'

export class EncodeContext {
  readonly heap: Heap
  tag: Tag = Tag.Undefined
  aux = 0
  num = 0
  /** Objects already encoded in this operation (shared references, cycles); made on first use. */
  private seen: Map<object, number> | undefined
  private readonly path: Array<string | number> = []

  constructor(heap: Heap) {
    this.heap = heap
  }

  pathString(): string {
    return formatPath(this.path)
  }

  /** Writes the last encoded value into the slot at `at`. */
  store(at: number): void {
    writeSlot(this.heap, at, this.tag, this.aux, this.num)
  }

  /** Encodes `value` and writes it into the (fresh) slot at `at`. */
  encodeInto(at: number, value: unknown, step: string | number): void {
    this.path.push(step)
    encodeValue(this, value)
    this.path.pop()
    this.store(at)
  }

  /** Encodes a Map or Set key (one hashKey accepted) and writes it into the (fresh) slot at `at`. */
  encodeKeyInto(at: number, key: unknown, step: string | number): void {
    this.path.push(step)
    encodeKey(this, key)
    this.path.pop()
    this.store(at)
  }

  remember(value: object, ref: number): void {
    ;(this.seen ??= new Map()).set(value, ref)
  }

  seenRef(value: object): number | undefined {
    return this.seen?.get(value)
  }
}

export function writeSlot(heap: Heap, at: number, tag: Tag, aux: number, num: number): void {
  heap.i32[at >>> 2] = tag
  heap.i32[(at + Slot.Aux) >>> 2] = aux
  if (tag >= FIRST_REF_TAG) {
    heap.u32[(at + Slot.Payload) >>> 2] = num
    heap.u32[(at + Slot.Payload + 4) >>> 2] = 0
  } else {
    heap.f64[(at + Slot.Payload) >>> 3] = num
  }
}

/**
 * Writes a value that needs no record (undefined, null, booleans, numbers) straight
 * into a slot and returns true; false for anything else. The hot path of
 * `map.set(k, n)` and `arr[i] = n`.
 */
export function writeInlineValue(heap: Heap, at: number, value: unknown): boolean {
  switch (typeof value) {
    case 'number':
      if ((value | 0) === value && !(value === 0 && 1 / value < 0)) writeSlot(heap, at, Tag.Int32, value, 0)
      else writeSlot(heap, at, Tag.Float64, 0, value)
      return true
    case 'boolean':
      writeSlot(heap, at, value ? Tag.True : Tag.False, 0, 0)
      return true
    case 'undefined':
      writeSlot(heap, at, Tag.Undefined, 0, 0)
      return true
    case 'object':
      if (value !== null) return false
      writeSlot(heap, at, Tag.Null, 0, 0)
      return true
    default:
      return false
  }
}

function inline(ctx: EncodeContext, tag: Tag, aux: number, num: number): void {
  ctx.tag = tag
  ctx.aux = aux
  ctx.num = num
}

export function encodeValue(ctx: EncodeContext, value: unknown): void {
  switch (typeof value) {
    case 'undefined':
      return inline(ctx, Tag.Undefined, 0, 0)
    case 'boolean':
      return inline(ctx, value ? Tag.True : Tag.False, 0, 0)
    case 'number':
      if ((value | 0) === value && !(value === 0 && 1 / value < 0)) return inline(ctx, Tag.Int32, value, 0)
      return inline(ctx, Tag.Float64, 0, value)
    case 'string':
      return inline(ctx, Tag.String, 0, writeStringRecord(ctx.heap, value))
    case 'bigint':
      return inline(ctx, Tag.BigInt, 0, writeBigInt(ctx.heap, value))
    case 'object':
      if (value === null) return inline(ctx, Tag.Null, 0, 0)
      return encodeObject(ctx, value)
    default:
      throw unsupported(ctx, value)
  }
}

/** Where a value sits inside what was stored, as code would write it: value.items[3]["a b"]. */
export function formatPath(steps: ReadonlyArray<string | number>): string {
  let s = 'value'
  for (const p of steps) s += typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`
  return s
}

function unsupported(ctx: EncodeContext, value: unknown, hint = ''): ShmError {
  return unsupportedAt(ctx.pathString(), value, hint)
}

/** ERR_UNSUPPORTED_TYPE for `value` at `path` (formatPath's form). */
export function unsupportedAt(path: string, value: unknown, hint = ''): ShmError {
  const what = typeof value === 'object' && value !== null ? `an instance of ${value.constructor?.name ?? 'a class'}` : `a ${typeof value}`
  return new ShmError('ERR_UNSUPPORTED_TYPE', `${path} is ${what}, which cannot be shared${hint}`)
}

function encodeObject(ctx: EncodeContext, value: object): void {
  const heap = ctx.heap
  const seen = ctx.seenRef(value)
  if (seen !== undefined) {
    heap.retain(seen)
    return inline(ctx, heap.kindOf(seen) as Tag, 0, seen)
  }
  // Already in this segment (a mapped container, TypedArray or struct): share it rather than copy it.
  heap.checkTurn()
  const shared = shareRecordOf(heap, value)
  if (shared >= 0) {
    heap.retain(shared)
    return inline(ctx, heap.kindOf(shared) as Tag, 0, shared)
  }
  const flags = isFrozenRequest(value) ? RecFlag.Frozen : 0
  if (Array.isArray(value)) return encodeArray(ctx, value, flags)
  if (value instanceof Date) return inline(ctx, Tag.Date, 0, value.getTime())
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    // Stored once however often it is reachable, as a container is: `{ a: t, b: t }` keeps a === b.
    const ref = writeBinary(heap, value)
    ctx.remember(value, ref)
    return inline(ctx, Tag.Binary, 0, ref)
  }
  if (value instanceof RegExp) return inline(ctx, Tag.RegExp, 0, writeStringRecord(heap, `${value.flags}/${value.source}`, Tag.RegExp))
  if (value instanceof Map) return encodeTable(ctx, value, Tag.Map, flags, value.entries())
  if (value instanceof Set) return encodeTable(ctx, value, Tag.Set, flags, setEntries(value))
  if (value instanceof Error) return encodeTable(ctx, value, Tag.Error, 0, errorEntries(value))
  const struct = structOf(value)
  if (struct !== undefined) {
    const ref = writeStruct(heap, struct.fingerprint, struct.bytes)
    ctx.remember(value, ref)
    return inline(ctx, Tag.Struct, 0, ref)
  }
  const proto = Object.getPrototypeOf(value) as object | null
  if (proto === Object.prototype || proto === null) {
    return encodeTable(ctx, value, Tag.Object, flags | (proto === null ? RecFlag.NullProto : 0), objectEntries(value))
  }
  const className = classNameOf(value)
  if (className !== undefined) {
    const ref = heap.allocRecord(Tag.Instance, Inst.Size)
    ctx.remember(value, ref)
    heap.u32[(ref + Inst.ClassName) >>> 2] = writeStringRecord(heap, className)
    encodeTable(ctx, value, Tag.Object, 0, objectEntries(value), false)
    heap.u32[(ref + Inst.Fields) >>> 2] = ctx.num
    return inline(ctx, Tag.Instance, 0, ref)
  }
  const serialized = v8Serialize(value)
  if (serialized !== undefined) {
    return inline(ctx, Tag.Serialized, 0, writeBinary(heap, serialized, BinaryKind.V8, Tag.Serialized))
  }
  throw unsupported(ctx, value, `: register its class with registerClass(${value.constructor?.name ?? 'TheClass'}) in every process, or convert it to a plain object`)
}

/** An Array record with room for `length` slots, its header written (the slots are the caller's to fill). */
function allocArray(heap: Heap, length: number, flags: number): { ref: number; items: number } {
  const ref = heap.allocRecord(Tag.Array, Arr.Size, flags)
  const items = length > 0 ? heap.alloc(length * SLOT_SIZE) : 0
  heap.u32[(ref + Arr.Length) >>> 2] = length
  heap.u32[(ref + Arr.Capacity) >>> 2] = length
  heap.u32[(ref + Arr.Items) >>> 2] = items
  return { ref, items }
}

function encodeArray(ctx: EncodeContext, value: unknown[], flags: number): void {
  const heap = ctx.heap
  const length = value.length
  const { ref, items } = allocArray(heap, length, flags)
  ctx.remember(value, ref)
  for (let i = 0; i < length; i++) {
    const at = items + i * SLOT_SIZE
    if (!(i in value)) writeSlot(heap, at, Tag.Hole, 0, 0)
    else ctx.encodeInto(at, value[i], i)
  }
  inline(ctx, Tag.Array, 0, ref)
}

/**
 * A Map or Set key, which hashKey has accepted. A tuple always becomes a fresh frozen
 * Array record, never one shared through `seen` (the same array met earlier as a value
 * is stored mutable, and a key must not change under its hash), and -0 inside it
 * becomes 0, as Map does for a plain key. A Date is its time value, inline.
 */
function encodeKey(ctx: EncodeContext, key: unknown): void {
  if (typeof key !== 'object' || key === null) return encodeValue(ctx, key === 0 ? 0 : key)
  if (key instanceof Date) return inline(ctx, Tag.Date, 0, timeOf(key) ?? NaN)
  if (!Array.isArray(key)) throw unsupported(ctx, key)
  const length = key.length
  const { ref, items } = allocArray(ctx.heap, length, RecFlag.Frozen)
  for (let i = 0; i < length; i++) {
    encodeKey(ctx, key[i])
    ctx.store(items + i * SLOT_SIZE)
  }
  inline(ctx, Tag.Array, 0, ref)
}

function* setEntries(set: Set<unknown>): IterableIterator<[unknown, unknown]> {
  for (const k of set) yield [k, undefined]
}

function* objectEntries(obj: object): IterableIterator<[string, unknown]> {
  for (const key of Object.keys(obj)) yield [key, (obj as Record<string, unknown>)[key]]
}

function* errorEntries(err: Error): IterableIterator<[string, unknown]> {
  // name, message and stack are own or inherited non-enumerable properties.
  yield ['name', err.name]
  yield ['message', err.message]
  if (err.stack !== undefined) yield ['stack', err.stack]
  if ('cause' in err) yield ['cause', err.cause]
  for (const key of Object.keys(err)) if (key !== 'cause') yield [key, (err as unknown as Record<string, unknown>)[key]]
}

/** Smallest power of two ≥ n (at least 4): the bucket count for n entries. */
export function bucketCountFor(n: number): number {
  let b = 4
  while (b < n) b <<= 1
  return b
}

function encodeTable(
  ctx: EncodeContext, value: object, kind: Tag, flags: number, entries: IterableIterator<[unknown, unknown]>,
  rememberAs = true, // false for an Instance's fields: the Instance record stands for `value`
): void {
  const heap = ctx.heap
  let list = [...entries]
  let hashes = list.map(([key]) => hashKey(key, () => ctx.pathString()))
  if (kind === Tag.Map || kind === Tag.Set) [list, hashes] = mergeEqualKeys(list, hashes)
  const ref = heap.allocRecord(kind, Hash.Size, flags)
  if (rememberAs) ctx.remember(value, ref)
  const n = list.length
  const bucketCount = bucketCountFor(n)
  const entriesAt = n > 0 ? heap.alloc(n * ENTRY_SIZE) : 0
  const buckets = heap.allocZeroed(bucketCount * 4)
  heap.u32[(ref + Hash.Count) >>> 2] = n
  heap.u32[(ref + Hash.Used) >>> 2] = n
  heap.u32[(ref + Hash.Capacity) >>> 2] = n
  heap.u32[(ref + Hash.Entries) >>> 2] = entriesAt
  heap.u32[(ref + Hash.Buckets) >>> 2] = buckets
  heap.u32[(ref + Hash.BucketCount) >>> 2] = bucketCount
  heap.u32[(ref + Hash.Epoch) >>> 2] = 0
  heap.u32[(ref + Hash.NextSeq) >>> 2] = list.length + 1
  for (let i = 0; i < n; i++) {
    const [key, val] = list[i]!
    const e = entriesAt + i * ENTRY_SIZE
    const h = hashes[i]!
    const b = buckets + (h & (bucketCount - 1)) * 4
    heap.u32[(e + Entry.HashCode) >>> 2] = h
    heap.u32[(e + Entry.Next) >>> 2] = heap.u32[b >>> 2]!
    heap.u32[(e + Entry.Flags) >>> 2] = 0
    heap.u32[(e + Entry.Seq) >>> 2] = i + 1
    heap.u32[b >>> 2] = i + 1
    ctx.encodeKeyInto(e + Entry.Key, key, `<key ${String(key)}>`)
    ctx.encodeInto(e + Entry.Value, val, kind === Tag.Set ? i : typeof key === 'string' ? key : String(key))
  }
  inline(ctx, kind, 0, ref)
}

/**
 * Dates and tuples are one shared key when equal by value, though a plain Map holds
 * each such object as its own key: equal keys merge as set() one by one would merge
 * them, at the first one's position with the last one's value. Primitive keys are
 * unique already, so a table without object keys is returned as it is.
 */
export function mergeEqualKeys(list: Array<[unknown, unknown]>, hashes: number[]): [Array<[unknown, unknown]>, number[]] {
  if (!list.some(([key]) => typeof key === 'object' && key !== null)) return [list, hashes]
  const out: Array<[unknown, unknown]> = []
  const outHashes: number[] = []
  const byHash = new Map<number, number[]>()
  for (let i = 0; i < list.length; i++) {
    const [key, val] = list[i]!
    const h = hashes[i]!
    const same = byHash.get(h)
    const j = same?.find((at) => sameKey(out[at]![0], key))
    if (j !== undefined) {
      out[j] = [out[j]![0], val]
      continue
    }
    if (same === undefined) byHash.set(h, [out.length])
    else same.push(out.length)
    out.push([key, val])
    outHashes.push(h)
  }
  return [out, outHashes]
}

export function writeBigInt(heap: Heap, value: bigint): number {
  const negative = value < 0n
  let hex = (negative ? -value : value).toString(16)
  if (hex.length & 1) hex = '0' + hex
  const byteLength = hex.length >>> 1
  const ref = heap.allocRecord(Tag.BigInt, Big.Data + byteLength)
  heap.u8[ref + Big.Sign] = negative ? 1 : 0
  heap.u32[(ref + Big.ByteLength) >>> 2] = byteLength
  const data = ref + Big.Data
  for (let i = 0; i < byteLength; i++) {
    // little-endian: the last hex pair is the least significant byte
    const p = hex.length - 2 * (i + 1)
    heap.u8[data + i] = parseInt(hex.slice(p, p + 2), 16)
  }
  return ref
}

/** A Binary record holding a copy of the bytes; readers map TypedArrays over it. */
export function writeBinary(heap: Heap, value: ArrayBufferView | ArrayBuffer, kind = binaryKindOf(value), tag = Tag.Binary): number {
  if (kind === undefined) throw new ShmError('ERR_UNSUPPORTED_TYPE', `${value.constructor.name} is not a TypedArray this library knows`)
  if (isSmallTypedArray(value, kind)) {
    // Copied as its own kind: its `buffer` is not read (binary_kinds.ts ON_HEAP_MAX).
    const [Ctor, width] = BINARY_VIEWS[kind]!
    const n = value.byteLength
    const ref = heap.allocRecord(tag, Bin.Data + n)
    heap.u32[(ref + Bin.ByteLength) >>> 2] = n
    heap.u8[ref + Bin.Kind] = kind
    // Bin.Data is 16 bytes into a 16-aligned record: aligned for every element size.
    ;(new Ctor(heap.buffer as ArrayBuffer, heap.byteOffset + ref + Bin.Data, n / width) as SmallTypedArray).set(value)
    return ref
  }
  // A Uint8Array (or Buffer) is copied as it is: reading `buffer` of a small fresh one
  // would make V8 move it off its own heap first (recordOfBytes says more).
  const src = value instanceof Uint8Array ? value : value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  const ref = heap.allocRecord(tag, Bin.Data + src.byteLength)
  heap.u32[(ref + Bin.ByteLength) >>> 2] = src.byteLength
  heap.u8[ref + Bin.Kind] = kind
  heap.segment.copyIn(src, ref + Bin.Data)
  return ref
}

function writeStruct(heap: Heap, fingerprint: number, bytes: Uint8Array): number {
  const ref = heap.allocRecord(Tag.Struct, StructRec.Data + bytes.byteLength)
  heap.u32[(ref + StructRec.Fingerprint) >>> 2] = fingerprint
  heap.u32[(ref + StructRec.ByteLength) >>> 2] = bytes.byteLength
  heap.segment.copyIn(bytes, ref + StructRec.Data)
  return ref
}
