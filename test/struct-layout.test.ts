// The two backends of the struct layout (common/struct_layout.ts) must agree byte for
// byte: core's views read and write the segment's memory, the renderer's views call the
// preload's bridge functions. If they disagreed on an offset, a column or a UTF-8 rule,
// a page in bridge mode would silently read other bytes than the processes wrote.
// Random schemas and values go through both, and every field is compared.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { StructArray, array, defineStruct, utf8, type Schema, type StructType } from 'interprocess-objects'
import { connect, type BridgeApi } from 'interprocess-objects/renderer'

type Kind = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'int64' | 'uint64' | 'bool'
type NumKind = Exclude<Kind, 'bool'>
const NUM_KINDS: readonly NumKind[] = ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'int64', 'uint64']
const KINDS: readonly Kind[] = [...NUM_KINDS, 'bool']

/** A field, described before it is compiled (nested structs are compiled in the property). */
type FieldDesc =
  | { t: 'scalar'; k: Kind }
  | { t: 'utf8'; n: number }
  | { t: 'array'; k: NumKind; n: number }
  | { t: 'struct'; fields: FieldDesc[] }
  | { t: 'structs'; fields: FieldDesc[]; n: number }

const flat: fc.Arbitrary<FieldDesc> = fc.oneof(
  fc.constantFrom(...KINDS).map((k): FieldDesc => ({ t: 'scalar', k })),
  fc.integer({ min: 1, max: 12 }).map((n): FieldDesc => ({ t: 'utf8', n })),
  fc.record({ k: fc.constantFrom(...NUM_KINDS), n: fc.integer({ min: 1, max: 4 }) }).map(({ k, n }): FieldDesc => ({ t: 'array', k, n })),
)
const fieldDesc: fc.Arbitrary<FieldDesc> = fc.oneof(
  { weight: 4, arbitrary: flat },
  { weight: 1, arbitrary: fc.array(flat, { minLength: 1, maxLength: 3 }).map((fields): FieldDesc => ({ t: 'struct', fields })) },
  { weight: 1, arbitrary: fc.record({ fields: fc.array(flat, { minLength: 1, maxLength: 3 }), n: fc.integer({ min: 1, max: 3 }) }).map(({ fields, n }): FieldDesc => ({ t: 'structs', fields, n })) },
)

let typeCount = 0
function compile(fields: FieldDesc[]): StructType<Schema> {
  const schema: Record<string, unknown> = {}
  fields.forEach((d, i) => {
    const name = `f${i}`
    if (d.t === 'scalar') schema[name] = d.k
    else if (d.t === 'utf8') schema[name] = utf8(d.n)
    else if (d.t === 'array') schema[name] = array(d.k, d.n)
    else if (d.t === 'struct') schema[name] = compile(d.fields)
    else schema[name] = array(compile(d.fields), d.n)
  })
  // A new name per type: the fingerprint registry refuses two layouts under one fingerprint.
  return defineStruct(schema as Schema, `Random${typeCount++}`)
}

type Gen = fc.GeneratorValue
function scalar(g: Gen, k: Kind): number | bigint | boolean {
  switch (k) {
    case 'int8': return g(fc.integer, { min: -128, max: 127 })
    case 'uint8': return g(fc.integer, { min: 0, max: 255 })
    case 'int16': return g(fc.integer, { min: -32768, max: 32767 })
    case 'uint16': return g(fc.integer, { min: 0, max: 65535 })
    case 'int32': return g(fc.integer, { min: -(2 ** 31), max: 2 ** 31 - 1 })
    case 'uint32': return g(fc.integer, { min: 0, max: 2 ** 32 - 1 })
    case 'float32': return g(fc.float)
    case 'float64': return g(fc.double)
    case 'int64': return g(fc.bigInt, { min: -(2n ** 63n), max: 2n ** 63n - 1n })
    case 'uint64': return g(fc.bigInt, { min: 0n, max: 2n ** 64n - 1n })
    case 'bool': return g(fc.boolean)
  }
}

const encoder = new TextEncoder()
function text(g: Gen, capacity: number): string {
  // Any code points (lone surrogates included) that fit the field and hold no NUL.
  const s = g(fc.string, { unit: 'binary', maxLength: capacity })
  let fit = s.replace(/\0/g, '')
  while (encoder.encode(fit).length > capacity) fit = fit.slice(0, -1)
  return fit
}

function value(g: Gen, fields: FieldDesc[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  fields.forEach((d, i) => {
    const name = `f${i}`
    if (d.t === 'scalar') out[name] = scalar(g, d.k)
    else if (d.t === 'utf8') out[name] = text(g, d.n)
    else if (d.t === 'array') out[name] = Array.from({ length: d.n }, () => scalar(g, d.k))
    else if (d.t === 'struct') out[name] = value(g, d.fields)
    else out[name] = Array.from({ length: d.n }, () => value(g, d.fields))
  })
  return out
}

/** Assigns `v` through a view's setters (scalars and strings by property, arrays element by element). */
function assign(view: Record<string, unknown>, fields: FieldDesc[], v: Record<string, unknown>): void {
  fields.forEach((d, i) => {
    const name = `f${i}`
    if (d.t === 'scalar' || d.t === 'utf8') view[name] = v[name]
    else if (d.t === 'array') {
      const arr = view[name] as unknown[]
      ;(v[name] as unknown[]).forEach((x, j) => (arr[j] = x))
    } else if (d.t === 'struct') assign(view[name] as Record<string, unknown>, d.fields, v[name] as Record<string, unknown>)
    else {
      const items = view[name] as Record<string, unknown>[]
      ;(v[name] as Record<string, unknown>[]).forEach((x, j) => assign(items[j]!, d.fields, x))
    }
  })
}

/** Every field read through both views, element by element. */
function compare(core: Record<string, unknown>, page: Record<string, unknown>, fields: FieldDesc[], at: string): void {
  fields.forEach((d, i) => {
    const name = `f${i}`
    const where = `${at}.${name}`
    if (d.t === 'scalar' || d.t === 'utf8') expect(page[name], where).toEqual(core[name])
    else if (d.t === 'array') {
      const c = core[name] as ArrayLike<unknown>
      const p = page[name] as ArrayLike<unknown> & { slice(): ArrayLike<unknown> }
      expect(p.length, where).toBe(c.length)
      for (let j = 0; j < c.length; j++) expect(p[j], `${where}[${j}]`).toEqual(c[j])
      expect(Array.from(p.slice()), where).toEqual(Array.from(c))
    } else if (d.t === 'struct') compare(core[name] as Record<string, unknown>, page[name] as Record<string, unknown>, d.fields, where)
    else {
      const c = core[name] as Record<string, unknown>[]
      const p = page[name] as Record<string, unknown>[]
      expect(p.length, where).toBe(c.length)
      c.forEach((x, j) => compare(x, p[j]!, d.fields, `${where}[${j}]`))
    }
  })
}

/** A bridge over plain bytes, as the preload's would be over the segment: one region, read-write. */
function bytesBridge(bytes: Uint8Array): BridgeApi {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const at = (o: number, size: number) => {
    if ((o >>> 0) !== o || o + size > bytes.length) throw new Error(`ERR_OUT_OF_RANGE: ${size} byte(s) at ${o}`)
    return o
  }
  let counter = 0
  return {
    version: 1,
    mode: 'bridge',
    describe: () => ({ version: 1, mode: 'bridge', segments: { s: { regions: { r: { byteLength: bytes.length, access: 'readwrite' } }, channels: {} } } }),
    region: () => 0,
    getInt8: (_h, o) => dv.getInt8(at(o, 1)),
    getUint8: (_h, o) => dv.getUint8(at(o, 1)),
    getInt16: (_h, o) => dv.getInt16(at(o, 2), true),
    getUint16: (_h, o) => dv.getUint16(at(o, 2), true),
    getInt32: (_h, o) => dv.getInt32(at(o, 4), true),
    getUint32: (_h, o) => dv.getUint32(at(o, 4), true),
    getFloat32: (_h, o) => dv.getFloat32(at(o, 4), true),
    getFloat64: (_h, o) => dv.getFloat64(at(o, 8), true),
    getBigInt64: (_h, o) => dv.getBigInt64(at(o, 8), true),
    getBigUint64: (_h, o) => dv.getBigUint64(at(o, 8), true),
    getBool: (_h, o) => dv.getUint8(at(o, 1)) !== 0,
    setInt8: (_h, o, v) => dv.setInt8(at(o, 1), v),
    setUint8: (_h, o, v) => dv.setUint8(at(o, 1), v),
    setInt16: (_h, o, v) => dv.setInt16(at(o, 2), v, true),
    setUint16: (_h, o, v) => dv.setUint16(at(o, 2), v, true),
    setInt32: (_h, o, v) => dv.setInt32(at(o, 4), v, true),
    setUint32: (_h, o, v) => dv.setUint32(at(o, 4), v, true),
    setFloat32: (_h, o, v) => dv.setFloat32(at(o, 4), v, true),
    setFloat64: (_h, o, v) => dv.setFloat64(at(o, 8), v, true),
    setBigInt64: (_h, o, v) => dv.setBigInt64(at(o, 8), v, true),
    setBigUint64: (_h, o, v) => dv.setBigUint64(at(o, 8), v, true),
    setBool: (_h, o, v) => dv.setUint8(at(o, 1), v ? 1 : 0),
    read: (_h, o, n) => bytes.slice(at(o, n), o + n),
    write: (_h, o, src) => bytes.set(src, at(o, src.length)),
    counter: () => counter,
    bump: () => ++counter,
    putMessage: () => Promise.reject(new Error('ERR_NOT_GRANTED: no channels')),
    takeMessage: () => Promise.reject(new Error('ERR_NOT_GRANTED: no channels')),
    waitForMessage: () => Promise.reject(new Error('ERR_NOT_GRANTED: no channels')),
    messageCount: () => 0,
  }
}

const schemas = fc.array(fieldDesc, { minLength: 1, maxLength: 6 })

describe('struct layout: core views and bridge views agree', () => {
  it('on every field of random structs, whichever side writes', () => {
    fc.assert(
      fc.property(schemas, fc.integer({ min: 0, max: 3 }), fc.gen(), (fields, slot, g) => {
        const type = compile(fields)
        const offset = slot * type.alignment
        // A SharedArrayBuffer, like the segment: the UTF-8 decoding of shared bytes is exercised too.
        const bytes = new Uint8Array(new SharedArrayBuffer(offset + type.byteLength + 8))
        const core = type.view(bytes, offset) as unknown as Record<string, unknown>
        const page = connect({ api: bytesBridge(bytes) }).region('s', 'r').struct(type, offset) as unknown as Record<string, unknown>

        assign(core, fields, value(g, fields))
        compare(core, page, fields, type.name)
        expect((page as { toJSON(): unknown }).toJSON()).toEqual(type.read(bytes, offset))

        assign(page, fields, value(g, fields))
        compare(core, page, fields, type.name)
        expect((core as { toJSON(): unknown }).toJSON()).toEqual((page as { toJSON(): unknown }).toJSON())
      }),
      { numRuns: 150 },
    )
  })

  it('on every row and column of random struct arrays', () => {
    const flatSchemas = fc.array(flat, { minLength: 1, maxLength: 5 })
    fc.assert(
      fc.property(flatSchemas, fc.integer({ min: 0, max: 4 }), fc.gen(), (fields, length, g) => {
        const type = compile(fields)
        const byteLength = StructArray.byteLength(type, length)
        const bytes = new Uint8Array(new SharedArrayBuffer(byteLength + 16))
        const core = new StructArray(type, bytes, type.alignment, length)
        const page = connect({ api: bytesBridge(bytes) }).region('s', 'r').structArray(type, type.alignment, length)
        expect(page.byteLength).toBe(core.byteLength)

        for (let i = 0; i < length; i++) assign(core.at(i) as unknown as Record<string, unknown>, fields, value(g, fields))
        for (let i = 0; i < length; i++) compare(core.at(i) as unknown as Record<string, unknown>, page.at(i) as unknown as Record<string, unknown>, fields, `row ${i}`)
        fields.forEach((d, k) => {
          if (d.t !== 'scalar' || d.k === 'bool') return
          const name = `f${k}` as never
          expect(Array.from(page.column(name).slice() as ArrayLike<unknown>)).toEqual(Array.from(core.column(name) as ArrayLike<unknown>))
        })
        expect(page.toArray()).toEqual(core.toArray())

        for (let i = 0; i < length; i++) assign(page.at(i) as unknown as Record<string, unknown>, fields, value(g, fields))
        expect(core.toArray()).toEqual(page.toArray())
      }),
      { numRuns: 150 },
    )
  })

  it('on the rules for strings: the same refusals with the same code', () => {
    const T = defineStruct({ s: utf8(4) }, 'Utf8Rules')
    const bytes = new Uint8Array(8)
    const core = T.view(bytes) as { s: string }
    const page = connect({ api: bytesBridge(bytes) }).region('s', 'r').struct(T) as { s: string }
    for (const bad of ['12345', 'a\0b', 'é€', 7]) {
      let coreErr: unknown
      let pageErr: unknown
      try { core.s = bad as string } catch (e) { coreErr = e }
      try { page.s = bad as string } catch (e) { pageErr = e }
      expect(pageErr, String(bad)).toMatchObject({ name: 'ShmError', code: 'ERR_INVALID_ARGUMENT', message: (coreErr as Error).message })
    }
    page.s = 'ab'
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0x61, 0x62, 0, 0]) // NUL-padded, as core writes
  })
})
