// The struct layout: a schema of fixed fields compiled to offsets, laid out like a C
// struct (natural alignment, size padded to the largest alignment, little-endian), so
// every process — and the page, through the bridge — reads the same bytes.
//
// This file is the one definition of that layout. Two backends read and write through
// it: common/struct_views.ts (accessors over memory — the segment's, or the page's
// SharedArrayBuffer in direct mode: cells, prototypes, StructArray) and renderer/views.ts (accessors that call the preload's bridge
// functions). If they each had their own offsets, column placement or UTF-8 rules, bridge
// mode could silently read other bytes than the processes wrote; test/struct-layout.test.ts
// runs random schemas and values through both and compares every field.
//
// Also here: the plain DataView read/write both backends use for copies, and the
// registry that maps a fingerprint back to its layout (how a struct crosses the codec).
// No Node, no DOM (tsconfig.common.json checks it).
import { ShmError } from './errors'
import { decodeUtf8, encodeUtf8 } from './utf8'

// ---------------------------------------------------------------------------
// The schema language

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

export type ScalarValue<T extends ScalarType> = T extends BigIntType ? bigint : T extends 'bool' ? boolean : number

/** `utf8(n)`: a string stored in exactly n bytes, NUL-padded. */
export interface Utf8Spec {
  readonly kind: 'utf8'
  readonly byteLength: number
}

/** What every compiled struct has, whatever its schema or backend. */
export interface StructShape {
  readonly name: string
  /** Padded to `alignment`, like C's sizeof. */
  readonly byteLength: number
  readonly alignment: number
  /** FNV-1a (u32) of `signature`: equal in every process for the same name and layout. */
  readonly fingerprint: number
  /** The canonical text of name and layout that `fingerprint` hashes. */
  readonly signature: string
  readonly fields: readonly StructField[]
}

export type ArrayElement = NumericType | StructShape

/** `array(type, n)`: n elements stored inline. */
export interface ArraySpec<E extends ArrayElement = ArrayElement> {
  readonly kind: 'array'
  readonly element: E
  readonly length: number
}

export type FieldSpec = ScalarType | Utf8Spec | ArraySpec | StructShape

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
  readonly struct: StructShape
}
/** One field of a compiled struct: enough for other modules to address it themselves. */
export type StructField = ScalarField | Utf8Field | ArrayField | NestedField

// ---------------------------------------------------------------------------
// Scalars: size, the one TypedArray constructor table, DataView access

export interface ScalarInfo {
  readonly size: number
  /** The TypedArray kind an aligned field of this kind is read through (bool: uint8). */
  readonly array: NumericType
  // DataView access: for unaligned fields and for plain read/write, which work on any offset.
  read(dv: DataView, at: number): number | bigint | boolean
  write(dv: DataView, at: number, value: unknown): void
}

// Values convert exactly as a TypedArray element assignment would (ToNumber/ToBigInt, wrap-around).
export const SCALARS: { readonly [K in ScalarType]: ScalarInfo } = {
  int8: { size: 1, array: 'int8', read: (dv, at) => dv.getInt8(at), write: (dv, at, v) => dv.setInt8(at, v as number) },
  uint8: { size: 1, array: 'uint8', read: (dv, at) => dv.getUint8(at), write: (dv, at, v) => dv.setUint8(at, v as number) },
  bool: { size: 1, array: 'uint8', read: (dv, at) => dv.getUint8(at) !== 0, write: (dv, at, v) => dv.setUint8(at, v ? 1 : 0) },
  int16: { size: 2, array: 'int16', read: (dv, at) => dv.getInt16(at, true), write: (dv, at, v) => dv.setInt16(at, v as number, true) },
  uint16: { size: 2, array: 'uint16', read: (dv, at) => dv.getUint16(at, true), write: (dv, at, v) => dv.setUint16(at, v as number, true) },
  int32: { size: 4, array: 'int32', read: (dv, at) => dv.getInt32(at, true), write: (dv, at, v) => dv.setInt32(at, v as number, true) },
  uint32: { size: 4, array: 'uint32', read: (dv, at) => dv.getUint32(at, true), write: (dv, at, v) => dv.setUint32(at, v as number, true) },
  float32: { size: 4, array: 'float32', read: (dv, at) => dv.getFloat32(at, true), write: (dv, at, v) => dv.setFloat32(at, v as number, true) },
  float64: { size: 8, array: 'float64', read: (dv, at) => dv.getFloat64(at, true), write: (dv, at, v) => dv.setFloat64(at, v as number, true) },
  int64: { size: 8, array: 'int64', read: (dv, at) => dv.getBigInt64(at, true), write: (dv, at, v) => dv.setBigInt64(at, v as bigint, true) },
  uint64: { size: 8, array: 'uint64', read: (dv, at) => dv.getBigUint64(at, true), write: (dv, at, v) => dv.setBigUint64(at, v as bigint, true) },
}

/** A TypedArray constructor of one numeric kind: over memory, or a fresh array of n elements. */
export interface TypedArrayCtor<K extends NumericType> {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArrayFor[K]
  new (length: number): TypedArrayFor[K]
  readonly BYTES_PER_ELEMENT: number
  readonly name: string
}

export const TYPED_ARRAY_CTORS: { readonly [K in NumericType]: TypedArrayCtor<K> } = {
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

export function isScalarType(t: unknown): t is ScalarType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(SCALARS, t)
}
export function isNumericType(t: unknown): t is NumericType {
  return isScalarType(t) && t !== 'bool'
}

// ---------------------------------------------------------------------------
// UTF-8 fields: at most `capacity` bytes, NUL-padded; a read stops at the first NUL, so
// a string may not contain one. Writes zero the rest of the field, so its bytes do not
// depend on what was stored before.

/** The text of the utf8 field at `start`: up to its first NUL or its capacity. */
export function decodeUtf8Field(u8: Uint8Array, start: number, capacity: number): string {
  const limit = start + capacity
  let end = start
  let ascii = true
  while (end < limit) {
    const b = u8[end]!
    if (b === 0) break
    if (b >= 0x80) ascii = false
    end++
  }
  // Short ASCII is the common case (names, tags); a TextDecoder call costs more than building it.
  if (ascii && end - start <= 32) {
    let s = ''
    for (let i = start; i < end; i++) s += String.fromCharCode(u8[i]!)
    return s
  }
  return decodeUtf8(u8.subarray(start, end))
}

/** The UTF-8 bytes of `value`, or undefined for pure ASCII that fits (written without an encoder). Throws if it cannot be stored. */
export function utf8FieldBytes(value: unknown, capacity: number, label: string): Uint8Array | undefined {
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
  const bytes = encodeUtf8(value)
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

/** Stores `value` in the utf8 field at `start` (checks it first: nothing is written if it cannot be stored). */
export function writeUtf8Field(u8: Uint8Array, start: number, capacity: number, value: unknown, label: string): void {
  const bytes = utf8FieldBytes(value, capacity, label)
  let n: number
  if (bytes === undefined) {
    const s = value as string
    n = s.length
    for (let i = 0; i < n; i++) u8[start + i] = s.charCodeAt(i)
  } else {
    n = bytes.length
    u8.set(bytes, start)
  }
  if (n < capacity) u8.fill(0, start + n, start + capacity)
}

/** The whole field's bytes for `value` (capacity bytes, NUL-padded): what a bridge write sends. */
export function utf8FieldImage(value: unknown, capacity: number, label: string): Uint8Array {
  const out = new Uint8Array(capacity)
  writeUtf8Field(out, 0, capacity, value, label)
  return out
}

function preview(s: string): string {
  return s.length > 40 ? s.slice(0, 37) + '...' : s
}

/** A value as an error message names it. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(preview(value))}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

export function fieldList(type: StructShape): string {
  return type.fields.map((f) => f.name).join(', ')
}

// ---------------------------------------------------------------------------
// Plain copies: DataView on any offset, no views built. `abs` indexes both `dv` and `u8`
// (core passes whole-buffer views and absolute offsets; the renderer a copy and 0).

export interface PlainBytes {
  readonly dv: DataView
  readonly u8: Uint8Array
}

/** DataView and bytes over the same window, offset 0 = `bytes[0]`. */
export function plainBytes(bytes: Uint8Array): PlainBytes {
  return { dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), u8: bytes }
}

export function readStruct(type: StructShape, mem: PlainBytes, abs: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of type.fields) out[f.name] = readField(f, mem, abs + f.offset)
  return out
}

export function readField(f: StructField, mem: PlainBytes, abs: number): unknown {
  switch (f.kind) {
    case 'utf8':
      return decodeUtf8Field(mem.u8, abs, f.byteLength)
    case 'struct':
      return readStruct(f.struct, mem, abs)
    case 'array': {
      const out: unknown[] = new Array(f.length)
      const el = f.element
      if (typeof el === 'string') {
        const info = SCALARS[el]
        for (let i = 0; i < f.length; i++) out[i] = info.read(mem.dv, abs + i * info.size)
      } else {
        for (let i = 0; i < f.length; i++) out[i] = readStruct(el, mem, abs + i * el.byteLength)
      }
      return out
    }
    default:
      return SCALARS[f.kind].read(mem.dv, abs)
  }
}

/** Row `row` of a StructArray whose columns start at `columns` (see columnLayout). */
export function readRow(type: StructShape, mem: PlainBytes, columns: readonly number[], row: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  type.fields.forEach((f, k) => {
    out[f.name] = readField(f, mem, columns[k]! + row * f.byteLength)
  })
  return out
}

/** Rejects anything `writeStruct` would fail on halfway, so a failed write changes nothing. */
export function checkInit(type: StructLayout, value: unknown, label: string): void {
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
      utf8FieldBytes(v, f.byteLength, label)
      return
    case 'struct':
      checkInit(f.struct as StructLayout, v, label)
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
        for (let i = 0; i < len; i++) checkInit(el as StructLayout, (v as ArrayLike<unknown>)[i], `${label}[${i}]`)
      }
      return
    }
    default:
      return
  }
}

/** Writes the fields `value` has (checked by checkInit first), leaves the others. */
export function writeStruct(type: StructLayout, mem: PlainBytes, abs: number, value: object, label: string): void {
  for (const key of Object.keys(value)) {
    const f = type.fieldByName.get(key)!
    writeField(f, mem, abs + f.offset, (value as Record<string, unknown>)[key], `${label}.${key}`)
  }
}

function writeField(f: StructField, mem: PlainBytes, abs: number, v: unknown, label: string): void {
  switch (f.kind) {
    case 'utf8':
      writeUtf8Field(mem.u8, abs, f.byteLength, v, label)
      return
    case 'struct':
      writeStruct(f.struct as StructLayout, mem, abs, v as object, label)
      return
    case 'array': {
      const src = v as ArrayLike<unknown>
      const el = f.element
      if (typeof el === 'string') {
        const info = SCALARS[el]
        for (let i = 0; i < src.length; i++) info.write(mem.dv, abs + i * info.size, src[i])
      } else {
        for (let i = 0; i < src.length; i++) writeStruct(el as StructLayout, mem, abs + i * el.byteLength, src[i] as object, `${label}[${i}]`)
      }
      return
    }
    default:
      SCALARS[f.kind].write(mem.dv, abs, v)
  }
}

// ---------------------------------------------------------------------------
// StructArray placement: struct-of-arrays, one contiguous column per field

/** Where each field's column of `length` rows starts, and the bytes they take (each column aligned to its field, the total to the struct). */
export function columnLayout(type: StructShape, length: number): { offsets: number[]; byteLength: number } {
  if (typeof type !== 'object' || type === null || !Array.isArray(type.fields)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `columnLayout(type, length): type must be a struct type from defineStruct, got ${describe(type)}`)
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `columnLayout(type, length): length must be a non-negative integer, got ${describe(length)}`)
  }
  const offsets: number[] = []
  let at = 0
  for (const f of type.fields) {
    at = alignUp(at, f.alignment)
    offsets.push(at)
    at += f.byteLength * length
  }
  return { offsets, byteLength: alignUp(at, type.alignment) }
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

/** The largest element, row or byte count a schema or StructArray may name. */
export const MAX_COUNT = 0x7fffffff

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
  if (!isNumericType(element) && !(element instanceof StructLayout)) {
    const hint = element === ('bool' as unknown) ? "; store flags as array('uint8', n)" : ''
    throw new ShmError('ERR_INVALID_ARGUMENT', `array(type, n): type must be a numeric type (int8 … float64) or a struct from defineStruct, got ${describe(element)}${hint}`)
  }
  return Object.freeze({ kind: 'array' as const, element, length: checkCount(length, 'array(type, n): n') })
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
  if (spec instanceof StructLayout) {
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
      if (el instanceof StructLayout) {
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

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment
}

/** FNV-1a, 32 bits, over the UTF-8 bytes: the same number in every process and runtime. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (const b of encodeUtf8(text)) h = Math.imul(h ^ b, 0x01000193)
  return h >>> 0
}

/**
 * A compiled schema: field offsets, sizes and alignment, and the fingerprint other
 * processes recognise it by. Backends (core's views, the renderer's bridge views)
 * extend or read it; they never lay fields out themselves.
 */
export class StructLayout implements StructShape {
  readonly name: string
  readonly schema: Schema
  readonly byteLength: number
  readonly alignment: number
  readonly fingerprint: number
  readonly signature: string
  readonly fields: readonly StructField[]
  /** @internal */
  readonly fieldByName: ReadonlyMap<string, StructField>

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
    const known = layoutsByFingerprint.get(this.fingerprint)
    if (known === undefined) layoutsByFingerprint.set(this.fingerprint, this)
    else if (known.signature !== this.signature) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `${name} and ${known.name} have different layouts but the same fingerprint 0x${this.fingerprint.toString(16)}, so shared copies could not tell them apart; rename one of them`)
    }
  }
}

// ---------------------------------------------------------------------------
// The fingerprint registry: the codec stores a struct as (fingerprint, bytes) and maps
// it back with the layout of that fingerprint defined in this process.

const layoutsByFingerprint = new Map<number, StructLayout>()

/** The struct layout defined in this process with that fingerprint (the first, if defined twice). */
export function layoutByFingerprint(fingerprint: number): StructLayout | undefined {
  return layoutsByFingerprint.get(fingerprint)
}
