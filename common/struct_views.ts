// Struct views over memory: the memory backend of the struct layout, used by core over
// the segment and by direct-mode renderers over the page's SharedArrayBuffer — which is
// why it lives in common/ (no Node, no DOM: the renderer imports common/, never core/).
// The layout itself
// (schema compilation, offsets, column placement, UTF-8 rules, plain DataView copies, the
// fingerprint registry) is common/struct_layout.ts, shared with the renderer's
// bridge-backed views (renderer/views.ts); this file only builds fast accessors over
// memory from it. Pure TypeScript without Node imports: direct-mode renderers run it too.
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
import {
  MAX_COUNT,
  SCALARS,
  StructLayout,
  TYPED_ARRAY_CTORS,
  checkInit,
  columnLayout,
  decodeUtf8Field,
  describe,
  fieldList,
  isNumericType,
  isScalarType,
  layoutByFingerprint,
  readRow,
  readStruct,
  writeStruct,
  writeUtf8Field,
  type ArraySpec,
  type BigIntType,
  type NumericType,
  type PlainBytes,
  type ScalarInfo,
  type ScalarType,
  type ScalarValue,
  type Schema,
  type StructField,
  type StructShape,
  type TypedArrayFor,
  type Utf8Spec,
} from './struct_layout'

// The schema language is common's; core re-exports it so its users import one place.
export { array, columnLayout, utf8 } from './struct_layout'
export type {
  ArrayElement, ArrayField, ArraySpec, BigIntType, FieldSpec, FloatType, IntegerType, NestedField, NumericType, ScalarField, ScalarType, ScalarValue, Schema,
  StructField, TypedArrayFor, Utf8Field, Utf8Spec,
} from './struct_layout'

// ---------------------------------------------------------------------------
// Public types

/** Something that throws (ERR_SHM_NO_TURN, ERR_SHM_CLOSED…) when shared memory may not be touched now. */
export interface TurnGuard {
  check(): void
}

/** What every struct type has, whatever its schema: its layout, and views over memory. */
export interface StructTypeBase extends StructShape {
  /** A live view at `byteOffset` in `bytes` (typed precisely on StructType). */
  view(bytes: Uint8Array, byteOffset?: number, guard?: TurnGuard): object
}

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

interface Memory extends PlainBytes {
  readonly buffer: ArrayBufferLike
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

/** Each kind's cell literals (see the note at the top); sizes and DataView access are the layout's. */
const CELLS: { readonly [K in ScalarType]: CellMaker<AnyTypedArray, ScalarJs> } = {
  int8: int8Cells as CellMaker<AnyTypedArray, ScalarJs>,
  uint8: uint8Cells as CellMaker<AnyTypedArray, ScalarJs>,
  bool: boolCells as unknown as CellMaker<AnyTypedArray, ScalarJs>,
  int16: int16Cells as CellMaker<AnyTypedArray, ScalarJs>,
  uint16: uint16Cells as CellMaker<AnyTypedArray, ScalarJs>,
  int32: int32Cells as CellMaker<AnyTypedArray, ScalarJs>,
  uint32: uint32Cells as CellMaker<AnyTypedArray, ScalarJs>,
  float32: float32Cells as CellMaker<AnyTypedArray, ScalarJs>,
  float64: float64Cells as CellMaker<AnyTypedArray, ScalarJs>,
  int64: int64Cells as unknown as CellMaker<AnyTypedArray, ScalarJs>,
  uint64: uint64Cells as unknown as CellMaker<AnyTypedArray, ScalarJs>,
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
      return decodeUtf8Field(mem.u8, start + this[BASE] * stride, capacity)
    },
    set(this: Slots, v: unknown) {
      if (guarded) this[GUARD]!.check()
      writeUtf8Field(mem.u8, start + this[BASE] * stride, capacity, v, label)
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

/** The struct type defined in this process with that fingerprint (the first, if defined twice). */
export function structTypeByFingerprint(fingerprint: number): StructTypeBase | undefined {
  const layout = layoutByFingerprint(fingerprint)
  // Every layout is compiled by defineStruct, so it is a StructTypeImpl.
  return layout instanceof StructTypeImpl ? layout : undefined
}

// ---------------------------------------------------------------------------
// Struct types: the layout plus prototypes of views over memory

class StructTypeImpl extends StructLayout implements StructTypeBase {
  /** Built once: a template string per view() call would cost more than the view. */
  private readonly regionLabel: string
  // One prototype per (buffer, residue of the offset modulo alignment, guarded), because
  // the residue decides which fields can use aligned TypedArrays.
  private readonly protos = new WeakMap<Memory, Array<object | undefined>>()
  // Row prototypes of StructArrays, by column placement: code that wraps the same region
  // in a new StructArray every turn reuses them instead of compiling accessors again.
  private readonly rowProtos = new WeakMap<Memory, Map<string, object>>()

  constructor(schema: Schema, name: string) {
    super(schema, name)
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
        const T = mem.arrays[SCALARS[f.kind].array]
        const cells = CELLS[f.kind]
        d = guarded ? cells.aosGuarded(T, f.offset) : cells.aos(T, f.offset)
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
        const cells = CELLS[f.kind]
        const first = col / info.size // exact: columns are aligned
        d = guarded ? cells.soaGuarded(T, first) : cells.soa(T, first)
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
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema) || schema instanceof StructLayout) {
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
