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
    echo = startChild('codec-echo.ts', [name, 'report'])
  })

  afterAll(async () => {
    shm.access((tx) => tx.putMessage('stop', { channel: 'in' }))
    expect(await echo.exited).toBe(0)
    shm.close()
  })

  /**
   * Sends `v` to the echo process and returns what comes back. 'copy': the message is
   * a frame both ways (the value is copied in and read out as an ordinary value).
   * 'reference': `v` is put in the segment first and its view sent, so the echo gets
   * the live records (it owns them), copies them out (the record decoder, in another
   * process), destroys its view and sends the copy back as a frame. The sender
   * destroys its own view at once: the queued message's reference keeps the records.
   */
  function roundTrip(v: unknown, by: 'copy' | 'reference' = 'copy'): unknown {
    const expectMapped = shm.access((tx) => {
      if (by === 'copy') {
        tx.putMessage(v, { channel: 'in' })
        return false
      }
      const view = tx.put(v)
      tx.putMessage(view, { channel: 'in' })
      tx.destroy(view)
      return !Object.is(view, v)
    })
    shm.waitForMessageSync({ channel: 'out', timeoutMs: 10_000 })
    const [mapped, got] = shm.access((tx) => [tx.takeMessage({ channel: 'kind' }), tx.takeMessage({ channel: 'out' })])
    // Whether the echo got a live view: exactly when a mapped value was sent.
    expect(mapped).toBe(expectMapped)
    return got
  }

  it('carries generated values unchanged, and frees everything it took', () => {
    // Opens the three channels (both processes hold a handle on each until close) and
    // makes this process's list of held references.
    roundTrip(0)
    roundTrip({ warm: [1] }, 'reference')
    const baseline = shm.stats()
    let mapped = 0
    fc.assert(
      fc.property(value, (v) => {
        deepStrictEqual(roundTrip(v), v)
        deepStrictEqual(roundTrip(v, 'reference'), v)
        if (typeof v === 'object' && v !== null && !(v instanceof Date)) mapped++
      }),
      { numRuns: 300 },
    )
    expect(mapped).toBeGreaterThan(50)
    // Copies take nothing once taken (large frames' records are freed by the take);
    // the records sent by reference were destroyed by both sides.
    expect(shm.stats().used).toBe(baseline.used)
    const report = shm.check()
    expect(report.clean).toBe(true)
    expect(report.allocator.used).toBe(baseline.used)
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
    for (const by of ['copy', 'reference'] as const) {
      for (const c of cases) deepStrictEqual(roundTrip(c, by), c)
      // deepStrictEqual calls two invalid Dates different (NaN !== NaN).
      const invalid = roundTrip(new Date(NaN), by)
      expect(invalid).toBeInstanceOf(Date)
      expect(Number.isNaN((invalid as Date).getTime())).toBe(true)
    }
  })

  it.each(['copy', 'reference'] as const)('brings back one object for a value reachable twice, and cycles (%s)', (by) => {
    const shared = { s: 1 }
    const got = roundTrip({ a: shared, b: shared, list: [shared] }, by) as { a: object; b: object; list: object[] }
    expect(got.a).toBe(got.b)
    expect(got.list[0]).toBe(got.a)
    const cyclic: { self?: unknown; arr: unknown[] } = { arr: [] }
    cyclic.self = cyclic
    cyclic.arr.push(cyclic.arr, cyclic)
    const back = roundTrip(cyclic, by) as typeof cyclic
    expect(back.self).toBe(back)
    expect(back.arr[0]).toBe(back.arr)
    expect(back.arr[1]).toBe(back)
  })

  it.each(['copy', 'reference'] as const)('carries errors with name, message, stack and extra fields (%s)', (by) => {
    const err = new TypeError('bad thing') as TypeError & { code?: string }
    err.code = 'E_BAD'
    const back = roundTrip(err, by) as Error & { code?: string }
    expect(back).toBeInstanceOf(Error)
    expect(back.name).toBe('TypeError')
    expect(back.message).toBe('bad thing')
    expect(back.stack).toBe(err.stack)
    expect(back.code).toBe('E_BAD')
  })

  it.each(['copy', 'reference'] as const)('restores registered classes in the other process (%s)', (by) => {
    const back = roundTrip({ p: new Point(3, 4) }, by) as { p: Point }
    expect(back.p).toBeInstanceOf(Point)
    expect(back.p.norm()).toBe(5)
  })
})

describe('codec refusals', () => {
  it('names the path of an unsupported value and leaves the heap as it was', () => {
    const shm = SharedMemory.create({ name: uniqueName('unsup'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        // The first putMessage opens the default channel's ring, which this handle
        // keeps until close: open it before the baseline.
        tx.putMessage('open')
        expect(tx.takeMessage()).toBe('open')
        const before = tx.stats()
        expectShmError(() => tx.putMessage({ a: [1, 2, 3, { b: () => 1 }] }), 'ERR_UNSUPPORTED_TYPE', /value\.a\[3\]\.b is a function/)
        // A large frame (it would go into a Frame record) fails the same way, before any allocation.
        expectShmError(() => tx.putMessage({ big: 'x'.repeat(1000), then: [Symbol('s')] }), 'ERR_UNSUPPORTED_TYPE', /value\.then\[0\] is a symbol/)
        // A value sent by reference next to an unsupported one: its record is not retained for the message.
        const view = tx.put([1, 2])
        expectShmError(() => tx.putMessage({ view, f: () => 1 }), 'ERR_UNSUPPORTED_TYPE', /value\.f is a function/)
        tx.destroy(view)
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
