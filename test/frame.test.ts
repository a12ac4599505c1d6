// The flat message frame codec (core/values/frame.ts): round trips with the
// semantics of tx.copy, by-reference values, and damaged frames.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deepStrictEqual } from 'node:assert'
import * as v8 from 'node:v8'
import fc from 'fast-check'
import { SharedMemory, ShmError, defineStruct, registerClass, utf8 } from 'interprocess-objects'
import { uniqueName } from './helpers/processes'
import { value } from './helpers/values'
// White-box: the codec is internal (channels will use it).
import { encodeFrame, FrameEncoder, frameLoans, frameRefs, MAX_FRAME_DEPTH, readFrame, writeFrame } from '../core/values/frame'
import { shmError } from './helpers/segments'

class Money {
  constructor(
    public amount: number,
    public currency: string,
  ) {}
  get label(): string {
    return `${this.amount} ${this.currency}`
  }
}
registerClass(Money, 'FrameMoney')
class Unregistered {
  x = 1
}
const Vec = defineStruct({ x: 'float64', y: 'int32', tag: utf8(6) }, 'FrameVec')

function roundTrip(v: unknown): unknown {
  return readFrame(encodeFrame(v))
}

/** The frame copied into a SharedArrayBuffer at an 8-aligned offset, read from there. */
function roundTripShared(v: unknown): unknown {
  const enc = new FrameEncoder(16)
  const n = enc.encode(v)
  const sab = new Uint8Array(new SharedArrayBuffer(n + 24))
  enc.writeTo(sab, 16)
  return readFrame(sab, 16, n)
}


const edgeCases: unknown[] = [
  undefined, null, true, false, 0, -0, NaN, Infinity, -Infinity, 1, 127, 128, -1, 2 ** 31, -(2 ** 31), 2 ** 32 + 1,
  2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e300, 5e-324, 0.1, 1715938212000,
  0n, 1n, -1n, 255n, 256n, 2n ** 64n, -(2n ** 1000n),
  '', 'a', 'ascii', 'x'.repeat(63), 'x'.repeat(64), 'é', 'café'.repeat(30), 'ünïcödé ✓ 😀', '😀'.repeat(100), '\ud800 lone', 'x\udfff',
  'lone '.repeat(20) + '\udc00', 'a'.repeat(100_000), '\u00ff'.repeat(70),
  // Strings of one length (7–32 chars reuse one char-code array per length when decoded), Latin-1 ones too.
  ['sameLen1', 'sameLen2', '\u00e9'.repeat(7) + 'x', 'x'.repeat(7), '\u00ff'.repeat(32), 'y'.repeat(32), '\u0080'.repeat(31)],
  new Date(0), new Date(-8.64e15), /a+b/giu, new RegExp('/slash/', 'm'), /(?<year>\d{4})/dsy,
  [], [1, , 3], new Array(5), [, ,], [[[[]]]], [undefined],
  {}, { a: 1 }, { nested: { deeper: { deepest: [1, 'two', { three: 3n }] } } },
  Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i])),
  { '': 1, '0': 2, '10': 3, b: 4, a: 5, 'ключ': 6, '😀': 7, '\ud800': 8 },
  new Uint8Array(0), new Uint8Array([1, 2, 3]), new Int8Array([-1, 5]), new Uint8ClampedArray([300 & 255]),
  new Int16Array([-2, 3]), new Uint16Array([65535]), new Int32Array([-7]), new Uint32Array([2 ** 32 - 1]),
  new Float32Array([1.5, NaN]), new Float64Array([1.5, -0, NaN]), new BigInt64Array([-5n, 2n ** 63n - 1n]), new BigUint64Array([2n ** 64n - 1n]),
  new Float64Array(1000).map((_, i) => i / 3), new Uint8Array(10_000).map((_, i) => i),
  new DataView(new Uint8Array([9, 8, 7]).buffer), new ArrayBuffer(0), new Uint8Array([4, 5, 6]).buffer,
  new Float64Array(new Float64Array([1, 2, 3, 4]).buffer, 8, 2), // a view at an offset: only its own bytes travel
  new Map(), new Set(),
  new Map<unknown, unknown>([[1, 'one'], ['1', 'string one'], [1n, 'bigint one'], [null, 'null'], [undefined, 'u'], [NaN, 'nan'], [true, { deep: [1] }]]),
  new Set([0, NaN, 'a', 2n ** 70n, null]),
]

describe('frame round trips', () => {
  it('carries generated values unchanged (Uint8Array and SharedArrayBuffer)', () => {
    fc.assert(
      fc.property(value, (v) => {
        deepStrictEqual(roundTrip(v), v)
        deepStrictEqual(roundTripShared(v), v)
      }),
      { numRuns: 1000 },
    )
  })

  it('keeps edge cases exact', () => {
    for (const c of edgeCases) {
      deepStrictEqual(roundTrip(c), c)
      deepStrictEqual(roundTripShared(c), c)
    }
    expect(Object.is(roundTrip(-0), -0)).toBe(true)
    expect(Object.is((roundTrip([-0]) as number[])[0], -0)).toBe(true)
    const invalid = roundTrip(new Date(NaN))
    expect(invalid).toBeInstanceOf(Date)
    expect(Number.isNaN((invalid as Date).getTime())).toBe(true)
  })

  it('keeps holes as holes and lengths as they were', () => {
    const sparse = [1, , , 4]
    sparse.length = 10
    const got = roundTrip(sparse) as unknown[]
    expect(got.length).toBe(10)
    expect(Object.keys(got)).toEqual(['0', '3'])
  })

  it('carries Node Buffers, DataViews and ArrayBuffers as their own types, in fresh memory', () => {
    const buf = Buffer.from('buffer!')
    const got = roundTrip({ buf, dv: new DataView(new ArrayBuffer(4)), ab: new ArrayBuffer(3) }) as { buf: Buffer; dv: DataView; ab: ArrayBuffer }
    expect(Buffer.isBuffer(got.buf)).toBe(true)
    expect(got.buf.toString()).toBe('buffer!')
    expect(got.dv).toBeInstanceOf(DataView)
    expect(got.ab).toBeInstanceOf(ArrayBuffer)
    // Read from a SharedArrayBuffer, nothing comes back shared.
    const shared = roundTripShared(new Float64Array([1, 2])) as Float64Array
    expect(shared.buffer).toBeInstanceOf(ArrayBuffer)
  })

  it('null-prototype objects and "__proto__" keys stay what they were', () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 })
    const got = roundTrip(bare) as object
    expect(Object.getPrototypeOf(got)).toBe(null)
    deepStrictEqual(got, bare)
    const tricky = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}') as object
    const back = roundTrip(tricky) as Record<string, unknown>
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.keys(back)).toEqual(['__proto__', 'constructor'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    deepStrictEqual(back, tricky)
  })

  it('shared references and cycles come back as one object', () => {
    const shared = { s: 1 }
    const date = new Date(5)
    const bytes = new Uint8Array([1])
    const cyclic: Record<string, unknown> = { a: shared, b: shared, d1: date, d2: date, t1: bytes, t2: bytes }
    cyclic.self = cyclic
    const list: unknown[] = [cyclic]
    list.push(list)
    const map = new Map<unknown, unknown>([['me', null]])
    map.set('me', map)
    const got = roundTrip({ cyclic, list, map }) as { cyclic: Record<string, unknown>; list: unknown[]; map: Map<string, unknown> }
    expect(got.cyclic.a).toBe(got.cyclic.b)
    expect(got.cyclic.d1).toBe(got.cyclic.d2)
    expect(got.cyclic.t1).toBe(got.cyclic.t2)
    expect(got.cyclic.self).toBe(got.cyclic)
    expect(got.list[0]).toBe(got.cyclic)
    expect(got.list[1]).toBe(got.list)
    expect(got.map.get('me')).toBe(got.map)
    deepStrictEqual(got, { cyclic, list, map })
  })

  it('past 64 objects (where the encoder switches to a Map) and across frames, ids and keys stay right', () => {
    const parts = Array.from({ length: 200 }, (_, i) => ({ i, [`k${i % 70}`]: [i] }))
    const v = { parts, again: parts.slice(50, 150), first: parts[0], last: parts[199] }
    const enc = new FrameEncoder()
    for (let round = 0; round < 3; round++) {
      enc.encode(v)
      const got = readFrame(enc.toBytes()) as typeof v
      deepStrictEqual(got, v)
      expect(got.again[0]).toBe(got.parts[50])
      expect(got.first).toBe(got.parts[0])
      expect(got.last).toBe(got.parts[199])
      // A frame of many distinct keys (past the encoder's key memory), then small ones again.
      const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`key${i}-${round}`, i]))
      enc.encode(wide)
      deepStrictEqual(readFrame(enc.toBytes()), wide)
      // Around the 16 keys the encoder scans before it uses its Map, a long key among them; each object repeats them all.
      for (let n = 14; n <= 19; n++) {
        const keys = Array.from({ length: n }, (_, i) => (i === 3 ? 'L'.repeat(100) : `f${i}`))
        const row = (r: number) => Object.fromEntries(keys.map((k, i) => [k, r * 100 + i]))
        const rows = [row(0), row(1), { nested: row(2), extra: 1 }]
        enc.encode(rows)
        const frame = Buffer.from(enc.toBytes())
        deepStrictEqual(readFrame(frame), rows)
        // Repeated keys went by index: in a frame of at most 16 keys (n + "nested" and
        // "extra") even the long one's 100 bytes are in it once; in a larger frame keys
        // longer than 64 are written out again.
        const long = Buffer.from('L'.repeat(100))
        expect(frame.indexOf(long)).toBeGreaterThan(0)
        if (n + 2 <= 16) expect(frame.indexOf(long, frame.indexOf(long) + 1)).toBe(-1)
        expect(frame.indexOf(Buffer.from('f13'))).toBe(frame.lastIndexOf(Buffer.from('f13')))
      }
    }
  })

  it('Map and Set keys: Dates and tuples are keys by value, as in the segment', () => {
    const t = Object.freeze(['user', 7, Object.freeze([1n, null])])
    const m = new Map<unknown, unknown>([[new Date(1), 'a'], [new Date(1), 'b'], [t, 'tuple'], [Object.freeze(['user', 7, Object.freeze([1n, null])]), 'tuple2']])
    const got = roundTrip(m) as Map<unknown, unknown>
    expect([...got.values()]).toEqual(['b', 'tuple2'])
    const [dateKey, tupleKey] = [...got.keys()] as [Date, unknown[]]
    expect(dateKey.getTime()).toBe(1)
    expect(Object.isFrozen(tupleKey)).toBe(true)
    deepStrictEqual(tupleKey, t)
    const s = roundTrip(new Set([Object.freeze([-0, 1])])) as Set<unknown[]>
    expect(Object.is([...s][0]![0], 0)).toBe(true) // -0 in a key is 0, as Map makes it
    expect(shmError(() => encodeFrame(new Map([[{}, 1]]))).code).toBe('ERR_UNSUPPORTED_TYPE')
    expect(shmError(() => encodeFrame(new Set([[1, 2]]))).message).toMatch(/^value\["<key 1,2>"\]: .*not frozen/)
  })

  it('Errors carry name, message, stack, cause and their own fields', () => {
    const err = Object.assign(new TypeError('bad', { cause: new Error('root') }), { code: 'E_BAD', info: { n: 1 } })
    const got = roundTrip(err) as Error & { code: string; info: unknown }
    expect(got).toBeInstanceOf(Error)
    expect(got.name).toBe('TypeError')
    expect(got.message).toBe('bad')
    expect(got.stack).toBe(err.stack)
    expect((got.cause as Error).message).toBe('root')
    expect(got.code).toBe('E_BAD')
    expect(got.info).toEqual({ n: 1 })
    expect(Object.keys(got)).toEqual(['code', 'info'])
  })

  it('registered classes come back as instances; struct views as struct views of their schema', () => {
    const money = new Money(5, 'EUR')
    const got = roundTrip({ money, again: money }) as { money: Money; again: Money }
    expect(got.money).toBeInstanceOf(Money)
    expect(got.money.label).toBe('5 EUR')
    expect(got.again).toBe(got.money)
    const bytes = new Uint8Array(Vec.byteLength + 8)
    const vec = Vec.view(bytes, 8)
    vec.x = 1.5
    vec.y = -3
    vec.tag = 'héllo'
    const copy = roundTripShared(vec) as typeof vec
    expect(copy).not.toBe(vec)
    expect(copy.toJSON()).toEqual({ x: 1.5, y: -3, tag: 'héllo' })
    copy.x = 9 // a copy: the original does not change
    expect(vec.x).toBe(1.5)
    expect(Vec.view(bytes, 8).x).toBe(1.5)
  })

  it('gives the same values as tx.copy of the same value stored in a segment', () => {
    const shm = SharedMemory.create({ name: uniqueName('frame'), size: 4 << 20 })
    try {
      const vec = Vec.view(new Uint8Array(Vec.byteLength), 0)
      vec.x = 2
      const cases: unknown[] = [
        ...edgeCases,
        new Money(1, 'USD'),
        Object.assign(new RangeError('r', { cause: 1 }), { extra: [1] }),
        vec,
        { list: [new Money(2, 'GBP'), Object.create(null) as object] },
      ]
      for (const c of cases) {
        // Wrapped: put returns a Date, RegExp or Error as it was given, copy returns it as is.
        const viaSegment = shm.access((tx) => {
          const put = tx.put({ c })
          const copy = tx.copy(put)
          tx.destroy(put)
          return copy.c
        })
        const viaFrame = roundTrip(c)
        if (c === vec) expect((viaFrame as typeof vec).toJSON()).toEqual((viaSegment as typeof vec).toJSON())
        else deepStrictEqual(viaFrame, viaSegment)
        // (A struct view's prototype is one per buffer and offset residue: compared by fields above.)
        if (typeof c === 'object' && c !== null && c !== vec) expect(Object.getPrototypeOf(viaFrame)).toBe(Object.getPrototypeOf(viaSegment))
      }
    } finally {
      shm.close()
    }
  })
})

describe('unsupported values', () => {
  it('names the path, as tx.put does', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ a: [1, { f() {} }] }, /^value\.a\[1\]\.f is a function/],
      [[Symbol('s')], /^value\[0\] is a symbol/],
      [{ 'odd key': new Unregistered() }, /^value\["odd key"\] is an instance of Unregistered.*registerClass\(Unregistered\)/],
      [new Map([['k', new WeakMap()]]), /^value\.k is an instance of WeakMap/],
      [{ e: Object.assign(new Error('x'), { fn: () => 1 }) }, /^value\.e\.fn is a function/],
    ]
    for (const [v, message] of cases) {
      const err = shmError(() => encodeFrame(v))
      expect(err.code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(err.message).toMatch(message)
    }
  })

  it('refuses nesting past MAX_FRAME_DEPTH with a ShmError, writing and reading', () => {
    const nest = (n: number) => {
      let d: unknown = 0
      for (let i = 0; i < n; i++) d = i % 2 ? [d] : { d }
      return d
    }
    expect(roundTrip(nest(MAX_FRAME_DEPTH))).toEqual(nest(MAX_FRAME_DEPTH))
    expect(shmError(() => encodeFrame(nest(MAX_FRAME_DEPTH + 1))).code).toBe('ERR_UNSUPPORTED_TYPE')
    expect(shmError(() => encodeFrame(nest(10_000))).message).toMatch(/nested more than 1000 levels/)
    // A forged frame 10k arrays deep (2 bytes a level) is refused, not a stack overflow.
    const forged = new Uint8Array(2 + 2 * 10_000 + 1)
    forged[0] = 1
    for (let i = 0; i < 10_000; i++) forged.set([16, 1], 2 + 2 * i)
    expect(shmError(() => readFrame(forged)).code).toBe('ERR_SHM_CORRUPT')
  })
})

describe('values by reference', () => {
  it('a hook sends a value as a ref; the trailer lists each ref once; the resolver brings it back', () => {
    const inSegment = new Float64Array(4)
    const other = { mapped: true }
    const refOf = new Map<object, number>([[inSegment, 4096], [other, 0xfffffff0]])
    const value = { a: inSegment, b: [inSegment, other], c: 'copied', d: { e: new Float64Array(2) } }
    const frame = encodeFrame(value, (v) => refOf.get(v))
    expect(frameRefs(frame)).toEqual([4096, 0xfffffff0])
    const resolved: number[] = []
    const got = readFrame(frame, 0, frame.length, (ref) => {
      resolved.push(ref)
      return ref === 4096 ? inSegment : other
    }) as typeof value
    expect(resolved).toEqual([4096, 0xfffffff0])
    expect(got.a).toBe(inSegment)
    expect(got.b[0]).toBe(inSegment)
    expect(got.b[1]).toBe(other)
    expect(got.d.e).not.toBe(value.d.e) // not claimed by the hook: copied
    deepStrictEqual(got, value)
    // Without refs, no trailer; with refs, a reader needs a resolver.
    expect(frameRefs(encodeFrame(value))).toEqual([])
    expect(shmError(() => readFrame(frame)).code).toBe('ERR_INVALID_ARGUMENT')
  })

  it('loans travel as loan pool entries in their own trailer, beside refs; each is resolved once', () => {
    const loanA = new Uint8Array(8)
    const loanB = new Uint8Array(4)
    const mapped = { mapped: true }
    const value = { a: loanA, again: loanA, b: [loanB, mapped], c: 'copied' }
    const frame = encodeFrame(value, (v) => (v === loanA ? { loan: 3, generation: 0xdeadbeef } : v === loanB ? { loan: 255, generation: 1 } : v === mapped ? 4096 : undefined))
    expect(frameLoans(frame)).toEqual([3, 0xdeadbeef, 255, 1])
    expect(frameRefs(frame)).toEqual([4096])
    const resolved: number[] = []
    const got = readFrame(
      frame,
      0,
      frame.length,
      () => mapped,
      undefined,
      undefined,
      (entry, generation) => {
        resolved.push(entry, generation)
        return entry === 3 ? loanA : loanB
      },
    ) as typeof value
    expect(resolved).toEqual([3, 0xdeadbeef, 255, 1])
    expect(got.a).toBe(loanA)
    expect(got.again).toBe(loanA)
    expect(got.b[0]).toBe(loanB)
    expect(got.b[1]).toBe(mapped)
    expect(got.c).toBe('copied')
    // Without loans, no trailer; with loans, a reader needs a resolver.
    expect(frameLoans(encodeFrame(value, (v) => (v === mapped ? 4096 : undefined)))).toEqual([])
    expect(shmError(() => readFrame(frame, 0, frame.length, () => mapped)).code).toBe('ERR_INVALID_ARGUMENT')
    // A loans trailer whose count does not fit the frame is damage, not a crash.
    const onlyLoan = encodeFrame(loanA, () => ({ loan: 1, generation: 1 }))
    onlyLoan[onlyLoan.length - 1] = 0x7f
    expect(shmError(() => frameLoans(onlyLoan)).code).toBe('ERR_SHM_CORRUPT')
    expect(shmError(() => readFrame(onlyLoan, 0, onlyLoan.length, undefined, undefined, undefined, () => loanA)).code).toBe('ERR_SHM_CORRUPT')
  })

  it('works with the records of a real segment (mapped views from tx.put)', async () => {
    const { mappedHandleOf } = await import('../core/values/mapped_handle')
    const shm = SharedMemory.create({ name: uniqueName('frameref'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        const view = tx.put({ big: 'document', items: [1, 2, 3] })
        const bytes = tx.put(new Uint8Array([7, 7]))
        const enc = new FrameEncoder()
        const n = enc.encode({ view, bytes, n: 1 }, (v) => mappedHandleOf(v)?.ref)
        const target = new Uint8Array(new SharedArrayBuffer(n))
        enc.writeTo(target, 0)
        const refs = frameRefs(target)
        expect(refs).toEqual([mappedHandleOf(view)!.ref, mappedHandleOf(bytes)!.ref])
        const byRef = new Map<number, unknown>([[refs[0]!, view], [refs[1]!, bytes]])
        const got = readFrame(target, 0, n, (ref) => byRef.get(ref)) as { view: unknown; bytes: unknown; n: number }
        expect(got.view).toBe(view)
        expect(got.bytes).toBe(bytes)
        tx.destroy(view)
        tx.destroy(bytes)
      })
    } finally {
      shm.close()
    }
  })
})

describe('views of the segment (SegmentView)', () => {
  /** A stand-in segment: its bytes are a window of a larger SharedArrayBuffer, as a mapped segment's are. */
  function fakeSegment(size: number): { buffer: SharedArrayBuffer; bytes: Uint8Array } {
    const buffer = new SharedArrayBuffer(size + 64)
    return { buffer, bytes: new Uint8Array(buffer, 32, size) }
  }
  /** The hook Messages uses for views that are no records: their place in `seg`. */
  const placeIn = (seg: { buffer: SharedArrayBuffer; bytes: Uint8Array }) => (v: object) =>
    ArrayBuffer.isView(v) && v.buffer === seg.buffer ? { segmentView: v.byteOffset - seg.bytes.byteOffset } : undefined

  it('carries a view of the segment as its place: the reader maps the same bytes, of the same kind', () => {
    const seg = fakeSegment(4096)
    const base = seg.bytes.byteOffset
    const value = {
      bytes: seg.bytes.subarray(16, 48),
      f64: new Float64Array(seg.buffer, base + 1024, 300),
      i16: new Int16Array(seg.buffer, base + 200, 3),
      dv: new DataView(seg.buffer, base + 300, 10),
      buf: Buffer.from(seg.buffer, base + 400, 5),
      copied: new Float64Array([1, 2]),
    }
    const again = { first: value.f64, second: value.f64 }
    const frame = encodeFrame({ value, again }, placeIn(seg))
    // No bytes of the views travel (2.4 KB of doubles, for one): the frame stays small, and lists no refs.
    expect(frame.length).toBeLessThan(150)
    expect(frameRefs(frame)).toEqual([])
    const got = readFrame(frame, 0, frame.length, undefined, seg.bytes) as { value: typeof value; again: typeof again }
    const v = got.value
    for (const [k, original] of Object.entries(value)) {
      const view = v[k as keyof typeof value]
      expect(view.constructor, k).toBe(original.constructor)
      expect(view.byteLength, k).toBe(original.byteLength)
      if (k === 'copied') {
        expect(view.buffer).not.toBe(seg.buffer)
        continue
      }
      expect(view, k).not.toBe(original)
      expect(view.buffer, k).toBe(seg.buffer)
      expect(view.byteOffset, k).toBe(original.byteOffset)
    }
    expect(Buffer.isBuffer(v.buf)).toBe(true)
    // The same view twice is one view.
    expect(got.again.first).toBe(got.again.second)
    // Writes through either are seen through the other.
    v.f64[299] = 2.5
    expect(value.f64[299]).toBe(2.5)
    value.bytes[0] = 99
    expect(v.bytes[0]).toBe(99)
    v.dv.setUint16(8, 0xbeef, true)
    expect(value.dv.getUint16(8, true)).toBe(0xbeef)
    // The tag and its payload: 30, BinaryKind, varint offset, varint length.
    const one = encodeFrame(value.i16, placeIn(seg))
    expect([...one]).toEqual([1, 0, 30, one[3], 200 & 0x7f | 0x80, 200 >>> 7, 6])
  })

  it('a forged offset, length or kind is ERR_SHM_CORRUPT; without the segment, ERR_INVALID_ARGUMENT', () => {
    const seg = fakeSegment(1024)
    const varint = (n: number): number[] => {
      const out: number[] = []
      while (n > 127) {
        out.push((n & 127) | 128)
        n >>>= 7
      }
      out.push(n)
      return out
    }
    const Uint8 = encodeFrame(seg.bytes.subarray(0, 1), placeIn(seg))[3]!
    const Float64 = encodeFrame(new Float64Array(seg.buffer, seg.bytes.byteOffset, 1), placeIn(seg))[3]!
    const view = (kind: number, offset: number, length: number) => Uint8Array.from([1, 0, 30, kind, ...varint(offset), ...varint(length)])
    const read = (frame: Uint8Array) => readFrame(frame, 0, frame.length, undefined, seg.bytes)
    // In range: fine, up to the last byte.
    expect((read(view(Uint8, 1000, 24)) as Uint8Array).byteOffset).toBe(seg.bytes.byteOffset + 1000)
    expect((read(view(Uint8, 0, 1024)) as Uint8Array).length).toBe(1024)
    // Past the end of the segment, by the offset, the length or both (even when the buffer around it is larger).
    for (const [offset, length] of [[1024, 1], [1000, 25], [0, 1025], [2 ** 32 - 1, 2], [5, 2 ** 32 - 1]] as const) {
      const e = shmError(() => read(view(Uint8, offset, length)))
      expect(e.code, `${offset}+${length}`).toBe('ERR_SHM_CORRUPT')
      expect(e.message).toMatch(/outside the segment/)
    }
    // Not aligned to its elements, or a length that is no whole number of them.
    expect(shmError(() => read(view(Float64, 4, 8))).code).toBe('ERR_SHM_CORRUPT')
    expect(shmError(() => read(view(Float64, 8, 12))).code).toBe('ERR_SHM_CORRUPT')
    // A kind that is none, and ArrayBuffer (which is never a view).
    expect(shmError(() => read(view(200, 0, 8))).code).toBe('ERR_SHM_CORRUPT')
    const arrayBufferKind = encodeFrame(new ArrayBuffer(1))[3]!
    expect(shmError(() => read(view(arrayBufferKind, 0, 8))).code).toBe('ERR_SHM_CORRUPT')
    // Truncated inside its payload.
    expect(shmError(() => read(Uint8Array.from([1, 0, 30, Uint8, 0x80]))).code).toBe('ERR_SHM_CORRUPT')
    // A reader that was not given the segment cannot map it.
    expect(shmError(() => readFrame(view(Uint8, 0, 8))).code).toBe('ERR_INVALID_ARGUMENT')
  })

  it('a hook claiming a segment view for something that is no view is refused', () => {
    expect(shmError(() => encodeFrame({ a: {} }, () => ({ segmentView: 0 }))).code).toBe('ERR_INVALID_ARGUMENT')
    expect(shmError(() => encodeFrame(new ArrayBuffer(8), () => ({ segmentView: 0 }))).code).toBe('ERR_INVALID_ARGUMENT')
  })

  it('through a channel of a real segment: raw views go by place, records by reference, and a forged place is ERR_SHM_CORRUPT', async () => {
    const { mappedHandleOf } = await import('../core/values/mapped_handle')
    const { Chan, RingSlot } = await import('../core/records')
    const shm = SharedMemory.create({ name: uniqueName('framesv'), size: 1 << 20 })
    try {
      using ch = shm.channel<{ raw: Uint8Array; rec: Float64Array; f64: Float64Array }>('views', { capacity: 2 })
      const rec = shm.access((tx) => tx.put(new Float64Array([1, 2, 3, 4])))
      const at = rec.byteOffset - shm.bytes.byteOffset
      const raw = shm.bytes.subarray(at + 1, at + 9)
      const f64 = new Float64Array(shm.buffer, rec.byteOffset + 8, 2) // inside the record, not the record
      ch.send({ raw, rec, f64 })
      const got = ch.tryReceive()!
      expect(got.raw.buffer).toBe(shm.buffer)
      expect(got.raw.byteOffset).toBe(raw.byteOffset)
      expect(got.f64.byteOffset).toBe(f64.byteOffset)
      expect(mappedHandleOf(got.f64)).toBeUndefined() // a plain view: nobody owns it
      expect(got.rec).toBe(rec) // the record itself went by reference (the same mapped view)
      got.f64[0] = 20
      expect(rec[1]).toBe(20)
      shm.access((tx) => {
        tx.destroy(got.rec) // the reference the message carried
        tx.destroy(rec)
      })
      // A view of the header's first 64 bytes is copied, never sent by place (so a small
      // fresh array, which V8 keeps on its own heap at byteOffset 0, is never asked for its buffer).
      using hc = shm.channel<{ raw: Uint8Array }>('header')
      hc.send({ raw: shm.bytes.subarray(0, 8) })
      const header = hc.tryReceive()!
      expect(header.raw.buffer).not.toBe(shm.buffer)
      expect(Array.from(header.raw)).toEqual(Array.from(shm.bytes.subarray(0, 8)))

      // A message whose view points past the segment's end, forged in its ring slot
      // (the second message: position 1 of a ring of 2, 128-byte slots).
      const tail = shm.bytes.subarray(shm.size - 16, shm.size - 8) // past 2^14: a 3-byte offset
      ch.send({ raw: tail, rec: new Float64Array(1), f64 } as never)
      const slot = ch.ref + Chan.Slots + 128
      const frame = shm.bytes.subarray(slot + RingSlot.Data, slot + 128)
      const tag = frame.indexOf(30) // raw's tag: the keys and values before it hold no byte 30
      expect(frame[tag + 1]).toBe(encodeFrame(new Uint8Array(0))[3]) // BinaryKind of a Uint8Array
      // The offset varint, rewritten in as many bytes to the largest value they hold: past the end.
      let end = tag + 2
      while (frame[end]! >= 0x80) end++
      expect(end - tag - 2).toBe(2) // 3 bytes hold up to 2^21 − 1, and the segment is 2^20
      frame.set([0xff, 0xff, 0x7f], tag + 2)
      const e = shmError(() => ch.tryReceive())
      expect(e.code).toBe('ERR_SHM_CORRUPT')
      expect(e.message).toMatch(/outside the segment/)
    } finally {
      shm.close()
    }
  })
})

describe('frame layout', () => {
  it('starts with the version byte and aligns TypedArray payloads to their element size', () => {
    for (const size of [3, 5000]) {
      const f64 = new Float64Array(size).fill(1.25)
      const enc = new FrameEncoder(8)
      const n = enc.encode({ s: 'x', f64, i16: new Int16Array([0x0102]) })
      const target = new Uint8Array(n + 8)
      enc.writeTo(target, 8) // 8-aligned: frame-relative alignment is absolute alignment
      expect(target[8]).toBe(1)
      const at = Buffer.from(target).indexOf(Buffer.from(new Float64Array([1.25]).buffer))
      expect(at % 8).toBe(0)
      const got = readFrame(target, 8, n) as { f64: Float64Array }
      deepStrictEqual(got.f64, f64)
    }
  })

  it('writeFrame writes in place and an encoder is reusable', () => {
    const target = new Uint8Array(new SharedArrayBuffer(4096))
    const n = writeFrame({ hello: 'world' }, target, 64)
    deepStrictEqual(readFrame(target, 64, n), { hello: 'world' })
    const enc = new FrameEncoder(4)
    for (const v of [new Float64Array(10_000), 'small', { a: [1, 2] }, 'x'.repeat(5000)]) {
      enc.encode(v)
      deepStrictEqual(readFrame(enc.toBytes()), v)
    }
    expect(shmError(() => enc.writeTo(new Uint8Array(2), 0)).code).toBe('ERR_INVALID_ARGUMENT')
  })

  it('small TypedArrays of every kind (copied as their own kind, not through their buffer) come back exact, after a large payload too', () => {
    const kinds = [Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const
    for (const Kind of kinds) {
      for (const n of [0, 1, 3, 8]) {
        const a = new Kind(n)
        for (let i = 0; i < n; i++) a[i] = (Kind === BigInt64Array || Kind === BigUint64Array ? BigInt(i * 7 + 3) : i * 7 - 3.5) as never
        // A large payload first (written at writeTo, not into the scratch) shifts the scratch position by an odd count.
        for (const before of [new Uint8Array(0), new Uint8Array(70_001).fill(1)]) {
          const v = { before, s: 'x', a, again: [new Uint8Array(3), a] }
          const got = readFrame(encodeFrame(v)) as typeof v
          expect(got.a.constructor).toBe(Kind)
          expect(Array.from(got.a as ArrayLike<unknown>)).toEqual(Array.from(a as ArrayLike<unknown>))
          expect(got.again[1]).toBe(got.a)
          expect(got.before.length).toBe(before.length)
        }
      }
    }
  })

  it('writeTo writes exactly the frame, at any offset of any view (the word-by-word copy of small frames included)', () => {
    const enc = new FrameEncoder(6) // a scratch whose length is no multiple of 4 once it grows
    const backing = new SharedArrayBuffer(1024)
    for (let n = 0; n <= 300; n += 1 + (n >> 4)) {
      const value = 'y'.repeat(n)
      const length = enc.encode(value)
      const frame = enc.toBytes()
      for (const viewStart of [0, 1, 4, 6]) {
        const target = new Uint8Array(backing, viewStart, 1024 - viewStart - 3)
        for (const offset of [0, 1, 3, 8, 9]) {
          new Uint8Array(backing).fill(0xee)
          enc.writeTo(target, offset)
          expect(Buffer.from(target.subarray(offset, offset + length)).equals(Buffer.from(frame))).toBe(true)
          // Nothing before the frame or after its last byte was touched.
          expect(target.subarray(0, offset).every((b) => b === 0xee)).toBe(true)
          expect(new Uint8Array(backing, viewStart + offset + length).every((b) => b === 0xee)).toBe(true)
          expect(readFrame(target, offset, length)).toBe(value)
        }
      }
    }
  })

  it('is no larger than v8.serialize for typical messages', () => {
    const small = { id: 42, op: 'update', ok: true, at: 1715938212000, path: ['a', 'b'], v: 1.5 }
    const doc = { items: Array.from({ length: 20 }, (_, i) => ({ sku: `SKU-${i}`, qty: i, price: i * 1.25, tags: ['a', 'b'] })) }
    for (const v of [small, doc, 'text', new Map([['a', 1]]), { list: [1.5, 2.5, -3] }]) {
      expect(encodeFrame(v).length).toBeLessThanOrEqual(v8.serialize(v).length)
    }
    // A large TypedArray costs its bytes plus 8: its payload starts at an 8-aligned
    // offset, which v8.serialize does not (it is n + 7 there).
    expect(encodeFrame(new Float64Array(50_000)).length).toBe(400_008)
  })
})

describe('damaged frames', () => {
  /** A value or ERR_SHM_CORRUPT; ERR_UNSUPPORTED_TYPE only where damage named a class or struct no process registered. */
  const segment = new Uint8Array(new SharedArrayBuffer(256))
  function readDamaged(bytes: Uint8Array): void {
    try {
      readFrame(bytes, 0, bytes.length, () => null, segment)
    } catch (err) {
      if (!(err instanceof ShmError)) throw err
      if (err.code === 'ERR_SHM_CORRUPT') return
      if (err.code === 'ERR_UNSUPPORTED_TYPE' && /was sent, but/.test(err.message)) return
      throw err
    }
  }

  const richValue = fc.tuple(value, value).map(([a, b]) => ({ a, b, shared: [a, a], money: new Money(1, 'x'), re: /x/g, err: new Error('e') }))

  it('byte flips, truncations and insertions give a value or ERR_SHM_CORRUPT', () => {
    fc.assert(
      fc.property(richValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (v, flips, cut) => {
        const frame = encodeFrame(v)
        const flipped = frame.slice()
        for (const [at, byte] of flips) flipped[at % flipped.length] = byte
        readDamaged(flipped)
        readDamaged(frame.subarray(0, cut % frame.length))
        const shared = new Uint8Array(new SharedArrayBuffer(frame.length))
        shared.set(flipped)
        readDamaged(shared)
        const inserted = new Uint8Array(frame.length + 1)
        const at = cut % frame.length
        inserted.set(frame.subarray(0, at))
        inserted[at] = flips[0]![1]
        inserted.set(frame.subarray(at), at + 1)
        readDamaged(inserted)
      }),
      { numRuns: 3000 },
    )
  })

  it('random bytes after a valid header give a value or ERR_SHM_CORRUPT', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), fc.integer({ min: 0, max: 1 }), (body, flags) => {
        readDamaged(Uint8Array.from([1, flags, ...body]))
      }),
      { numRuns: 5000 },
    )
  })

  it('forged lengths fail before anything is allocated for them', () => {
    // An array, a string, a bigint and a binary claiming 2^32 − 1 items in a few bytes.
    for (const tag of [16, 10, 12, 13, 8, 17, 19, 20]) {
      const e = shmError(() => readFrame(Uint8Array.from([1, 0, tag, 0xff, 0xff, 0xff, 0xff, 0x0f])))
      expect(e.code).toBe('ERR_SHM_CORRUPT')
    }
    expect(shmError(() => readFrame(Uint8Array.from([1, 0, 23, 9, 0xff, 0xff, 0xff, 0xff, 0x0f]))).code).toBe('ERR_SHM_CORRUPT')
    // A refs trailer claiming more refs than the frame holds.
    expect(shmError(() => frameRefs(Uint8Array.from([1, 1, 0, 0xff, 0xff, 0xff, 0xff]))).code).toBe('ERR_SHM_CORRUPT')
    expect(shmError(() => readFrame(Uint8Array.from([2, 0, 0]))).message).toMatch(/version 2/)
  })
})
