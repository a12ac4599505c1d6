import { describe, expect, expectTypeOf, it } from 'vitest'
import { ShmError, StructArray, array, defineStruct, utf8, type TurnGuard } from 'interprocess-objects'
// White-box: how struct types travel between processes is internal.
import { STRUCT_SOURCE, structTypeByFingerprint, type StructSource } from '../common/struct_views'
import { startChild, uniqueName } from './helpers/processes'
import { Player, Vec2 } from './children/struct-schema'

/** Offsets of Player worked out by hand with C rules (natural alignment, size padded to 8). */
const PLAYER_OFFSETS = {
  id: 0, // uint32
  hp: 4, // int16, ends at 6
  score: 8, // float64: 6 rounded up to 8
  alive: 16, // bool
  big: 24, // int64: 17 rounded up to 24
  ubig: 32,
  name: 40, // 16 bytes
  pos: 56, // Vec2, alignment 8, 16 bytes
  history: 72, // 8 x float32
  flags: 104,
  tag: 105,
  f: 108, // float32: 106 rounded up to 108
  u16: 112,
  i32: 116, // int32: 114 rounded up to 116, ends at 120
}

function errorOf(fn: () => unknown): ShmError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ShmError) return err
    throw new Error(`expected a ShmError, got ${String(err)}`)
  }
  throw new Error('expected a ShmError, nothing was thrown')
}

/** A buffer with a non-zero byteOffset, like shm.bytes, so absolute offsets are exercised. */
function region(size: number, lead = 16): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size + lead), lead, size)
}

describe('defineStruct layout', () => {
  it('lays Player out like a C compiler would', () => {
    expect(Player.name).toBe('Player')
    expect(Player.alignment).toBe(8)
    expect(Player.byteLength).toBe(120)
    const offsets = Object.fromEntries(Player.fields.map((f) => [f.name, f.offset]))
    expect(offsets).toEqual(PLAYER_OFFSETS)
    expect(Player.fields.map((f) => f.name)).toEqual(Object.keys(PLAYER_OFFSETS))
  })

  it('describes fields well enough to address them from elsewhere', () => {
    const byName = new Map(Player.fields.map((f) => [f.name, f]))
    expect(byName.get('hp')).toEqual({ name: 'hp', kind: 'int16', offset: 4, byteLength: 2, alignment: 2 })
    expect(byName.get('name')).toEqual({ name: 'name', kind: 'utf8', offset: 40, byteLength: 16, alignment: 1 })
    expect(byName.get('history')).toEqual({ name: 'history', kind: 'array', element: 'float32', length: 8, elementByteLength: 4, offset: 72, byteLength: 32, alignment: 4 })
    const pos = byName.get('pos')
    expect(pos?.kind).toBe('struct')
    expect(pos?.kind === 'struct' && pos.struct).toBe(Vec2)
    expect(Object.isFrozen(Player.fields)).toBe(true)
  })

  it('pads between and after fields', () => {
    const A = defineStruct({ a: 'uint8', b: 'float64', c: 'uint8' }, 'A')
    expect(A.fields.map((f) => f.offset)).toEqual([0, 8, 16])
    expect([A.byteLength, A.alignment]).toEqual([24, 8])

    const B = defineStruct({ a: 'uint8', b: 'uint16', c: 'uint8' }, 'B')
    expect(B.fields.map((f) => f.offset)).toEqual([0, 2, 4])
    expect([B.byteLength, B.alignment]).toEqual([6, 2])

    const C = defineStruct({ a: 'bool', b: utf8(3) }, 'C')
    expect([C.byteLength, C.alignment]).toEqual([4, 1])

    const Inner = defineStruct({ a: 'int32', b: 'uint8' }, 'Inner') // 8 bytes, align 4
    expect(Inner.byteLength).toBe(8)
    const D = defineStruct({ n: 'uint8', items: array(Inner, 3), v: Vec2, t: 'uint8' }, 'D')
    expect(D.fields.map((f) => f.offset)).toEqual([0, 4, 32, 48])
    expect([D.byteLength, D.alignment]).toEqual([56, 8])
  })
})

describe('struct views: values', () => {
  const bytes = region(Player.byteLength * 4)
  const p = Player.view(bytes, Player.byteLength)

  it('round-trips integers, wrapping like TypedArrays', () => {
    const cases = [
      ['tag', Int8Array, [0, 127, -128, 128, -129, 255, 1.9, -1.9]],
      ['flags', Uint8Array, [0, 255, 256, -1, 300.7]],
      ['hp', Int16Array, [5, 32767, -32768, 32768, 65535, -32769]],
      ['u16', Uint16Array, [0, 65535, 65536, -1]],
      ['i32', Int32Array, [2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 32 + 5, NaN, Infinity]],
      ['id', Uint32Array, [0, 2 ** 32 - 1, 2 ** 32, -1, 1e10]],
    ] as const
    for (const [field, Ctor, values] of cases) {
      for (const v of values) {
        p[field] = v
        expect(p[field], `${field} = ${v}`).toBe(new Ctor([v])[0])
      }
    }
    p.hp = 5
    p.hp += 1
    expect(p.hp).toBe(6)
  })

  it('round-trips floats, NaN and -0', () => {
    for (const v of [1.5, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, 0.1]) {
      p.score = v
      expect(Object.is(p.score, v), `score = ${v}`).toBe(true)
    }
    for (const v of [0.1, -0, NaN, 3.4e38, 1e39, 1e-46]) {
      p.f = v
      expect(Object.is(p.f, Math.fround(v)), `f = ${v}`).toBe(true)
    }
  })

  it('round-trips 64-bit integers at their limits', () => {
    const cases: Array<[bigint, bigint]> = [
      [0n, 0n],
      [5n, 5n],
      [2n ** 63n - 1n, 2n ** 63n - 1n],
      [-(2n ** 63n), -(2n ** 63n)],
      [2n ** 63n, -(2n ** 63n)],
      [2n ** 64n + 7n, 7n],
    ]
    for (const [v, want] of cases) {
      p.big = v
      expect(p.big).toBe(want)
    }
    p.ubig = 2n ** 64n - 1n
    expect(p.ubig).toBe(2n ** 64n - 1n)
    p.ubig = -1n
    expect(p.ubig).toBe(2n ** 64n - 1n)
    expect(() => {
      ;(p as { big: unknown }).big = 5
    }).toThrow(TypeError)
  })

  it('round-trips booleans', () => {
    p.alive = true
    expect(p.alive).toBe(true)
    p.alive = false
    expect(p.alive).toBe(false)
    bytes[Player.byteLength + PLAYER_OFFSETS.alive] = 7 // any non-zero byte is true, as in C
    expect(p.alive).toBe(true)
  })

  it('stores utf8 strings up to the byte capacity', () => {
    p.name = 'bob'
    expect(p.name).toBe('bob')
    p.name = 'héllo 😀' // 11 bytes: é takes 2, the emoji 4 (a surrogate pair in JS)
    expect(p.name).toBe('héllo 😀')
    p.name = '0123456789abcdef' // exactly 16 bytes, no NUL needed
    expect(p.name).toBe('0123456789abcdef')
    p.name = 'ab' // shorter value must not leave the old tail behind
    expect(p.name).toBe('ab')
    const raw = bytes.subarray(Player.byteLength + 40, Player.byteLength + 56)
    expect([...raw.subarray(2)].every((b) => b === 0)).toBe(true)
    p.name = ''
    expect(p.name).toBe('')
  })

  it('refuses strings that do not fit, saying how many bytes they need, and keeps the old value', () => {
    p.name = 'keep'
    const err = errorOf(() => {
      p.name = 'ééééééééé' // 9 characters, 18 bytes
    })
    expect(err.code).toBe('ERR_INVALID_ARGUMENT')
    expect(err.message).toContain('needs 18')
    expect(err.message).toContain('16')
    expect(p.name).toBe('keep')
    expect(errorOf(() => { p.name = 'x'.repeat(17) }).message).toContain('needs 17')
    expect(errorOf(() => { p.name = 'a\u0000b' }).message).toContain('NUL')
    expect(errorOf(() => { (p as { name: unknown }).name = 42 }).code).toBe('ERR_INVALID_ARGUMENT')
    expect(p.name).toBe('keep')
  })

  it('works at an unaligned offset through DataView', () => {
    const Packed = defineStruct({ d: 'float64', i: 'int32', b: 'int64', s: 'uint16' }, 'Packed')
    const buf = region(64)
    for (const off of [1, 2, 3, 5]) {
      const v = Packed.view(buf, off)
      v.d = -2.5
      v.i = -7
      v.b = -(2n ** 40n)
      v.s = 65535
      const dv = new DataView(buf.buffer, buf.byteOffset + off)
      expect(dv.getFloat64(0, true)).toBe(-2.5)
      expect(dv.getInt32(8, true)).toBe(-7)
      expect(dv.getBigInt64(16, true)).toBe(-(2n ** 40n))
      expect(dv.getUint16(24, true)).toBe(65535)
      expect(v.toJSON()).toEqual({ d: -2.5, i: -7, b: -(2n ** 40n), s: 65535 })
    }
  })

  it('refuses a TypedArray field that would be unaligned, and says how to fix it', () => {
    const q = Player.view(region(Player.byteLength + 1), 1)
    q.score = 3 // scalars still work through DataView
    expect(q.score).toBe(3)
    const err = errorOf(() => q.history)
    expect(err.code).toBe('ERR_INVALID_ARGUMENT')
    expect(err.message).toContain('multiple of 8')
  })
})

describe('struct views: zero copy', () => {
  it('nested structs and numeric arrays are views over the same bytes', () => {
    const bytes = region(512, 24)
    const off = 128
    const p = Player.view(bytes, off)
    const dv = new DataView(bytes.buffer, bytes.byteOffset + off)

    p.pos.x = 1.5
    p.pos.y = -4
    expect(dv.getFloat64(56, true)).toBe(1.5)
    expect(dv.getFloat64(64, true)).toBe(-4)
    expect(p.pos).toBe(p.pos) // cached, not rebuilt on every access

    expect(p.history).toBeInstanceOf(Float32Array)
    expect(p.history.buffer).toBe(bytes.buffer)
    expect(p.history.byteOffset).toBe(bytes.byteOffset + off + 72)
    expect(p.history.length).toBe(8)
    p.history[3] = 2
    expect(dv.getFloat32(72 + 12, true)).toBe(2)
    dv.setFloat32(72 + 28, 9.5, true)
    expect(p.history[7]).toBe(9.5)

    p.score = 7.25
    p.big = 5n
    p.id = 0xdeadbeef
    expect(dv.getFloat64(8, true)).toBe(7.25)
    expect(dv.getBigInt64(24, true)).toBe(5n)
    expect(dv.getUint32(0, true)).toBe(0xdeadbeef)
    dv.setInt16(4, -123, true)
    expect(p.hp).toBe(-123)

    // Another view over the same bytes sees the same values.
    expect(Player.view(bytes, off).pos.x).toBe(1.5)
  })

  it('arrays of structs are read-only arrays of views', () => {
    const Inner = defineStruct({ a: 'int32', b: 'uint8' }, 'Inner')
    const Outer = defineStruct({ n: 'uint8', items: array(Inner, 3) }, 'Outer')
    const bytes = region(Outer.byteLength)
    const o = Outer.view(bytes, 0)
    expect(o.items.length).toBe(3)
    expect(Object.isFrozen(o.items)).toBe(true)
    o.items[2].a = -9
    o.items[1].b = 200
    const dv = new DataView(bytes.buffer, bytes.byteOffset)
    expect(dv.getInt32(4 + 2 * 8, true)).toBe(-9)
    expect(dv.getUint8(4 + 1 * 8 + 4)).toBe(200)
    expect([...o.items].map((v) => v.a)).toEqual([0, 0, -9])
    expect(() => (o.items as Array<unknown>).push(1)).toThrow(TypeError)
  })

  it('bigint arrays are BigInt64Array views', () => {
    const S = defineStruct({ flag: 'uint8', xs: array('int64', 2), us: array('uint16', 3) }, 'S')
    const bytes = region(S.byteLength)
    const s = S.view(bytes)
    s.xs[1] = -3n
    s.us[2] = 70000
    expect(s.xs).toBeInstanceOf(BigInt64Array)
    expect(new DataView(bytes.buffer, bytes.byteOffset).getBigInt64(16, true)).toBe(-3n)
    expect(s.toJSON()).toEqual({ flag: 0, xs: [0n, -3n], us: [0, 0, 70000 & 0xffff] })
  })

  it('nested views and arrays cannot be replaced by assignment', () => {
    const p = Player.view(region(Player.byteLength))
    const err = errorOf(() => {
      ;(p as { pos: unknown }).pos = { x: 1, y: 2 }
    })
    expect(err.code).toBe('ERR_INVALID_ARGUMENT')
    expect(err.message).toContain('Player.write')
    expect(errorOf(() => { (p as { history: unknown }).history = [1] }).code).toBe('ERR_INVALID_ARGUMENT')
  })
})

describe('read, write, toJSON', () => {
  it('copies plain values in and out', () => {
    const bytes = region(Player.byteLength * 2)
    Player.write(bytes, 0, {
      id: 7,
      hp: -3,
      name: 'ann',
      pos: { x: 1, y: 2 },
      history: [1, 2, 3],
      big: -(2n ** 63n),
      alive: true,
    })
    const plain = Player.read(bytes, 0)
    expect(plain).toEqual({
      id: 7, hp: -3, score: 0, alive: true, big: -(2n ** 63n), ubig: 0n, name: 'ann',
      pos: { x: 1, y: 2 }, history: [1, 2, 3, 0, 0, 0, 0, 0], flags: 0, tag: 0, f: 0, u16: 0, i32: 0,
    })
    expect(Player.view(bytes, 0).toJSON()).toEqual(plain)

    // Partial writes leave the other fields alone; a copy does not follow later writes.
    Player.write(bytes, 0, { pos: { y: 5 }, history: new Float32Array([9]) })
    expect(plain.pos.y).toBe(2)
    const again = Player.read(bytes, 0)
    expect(again.pos).toEqual({ x: 1, y: 5 })
    expect(again.history.slice(0, 3)).toEqual([9, 2, 3])
    expect(again.name).toBe('ann')
  })

  it('checks everything before writing anything', () => {
    const bytes = region(Player.byteLength)
    Player.write(bytes, 0, { hp: 1, name: 'x' })
    const before = bytes.slice()
    const misspelt = errorOf(() => Player.write(bytes, 0, { hp: 2, naem: 'y' } as never))
    expect(misspelt.code).toBe('ERR_INVALID_ARGUMENT')
    expect(misspelt.message).toContain('"naem"')
    expect(misspelt.message).toContain('name')
    expect(errorOf(() => Player.write(bytes, 0, { hp: 2, name: 'y'.repeat(40) })).message).toContain('needs 40')
    expect(errorOf(() => Player.write(bytes, 0, { hp: 2, history: new Array(9).fill(0) })).message).toContain('at most 8')
    expect(errorOf(() => Player.write(bytes, 0, { hp: 2, pos: { z: 1 } as never })).message).toContain('"z"')
    expect(bytes).toEqual(before)
  })

  it('copies arrays of structs', () => {
    const Inner = defineStruct({ a: 'int32', b: utf8(4) }, 'Inner')
    const Outer = defineStruct({ items: array(Inner, 2) }, 'Outer')
    const bytes = region(Outer.byteLength)
    Outer.write(bytes, 0, { items: [{ a: 1, b: 'hi' }, { b: 'yo' }] })
    expect(Outer.read(bytes)).toEqual({ items: [{ a: 1, b: 'hi' }, { a: 0, b: 'yo' }] })
    expect(Outer.view(bytes).items[1].b).toBe('yo')
  })
})

describe('turn guard', () => {
  function countingGuard() {
    const g = {
      calls: 0,
      allowed: true,
      check() {
        g.calls++
        if (!g.allowed) throw new ShmError('ERR_SHM_NO_TURN', 'outside a turn: use shm.access(tx => …)')
      },
    }
    return g
  }

  it('is checked before every access, nested ones included', () => {
    const g = countingGuard()
    const p = Player.view(region(Player.byteLength), 0, g)
    p.hp = 3
    expect(g.calls).toBe(1)
    expect(p.hp).toBe(3)
    expect(g.calls).toBe(2)
    p.pos.x = 1 // pos getter, then x setter
    expect(g.calls).toBe(4)
    p.name = 'z'
    void p.name
    void p.history
    expect(g.calls).toBe(7)
    p.toJSON()
    expect(g.calls).toBe(8)
  })

  it('blocks reads and writes when it throws', () => {
    const g = countingGuard()
    const bytes = region(Player.byteLength)
    const p = Player.view(bytes, 0, g)
    p.hp = 10
    p.pos.x = 2
    const pos = p.pos
    g.allowed = false
    expect(errorOf(() => p.hp).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => { p.hp = 11 }).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => { pos.x = 3 }).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => { p.name = 'no' }).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => p.pos).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => p.toJSON()).code).toBe('ERR_SHM_NO_TURN')
    expect(Player.read(bytes).hp).toBe(10) // unchanged
    expect(Player.read(bytes).pos.x).toBe(2)
    g.allowed = true
    expect(p.hp).toBe(10)
  })

  it('is never called without a guard, and a guarded view shares memory with an unguarded one', () => {
    const g = countingGuard()
    const bytes = region(Player.byteLength)
    const free = Player.view(bytes)
    const guarded = Player.view(bytes, 0, g)
    free.score = 4
    expect(guarded.score).toBe(4)
    expect(g.calls).toBe(1)
  })

  it('rejects something that is not a guard', () => {
    expect(errorOf(() => Player.view(region(Player.byteLength), 0, {} as TurnGuard)).code).toBe('ERR_INVALID_ARGUMENT')
  })
})

describe('fingerprint', () => {
  it('is equal for identical schemas defined twice and a u32', () => {
    const a = defineStruct({ x: 'float64', tag: utf8(8), v: Vec2 }, 'T')
    const b = defineStruct({ x: 'float64', tag: utf8(8), v: defineStruct({ x: 'float64', y: 'float64' }, 'Vec2') }, 'T')
    expect(a.fingerprint).toBe(b.fingerprint)
    expect(a.signature).toBe(b.signature)
    expect(Number.isInteger(a.fingerprint) && a.fingerprint >= 0 && a.fingerprint < 2 ** 32).toBe(true)
  })

  it('differs when the name or layout differs', () => {
    const base = defineStruct({ x: 'float64', y: 'int32' }, 'T').fingerprint
    const variants = [
      defineStruct({ x: 'float64', y: 'int32' }, 'U'),
      defineStruct({ x: 'float64', y: 'uint32' }, 'T'),
      defineStruct({ y: 'int32', x: 'float64' }, 'T'),
      defineStruct({ x: 'float64', z: 'int32' }, 'T'),
      defineStruct({ x: 'float64', y: 'int32', w: 'uint8' }, 'T'),
      defineStruct({ x: 'float32', y: 'int32' }, 'T'),
    ]
    for (const v of variants) expect(v.fingerprint, v.signature).not.toBe(base)
    expect(defineStruct({ s: utf8(8) }, 'T').fingerprint).not.toBe(defineStruct({ s: utf8(9) }, 'T').fingerprint)
    expect(defineStruct({ a: array('int16', 4) }, 'T').fingerprint).not.toBe(defineStruct({ a: array('int16', 5) }, 'T').fingerprint)
    const V3 = defineStruct({ x: 'float64', y: 'float64', z: 'float64' }, 'Vec2')
    expect(defineStruct({ v: V3 }, 'T').fingerprint).not.toBe(defineStruct({ v: Vec2 }, 'T').fingerprint)
  })
})

describe('finding structs from other modules', () => {
  it('a view tells where its bytes are, and its type is found by fingerprint', () => {
    const bytes = region(Player.byteLength + 40)
    const p = Player.view(bytes, 40)
    p.hp = 77
    const source = (p as unknown as { [STRUCT_SOURCE](): StructSource })[STRUCT_SOURCE]()
    expect(source.fingerprint).toBe(Player.fingerprint)
    expect(source.bytes.buffer).toBe(bytes.buffer)
    expect(source.bytes.byteOffset).toBe(bytes.byteOffset + 40)
    expect(source.bytes.byteLength).toBe(Player.byteLength)
    expect(Player.read(source.bytes).hp).toBe(77)
    expect(STRUCT_SOURCE).toBe(Symbol.for('interprocess-objects.struct'))

    const found = structTypeByFingerprint(Player.fingerprint)
    expect(found?.signature).toBe(Player.signature)
    expect(found?.view(bytes, 40)).toMatchObject({ hp: 77 })
    expect(structTypeByFingerprint(Player.fingerprint ^ 1)).toBeUndefined()
  })
})

describe('bad schemas and arguments', () => {
  const bad = (fn: () => unknown) => {
    const err = errorOf(fn)
    expect(err.code).toBe('ERR_INVALID_ARGUMENT')
    return err.message
  }

  it('rejects unknown types and says what to use', () => {
    expect(bad(() => defineStruct({ x: 'double' as never }, 'T'))).toMatch(/T\.x.*unknown type.*float64/)
    expect(bad(() => defineStruct({ s: 'string' as never }, 'T'))).toContain('utf8(n)')
    expect(bad(() => defineStruct({ s: 42 as never }, 'T'))).toContain('T.s')
    expect(bad(() => defineStruct({ s: { kind: 'array', element: 'nope', length: 2 } as never }, 'T'))).toContain('T.s')
    expect(bad(() => array('bool' as never, 4))).toContain("array('uint8', n)")
  })

  it('rejects empty schemas and non-positive lengths', () => {
    expect(bad(() => defineStruct({}, 'Empty'))).toContain('no fields')
    expect(bad(() => defineStruct(null as never))).toContain('schema must be an object')
    for (const n of [0, -1, 1.5, NaN]) {
      expect(bad(() => array('int32', n))).toContain('positive integer')
      expect(bad(() => utf8(n))).toContain('positive integer')
    }
  })

  it('rejects field names that would clash with methods', () => {
    expect(bad(() => defineStruct({ toJSON: 'int32' }, 'T'))).toContain('reserved')
    expect(bad(() => defineStruct({ then: 'int32' }, 'T'))).toContain('Promise')
    expect(bad(() => defineStruct({ constructor: 'int32' }, 'T'))).toContain('reserved')
    expect(bad(() => defineStruct(JSON.parse('{"__proto__": "int32"}') as { x: 'int32' }, 'T'))).toContain('reserved')
    expect(bad(() => defineStruct({ 1: 'int32' }, 'T'))).toContain('order')
  })

  it('rejects views that do not fit', () => {
    const bytes = region(Player.byteLength + 8)
    expect(() => Player.view(bytes, 8)).not.toThrow()
    expect(bad(() => Player.view(bytes, 9))).toMatch(/needs bytes up to 129 but there are 128/)
    expect(bad(() => Player.view(bytes, -1))).toContain('non-negative integer')
    expect(bad(() => Player.view(bytes, 0.5))).toContain('non-negative integer')
    expect(bad(() => Player.read(new Uint8Array(4)))).toContain('does not fit')
    expect(bad(() => Player.view('nope' as never))).toContain('Uint8Array')
  })
})

describe('StructArray', () => {
  const Particle = defineStruct({ x: 'float32', mass: 'float64', id: 'uint16', alive: 'bool', label: utf8(5), v: Vec2, hist: array('int16', 3) }, 'Particle')

  it('sizes columns with each one aligned', () => {
    // 7 rows: x 28 bytes @0, mass @32 (56), id @88 (14), alive @102 (7), label @109 (35),
    // v @144 (112), hist @256 (42) → 298, padded to 8 → 304.
    expect(StructArray.byteLength(Particle, 7)).toBe(304)
    expect(StructArray.byteLength(Particle, 0)).toBe(0)
    const S = defineStruct({ a: 'uint8', b: 'int32' }, 'S')
    expect(StructArray.byteLength(S, 3)).toBe(4 + 12) // 3 bytes, padded to 4, then 12
  })

  it('columns are zero-copy and agree with at(i)', () => {
    const n = 7
    const bytes = region(StructArray.byteLength(Particle, n) + 64, 8)
    const arr = new StructArray(Particle, bytes, 64, n)
    expect(arr.length).toBe(n)
    for (let i = 0; i < n; i++) {
      const row = arr.at(i)
      row.x = i + 0.5
      row.mass = i * 10
      row.id = 1000 + i
      row.alive = i % 2 === 0
      row.label = `r${i}`
      row.v.y = -i
      row.hist[2] = i * 3
    }
    const x = arr.column('x')
    const mass = arr.column('mass')
    const id = arr.column('id')
    expect(x).toBeInstanceOf(Float32Array)
    expect(mass).toBeInstanceOf(Float64Array)
    expect(id).toBeInstanceOf(Uint16Array)
    expect(x.buffer).toBe(bytes.buffer)
    expect(mass.byteOffset).toBe(bytes.byteOffset + 64 + 32)
    expect(id.byteOffset).toBe(bytes.byteOffset + 64 + 88)
    for (let i = 0; i < n; i++) {
      const row = arr.at(i)
      expect(x[i]).toBe(row.x)
      expect(mass[i]).toBe(row.mass)
      expect(id[i]).toBe(row.id)
    }
    mass[3] = 123.5 // column write, row read
    expect(arr.at(3).mass).toBe(123.5)
    expect(arr.at(-1).id).toBe(1006)
    const dv = new DataView(bytes.buffer, bytes.byteOffset + 64)
    expect(dv.getUint8(102 + 4)).toBe(1) // alive column, row 4
    expect(dv.getFloat64(144 + 2 * 16 + 8, true)).toBe(-2) // v column, row 2, y
    expect(dv.getInt16(256 + 5 * 6 + 4, true)).toBe(15) // hist column, row 5, element 2
    expect(new TextDecoder().decode(bytes.subarray(64 + 109 + 5 * 5, 64 + 109 + 5 * 5 + 2))).toBe('r5')
  })

  it('iterates, copies, and reads every field kind through at(i)', () => {
    const bytes = region(StructArray.byteLength(Particle, 3))
    const arr = new StructArray(Particle, bytes, 0, 3)
    arr.at(1).label = 'héé' // 5 bytes
    arr.at(1).v.x = 2
    arr.at(1).hist[0] = -1
    arr.at(2).alive = true
    const rows = [...arr]
    expect(rows.length).toBe(3)
    expect(rows[1].label).toBe('héé')
    expect(rows[1].v.x).toBe(2)
    expect(rows[1].hist).toBeInstanceOf(Int16Array)
    expect(Array.from(rows[1].hist)).toEqual([-1, 0, 0])
    const plain = arr.toArray()
    expect(plain[1]).toEqual({ x: 0, mass: 0, id: 0, alive: false, label: 'héé', v: { x: 2, y: 0 }, hist: [-1, 0, 0] })
    expect(plain[2].alive).toBe(true)
    expect(arr.at(1).toJSON()).toEqual(plain[1])
    expect(errorOf(() => { arr.at(0).label = 'toolong' }).message).toContain('needs 7')
    // Wrapping the same region again (say, once per turn) reuses the compiled row accessors.
    const again = new StructArray(Particle, bytes, 0, 3)
    expect(Object.getPrototypeOf(again.at(0))).toBe(Object.getPrototypeOf(arr.at(2)))
    expect(again.at(1).label).toBe('héé')
  })

  it('rejects bad columns, indexes and placement', () => {
    const bytes = region(StructArray.byteLength(Particle, 2) + 8)
    const arr = new StructArray(Particle, bytes, 0, 2)
    expect(errorOf(() => arr.column('label' as never)).message).toContain('only numeric scalar fields')
    expect(errorOf(() => arr.column('alive' as never)).code).toBe('ERR_INVALID_ARGUMENT')
    expect(errorOf(() => arr.column('nope' as never)).message).toContain('no such field')
    expect(errorOf(() => arr.at(2)).message).toContain('2 rows')
    expect(errorOf(() => arr.at(-3)).code).toBe('ERR_INVALID_ARGUMENT')
    expect(errorOf(() => new StructArray(Particle, bytes, 4, 2)).message).toContain('multiple of 8')
    expect(errorOf(() => new StructArray(Particle, bytes, 8, 3)).message).toContain('does not fit')
  })

  it('checks its guard on row access, columns and copies', () => {
    let allowed = true
    let calls = 0
    const guard = { check() { calls++; if (!allowed) throw new ShmError('ERR_SHM_NO_TURN', 'no turn') } }
    const arr = new StructArray(Particle, region(StructArray.byteLength(Particle, 2)), 0, 2, guard)
    arr.at(0).id = 4
    arr.at(0).v.x = 1
    expect(calls).toBe(3)
    allowed = false
    expect(errorOf(() => arr.at(0).id).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => arr.column('id')).code).toBe('ERR_SHM_NO_TURN')
    expect(errorOf(() => arr.toArray()).code).toBe('ERR_SHM_NO_TURN')
    allowed = true
    expect(arr.column('id')[0]).toBe(4)
  })
})

describe('types', () => {
  it('maps schemas to instance types', () => {
    const p = Player.view(region(Player.byteLength))
    expectTypeOf(p.hp).toEqualTypeOf<number>()
    expectTypeOf(p.big).toEqualTypeOf<bigint>()
    expectTypeOf(p.alive).toEqualTypeOf<boolean>()
    expectTypeOf(p.name).toEqualTypeOf<string>()
    expectTypeOf(p.history).toEqualTypeOf<Float32Array>()
    expectTypeOf(p.pos.x).toEqualTypeOf<number>()
    type Plain = ReturnType<typeof Player.read>
    expectTypeOf<Plain['history']>().toEqualTypeOf<number[]>()
    expectTypeOf<Plain['ubig']>().toEqualTypeOf<bigint>()
    expectTypeOf<Plain['pos']>().toEqualTypeOf<{ x: number; y: number }>()
    const arr = new StructArray(Player, region(StructArray.byteLength(Player, 1)), 0, 1)
    expectTypeOf(arr.column('hp')).toEqualTypeOf<Int16Array>()
    expectTypeOf(arr.column('ubig')).toEqualTypeOf<BigUint64Array>()
    // @ts-expect-error: utf8 fields have no TypedArray column
    expect(() => arr.column('name')).toThrow(ShmError)
    // @ts-expect-error: nested views cannot be replaced
    expect(() => { p.pos = Vec2.view(region(16)) }).toThrow(ShmError)
  })
})

describe('across processes', () => {
  it('a child opens the segment, defines the same struct and its writes are seen here', async () => {
    // Imported here so the single-process tests above do not depend on the segment layer.
    const { SharedMemory } = await import('../core/shared_memory')
    const shm = SharedMemory.create({ name: uniqueName('struct'), size: 65536 })
    try {
      const p = Player.view(shm.bytes, 8192)
      p.id = 1
      p.hp = 100
      p.score = 0.5
      p.big = 2n ** 40n
      p.name = 'parent'
      p.pos.x = 1
      p.history[2] = 10
      const particles = new StructArray(Player, shm.bytes, 16384, 4)
      particles.column('hp').set([1, 2, 3, 4])

      const child = startChild('struct-peer.ts', [shm.name, '8192', '16384', '4'])
      const hello = await child.next<{ fingerprint: number; hp: number; name: string }>()
      expect(hello).toEqual({ fingerprint: Player.fingerprint, hp: 100, name: 'parent' })

      child.send({ op: 'increment', times: 1000 })
      expect(await child.next()).toEqual({ done: 'increment' })
      expect(p.id).toBe(1001)
      expect(p.hp).toBe(1100)
      expect(p.score).toBe(500.5)
      expect(p.big).toBe(2n ** 40n + 1000n)
      expect(p.name).toBe('child')
      expect(p.pos.x).toBe(1001)
      expect(p.history[2]).toBe(1010)
      expect(Array.from(particles.column('hp'))).toEqual([1001, 1002, 1003, 1004])
      expect(particles.at(3).name).toBe('row 3')

      // And the other way round, while both have it mapped.
      p.hp = -5
      child.send({ op: 'report' })
      expect(await child.next()).toEqual({ hp: -5 })
      child.send({ op: 'exit' })
      expect(await child.exited).toBe(0)
    } finally {
      shm.close()
    }
  })
})
