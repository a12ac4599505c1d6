import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deepStrictEqual } from 'node:assert'
import fc from 'fast-check'
import { SharedMemory, ShmError, registerClass, frozen } from 'interprocess-objects'
import { startChild, uniqueName, type Child } from './helpers/processes'
import { value } from './helpers/values'
import { Point } from './children/shared-classes'
// White-box: the key hash is part of the segment layout, not of the API.
import { hashKey } from '../core/values/hash'

registerClass(Point)

function expectShmError(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ShmError)
    expect((err as ShmError).code).toBe(code)
    if (message) expect((err as Error).message).toMatch(message)
    return
  }
  throw new Error(`expected ShmError ${code}, nothing was thrown`)
}

describe('codec round trips through a second process', () => {
  const name = uniqueName('codec')
  let shm: SharedMemory
  let echo: Child

  beforeAll(() => {
    shm = SharedMemory.create({ name, size: 16 * 1024 * 1024 })
    echo = startChild('codec-echo.ts', [name])
  })

  afterAll(async () => {
    shm.access((tx) => tx.putMessage('stop', { channel: 'in' }))
    expect(await echo.exited).toBe(0)
    shm.close()
  })

  function roundTrip(v: unknown): unknown {
    shm.access((tx) => tx.putMessage(v, { channel: 'in' }))
    shm.waitForMessageSync({ channel: 'out', timeoutMs: 10_000 })
    return shm.access((tx) => {
      const got = tx.takeMessage({ channel: 'out' })
      const copy = tx.copy(got)
      tx.destroy(got)
      return copy
    })
  }

  it('carries generated values unchanged, and frees everything it took', () => {
    roundTrip(0) // creates both channels' queues, which stay
    const baseline = shm.stats()
    fc.assert(
      fc.property(value, (v) => {
        deepStrictEqual(roundTrip(v), v)
      }),
      { numRuns: 300 },
    )
    // Both sides destroyed what they took.
    expect(shm.stats().used).toBe(baseline.used)
  })

  it('keeps edge cases exact', () => {
    const cases: unknown[] = [
      -0, NaN, 2 ** 31, -(2 ** 31), 2 ** 53 + 2, 0.1, Infinity, -Infinity,
      0n, -1n, 2n ** 64n, -(2n ** 1000n),
      '', 'ascii', 'ünïcödé ✓ 😀', '\ud800 lone', 'x\udfff', 'a'.repeat(10_000),
      new Date(0), /a+b/giu, new RegExp('/slash/', 'm'),
      [1, , 3], new Array(5), [[[[]]]],
      new Uint8Array([1, 2, 3]), new Float64Array([1.5, -0, NaN]), new BigInt64Array([-5n, 2n ** 63n - 1n]),
      new DataView(new Uint8Array([9, 8, 7]).buffer), new Uint8Array([4, 5, 6]).buffer, Buffer.from('buffer!'),
      new Map<unknown, unknown>([[1, 'one'], ['1', 'string one'], [1n, 'bigint one'], [null, 'null'], [undefined, 'u'], [NaN, 'nan']]),
      new Set([0, -0, NaN, 'a']),
      { nested: { deeper: { deepest: [1, 'two', { three: 3n }] } } },
      Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i])),
    ]
    for (const c of cases) deepStrictEqual(roundTrip(c), c)
    // deepStrictEqual calls two invalid Dates different (NaN !== NaN).
    const invalid = roundTrip(new Date(NaN))
    expect(invalid).toBeInstanceOf(Date)
    expect(Number.isNaN((invalid as Date).getTime())).toBe(true)
  })

  it('brings back one object for a value reachable twice, and cycles', () => {
    const shared = { s: 1 }
    const got = roundTrip({ a: shared, b: shared, list: [shared] }) as { a: object; b: object; list: object[] }
    expect(got.a).toBe(got.b)
    expect(got.list[0]).toBe(got.a)
    const cyclic: { self?: unknown; arr: unknown[] } = { arr: [] }
    cyclic.self = cyclic
    cyclic.arr.push(cyclic.arr, cyclic)
    const back = roundTrip(cyclic) as typeof cyclic
    expect(back.self).toBe(back)
    expect(back.arr[0]).toBe(back.arr)
    expect(back.arr[1]).toBe(back)
  })

  it('carries errors with name, message, stack and extra fields', () => {
    const err = new TypeError('bad thing') as TypeError & { code?: string }
    err.code = 'E_BAD'
    const back = roundTrip(err) as Error & { code?: string }
    expect(back).toBeInstanceOf(Error)
    expect(back.name).toBe('TypeError')
    expect(back.message).toBe('bad thing')
    expect(back.stack).toBe(err.stack)
    expect(back.code).toBe('E_BAD')
  })

  it('restores registered classes in the other process', () => {
    const back = roundTrip({ p: new Point(3, 4) }) as { p: Point }
    expect(back.p).toBeInstanceOf(Point)
    expect(back.p.norm()).toBe(5)
  })
})

describe('codec refusals', () => {
  it('names the path of an unsupported value and leaves the heap as it was', () => {
    const shm = SharedMemory.create({ name: uniqueName('unsup'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        const before = tx.stats()
        expectShmError(() => tx.putMessage({ a: [1, 2, 3, { b: () => 1 }] }), 'ERR_UNSUPPORTED_TYPE', /value\.a\[3\]\.b is a function/)
        expectShmError(() => tx.put([Symbol('s')]), 'ERR_UNSUPPORTED_TYPE', /value\[0\] is a symbol/)
        class Unregistered {
          x = 1
        }
        expectShmError(() => tx.put({ u: new Unregistered() }), 'ERR_UNSUPPORTED_TYPE', /registerClass\(Unregistered\)/)
        expectShmError(() => tx.put(new Map([[{}, 1]])), 'ERR_UNSUPPORTED_TYPE', /keys must be/)
        expect(tx.stats()).toEqual(before)
        expect(tx.hasMessages()).toBe(false)
        tx.stats()
      })
    } finally {
      shm.close()
    }
  })

  it('frees everything a put took when the segment fills halfway', () => {
    const shm = SharedMemory.create({ name: uniqueName('full'), size: 64 * 1024 })
    try {
      shm.access((tx) => {
        const before = tx.stats()
        const big = Array.from({ length: 400 }, (_, i) => ({ i, s: 'x'.repeat(i) }))
        expectShmError(() => tx.put(big), 'ERR_SHM_FULL')
        expect(tx.stats()).toEqual(before)
        shm.heap.allocator.check()
        // Still usable afterwards.
        const ok = tx.put([1, 2, 3])
        expect([...ok]).toEqual([1, 2, 3])
      })
    } finally {
      shm.close()
    }
  })

  it('frozen containers refuse mutation', () => {
    const shm = SharedMemory.create({ name: uniqueName('frozen'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        const m = tx.put(frozen(new Map([['a', 1]])))
        expect(m.get('a')).toBe(1)
        expectShmError(() => m.set('b', 2), 'ERR_SHM_READONLY')
        const o = tx.put(frozen({ a: 1 }))
        expectShmError(() => {
          o.a = 2
        }, 'ERR_SHM_READONLY')
        const arr = tx.put(frozen([1]))
        expectShmError(() => arr.push(2), 'ERR_SHM_READONLY')
        expect(o.a).toBe(1)
      })
    } finally {
      shm.close()
    }
  })
})

describe('key hash', () => {
  it('spreads integer, fractional, string and bigint keys over the buckets (1000 keys, 1024 buckets)', () => {
    const families: Record<string, unknown[]> = {
      integers: Array.from({ length: 1000 }, (_, i) => i),
      'large integers': Array.from({ length: 1000 }, (_, i) => i * 4096),
      fractions: Array.from({ length: 1000 }, (_, i) => i / 8),
      strings: Array.from({ length: 1000 }, (_, i) => `k${i}`),
      bigints: Array.from({ length: 1000 }, (_, i) => BigInt(i) << 40n),
    }
    for (const [family, keys] of Object.entries(families)) {
      // Random placement fills about 632 buckets; FNV-1a alone put the integers in 2.
      expect(new Set(keys.map((k) => hashKey(k, () => 'key') & 1023)).size, family).toBeGreaterThan(550)
    }
    expect(hashKey(-0, () => '')).toBe(hashKey(0, () => ''))
    expect(hashKey(NaN, () => '')).toBe(hashKey(Number('x'), () => ''))
  })
})
