// Records → JavaScript values. Copy mode builds ordinary JS values (shared
// references and cycles come back as one object). Mapped mode returns live views
// for containers and TypedArrays and copies for everything immutable.
import { corrupt, ShmError } from '../errors'
import type { Heap } from '../heap'
import { Arr, Big, Bin, BinaryKind, Entry, ENTRY_SIZE, FIRST_REF_TAG, Hash, Inst, RecFlag, Slot, SLOT_SIZE, StructRec, Tag } from '../records'
import { prototypeOfClass, structTypeOf, v8Deserialize } from './registry'
import { readStringRecord } from './strings'
import { BINARY_VIEWS } from './binary_kinds'
import { registerByteView } from './mapped_handle'
import { checkFits, checkHeader, checkedArrayLength, checkedTableUsed } from './bounds'
import { MAX_TUPLE_DEPTH } from './hash'

export type Memo = Map<number, unknown>

/**
 * How live views are made. views.ts registers them when it loads: the views read
 * their elements through this file, so importing them here would be a cycle.
 */
export interface ViewFactories {
  mapArray(heap: Heap, ref: number): unknown[]
  mapObject(heap: Heap, ref: number, proto: object | null, instanceRef?: number): object
  mapTable(heap: Heap, ref: number, tag: Tag.Map | Tag.Set): object
}

let views: ViewFactories | undefined

export function registerViewFactories(factories: ViewFactories): void {
  views = factories
}

function viewFactories(): ViewFactories {
  if (views === undefined) throw new Error('core/values/views.ts was not loaded: import it before reading mapped values')
  return views
}

/** Reads the value in the slot at `at`. */
export function readSlot(heap: Heap, at: number, mapped: boolean, memo?: Memo): unknown {
  const tag = heap.i32[at >>> 2]! as Tag
  switch (tag) {
    case Tag.Undefined:
    case Tag.Hole:
      return undefined
    case Tag.Null:
      return null
    case Tag.False:
      return false
    case Tag.True:
      return true
    case Tag.Int32:
      return heap.i32[(at + Slot.Aux) >>> 2]
    case Tag.Float64:
      return heap.f64[(at + Slot.Payload) >>> 3]
    case Tag.Date:
      return new Date(heap.f64[(at + Slot.Payload) >>> 3]!)
    default: {
      const ref = heap.u32[(at + Slot.Payload) >>> 2]!
      const value = readRecord(heap, tag, ref, mapped, memo)
      // A TypedArray, DataView or Buffer out of a container keeps its bytes alive (its
      // element reads cannot be checked for staleness): core/view_holds.ts.
      if (mapped && tag === Tag.Binary) heap.holdByteView(ref, value)
      return value
    }
  }
}

/**
 * Reads a Map or Set key. A tuple key (an Array record) comes back as a frozen plain
 * array, always copied: a key is a value, and a live view of it could not be frozen.
 */
export function readKey(heap: Heap, at: number, depth = 0): unknown {
  const tag = heap.i32[at >>> 2]! as Tag
  if (tag < FIRST_REF_TAG || tag === Tag.String || tag === Tag.BigInt) return readSlot(heap, at, false)
  // No key is a container: reading one here could walk a cycle a stray write made, without the memo that copies use.
  if (tag !== Tag.Array) throw corrupt(`a Map or Set key has tag ${tag as number}, which no key has`)
  const ref = heap.record(heap.u32[(at + Slot.Payload) >>> 2]!, Tag.Array)
  // encode nests tuples at most MAX_TUPLE_DEPTH deep: deeper is a cycle a stray write made.
  if (depth >= MAX_TUPLE_DEPTH) throw corrupt(`array record ${ref}: a tuple key nested more than ${MAX_TUPLE_DEPTH} deep`)
  checkHeader(heap, ref, Arr.Size, 'array')
  const length = checkedArrayLength(heap, ref)
  const items = heap.u32[(ref + Arr.Items) >>> 2]!
  const out: unknown[] = new Array(length)
  for (let i = 0; i < length; i++) out[i] = readKey(heap, items + i * SLOT_SIZE, depth + 1)
  return Object.freeze(out)
}

export function readRecord(heap: Heap, tag: Tag, ref: number, mapped: boolean, memo?: Memo): unknown {
  switch (tag) {
    case Tag.String:
      return readStringRecord(heap, ref)
    case Tag.BigInt:
      return readBigInt(heap, ref)
    case Tag.RegExp: {
      const text = readStringRecord(heap, ref, Tag.RegExp)
      const slash = text.indexOf('/')
      if (slash < 0) throw corrupt(`RegExp record ${ref} has no '/' between flags and source`)
      try {
        return new RegExp(text.slice(slash + 1), text.slice(0, slash))
      } catch (err) {
        throw corrupt(`RegExp record ${ref} does not hold a valid pattern (${(err as Error).message})`)
      }
    }
    case Tag.Binary:
      return mapped ? readBinary(heap, ref, true) : copyOnce(ref, memo, () => readBinary(heap, ref, false))
    case Tag.Serialized: {
      heap.record(ref, Tag.Serialized)
      const bytes = binaryCopy(heap, binaryBytes(heap, ref))
      try {
        return v8Deserialize(bytes)
      } catch (err) {
        if (err instanceof ShmError) throw err
        throw corrupt(`v8-serialized record ${ref} cannot be deserialized (${(err as Error).message})`)
      }
    }
    case Tag.Struct:
      return mapped ? readStruct(heap, ref, true) : copyOnce(ref, memo, () => readStruct(heap, ref, false))
    case Tag.Array: {
      heap.record(ref, Tag.Array)
      if (!mapped) return copyArray(heap, ref, memo ?? new Map())
      // Checked on every hand-out, cached or not: another process may have changed it since.
      checkArrayBounds(heap, ref)
      return heap.cachedView(ref) ?? heap.cacheView(ref, viewFactories().mapArray(heap, ref))
    }
    case Tag.Object:
    case Tag.Map:
    case Tag.Set:
    case Tag.Error:
      heap.record(ref, tag)
      if (mapped && tag !== Tag.Error) {
        checkTableBounds(heap, ref)
        const known = heap.cachedView(ref)
        if (known !== undefined) return known
        const view = tag === Tag.Object ? viewFactories().mapObject(heap, ref, (heap.flagsOf(ref) & RecFlag.NullProto) !== 0 ? null : Object.prototype) : viewFactories().mapTable(heap, ref, tag)
        return heap.cacheView(ref, view)
      }
      return copyTable(heap, ref, tag, memo ?? new Map())
    case Tag.Instance:
      return readInstance(heap, ref, mapped, memo ?? new Map())
    default:
      throw corrupt(`slot holds unknown tag ${tag as number}`)
  }
}

/** A copy of a record reachable twice is one object, as for containers (memo: this copy's records so far). */
function copyOnce(ref: number, memo: Memo | undefined, copy: () => unknown): unknown {
  if (memo === undefined) return copy()
  const known = memo.get(ref)
  if (known !== undefined) return known
  const out = copy()
  memo.set(ref, out)
  return out
}

/**
 * Before a live view is handed out: its header, items block and length agree, so
 * the container code's index arithmetic stays inside the items block.
 */
function checkArrayBounds(heap: Heap, ref: number): void {
  checkHeader(heap, ref, Arr.Size, 'array')
  const length = heap.u32[(ref + Arr.Length) >>> 2]!
  const capacity = heap.u32[(ref + Arr.Capacity) >>> 2]!
  if (length > capacity) throw corrupt(`array record ${ref}: Length = ${length} is over its Capacity ${capacity}`)
  if (capacity > 0) checkFits(heap, heap.u32[(ref + Arr.Items) >>> 2]!, 0, capacity, SLOT_SIZE, 'array', ref, 'Capacity')
}

/** The same for Map, Set and object tables: entries and buckets fit their blocks. */
function checkTableBounds(heap: Heap, ref: number): void {
  checkHeader(heap, ref, Hash.Size, 'table')
  const count = heap.u32[(ref + Hash.Count) >>> 2]!
  const used = heap.u32[(ref + Hash.Used) >>> 2]!
  const capacity = heap.u32[(ref + Hash.Capacity) >>> 2]!
  const bucketCount = heap.u32[(ref + Hash.BucketCount) >>> 2]!
  if (count > used || used > capacity) throw corrupt(`table record ${ref}: Count = ${count}, Used = ${used}, Capacity = ${capacity} (expected Count ≤ Used ≤ Capacity)`)
  if (bucketCount === 0 || (bucketCount & (bucketCount - 1)) !== 0) throw corrupt(`table record ${ref}: BucketCount = ${bucketCount} is not a power of two`)
  if (capacity > 0) checkFits(heap, heap.u32[(ref + Hash.Entries) >>> 2]!, 0, capacity, ENTRY_SIZE, 'table', ref, 'Capacity')
  checkFits(heap, heap.u32[(ref + Hash.Buckets) >>> 2]!, 0, bucketCount, 4, 'table', ref, 'BucketCount')
}

export function readBigInt(heap: Heap, ref: number): bigint {
  heap.record(ref, Tag.BigInt)
  const byteLength = heap.u32[(ref + Big.ByteLength) >>> 2]!
  checkFits(heap, ref, Big.Data, byteLength, 1, 'bigint', ref, 'ByteLength')
  // V8 caps BigInts at 2^30 bits: a longer magnitude was never written by encode.
  if (byteLength > MAX_BIGINT_BYTES) throw corrupt(`bigint record ${ref} claims ${byteLength} bytes, more than any BigInt holds`)
  const sign = heap.u8[ref + Big.Sign]
  if (sign > 1) throw corrupt(`bigint record ${ref} has sign word ${sign}`)
  let hex = ''
  for (let i = byteLength - 1; i >= 0; i--) hex += heap.u8[ref + Big.Data + i]!.toString(16).padStart(2, '0')
  const magnitude = hex === '' ? 0n : BigInt('0x' + hex)
  return sign === 1 ? -magnitude : magnitude
}

const MAX_BIGINT_BYTES = 2 ** 27

/** The bytes of a Binary (or Serialized) record, as a view over the segment. */
export function binaryBytes(heap: Heap, ref: number): Uint8Array {
  const byteLength = heap.u32[(ref + Bin.ByteLength) >>> 2]!
  checkFits(heap, ref, Bin.Data, byteLength, 1, 'binary', ref, 'ByteLength')
  return heap.u8.subarray(ref + Bin.Data, ref + Bin.Data + byteLength)
}

/** A private copy of a binary record's bytes (the bulk path of the addon for large ones). */
function binaryCopy(heap: Heap, bytes: Uint8Array): Uint8Array {
  return heap.segment.copyOut(bytes.byteOffset - heap.u8.byteOffset, bytes.byteLength)
}

/** Mapped: a view over the segment (zero-copy). Copy: a fresh value of the same type. */
export function readBinary(heap: Heap, ref: number, mapped: boolean): unknown {
  heap.record(ref, Tag.Binary)
  const kind = heap.u8[ref + Bin.Kind] as BinaryKind
  const bytes = binaryBytes(heap, ref)
  if (kind === BinaryKind.ArrayBuffer) return binaryCopy(heap, bytes).buffer
  if (mapped) {
    const known = heap.cachedView(ref)
    if (known !== undefined) return known
  }
  if (kind === BinaryKind.Buffer) {
    const NodeBuffer = (globalThis as { Buffer?: { from(b: ArrayBufferLike, o: number, l: number): Uint8Array } }).Buffer
    const src = mapped ? bytes : binaryCopy(heap, bytes)
    const view = NodeBuffer ? NodeBuffer.from(src.buffer, src.byteOffset, src.byteLength) : src
    return mapped ? mappedByteView(heap, ref, view) : view
  }
  const entry = BINARY_VIEWS[kind]
  if (entry === undefined) throw corrupt(`binary record ${ref} has unknown kind ${kind as number}`)
  const [Ctor, width] = entry
  if (bytes.byteLength % width !== 0) throw corrupt(`binary record ${ref} has ${bytes.byteLength} bytes, not a multiple of ${width}`)
  const src = mapped ? bytes : binaryCopy(heap, bytes)
  const view = new Ctor(src.buffer as ArrayBuffer, src.byteOffset, Ctor === (DataView as unknown) ? src.byteLength : src.byteLength / width)
  return mapped ? mappedByteView(heap, ref, view) : view
}

/** A TypedArray or struct view of record `ref` becomes the one this process hands out. */
function mappedByteView<T extends object>(heap: Heap, ref: number, view: T): T {
  return heap.cacheView(ref, registerByteView(view, heap, ref))
}

function readStruct(heap: Heap, ref: number, mapped: boolean): unknown {
  heap.record(ref, Tag.Struct)
  const fingerprint = heap.u32[(ref + StructRec.Fingerprint) >>> 2]!
  const byteLength = heap.u32[(ref + StructRec.ByteLength) >>> 2]!
  checkFits(heap, ref, StructRec.Data, byteLength, 1, 'struct', ref, 'ByteLength')
  const type = structTypeOf(fingerprint)
  if (type === undefined) {
    throw new ShmError('ERR_UNSUPPORTED_TYPE', `a struct with fingerprint 0x${fingerprint.toString(16)} was shared, but no defineStruct schema with that layout exists in this process: define the same schema here`)
  }
  if (type.byteLength !== byteLength) throw corrupt(`struct record ${ref} holds ${byteLength} bytes, its schema needs ${type.byteLength}`)
  if (!mapped) return type.view(heap.segment.copyOut(ref + StructRec.Data, byteLength), 0)
  const known = heap.cachedView(ref)
  if (known !== undefined) return known
  // Its own guard: every field access checks the turn and this record's generation.
  const generation = heap.generationOf(ref)
  return mappedByteView(heap, ref, type.view(heap.u8, ref + StructRec.Data, { check: () => heap.checkView(ref, generation) }))
}

function copyArray(heap: Heap, ref: number, memo: Memo): unknown[] {
  const known = memo.get(ref)
  if (known !== undefined) return known as unknown[]
  checkHeader(heap, ref, Arr.Size, 'array')
  const length = checkedArrayLength(heap, ref)
  const items = heap.u32[(ref + Arr.Items) >>> 2]!
  const out: unknown[] = new Array(length)
  memo.set(ref, out)
  for (let i = 0; i < length; i++) {
    const at = items + i * SLOT_SIZE
    if (heap.i32[at >>> 2] !== Tag.Hole) out[i] = readSlot(heap, at, false, memo)
  }
  return out
}

/** Calls `fn(keySlot, valueSlot)` for each live entry, in insertion order. */
export function forEachEntry(heap: Heap, ref: number, fn: (keyAt: number, valueAt: number) => void): void {
  checkHeader(heap, ref, Hash.Size, 'table')
  const used = checkedTableUsed(heap, ref)
  const entries = heap.u32[(ref + Hash.Entries) >>> 2]!
  for (let i = 0; i < used; i++) {
    const e = entries + i * ENTRY_SIZE
    if ((heap.u32[(e + Entry.Flags) >>> 2]! & 1) === 0) fn(e + Entry.Key, e + Entry.Value)
  }
}

function copyTable(heap: Heap, ref: number, tag: Tag, memo: Memo, into?: object): unknown {
  const known = memo.get(ref)
  if (known !== undefined) return known
  if (tag === Tag.Map) {
    const out = new Map<unknown, unknown>()
    memo.set(ref, out)
    forEachEntry(heap, ref, (k, v) => out.set(readKey(heap, k), readSlot(heap, v, false, memo)))
    return out
  }
  if (tag === Tag.Set) {
    const out = new Set<unknown>()
    memo.set(ref, out)
    forEachEntry(heap, ref, (k) => out.add(readKey(heap, k)))
    return out
  }
  const out = into ?? (tag === Tag.Error ? new Error() : (heap.flagsOf(ref) & RecFlag.NullProto) !== 0 ? Object.create(null) as object : {})
  memo.set(ref, out)
  forEachEntry(heap, ref, (k, v) => {
    // encode only writes string keys here; String() of anything else could call
    // into the value (or throw a TypeError for a null-prototype object).
    if (heap.i32[k >>> 2] !== Tag.String) throw corrupt(`${tag === Tag.Error ? 'error' : 'object'} record ${ref} has a key of tag ${heap.i32[k >>> 2]}, expected a string`)
    const key = readStringRecord(heap, heap.u32[(k + Slot.Payload) >>> 2]!)
    const value = readSlot(heap, v, false, memo)
    // Assignment for a plain object's ordinary keys (defineProperty takes V8's slow path,
    // on every key of every copy). defineProperty for the rest: a "__proto__" key must
    // stay an ordinary property, a registered class's prototype may have setters, and
    // an Error's name, message, stack and cause are not enumerable.
    if (into === undefined && tag === Tag.Object && key !== '__proto__') (out as Record<string, unknown>)[key] = value
    else {
      const hidden = tag === Tag.Error && (key === 'name' || key === 'message' || key === 'stack' || key === 'cause')
      Object.defineProperty(out, key, { value, writable: true, enumerable: !hidden, configurable: true })
    }
  })
  return out
}

function readInstance(heap: Heap, ref: number, mapped: boolean, memo: Memo): unknown {
  heap.record(ref, Tag.Instance)
  const known = memo.get(ref)
  if (known !== undefined) return known
  checkHeader(heap, ref, Inst.Size, 'instance')
  const name = readStringRecord(heap, heap.u32[(ref + Inst.ClassName) >>> 2]!)
  const proto = prototypeOfClass(name)
  if (proto === undefined) {
    throw new ShmError('ERR_UNSUPPORTED_TYPE', `an instance of class "${name}" was shared, but this process has not registered it: call registerClass(${name}) here too`)
  }
  const fields = heap.record(heap.u32[(ref + Inst.Fields) >>> 2]!, Tag.Object)
  if (mapped) {
    checkTableBounds(heap, fields)
    const view = heap.cachedView(ref)
    if (view !== undefined) return view
    return heap.cacheView(ref, viewFactories().mapObject(heap, fields, proto, ref))
  }
  const out = Object.create(proto) as object
  memo.set(ref, out)
  return copyTable(heap, fields, Tag.Object, memo, out)
}
