// Struct and array views built on bridge functions: the renderer's backend of the struct
// layout (common/struct_layout.ts), whose accessors call getFloat64(h, offset)… instead
// of reading memory. Offsets, column placement, UTF-8 rules and the decoding of copies
// all come from that layout, the same one core's views over memory use.
// Browser-only: no Node import anywhere below this file.
import { ShmError } from '../common/errors'
import { decodeBridgeError, type BridgeApi, type BridgeScalar, type RegionHandle } from '../common/bridge_protocol'
import {
  SCALARS,
  TYPED_ARRAY_CTORS,
  columnLayout,
  decodeUtf8Field,
  isNumericType,
  plainBytes,
  readRow,
  readStruct,
  utf8FieldImage,
  type ArrayElement,
  type ArraySpec,
  type BigIntType,
  type NumericType,
  type ScalarType,
  type ScalarValue,
  type Schema,
  type StructField,
  type StructShape,
  type TypedArrayFor,
  type Utf8Spec,
} from '../common/struct_layout'
import type { StructPlain, StructType } from '../common/struct_views'

// ---------------------------------------------------------------------------
// Types: what a view's properties are in the renderer

type ElementOf<E extends NumericType> = E extends BigIntType ? bigint : number

/**
 * An array field or typed-array view. In bridge mode each element access is one bridge
 * call; `slice()` copies a whole range in one call. In direct mode it is the real
 * TypedArray over shared memory, which has the same members.
 */
export interface RendererArray<E extends NumericType = NumericType> {
  readonly length: number
  [index: number]: ElementOf<E>
  at(index: number): ElementOf<E> | undefined
  /** Writes `values` starting at element `offset` (one bridge call). */
  set(values: ArrayLike<ElementOf<E>>, offset?: number): void
  /** A plain TypedArray copy of elements start … end-1 (one bridge call). */
  slice(start?: number, end?: number): TypedArrayFor[E]
}

type AssignableName<S> = { [K in keyof S]: S[K] extends ScalarType | Utf8Spec ? K : never }[keyof S]
type ColumnName<S> = { [K in keyof S]: S[K] extends NumericType ? K : never }[keyof S]

export type RendererFieldValue<F> = F extends ScalarType
  ? ScalarValue<F>
  : F extends Utf8Spec
    ? string
    : F extends ArraySpec<infer E>
      ? E extends NumericType
        ? RendererArray<E>
        : E extends StructType<infer T extends Schema>
          ? ReadonlyArray<RendererStruct<T>>
          : never
      : F extends StructType<infer T extends Schema>
        ? RendererStruct<T>
        : never

/** A struct view in the renderer: the same properties as core's StructInstance. */
export type RendererStruct<S extends Schema> = {
  -readonly [K in AssignableName<S>]: RendererFieldValue<S[K]>
} & {
  readonly [K in Exclude<keyof S, AssignableName<S>>]: RendererFieldValue<S[K]>
} & {
  /** A plain copy (one bridge call for the whole struct). */
  toJSON(): StructPlain<S>
}

/** Struct-of-arrays rows, like core's StructArray. */
export interface RendererStructArray<S extends Schema> extends Iterable<RendererStruct<S>> {
  readonly length: number
  readonly byteLength: number
  at(index: number): RendererStruct<S>
  column<K extends ColumnName<S>>(name: K): RendererArray<S[K] & NumericType>
  /** Plain copies of every row (one bridge call for the whole array). */
  toArray(): StructPlain<S>[]
}

// ---------------------------------------------------------------------------
// Scalar access through the bridge

type Getter = (h: RegionHandle, offset: number) => unknown
type Setter = (h: RegionHandle, offset: number, value: never) => void

/** The bridge's get/set functions for a kind, looked up once (not per access). */
export function accessorsOf(api: BridgeApi, kind: BridgeScalar): { get: Getter; set: Setter } {
  switch (kind) {
    case 'int8': return { get: api.getInt8, set: api.setInt8 }
    case 'uint8': return { get: api.getUint8, set: api.setUint8 }
    case 'int16': return { get: api.getInt16, set: api.setInt16 }
    case 'uint16': return { get: api.getUint16, set: api.setUint16 }
    case 'int32': return { get: api.getInt32, set: api.setInt32 }
    case 'uint32': return { get: api.getUint32, set: api.setUint32 }
    case 'float32': return { get: api.getFloat32, set: api.setFloat32 }
    case 'float64': return { get: api.getFloat64, set: api.setFloat64 }
    case 'int64': return { get: api.getBigInt64, set: api.setBigInt64 }
    case 'uint64': return { get: api.getBigUint64, set: api.setBigUint64 }
    case 'bool': return { get: api.getBool, set: api.setBool }
  }
}

export const isNumericKind = isNumericType

/** A region handle plus the api: what every bridge view holds. */
export interface Target {
  readonly api: BridgeApi
  readonly h: RegionHandle
  readonly label: string
  readonly byteLength: number
}

function readCopy(t: Target, offset: number, length: number): Uint8Array {
  try {
    return t.api.read(t.h, offset, length)
  } catch (err) {
    throw decodeBridgeError(err)
  }
}

function writeBytes(t: Target, offset: number, bytes: Uint8Array): void {
  try {
    t.api.write(t.h, offset, bytes)
  } catch (err) {
    throw decodeBridgeError(err)
  }
}

/** A TypedArray of `kind` over a fresh copy (aligned: bridge copies start at byte 0 of their buffer). */
function typedCopy<E extends NumericType>(kind: E, bytes: Uint8Array, length: number): TypedArrayFor[E] {
  const Ctor = TYPED_ARRAY_CTORS[kind]
  if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT !== 0) bytes = bytes.slice()
  return new Ctor(bytes.buffer, bytes.byteOffset, length)
}

// ---------------------------------------------------------------------------
// Arrays

function indexOf(prop: string | symbol): number {
  if (typeof prop !== 'string') return -1
  const n = Number(prop)
  return Number.isInteger(n) && n >= 0 && String(n) === prop ? n : -1
}

class BridgeArrayImpl<E extends NumericType> {
  readonly length: number
  private readonly t: Target
  private readonly kind: E
  private readonly offset: number
  private readonly size: number
  private readonly getFn: Getter
  private readonly setFn: Setter

  constructor(t: Target, kind: E, offset: number, length: number) {
    this.t = t
    this.kind = kind
    this.offset = offset
    this.length = length
    this.size = SCALARS[kind].size
    const a = accessorsOf(t.api, kind)
    this.getFn = a.get
    this.setFn = a.set
  }

  get(i: number): ElementOf<E> {
    if (!(i >= 0 && i < this.length)) throw new ShmError('ERR_OUT_OF_RANGE', `index ${i} is outside ${this.length} elements`)
    try {
      return this.getFn(this.t.h, this.offset + i * this.size) as ElementOf<E>
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  put(i: number, v: ElementOf<E>): void {
    if (!(i >= 0 && i < this.length)) throw new ShmError('ERR_OUT_OF_RANGE', `index ${i} is outside ${this.length} elements`)
    try {
      this.setFn(this.t.h, this.offset + i * this.size, v as never)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  at(index: number): ElementOf<E> | undefined {
    const i = index < 0 ? index + this.length : index
    return i >= 0 && i < this.length ? this.get(i) : undefined
  }

  set(values: ArrayLike<ElementOf<E>>, offset = 0): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + values.length > this.length) {
      throw new ShmError('ERR_OUT_OF_RANGE', `${values.length} values at element ${offset} do not fit in ${this.length} elements`)
    }
    const typed = new TYPED_ARRAY_CTORS[this.kind](values.length)
    ;(typed as unknown as { set(v: ArrayLike<unknown>): void }).set(values)
    writeBytes(this.t, this.offset + offset * this.size, new Uint8Array(typed.buffer))
  }

  slice(start = 0, end = this.length): TypedArrayFor[E] {
    const s = Math.max(0, Math.min(this.length, start < 0 ? start + this.length : start))
    const e = Math.max(s, Math.min(this.length, end < 0 ? end + this.length : end))
    return typedCopy(this.kind, readCopy(this.t, this.offset + s * this.size, (e - s) * this.size), e - s)
  }

  *[Symbol.iterator](): Generator<ElementOf<E>> {
    const copy = this.slice() as unknown as ArrayLike<ElementOf<E>>
    for (let i = 0; i < copy.length; i++) yield copy[i]!
  }
}

const arrayHandler: ProxyHandler<BridgeArrayImpl<NumericType>> = {
  get(target, prop, receiver) {
    const i = indexOf(prop)
    if (i >= 0) return i < target.length ? target.get(i) : undefined
    const v = Reflect.get(target, prop, receiver)
    return typeof v === 'function' ? v.bind(target) : v
  },
  set(target, prop, value) {
    const i = indexOf(prop)
    if (i < 0) return false
    target.put(i, value as never)
    return true
  },
  has(target, prop) {
    const i = indexOf(prop)
    return i >= 0 ? i < target.length : Reflect.has(target, prop)
  },
}

/** `length` elements of `kind` at `offset` in the region, read and written through the bridge. */
export function bridgeArray<E extends NumericType>(t: Target, kind: E, offset: number, length: number): RendererArray<E> {
  if (!isNumericKind(kind)) throw new ShmError('ERR_INVALID_ARGUMENT', `array kind must be one of ${Object.keys(TYPED_ARRAY_CTORS).join(', ')}, got ${String(kind)}`)
  checkRange(t, offset, length * SCALARS[kind].size, `${length} × ${kind}`)
  return new Proxy(new BridgeArrayImpl(t, kind, offset, length), arrayHandler as ProxyHandler<BridgeArrayImpl<E>>) as unknown as RendererArray<E>
}

function checkRange(t: Target, offset: number, byteLength: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + byteLength > t.byteLength) {
    throw new ShmError('ERR_OUT_OF_RANGE', `${what} (${byteLength} bytes) at offset ${offset} does not fit in region ${t.label} of ${t.byteLength} bytes`)
  }
}

// ---------------------------------------------------------------------------
// Structs

const BASE = Symbol('base')
const CACHE = Symbol('cache')

interface Slots {
  [BASE]: number
  [CACHE]?: unknown[]
}

/**
 * Accessor for field `f`: its absolute region offset is start + this[BASE] * stride
 * (struct views: start = field offset, BASE = struct offset, stride 1; rows of a
 * StructArray: start = column offset, BASE = row, stride = field size).
 */
function fieldDescriptor(t: Target, typeName: string, f: StructField, slot: number, start: number, stride: number): PropertyDescriptor {
  const label = `${typeName}.${f.name}`
  const h = t.h
  switch (f.kind) {
    case 'utf8': {
      const cap = f.byteLength
      return {
        get(this: Slots) { return decodeUtf8Field(readCopy(t, start + this[BASE] * stride, cap), 0, cap) },
        set(this: Slots, v: unknown) { writeBytes(t, start + this[BASE] * stride, utf8FieldImage(v, cap, label)) },
      }
    }
    case 'struct': {
      const nested = f.struct
      return cached(slot, label, (base) => structAt(t, nested, start + base * stride))
    }
    case 'array': {
      const el = f.element
      if (typeof el === 'string') return cached(slot, label, (base) => bridgeArray(t, el, start + base * stride, f.length))
      return cached(slot, label, (base) => {
        const items: unknown[] = []
        for (let i = 0; i < f.length; i++) items.push(structAt(t, el, start + base * stride + i * el.byteLength))
        return Object.freeze(items)
      })
    }
    default: {
      const { get, set } = accessorsOf(t.api, f.kind)
      return {
        get(this: Slots) {
          try {
            return get(h, start + this[BASE] * stride)
          } catch (err) {
            throw decodeBridgeError(err)
          }
        },
        set(this: Slots, v: never) {
          try {
            set(h, start + this[BASE] * stride, v)
          } catch (err) {
            throw decodeBridgeError(err)
          }
        },
      }
    }
  }
}

function cached(slot: number, label: string, make: (base: number) => unknown): PropertyDescriptor {
  return {
    get(this: Slots) {
      const cache = this[CACHE] ?? (this[CACHE] = [])
      return cache[slot] ?? (cache[slot] = make(this[BASE]))
    },
    set() {
      throw new ShmError('ERR_INVALID_ARGUMENT', `${label} is a view and cannot be replaced; assign its fields or elements instead`)
    },
  }
}

// One prototype per (region, struct type): accessors close over the handle.
const structProtos = new WeakMap<Target, Map<StructShape, object>>()

function structPrototype(t: Target, type: StructShape): object {
  let byType = structProtos.get(t)
  if (byType === undefined) structProtos.set(t, (byType = new Map()))
  let proto = byType.get(type)
  if (proto !== undefined) return proto
  proto = {}
  type.fields.forEach((f, slot) => {
    Object.defineProperty(proto, f.name, { ...fieldDescriptor(t, type.name, f, slot, f.offset, 1), enumerable: true })
  })
  Object.defineProperty(proto, 'toJSON', {
    value(this: Slots) {
      // One bridge call for the whole struct, decoded from the copy by the layout.
      return readStruct(type, plainBytes(readCopy(t, this[BASE], type.byteLength)), 0)
    },
  })
  Object.defineProperty(proto, Symbol.toStringTag, { value: type.name })
  byType.set(type, proto)
  return proto
}

function structAt(t: Target, type: StructShape, offset: number): object {
  const view = Object.create(structPrototype(t, type)) as Slots
  view[BASE] = offset
  return view
}

/** A struct view at `offset` in the region, every field access one bridge call. */
export function bridgeStruct<S extends Schema>(t: Target, type: StructType<S>, offset: number): RendererStruct<S> {
  checkStructType(type)
  checkRange(t, offset, type.byteLength, type.name)
  return structAt(t, type, offset) as RendererStruct<S>
}

function checkStructType(type: unknown): asserts type is StructShape {
  const t = type as StructShape | null
  if (typeof t !== 'object' || t === null || !Array.isArray(t.fields) || typeof t.byteLength !== 'number') {
    throw new ShmError('ERR_INVALID_ARGUMENT', 'expected a struct type from defineStruct (import the same schema file main and workers use)')
  }
}

// ---------------------------------------------------------------------------
// StructArray over the bridge

export { columnLayout }

class BridgeStructArray<S extends Schema> implements RendererStructArray<S> {
  readonly length: number
  readonly byteLength: number
  private readonly t: Target
  private readonly type: StructType<S>
  private readonly offset: number
  private readonly columns: number[]
  /** Column offsets from the array's first byte (where they are in a copy of it). */
  private readonly copyColumns: number[]
  private readonly proto: object

  constructor(t: Target, type: StructType<S>, offset: number, length: number) {
    checkStructType(type)
    if (!Number.isInteger(length) || length < 0) throw new ShmError('ERR_INVALID_ARGUMENT', `StructArray length must be a non-negative integer, got ${length}`)
    const layout = columnLayout(type, length)
    checkRange(t, offset, layout.byteLength, `StructArray of ${length} ${type.name}`)
    this.t = t
    this.type = type
    this.offset = offset
    this.length = length
    this.byteLength = layout.byteLength
    this.columns = layout.offsets.map((o) => offset + o)
    this.copyColumns = layout.offsets
    const proto = {}
    type.fields.forEach((f, k) => {
      Object.defineProperty(proto, f.name, { ...fieldDescriptor(t, type.name, f, k, this.columns[k]!, f.byteLength), enumerable: true })
    })
    const self = this
    Object.defineProperty(proto, 'toJSON', {
      value(this: Slots) {
        return self.toArray()[this[BASE]]
      },
    })
    this.proto = proto
  }

  at(index: number): RendererStruct<S> {
    const i = Number.isInteger(index) && index < 0 ? index + this.length : index
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new ShmError('ERR_OUT_OF_RANGE', `StructArray.at(${index}): there are ${this.length} rows`)
    const row = Object.create(this.proto) as Slots
    row[BASE] = i
    return row as unknown as RendererStruct<S>
  }

  column<K extends ColumnName<S>>(name: K): RendererArray<S[K] & NumericType> {
    const k = this.type.fields.findIndex((f) => f.name === name)
    const f = this.type.fields[k]
    if (f === undefined || !isNumericKind(f.kind)) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `StructArray.column("${String(name)}"): only numeric scalar fields of ${this.type.name} have a column`)
    }
    return bridgeArray(this.t, f.kind as S[K] & NumericType, this.columns[k]!, this.length)
  }

  toArray(): StructPlain<S>[] {
    const copy = plainBytes(readCopy(this.t, this.offset, this.byteLength))
    const out: StructPlain<S>[] = []
    for (let i = 0; i < this.length; i++) out.push(readRow(this.type, copy, this.copyColumns, i) as StructPlain<S>)
    return out
  }

  *[Symbol.iterator](): Generator<RendererStruct<S>> {
    for (let i = 0; i < this.length; i++) yield this.at(i)
  }
}

export function bridgeStructArray<S extends Schema>(t: Target, type: StructType<S>, offset: number, length: number): RendererStructArray<S> {
  return new BridgeStructArray(t, type, offset, length)
}

export type { ArrayElement }
