// Which binary value is which BinaryKind (records.ts), and back: the one table the
// segment's Binary records (encode.ts, decode.ts) and message frames (frame.ts) share.
import { BinaryKind } from '../records'

export type ViewCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView

/**
 * [constructor, element size] per BinaryKind. ArrayBuffer and Buffer are read as bytes
 * ([Uint8Array, 1]) and made into their own kind by the reader; V8 has no entry.
 */
export const BINARY_VIEWS: ReadonlyArray<readonly [ViewCtor, number] | undefined> = (() => {
  const t: Array<readonly [ViewCtor, number] | undefined> = []
  t[BinaryKind.Int8] = [Int8Array, 1]
  t[BinaryKind.Uint8] = [Uint8Array, 1]
  t[BinaryKind.Uint8Clamped] = [Uint8ClampedArray, 1]
  t[BinaryKind.Int16] = [Int16Array, 2]
  t[BinaryKind.Uint16] = [Uint16Array, 2]
  t[BinaryKind.Int32] = [Int32Array, 4]
  t[BinaryKind.Uint32] = [Uint32Array, 4]
  t[BinaryKind.Float32] = [Float32Array, 4]
  t[BinaryKind.Float64] = [Float64Array, 8]
  t[BinaryKind.BigInt64] = [BigInt64Array as unknown as ViewCtor, 8]
  t[BinaryKind.BigUint64] = [BigUint64Array as unknown as ViewCtor, 8]
  t[BinaryKind.DataView] = [DataView as unknown as ViewCtor, 1]
  t[BinaryKind.ArrayBuffer] = [Uint8Array, 1]
  t[BinaryKind.Buffer] = [Uint8Array, 1]
  return t
})()

/**
 * V8 keeps a TypedArray of at most this many bytes on its own heap (its flag
 * typed_array_max_size_in_heap): reading its `buffer` moves it into an ArrayBuffer of
 * its own first, ~0.5 µs. Writers copy such small ones as their own kind instead.
 */
export const ON_HEAP_MAX = 64

/** A TypedArray that is not a Uint8Array or DataView: what the writers copy as its own kind (isSmallTypedArray). */
export type SmallTypedArray = ArrayBufferView & ArrayLike<number | bigint> & { set(source: ArrayLike<number | bigint>): void }

/**
 * Whether `value` (of `kind`) is a TypedArray to copy as its own kind (small, not a
 * Uint8Array, whose bytes are read directly, nor a DataView, which always has its buffer).
 */
export function isSmallTypedArray(value: ArrayBufferView | ArrayBuffer, kind: BinaryKind): value is SmallTypedArray {
  return kind !== BinaryKind.Uint8 && kind < BinaryKind.DataView && (value as ArrayBufferView).byteLength <= ON_HEAP_MAX
}

/** Constructor → kind, for the view kinds (Int8 … DataView): a subclass is found through its parents. */
const kindOfCtor = new Map<unknown, BinaryKind>()
for (let kind = BinaryKind.Int8; kind <= BinaryKind.DataView; kind++) kindOfCtor.set(BINARY_VIEWS[kind]![0], kind)

/** The BinaryKind of a TypedArray, DataView, Buffer or ArrayBuffer; undefined for a view type this library does not know. */
export function binaryKindOf(value: ArrayBufferView | ArrayBuffer): BinaryKind | undefined {
  // The common case first, without the Buffer test and the map (a Buffer's constructor is Buffer).
  if (value.constructor === Uint8Array) return BinaryKind.Uint8
  if (value instanceof ArrayBuffer) return BinaryKind.ArrayBuffer
  const NodeBuffer = (globalThis as { Buffer?: { isBuffer(v: unknown): boolean } }).Buffer
  if (NodeBuffer?.isBuffer(value)) return BinaryKind.Buffer
  let ctor = value.constructor
  while (ctor !== undefined && ctor !== Object) {
    const kind = kindOfCtor.get(ctor)
    if (kind !== undefined) return kind
    ctor = Object.getPrototypeOf(ctor) as typeof ctor
  }
  return undefined
}
