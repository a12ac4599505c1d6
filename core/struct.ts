// Struct views: a schema of fixed fields compiled to accessors over bytes, laid out
// like a C struct so any process (or native code) that knows the schema reads the same
// bytes. Pure TypeScript without Node imports: renderers run this file too.
//
// Speed (Node 20): a float64 field does ~225M get+set/s with or without a guard, as fast
// as a bare Float64Array, when the view's accessors stay monomorphic.
// - Accessors are closures over precomputed offsets, installed on one prototype per
//   (struct, buffer, offset residue, guarded) and reading aligned TypedArrays that
//   span the whole buffer. TurboFan inlines such getters at a monomorphic call site.
// - V8 shares one feedback vector among all closures created from the same function
//   literal. A single generic getter used for Float64Array and Int32Array fields goes
//   megamorphic on element kinds and runs ~20x slower, so every scalar kind below has
//   its own literals (the `cells` table) even though they look alike.
// - The same sharing means one kind's getters see the prototypes of every struct type
//   in the process; past four, reading the view's offset goes megamorphic (~40M/s was
//   measured with nine). Minting fresh literals would need eval; for bulk work use
//   StructArray columns, which are plain TypedArrays.
// - No `new Function`/eval: renderer CSP forbids it.
import { ShmError } from './errors'
import { decodeUtf8 as decodeUtf8Bytes } from './utf8'

// ---------------------------------------------------------------------------
// Public types

export type IntegerType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32'
export type BigIntType = 'int64' | 'uint64'
export type FloatType = 'float32' | 'float64'
export type NumericType = IntegerType | BigIntType | FloatType
export type ScalarType = NumericType | 'bool'

/** The TypedArray a numeric field kind maps to. */
export interface TypedArrayFor {
  int8: Int8Array
  uint8: Uint8Array
  int16: Int16Array
  uint16: Uint16Array
  int32: Int32Array
  uint32: Uint32Array
  int64: BigInt64Array
  uint64: BigUint64Array
  float32: Float32Array
  float64: Float64Array
}

/** Something that throws (ERR_SHM_NO_TURN, ERR_SHM_CLOSED…) when shared memory may not be touched now. */
export interface TurnGuard {
  check(): void
}

/** `utf8(n)`: a string stored in exactly n bytes, NUL-padded. */
export interface Utf8Spec {
  readonly kind: 'utf8'
  readonly byteLength: number
}

export type ArrayElement = NumericType | StructTypeBase

/** `array(type, n)`: n elements stored inline. */
export interface ArraySpec<E extends ArrayElement = ArrayElement> {
  readonly kind: 'array'
  readonly element: E
  readonly length: number
}

export type FieldSpec = ScalarType | Utf8Spec | ArraySpec | StructTypeBase

export interface Schema {
  readonly [field: string]: FieldSpec
}

interface FieldCommon {
  readonly name: string
  /** Bytes from the start of the struct. */
  readonly offset: number
  readonly byteLength: number
  readonly alignment: number
}
export interface ScalarField extends FieldCommon {
  readonly kind: ScalarType
}
export interface Utf8Field extends FieldCommon {
  readonly kind: 'utf8'
}
export interface ArrayField extends FieldCommon {
  readonly kind: 'array'
  readonly element: ArrayElement
  readonly length: number
  readonly elementByteLength: number
}
export interface NestedField extends FieldCommon {
  readonly kind: 'struct'
  readonly struct: StructTypeBase
}
/** One field of a compiled struct: enough for other modules to address it themselves. */
export type StructField = ScalarField | Utf8Field | ArrayField | NestedField

/** What every struct type has, whatever its schema. */
export interface StructTypeBase {
  readonly name: string
  /** Padded to `alignment`, like C's sizeof. */
  readonly byteLength: number
  readonly alignment: number
  /** FNV-1a (u32) of `signature`: equal in every process for the same name and layout. */
  readonly fingerprint: number
  /** The canonical text of name and layout that `fingerprint` hashes. */
  readonly signature: string
  readonly fields: readonly StructField[]
  /** A live view at `byteOffset` in `bytes` (typed precisely on StructType). */
  view(bytes: Uint8Array, byteOffset?: number, guard?: TurnGuard): object
}

export type ScalarValue<T extends ScalarType> = T extends BigIntType ? bigint : T extends 'bool' ? boolean : number

/** The type a view's property has for a field spec. */
export type FieldValue<F> = F extends ScalarType
  ? ScalarValue<F>
  : F extends Utf8Spec
    ? string
    : F extends ArraySpec<infer E>
      ? E extends NumericType
        ? TypedArrayFor[E]
        : E extends StructType<infer T extends Schema>
          ? ReadonlyArray<StructInstance<T>>
          : never
      : F extends StructType<infer T extends Schema>
        ? StructInstance<T>
        : never

/** The type a plain copy (`read`, `toJSON`) has for a field spec. */
export type PlainValue<F> = F extends ScalarType
  ? ScalarValue<F>
  : F extends Utf8Spec
    ? string
    : F extends ArraySpec<infer E>
      ? E extends BigIntType
        ? bigint[]
        : E extends NumericType
          ? number[]
          : E extends StructType<infer T extends Schema>
            ? StructPlain<T>[]
            : never
      : F extends StructType<infer T extends Schema>
        ? StructPlain<T>
        : never

/** What `write` accepts for a field spec: arrays may be shorter than the field (TypedArray.set semantics). */
export type InitValue<F> = F extends ScalarType
  ? ScalarValue<F>
  : F extends Utf8Spec
    ? string
    : F extends ArraySpec<infer E>
      ? E extends BigIntType
        ? ArrayLike<bigint>
        : E extends NumericType
          ? ArrayLike<number>
          : E extends StructType<infer T extends Schema>
            ? ArrayLike<StructInit<T>>
            : never
      : F extends StructType<infer T extends Schema>
        ? StructInit<T>
        : never

type AssignableName<S> = { [K in keyof S]: S[K] extends ScalarType | Utf8Spec ? K : never }[keyof S]
type ColumnName<S> = { [K in keyof S]: S[K] extends NumericType ? K : never }[keyof S]

/**
 * A live view: reading a property reads shared memory, assigning writes it. Arrays and
 * nested structs are views too (assign their elements/fields, or use `write`).
 */
export type StructInstance<S extends Schema> = {
  -readonly [K in AssignableName<S>]: FieldValue<S[K]>
} & {
  readonly [K in Exclude<keyof S, AssignableName<S>>]: FieldValue<S[K]>
} & {
  /** A plain copy, detached from shared memory. */
  toJSON(): StructPlain<S>
}

export type StructPlain<S extends Schema> = { -readonly [K in keyof S]: PlainValue<S[K]> }
export type StructInit<S extends Schema> = { -readonly [K in keyof S]?: InitValue<S[K]> }

export interface StructType<S extends Schema> extends StructTypeBase {
  /** The schema as given (frozen copy). */
  readonly schema: S
  /** A live view of the struct at `bytes.byteOffset + byteOffset` in `bytes.buffer`. */
  view(bytes: Uint8Array, byteOffset?: number, guard?: TurnGuard): StructInstance<S>
  /** A plain copy of the struct stored at `byteOffset`. */
  read(bytes: Uint8Array, byteOffset?: number): StructPlain<S>
  /** Writes the given fields, leaves the others as they are. Checks every key and string first. */
  write(bytes: Uint8Array, byteOffset: number, value: StructInit<S>): void
}

// ---------------------------------------------------------------------------
// Memory: one set of whole-buffer views per ArrayBuffer, shared by every struct

interface Memory {
  readonly buffer: ArrayBufferLike
  readonly dv: DataView
  readonly u8: Uint8Array
  readonly arrays: { readonly [K in NumericType]: TypedArrayFor[K] }
}

const memories = new WeakMap<ArrayBufferLike, Memory>()

function memoryOf(buffer: ArrayBufferLike): Memory {
  let mem = memories.get(buffer)
  if (mem !== undefined) return mem
  const n = buffer.byteLength
  const u8 = new Uint8Array(buffer)
  mem = {
    buffer,
    dv: new DataView(buffer),
    u8,
    // Whole-buffer views so an element index is (absolute byte offset) / size.
    arrays: {
      int8: new Int8Array(buffer),
      uint8: u8,
      int16: new Int16Array(buffer, 0, Math.floor(n / 2)),
      uint16: new Uint16Array(buffer, 0, Math.floor(n / 2)),
      int32: new Int32Array(buffer, 0, Math.floor(n / 4)),
      uint32: new Uint32Array(buffer, 0, Math.floor(n / 4)),
      int64: new BigInt64Array(buffer, 0, Math.floor(n / 8)),
      uint64: new BigUint64Array(buffer, 0, Math.floor(n / 8)),
      float32: new Float32Array(buffer, 0, Math.floor(n / 4)),
      float64: new Float64Array(buffer, 0, Math.floor(n / 8)),
    },
  }
  memories.set(buffer, mem)
  return mem
}

// ---------------------------------------------------------------------------
// Per-instance slots. Symbols, so no field name can shadow them.

const BASE = Symbol('base') // struct view: absolute byte offset in the buffer; row view: row index
const GUARD = Symbol('guard')
const CACHE = Symbol('cache') // nested views and TypedArrays, built on first access

interface Slots {
  [BASE]: number
  [GUARD]: TurnGuard | undefined
  [CACHE]: unknown[] | undefined
}

// Views are Object.create(prototype) rather than instances of a class per prototype: tools
// that keep function names (tsx, esbuild keepNames) redefine each class's `name`, and
// then V8 threw away the shared constructor's optimized code on every call (views got
// 20x slower to create).
function makeView(proto: object, base: number, guard: TurnGuard | undefined): Slots {
  const v = Object.create(proto) as Slots
  v[BASE] = base
  v[GUARD] = guard
  v[CACHE] = undefined
  return v
}

// ---------------------------------------------------------------------------
// Scalar cells: one literal per kind and addressing mode (see the note at the top).
// aos: element index (this[BASE] + offset) / size, the absolute offset being aligned.
// soa: element index first + row, for StructArray columns.

interface Cell<V> {
  get(this: Slots): V
  set(this: Slots, value: V): void
}
interface CellMaker<A, V> {
  aos(T: A, offset: number): Cell<V>
  aosGuarded(T: A, offset: number): Cell<V>
  soa(T: A, first: number): Cell<V>
  soaGuarded(T: A, first: number): Cell<V>
}

const int8Cells: CellMaker<Int8Array, number> = {
  aos: (T, o) => ({ get() { return T[this[BASE] + o] }, set(v) { T[this[BASE] + o] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[this[BASE] + o] }, set(v) { this[GUARD]!.check(); T[this[BASE] + o] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const uint8Cells: CellMaker<Uint8Array, number> = {
  aos: (T, o) => ({ get() { return T[this[BASE] + o] }, set(v) { T[this[BASE] + o] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[this[BASE] + o] }, set(v) { this[GUARD]!.check(); T[this[BASE] + o] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const boolCells: CellMaker<Uint8Array, boolean> = {
  aos: (T, o) => ({ get() { return T[this[BASE] + o] !== 0 }, set(v) { T[this[BASE] + o] = v ? 1 : 0 } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[this[BASE] + o] !== 0 }, set(v) { this[GUARD]!.check(); T[this[BASE] + o] = v ? 1 : 0 } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] !== 0 }, set(v) { T[k + this[BASE]] = v ? 1 : 0 } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] !== 0 }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v ? 1 : 0 } }),
}
const int16Cells: CellMaker<Int16Array, number> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 2] }, set(v) { T[(this[BASE] + o) / 2] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 2] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 2] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const uint16Cells: CellMaker<Uint16Array, number> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 2] }, set(v) { T[(this[BASE] + o) / 2] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 2] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 2] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const int32Cells: CellMaker<Int32Array, number> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 4] }, set(v) { T[(this[BASE] + o) / 4] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 4] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 4] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const uint32Cells: CellMaker<Uint32Array, number> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 4] }, set(v) { T[(this[BASE] + o) / 4] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 4] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 4] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const float32Cells: CellMaker<Float32Array, number> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 4] }, set(v) { T[(this[BASE] + o) / 4] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 4] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 4] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const float64Cells: CellMaker<Float64Array, number> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 8] }, set(v) { T[(this[BASE] + o) / 8] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 8] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 8] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const int64Cells: CellMaker<BigInt64Array, bigint> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 8] }, set(v) { T[(this[BASE] + o) / 8] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 8] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 8] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}
const uint64Cells: CellMaker<BigUint64Array, bigint> = {
  aos: (T, o) => ({ get() { return T[(this[BASE] + o) / 8] }, set(v) { T[(this[BASE] + o) / 8] = v } }),
  aosGuarded: (T, o) => ({ get() { this[GUARD]!.check(); return T[(this[BASE] + o) / 8] }, set(v) { this[GUARD]!.check(); T[(this[BASE] + o) / 8] = v } }),
  soa: (T, k) => ({ get() { return T[k + this[BASE]] }, set(v) { T[k + this[BASE]] = v } }),
  soaGuarded: (T, k) => ({ get() { this[GUARD]!.check(); return T[k + this[BASE]] }, set(v) { this[GUARD]!.check(); T[k + this[BASE]] = v } }),
}

type AnyTypedArray = TypedArrayFor[NumericType]
type ScalarJs = number | bigint | boolean

interface ScalarInfo {
  readonly size: number
  /** The whole-buffer array the cells index. */
  readonly array: NumericType
  readonly cells: CellMaker<AnyTypedArray, ScalarJs>
  // DataView access: for unaligned fields and for plain read/write, which work on any offset.
  read(dv: DataView, at: number): ScalarJs
  write(dv: DataView, at: number, value: unknown): void
}

// Values convert exactly as a TypedArray element assignment would (ToNumber/ToBigInt, wrap-around).
const SCALARS: { readonly [K in ScalarType]: ScalarInfo } = {
  int8: { size: 1, array: 'int8', cells: int8Cells, read: (dv, at) => dv.getInt8(at), write: (dv, at, v) => dv.setInt8(at, v as number) },
  uint8: { size: 1, array: 'uint8', cells: uint8Cells, read: (dv, at) => dv.getUint8(at), write: (dv, at, v) => dv.setUint8(at, v as number) },
  bool: { size: 1, array: 'uint8', cells: boolCells, read: (dv, at) => dv.getUint8(at) !== 0, write: (dv, at, v) => dv.setUint8(at, v ? 1 : 0) },
  int16: { size: 2, array: 'int16', cells: int16Cells, read: (dv, at) => dv.getInt16(at, true), write: (dv, at, v) => dv.setInt16(at, v as number, true) },
  uint16: { size: 2, array: 'uint16', cells: uint16Cells, read: (dv, at) => dv.getUint16(at, true), write: (dv, at, v) => dv.setUint16(at, v as number, true) },
  int32: { size: 4, array: 'int32', cells: int32Cells, read: (dv, at) => dv.getInt32(at, true), write: (dv, at, v) => dv.setInt32(at, v as number, true) },
  uint32: { size: 4, array: 'uint32', cells: uint32Cells, read: (dv, at) => dv.getUint32(at, true), write: (dv, at, v) => dv.setUint32(at, v as number, true) },
  float32: { size: 4, array: 'float32', cells: float32Cells, read: (dv, at) => dv.getFloat32(at, true), write: (dv, at, v) => dv.setFloat32(at, v as number, true) },
  float64: { size: 8, array: 'float64', cells: float64Cells, read: (dv, at) => dv.getFloat64(at, true), write: (dv, at, v) => dv.setFloat64(at, v as number, true) },
  int64: { size: 8, array: 'int64', cells: int64Cells, read: (dv, at) => dv.getBigInt64(at, true), write: (dv, at, v) => dv.setBigInt64(at, v as bigint, true) },
  uint64: { size: 8, array: 'uint64', cells: uint64Cells, read: (dv, at) => dv.getBigUint64(at, true), write: (dv, at, v) => dv.setBigUint64(at, v as bigint, true) },
}

const TYPED_ARRAY_CTORS: { readonly [K in NumericType]: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TypedArrayFor[K] } = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
}

function isScalarType(t: unknown): t is ScalarType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(SCALARS, t)
}
function isNumericType(t: unknown): t is NumericType {
  return isScalarType(t) && t !== 'bool'
}

// ---------------------------------------------------------------------------
// UTF-8

const encoder = new TextEncoder()

function decodeUtf8(mem: Memory, start: number, capacity: number): string {
  const u8 = mem.u8
  const limit = start + capacity
  let end = start
  let ascii = true
  while (end < limit) {
    const b = u8[end]
    if (b === 0) break
    if (b >= 0x80) ascii = false
    end++
  }
  // Short ASCII is the common case (names, tags); a TextDecoder call costs more than building it.
  if (ascii && end - start <= 32) {
    let s = ''
    for (let i = start; i < end; i++) s += String.fromCharCode(u8[i])
    return s
  }
  return decodeUtf8Bytes(u8.subarray(start, end))
}

/** The UTF-8 bytes of `value`, or undefined for pure ASCII (written without an encoder). Throws if it cannot be stored. */
function utf8Bytes(value: unknown, capacity: number, label: string): Uint8Array | undefined {
  if (typeof value !== 'string') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${label} is a utf8(${capacity}) field and takes a string, got ${describe(value)}`)
  }
  const n = value.length
  if (n <= capacity) {
    let i = 0
    while (i < n) {
      const c = value.charCodeAt(i)
      if (c === 0 || c >= 0x80) break
      i++
    }
    if (i === n) return undefined
  }
  const bytes = encoder.encode(value)
  if (bytes.length > capacity) {
    throw new ShmError(
      'ERR_INVALID_ARGUMENT',
      `${label} holds at most ${capacity} bytes of UTF-8, but ${JSON.stringify(preview(value))} needs ${bytes.length}; shorten the string or declare the field as utf8(${bytes.length}) or larger`,
    )
  }
  if (bytes.includes(0)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${label}: the string contains a NUL character (\\u0000), which marks the end of a utf8 field and would cut it short; remove it or store the text in a uint8 array`)
  }
  return bytes
}

function writeUtf8(mem: Memory, start: number, capacity: number, value: unknown, label: string): void {
  const bytes = utf8Bytes(value, capacity, label)
  const u8 = mem.u8
  let n: number
  if (bytes === undefined) {
    const s = value as string
    n = s.length
    for (let i = 0; i < n; i++) u8[start + i] = s.charCodeAt(i)
  } else {
    n = bytes.length
    u8.set(bytes, start)
  }
  // Zero the rest, so the bytes do not depend on what was stored before.
  if (n < capacity) u8.fill(0, start + n, start + capacity)
}

function preview(s: string): string {
  return s.length > 40 ? s.slice(0, 37) + '...' : s
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(preview(value))}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

// ---------------------------------------------------------------------------
// Plain copies: DataView on any offset, no views built (read/write may be called on
// many short-lived buffers, which must not each get compiled accessors).

function readStruct(type: StructTypeImpl, mem: Memory, abs: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of type.fields) out[f.name] = readField(f, mem, abs + f.offset)
  return out
}

function readField(f: StructField, mem: Memory, abs: number): unknown {
  switch (f.kind) {
    case 'utf8':
      return decodeUtf8(mem, abs, f.byteLength)
    case 'struct':
      return readStruct(f.struct as StructTypeImpl, mem, abs)
    case 'array': {
      const out: unknown[] = new Array(f.length)
      const el = f.element
      if (typeof el === 'string') {
        const info = SCALARS[el]
        for (let i = 0; i < f.length; i++) out[i] = info.read(mem.dv, abs + i * info.size)
      } else {
        for (let i = 0; i < f.length; i++) out[i] = readStruct(el as StructTypeImpl, mem, abs + i * el.byteLength)
      }
      return out
    }
    default:
      return SCALARS[f.kind].read(mem.dv, abs)
  }
}

/** Rejects anything `writeStruct` would fail on halfway, so a failed write changes nothing. */
function checkInit(type: StructTypeImpl, value: unknown, label: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${label} takes an object with some of the fields ${fieldList(type)}, got ${describe(value)}`)
  }
  for (const key of Object.keys(value)) {
    const f = type.fieldByName.get(key)
    if (f === undefined) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `${label} has no field "${key}"; its fields are ${fieldList(type)}`)
    }
    checkFieldInit(f, (value as Record<string, unknown>)[key], `${label}.${key}`)
  }
}

function checkFieldInit(f: StructField, v: unknown, label: string): void {
  switch (f.kind) {
    case 'utf8':
      utf8Bytes(v, f.byteLength, label)
      return
    case 'struct':
      checkInit(f.struct as StructTypeImpl, v, label)
      return
    case 'array': {
      const len = (v as ArrayLike<unknown> | null)?.length
      if (typeof v !== 'object' || v === null || typeof len !== 'number') {
        throw new ShmError('ERR_INVALID_ARGUMENT', `${label} takes an array (or TypedArray) of up to ${f.length} elements, got ${describe(v)}`)
      }
      if (len > f.length) {
        throw new ShmError('ERR_INVALID_ARGUMENT', `${label} holds ${f.length} elements, got ${len}; pass at most ${f.length}`)
      }
      const el = f.element
      if (typeof el !== 'string') {
        for (let i = 0; i < len; i++) checkInit(el as StructTypeImpl, (v as ArrayLike<unknown>)[i], `${label}[${i}]`)
      }
      return
    }
    default:
      return
  }
}

function writeStruct(type: StructTypeImpl, mem: Memory, abs: number, value: object, label: string): void {
  for (const key of Object.keys(value)) {
    const f = type.fieldByName.get(key)!
    writeField(f, mem, abs + f.offset, (value as Record<string, unknown>)[key], `${label}.${key}`)
  }
}

function writeField(f: StructField, mem: Memory, abs: number, v: unknown, label: string): void {
  switch (f.kind) {
    case 'utf8':
      writeUtf8(mem, abs, f.byteLength, v, label)
      return
    case 'struct':
      writeStruct(f.struct as StructTypeImpl, mem, abs, v as object, label)
      return
    case 'array': {
      const src = v as ArrayLike<unknown>
      const el = f.element
      if (typeof el === 'string') {
        const info = SCALARS[el]
        for (let i = 0; i < src.length; i++) info.write(mem.dv, abs + i * info.size, src[i])
      } else {
        for (let i = 0; i < src.length; i++) writeStruct(el as StructTypeImpl, mem, abs + i * el.byteLength, src[i] as object, `${label}[${i}]`)
      }
      return
    }
    default:
      SCALARS[f.kind].write(mem.dv, abs, v)
  }
}

function fieldList(type: StructTypeBase): string {
  return type.fields.map((f) => f.name).join(', ')
}

// ---------------------------------------------------------------------------
// Accessors for everything that is not an aligned scalar. The field's absolute offset
// is start + this[BASE] * stride: struct views use (offset, 1), row views (column, size).

function unalignedScalar(info: ScalarInfo, dv: DataView, start: number, stride: number, guarded: boolean): PropertyDescriptor {
  if (!guarded) {
    return {
      get(this: Slots) { return info.read(dv, start + this[BASE] * stride) },
      set(this: Slots, v: unknown) { info.write(dv, start + this[BASE] * stride, v) },
    }
  }
  return {
    get(this: Slots) { this[GUARD]!.check(); return info.read(dv, start + this[BASE] * stride) },
    set(this: Slots, v: unknown) { this[GUARD]!.check(); info.write(dv, start + this[BASE] * stride, v) },
  }
}

function utf8Accessor(mem: Memory, start: number, stride: number, capacity: number, guarded: boolean, label: string): PropertyDescriptor {
  return {
    get(this: Slots) {
      if (guarded) this[GUARD]!.check()
      return decodeUtf8(mem, start + this[BASE] * stride, capacity)
    },
    set(this: Slots, v: unknown) {
      if (guarded) this[GUARD]!.check()
      writeUtf8(mem, start + this[BASE] * stride, capacity, v, label)
    },
  }
}

/** Nested structs, arrays: a view built on first access and kept in the instance's cache slot. */
function cachedAccessor(slot: number, start: number, stride: number, guarded: boolean, make: (abs: number, guard: TurnGuard | undefined) => unknown, label: string, hint: string): PropertyDescriptor {
  return {
    get(this: Slots) {
      if (guarded) this[GUARD]!.check()
      const cache = this[CACHE] ?? (this[CACHE] = [])
      let v = cache[slot]
      if (v === undefined) v = cache[slot] = make(start + this[BASE] * stride, this[GUARD])
      return v
    },
    set() {
      throw new ShmError('ERR_INVALID_ARGUMENT', `${label} is a view over shared memory and cannot be replaced; ${hint}`)
    },
  }
}

function fieldAccessor(type: StructTypeImpl, f: StructField, slot: number, mem: Memory, start: number, stride: number, guarded: boolean): PropertyDescriptor {
  const label = `${type.name}.${f.name}`
  switch (f.kind) {
    case 'utf8':
      return utf8Accessor(mem, start, stride, f.byteLength, guarded, label)
    case 'struct': {
      const nested = f.struct as StructTypeImpl
      return cachedAccessor(slot, start, stride, guarded, (abs, g) => nested.instantiate(mem, abs, g), label, `assign its fields (view.${f.name}.x = …) or use ${type.name}.write(bytes, offset, { ${f.name}: {…} })`)
    }
    case 'array': {
      const el = f.element
      const hint = `assign its elements (view.${f.name}[i] = …) or use ${type.name}.write(bytes, offset, { ${f.name}: […] })`
      if (typeof el === 'string') {
        const Ctor = TYPED_ARRAY_CTORS[el]
        const size = SCALARS[el].size
        return cachedAccessor(slot, start, stride, guarded, (abs) => {
          if (abs % size !== 0) {
            throw new ShmError('ERR_INVALID_ARGUMENT', `${label} starts at byte ${abs} of its buffer, not a multiple of ${size}, so it cannot be a ${Ctor.name} view; place ${type.name} at an offset that is a multiple of ${type.alignment}, or copy it with ${type.name}.read()`)
          }
          return new Ctor(mem.buffer, abs, f.length)
        }, label, hint)
      }
      const elType = el as StructTypeImpl
      return cachedAccessor(slot, start, stride, guarded, (abs, g) => {
        const items: unknown[] = []
        for (let i = 0; i < f.length; i++) items.push(elType.instantiate(mem, abs + i * elType.byteLength, g))
        return Object.freeze(items)
      }, label, hint)
    }
    default:
      return unalignedScalar(SCALARS[f.kind], mem.dv, start, stride, guarded)
  }
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom')

function finishPrototype(proto: object, name: string, toJSON: (this: Slots) => unknown): void {
  Object.defineProperty(proto, 'toJSON', { value: toJSON })
  Object.defineProperty(proto, Symbol.toStringTag, { value: name })
  // console.log shows the values, or says why it cannot (outside a turn, closed).
  Object.defineProperty(proto, INSPECT, {
    value(this: Slots) {
      try {
        return toJSON.call(this)
      } catch (err) {
        return `${name} <${(err as Error).message}>`
      }
    },
  })
}

// ---------------------------------------------------------------------------
// How other modules find structs: the codec stores a view as (fingerprint, bytes) and
// maps it back with the type of that fingerprint. Symbol.for, so core/codec can use the
// key without importing this file.

/** Struct views (not StructArray rows, whose bytes are not contiguous) answer `view[STRUCT_SOURCE]()`. */
export const STRUCT_SOURCE = Symbol.for('interprocess-objects.struct')

export interface StructSource {
  readonly fingerprint: number
  /** Exactly the struct's bytes, over the same memory as the view. */
  readonly bytes: Uint8Array
}

const typesByFingerprint = new Map<number, StructTypeImpl>()

/** The struct type defined in this process with that fingerprint (the first, if defined twice). */
export function structTypeByFingerprint(fingerprint: number): StructTypeBase | undefined {
  return typesByFingerprint.get(fingerprint)
}

// ---------------------------------------------------------------------------
// Schema compilation

const RESERVED = new Set<string>(['toJSON', 'then', ...Object.getOwnPropertyNames(Object.prototype)])

const TYPE_HINTS: Readonly<Record<string, string>> = {
  number: "'float64' (or an integer type such as 'int32')",
  double: "'float64'",
  float: "'float32'",
  int: "'int32'",
  uint: "'uint32'",
  long: "'int64'",
  bigint: "'int64' or 'uint64'",
  boolean: "'bool'",
  string: 'utf8(n) with a byte capacity n',
  utf8: 'utf8(n) with a byte capacity n',
  i8: "'int8'", u8: "'uint8'", i16: "'int16'", u16: "'uint16'", i32: "'int32'", u32: "'uint32'",
  i64: "'int64'", u64: "'uint64'", f32: "'float32'", f64: "'float64'",
}

const MAX_COUNT = 0x7fffffff

function checkCount(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_COUNT) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${what} must be a positive integer, got ${describe(n)}`)
  }
  return n
}

/** A string field of exactly `byteLength` bytes of UTF-8, NUL-padded; reads stop at the first NUL. */
export function utf8(byteLength: number): Utf8Spec {
  return Object.freeze({ kind: 'utf8' as const, byteLength: checkCount(byteLength, 'utf8(n): n') })
}

/**
 * `length` elements stored inline. Numeric elements read as a TypedArray over the same
 * memory; struct elements as a read-only array of views. A TypedArray cannot check a turn
 * guard: the guard is checked when the view hands it out, not on each element access.
 */
export function array<const E extends ArrayElement>(element: E, length: number): ArraySpec<E> {
  if (!isNumericType(element) && !(element instanceof StructTypeImpl)) {
    const hint = element === ('bool' as unknown) ? "; store flags as array('uint8', n)" : ''
    throw new ShmError('ERR_INVALID_ARGUMENT', `array(type, n): type must be a numeric type (int8 … float64) or a struct from defineStruct, got ${describe(element)}${hint}`)
  }
  return Object.freeze({ kind: 'array' as const, element, length: checkCount(length, 'array(type, n): n') })
}

interface Resolved {
  field: StructField
  /** The field's part of the canonical signature. */
  sig: string
}

function resolveField(structName: string, name: string, spec: unknown, offset: number): Resolved {
  const label = `${structName}.${name}`
  const common = (byteLength: number, alignment: number) => ({ name, offset: alignUp(offset, alignment), byteLength, alignment })
  if (isScalarType(spec)) {
    const size = SCALARS[spec].size
    return { field: { ...common(size, size), kind: spec }, sig: spec }
  }
  if (spec instanceof StructTypeImpl) {
    return { field: { ...common(spec.byteLength, spec.alignment), kind: 'struct', struct: spec }, sig: spec.signature }
  }
  if (typeof spec === 'object' && spec !== null) {
    const s = spec as Partial<Utf8Spec> & Partial<Omit<ArraySpec, 'kind'>> & { kind?: unknown }
    if (s.kind === 'utf8') {
      const n = checkCount(s.byteLength, `${label}: utf8(n): n`)
      return { field: { ...common(n, 1), kind: 'utf8' }, sig: `utf8[${n}]` }
    }
    if (s.kind === 'array') {
      const len = checkCount(s.length, `${label}: array(type, n): n`)
      const el = s.element
      if (isNumericType(el)) {
        const size = SCALARS[el].size
        return { field: { ...common(len * size, size), kind: 'array', element: el, length: len, elementByteLength: size }, sig: `${el}[${len}]` }
      }
      if (el instanceof StructTypeImpl) {
        return { field: { ...common(len * el.byteLength, el.alignment), kind: 'array', element: el, length: len, elementByteLength: el.byteLength }, sig: `${el.signature}[${len}]` }
      }
      throw new ShmError('ERR_INVALID_ARGUMENT', `${label}: array element must be a numeric type or a struct from defineStruct, got ${describe(el)}`)
    }
  }
  const hint = typeof spec === 'string' && TYPE_HINTS[spec] !== undefined ? `; use ${TYPE_HINTS[spec]}` : ''
  throw new ShmError(
    'ERR_INVALID_ARGUMENT',
    `${label} has unknown type ${describe(spec)}${hint}. Field types are ${Object.keys(SCALARS).join(', ')}, utf8(n), array(type, n) or a struct from defineStruct`,
  )
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment
}

/** FNV-1a, 32 bits, over the UTF-8 bytes: the same number in every process and runtime. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (const b of encoder.encode(text)) h = Math.imul(h ^ b, 0x01000193)
  return h >>> 0
}

class StructTypeImpl implements StructTypeBase {
  readonly name: string
  readonly schema: Schema
  readonly byteLength: number
  readonly alignment: number
  readonly fingerprint: number
  readonly signature: string
  readonly fields: readonly StructField[]
  /** @internal */
  readonly fieldByName: ReadonlyMap<string, StructField>
  /** Built once: a template string per view() call would cost more than the view. */
  private readonly regionLabel: string
  // One prototype per (buffer, residue of the offset modulo alignment, guarded), because
  // the residue decides which fields can use aligned TypedArrays.
  private readonly protos = new WeakMap<Memory, Array<object | undefined>>()
  // Row prototypes of StructArrays, by column placement: code that wraps the same region
  // in a new StructArray every turn reuses them instead of compiling accessors again.
  private readonly rowProtos = new WeakMap<Memory, Map<string, object>>()

  constructor(schema: Schema, name: string) {
    const fields: StructField[] = []
    const sigs: string[] = []
    let offset = 0
    let alignment = 1
    for (const [fieldName, spec] of Object.entries(schema)) {
      checkFieldName(name, fieldName)
      const { field, sig } = resolveField(name, fieldName, spec, offset)
      fields.push(Object.freeze(field))
      sigs.push(`${JSON.stringify(fieldName)}@${field.offset}:${sig}`)
      offset = field.offset + field.byteLength
      alignment = Math.max(alignment, field.alignment)
    }
    this.name = name
    this.schema = Object.freeze({ ...schema })
    this.alignment = alignment
    this.byteLength = alignUp(offset, alignment)
    this.fields = Object.freeze(fields)
    this.fieldByName = new Map(fields.map((f) => [f.name, f]))
    this.signature = `${JSON.stringify(name)}(${this.byteLength},${alignment}){${sigs.join(',')}}`
    this.fingerprint = fnv1a(this.signature)
    const known = typesByFingerprint.get(this.fingerprint)
    if (known === undefined) typesByFingerprint.set(this.fingerprint, this)
    else if (known.signature !== this.signature) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `${name} and ${known.name} have different layouts but the same fingerprint 0x${this.fingerprint.toString(16)}, so shared copies could not tell them apart; rename one of them`)
    }
    this.regionLabel = `${name} (${this.byteLength} bytes)`
  }

  view(bytes: Uint8Array, byteOffset = 0, guard?: TurnGuard): object {
    const region = locate(bytes, byteOffset, this.byteLength, this.regionLabel)
    if (guard !== undefined) checkGuard(guard)
    return this.instantiate(region.mem, region.byteOffset + byteOffset, guard)
  }

  read(bytes: Uint8Array, byteOffset = 0): Record<string, unknown> {
    const region = locate(bytes, byteOffset, this.byteLength, this.regionLabel)
    return readStruct(this, region.mem, region.byteOffset + byteOffset)
  }

  write(bytes: Uint8Array, byteOffset: number, value: object): void {
    const region = locate(bytes, byteOffset, this.byteLength, this.regionLabel)
    checkInit(this, value, `${this.name}.write()`)
    writeStruct(this, region.mem, region.byteOffset + byteOffset, value, this.name)
  }

  /** @internal A view at absolute byte `abs` of `mem.buffer`; no range check. */
  instantiate(mem: Memory, abs: number, guard: TurnGuard | undefined): object {
    let list = this.protos.get(mem)
    if (list === undefined) this.protos.set(mem, (list = []))
    const residue = abs % this.alignment
    const key = residue * 2 + (guard === undefined ? 0 : 1)
    const proto = list[key] ?? (list[key] = this.viewPrototype(mem, residue, guard !== undefined))
    return makeView(proto, abs, guard)
  }

  /** @internal The prototype of StructArray rows whose columns start at these absolute offsets. */
  rowPrototypeFor(mem: Memory, columns: readonly number[], guarded: boolean): object {
    let byPlacement = this.rowProtos.get(mem)
    if (byPlacement === undefined) this.rowProtos.set(mem, (byPlacement = new Map()))
    const key = `${guarded ? 'g' : ''}${columns.join(',')}`
    let proto = byPlacement.get(key)
    if (proto === undefined) byPlacement.set(key, (proto = this.rowPrototype(mem, columns, guarded)))
    return proto
  }

  private viewPrototype(mem: Memory, residue: number, guarded: boolean): object {
    const proto = {}
    this.fields.forEach((f, slot) => {
      let d: PropertyDescriptor
      if (isScalarType(f.kind) && (residue + f.offset) % f.alignment === 0) {
        const info = SCALARS[f.kind]
        const T = mem.arrays[info.array]
        d = guarded ? info.cells.aosGuarded(T, f.offset) : info.cells.aos(T, f.offset)
      } else {
        d = fieldAccessor(this, f, slot, mem, f.offset, 1, guarded)
      }
      Object.defineProperty(proto, f.name, { ...d, enumerable: true })
    })
    const type = this
    finishPrototype(proto, this.name, function (this: Slots) {
      if (guarded) this[GUARD]!.check()
      return readStruct(type, mem, this[BASE])
    })
    Object.defineProperty(proto, STRUCT_SOURCE, {
      value(this: Slots): StructSource {
        if (guarded) this[GUARD]!.check()
        return { fingerprint: type.fingerprint, bytes: new Uint8Array(mem.buffer, this[BASE], type.byteLength) }
      },
    })
    return proto
  }

  private rowPrototype(mem: Memory, columns: readonly number[], guarded: boolean): object {
    const proto = {}
    this.fields.forEach((f, k) => {
      const col = columns[k]!
      let d: PropertyDescriptor
      if (isScalarType(f.kind)) {
        const info = SCALARS[f.kind]
        const T = mem.arrays[info.array]
        const first = col / info.size // exact: columns are aligned
        d = guarded ? info.cells.soaGuarded(T, first) : info.cells.soa(T, first)
      } else {
        d = fieldAccessor(this, f, k, mem, col, f.byteLength, guarded)
      }
      Object.defineProperty(proto, f.name, { ...d, enumerable: true })
    })
    const type = this
    finishPrototype(proto, this.name, function (this: Slots) {
      if (guarded) this[GUARD]!.check()
      return readRow(type, mem, columns, this[BASE])
    })
    return proto
  }
}

function readRow(type: StructTypeImpl, mem: Memory, columns: readonly number[], row: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  type.fields.forEach((f, k) => {
    out[f.name] = readField(f, mem, columns[k]! + row * f.byteLength)
  })
  return out
}

function checkFieldName(structName: string, name: string): void {
  if (name === '') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${structName} has a field with an empty name; give every field a name`)
  }
  if (RESERVED.has(name)) {
    const why = name === 'then' ? 'a view with a "then" field would look like a Promise to await' : `every view has "${name}" (a method or Object.prototype member)`
    throw new ShmError('ERR_INVALID_ARGUMENT', `${structName}.${name}: "${name}" is reserved because ${why}; rename the field (e.g. "${name}_")`)
  }
  if (/^(0|[1-9][0-9]*)$/.test(name)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${structName}.${name}: integer-like field names are listed before all others by JavaScript, so the declared field order could not be kept; start the name with a letter`)
  }
}

function checkGuard(guard: unknown): void {
  if (typeof (guard as TurnGuard | null)?.check !== 'function') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `guard must be an object with a check() method, got ${describe(guard)}`)
  }
}

/** Where a Uint8Array sits in its buffer, cached per Uint8Array. */
interface Region {
  readonly mem: Memory
  /** bytes.byteOffset: fixed for the life of a TypedArray (0 once detached, but then length is 0 too). */
  readonly byteOffset: number
}

// Node 20's byteOffset/byteLength/buffer getters cost ~20-40 ns each, more than the rest of
// view(); `length` is inlined, and for a Uint8Array it is the byte length (0 once detached).
const regions = new WeakMap<object, Region>()

/** Checks that `need` bytes fit at `byteOffset` in `bytes`; absolute offset is region.byteOffset + byteOffset. */
function locate(bytes: Uint8Array, byteOffset: number, need: number, what: string): Region {
  let region = regions.get(bytes)
  if (region === undefined && (!ArrayBuffer.isView(bytes) || (bytes as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT !== 1)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${what}: bytes must be a Uint8Array (e.g. shm.bytes), got ${describe(bytes)}`)
  }
  if (typeof byteOffset !== 'number' || !Number.isInteger(byteOffset) || byteOffset < 0) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${what}: byteOffset must be a non-negative integer, got ${describe(byteOffset)}`)
  }
  const length = bytes.length
  if (byteOffset + need > length) {
    const closed = length === 0 ? ' (the bytes are empty: is the segment closed?)' : ''
    throw new ShmError(
      'ERR_INVALID_ARGUMENT',
      `${what} does not fit at offset ${byteOffset}: it needs bytes up to ${byteOffset + need} but there are ${length}${closed}; use a smaller offset or a larger region`,
    )
  }
  if (region === undefined) {
    region = { mem: memoryOf(bytes.buffer), byteOffset: bytes.byteOffset }
    regions.set(bytes, region)
  }
  return region
}

/**
 * Compiles a schema into a struct type. Fields are laid out in declaration order with C
 * rules (natural alignment, size padded to the largest alignment), little-endian.
 *
 * ```ts
 * const Vec2 = defineStruct({ x: 'float64', y: 'float64' }, 'Vec2')
 * const p = Vec2.view(shm.bytes, 8192)
 * p.x += 1
 * ```
 */
export function defineStruct<const S extends Schema>(schema: S, name = 'Struct'): StructType<S> {
  if (typeof name !== 'string') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `defineStruct(schema, name): name must be a string, got ${describe(name)}`)
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema) || schema instanceof StructTypeImpl) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `defineStruct(schema, name): schema must be an object such as { x: 'float64', name: utf8(16) }, got ${describe(schema)}`)
  }
  if (Object.keys(schema).length === 0) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `defineStruct: ${name} has no fields; declare at least one, e.g. { value: 'float64' }`)
  }
  // The public types describe the same objects more precisely than the implementation can.
  return new StructTypeImpl(schema, name) as unknown as StructType<S>
}

// ---------------------------------------------------------------------------
// StructArray: struct-of-arrays, one contiguous column per field

/** Where each field's column of `length` rows starts, and the bytes they take. The renderer's views use the same. */
export function columnLayout(type: StructTypeBase, length: number): { offsets: number[]; byteLength: number } {
  const offsets: number[] = []
  let at = 0
  for (const f of type.fields) {
    at = alignUp(at, f.alignment)
    offsets.push(at)
    at += f.byteLength * length
  }
  return { offsets, byteLength: alignUp(at, type.alignment) }
}

function asImpl(type: unknown, what: string): StructTypeImpl {
  if (!(type instanceof StructTypeImpl)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${what}: type must be a struct from defineStruct, got ${describe(type)}`)
  }
  return type
}

function checkLength(length: unknown): number {
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > MAX_COUNT) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `StructArray: length must be a non-negative integer, got ${describe(length)}`)
  }
  return length
}

/**
 * `length` structs stored column by column: every field is a contiguous column, so
 * `column('hp')` is a plain Int16Array over shared memory for bulk work, and `at(i)` is a
 * row view with the same properties as a struct view.
 */
export class StructArray<S extends Schema> implements Iterable<StructInstance<S>> {
  /** Bytes needed for `length` rows, each column aligned to its field, the total to the struct's alignment. */
  static byteLength(type: StructTypeBase, length: number): number {
    asImpl(type, 'StructArray.byteLength')
    return columnLayout(type, checkLength(length)).byteLength
  }

  readonly type: StructType<S>
  readonly length: number
  readonly byteOffset: number
  readonly byteLength: number
  private readonly impl: StructTypeImpl
  private readonly mem: Memory
  private readonly guard: TurnGuard | undefined
  /** Absolute byte offset of each field's column. */
  private readonly columns: number[]
  private readonly columnCache = new Map<string, AnyTypedArray>()
  private rowProto: object | undefined

  constructor(type: StructType<S>, bytes: Uint8Array, byteOffset: number, length: number, guard?: TurnGuard) {
    const impl = asImpl(type, 'new StructArray')
    checkLength(length)
    const layout = columnLayout(impl, length)
    const region = locate(bytes, byteOffset, layout.byteLength, `StructArray of ${length} ${impl.name} (${layout.byteLength} bytes)`)
    const abs = region.byteOffset + byteOffset
    if (abs % impl.alignment !== 0) {
      throw new ShmError(
        'ERR_INVALID_ARGUMENT',
        `StructArray of ${impl.name} must start at a multiple of ${impl.alignment} bytes in its buffer so every column is an aligned TypedArray, but starts at byte ${abs} (bytes.byteOffset ${bytes.byteOffset} + ${byteOffset}); round the offset up`,
      )
    }
    if (guard !== undefined) checkGuard(guard)
    this.type = type
    this.impl = impl
    this.length = length
    this.byteOffset = byteOffset
    this.byteLength = layout.byteLength
    this.mem = region.mem
    this.guard = guard
    this.columns = layout.offsets.map((o) => abs + o)
  }

  /** Row `index` (negative counts from the end) as a live view. */
  at(index: number): StructInstance<S> {
    let i = index
    if (Number.isInteger(i) && i < 0) i += this.length
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `StructArray.at(${String(index)}): index out of range; there are ${this.length} rows`)
    }
    const proto = this.rowProto ?? (this.rowProto = this.impl.rowPrototypeFor(this.mem, this.columns, this.guard !== undefined))
    return makeView(proto, i, this.guard) as unknown as StructInstance<S>
  }

  /** The column of a numeric field as a TypedArray over shared memory (checked against the guard once, here). */
  column<K extends ColumnName<S>>(name: K): TypedArrayFor[S[K] & NumericType] {
    this.guard?.check()
    const key = String(name)
    const f = this.impl.fieldByName.get(key)
    if (f === undefined) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `StructArray.column("${key}"): ${this.impl.name} has no such field; its fields are ${fieldList(this.impl)}`)
    }
    if (!isNumericType(f.kind)) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `StructArray.column("${key}"): ${this.impl.name}.${key} is ${f.kind}, and only numeric scalar fields have a TypedArray column; read it row by row with at(i)`)
    }
    let col = this.columnCache.get(key)
    if (col === undefined) {
      col = new TYPED_ARRAY_CTORS[f.kind](this.mem.buffer, this.columns[this.impl.fields.indexOf(f)], this.length)
      this.columnCache.set(key, col)
    }
    return col as TypedArrayFor[S[K] & NumericType]
  }

  *[Symbol.iterator](): Generator<StructInstance<S>, void, undefined> {
    for (let i = 0; i < this.length; i++) yield this.at(i)
  }

  /** Plain copies of every row. */
  toArray(): StructPlain<S>[] {
    this.guard?.check()
    const out: StructPlain<S>[] = []
    for (let i = 0; i < this.length; i++) out.push(readRow(this.impl, this.mem, this.columns, i) as StructPlain<S>)
    return out
  }
}
