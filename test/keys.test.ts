// Map and Set keys beyond primitives (docs/concepts.md, "Keys"): Dates compared by
// time value and tuple keys (frozen arrays of keys) compared by value, hashed the
// same in every process; lookups with a value that cannot be a key answer "absent",
// set/add with one throws ERR_UNSUPPORTED_TYPE saying what a key may be.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { SharedMemory, ShmError, frozen, MappedMap, MappedSet } from 'interprocess-objects'
import { hashKey, lookupHash } from '../core/values/hash'
import { mappedHandleOf } from '../core/values/mapped_handle'
import { Entry, Hash, Slot, Tag } from '../core/records'
import { cleanUpAfterEach } from './helpers/cleanup'
import { startChild, uniqueName } from './helpers/processes'
import { shmError } from './helpers/segments'

const cleanup = cleanUpAfterEach()

function segment(size = 1 << 20): SharedMemory {
  const name = uniqueName('keys')
  cleanup.names.push(name)
  const shm = SharedMemory.create({ name, size })
  cleanup.opened.push(shm)
  return shm
}

const path = (): string => 'key'

/** A key as a string that is equal exactly when the keys are the same shared key. */
function canon(key: unknown): string {
  if (key instanceof Date) return `D${canon(key.getTime())}`
  if (Array.isArray(key)) return `[${key.map(canon).join(',')}]`
  if (typeof key === 'number') return `n${Object.is(key, -0) ? 0 : key}`
  if (typeof key === 'string') return `s${JSON.stringify(key)}`
  if (typeof key === 'bigint') return `b${key}`
  return String(key)
}

describe('key hashes', () => {
  it('primitive keys hash as before (where existing segments keep them)', () => {
    // Values of the hash before Date and tuple keys existed: a change moves every stored key.
    const before: Array<[unknown, number]> = [
      ['', 90457223], ['a', 194382013], ['key', 3649353606], ['héllo', 869484965], [0, 3221587496], [-0, 3221587496],
      [1, 3612797279], [-1, 1803612013], [1.5, 593676089], [NaN, 3984109246], [2 ** 40, 3712004260], [1n, 491392764],
      [-123456789012345678901234567890n, 2234602906], [true, 92598572], [false, 1726300461], [null, 2893720707], [undefined, 282499791],
    ]
    for (const [key, hash] of before) expect(hashKey(key, path), String(key)).toBe(hash)
  })

  it('Dates hash by time value, tuples by their elements; -0 is 0 inside tuples too', () => {
    expect(hashKey(new Date(5), path)).toBe(hashKey(new Date(5), path))
    expect(hashKey(new Date(5), path)).not.toBe(hashKey(5, path))
    expect(hashKey(new Date(NaN), path)).toBe(hashKey(new Date('invalid'), path))
    expect(hashKey(Object.freeze(['key', 2]), path)).toBe(hashKey(frozen(['key', 2]), path))
    expect(hashKey(Object.freeze([-0, NaN]), path)).toBe(hashKey(Object.freeze([0, NaN]), path))
    expect(hashKey(Object.freeze(['a', 'b']), path)).not.toBe(hashKey(Object.freeze(['ab']), path))
    expect(hashKey(Object.freeze([Object.freeze(['a']), 'b']), path)).not.toBe(hashKey(Object.freeze(['a', 'b']), path))
    expect(hashKey(Object.freeze([]), path)).not.toBe(hashKey(undefined, path))
  })

  it('a value that cannot be a key has no lookup hash', () => {
    const selfContaining: unknown[] = []
    selfContaining.push(selfContaining)
    Object.freeze(selfContaining)
    for (const notKey of [{}, [1, 2], () => 1, Symbol('s'), Object.freeze([{}]), selfContaining, new Map(), Object.create(Date.prototype) as Date]) {
      expect(lookupHash(notKey)).toBe(-1)
    }
  })
})

describe('Date keys', () => {
  it('compare by time value and come back as new Dates', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, string>())
      const key = new Date(Date.UTC(2024, 0, 2))
      map.set(key, 'jan 2')
      map.set(new Date(0), 'epoch')
      map.set(0, 'zero') // a number, not the Date of time 0
      expect(map.size).toBe(3)
      expect(map.get(new Date(key.getTime()))).toBe('jan 2')
      expect(map.get(new Date(0))).toBe('epoch')
      expect(map.get(0)).toBe('zero')
      map.set(new Date(key.getTime()), 'replaced')
      expect(map.size).toBe(3)
      expect(map.get(key)).toBe('replaced')
      const [first] = map.keys()
      expect(first).toBeInstanceOf(Date)
      expect(first).not.toBe(key)
      expect((first as Date).getTime()).toBe(key.getTime())
      expect(map.delete(new Date(0))).toBe(true)
      expect(map.has(new Date(0))).toBe(false)
      const set = tx.put(new Set([new Date(1), new Date(1), new Date(2)]))
      expect(set.size).toBe(2)
      expect(set.has(new Date(2))).toBe(true)
    })
    expect(shm.check().clean).toBe(true)
  })
})

describe('tuple keys', () => {
  it('frozen arrays (Object.freeze or frozen()) compare by value and come back frozen', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, unknown>())
      map.set(Object.freeze(['key', 2]), 'v')
      expect(map.get(Object.freeze(['key', 2]))).toBe('v')
      expect(map.get(frozen(['key', 2]))).toBe('v')
      expect(map.has(Object.freeze(['key', 3]))).toBe(false)
      expect(map.has(Object.freeze(['key']))).toBe(false)
      expect(map.has('key,2')).toBe(false)
      map.set(frozen(['key', 2]), 'again')
      expect(map.size).toBe(1)
      expect(map.get(Object.freeze(['key', 2]))).toBe('again')

      map.set(Object.freeze(['at', new Date(0), 7n, null, undefined, true]), 'mixed')
      expect(map.get(Object.freeze(['at', new Date(0), 7n, null, undefined, true]))).toBe('mixed')
      map.set(Object.freeze([Object.freeze([1, 2]), 'x']), 'nested')
      expect(map.get(Object.freeze([Object.freeze([1, 2]), 'x']))).toBe('nested')
      map.set(Object.freeze([]), 'empty')
      expect(map.get(Object.freeze([]))).toBe('empty')

      const keys = [...map.keys()] as unknown[][]
      expect(keys.map((k) => Object.isFrozen(k))).toEqual([true, true, true, true])
      expect(keys[0]).toEqual(['key', 2])
      expect(keys[1]![1]).toBeInstanceOf(Date)
      expect(Object.isFrozen(keys[2]![0])).toBe(true)
      expect(() => (keys[0] as unknown[]).push(1)).toThrow(TypeError)

      const set = tx.put(new Set<unknown>())
      set.add(Object.freeze([1, 'a']))
      expect(set.has(Object.freeze([1, 'a']))).toBe(true)
      expect(set.has(Object.freeze(['a', 1]))).toBe(false)
      set.add(Object.freeze([1, 'a']))
      expect(set.size).toBe(1)
      expect(set.delete(frozen([1, 'a']))).toBe(true)
      expect(set.size).toBe(0)
    })
    expect(shm.check().clean).toBe(true)
  })

  it('-0 inside a tuple is stored as 0, as Map does for a plain key', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, number>())
      map.set(Object.freeze([-0, NaN]), 1)
      expect(map.get(Object.freeze([0, NaN]))).toBe(1)
      const [key] = map.keys() as Iterable<unknown[]>
      expect(Object.is(key![0], 0)).toBe(true)
      expect(Number.isNaN(key![1])).toBe(true)
    })
  })

  it('a tuple used as a key and as a value is stored twice: the key stays frozen, the value mutable', () => {
    const shm = segment()
    shm.access((tx) => {
      const t = Object.freeze(['k', 1])
      const map = tx.put(new Map<unknown, unknown>([[t, t]]))
      const value = map.get(t) as unknown[]
      expect([...value]).toEqual(['k', 1])
      const [key] = map.keys() as Iterable<unknown[]>
      expect(Object.isFrozen(key)).toBe(true)
      expect(mappedHandleOf(key!)).toBeUndefined()
    })
    expect(shm.check().clean).toBe(true)
  })
})

describe('putting a plain Map or Set', () => {
  it('merges keys that are distinct objects but one shared key: first position, last value', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, string>([
        [Object.freeze(['k', 1]), 'first'], ['p', 'p'], [Object.freeze(['k', 1]), 'last'], [new Date(3), 'd1'], [new Date(3), 'd2'],
      ]))
      expect(map.size).toBe(3)
      expect([...map].map(([k, v]) => [canon(k), v])).toEqual([[canon(['k', 1]), 'last'], [canon('p'), 'p'], [canon(new Date(3)), 'd2']])
      const set = tx.put(new Set([new Date(1), new Date(1), new Date(2), Object.freeze([1]), frozen([1])]))
      expect(set.size).toBe(3)
    })
    expect(shm.check().clean).toBe(true)
  })
})

describe('values that cannot be keys', () => {
  it('get/has/delete answer absent, set/add throw ERR_UNSUPPORTED_TYPE saying what a key may be', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, number>([['a', 1]]))
      const set = tx.put(new Set<unknown>(['a']))
      const view = tx.put([1, 2])
      const notKeys: unknown[] = [{}, [1, 2], () => 1, Symbol('s'), view, map, frozen(view), Object.freeze([{}]), Object.freeze([[1]]), new Map()]
      for (const k of notKeys) {
        expect(map.get(k)).toBeUndefined()
        expect(map.has(k)).toBe(false)
        expect(map.delete(k)).toBe(false)
        expect(set.has(k)).toBe(false)
        expect(set.delete(k)).toBe(false)
        const err = shmError(() => map.set(k, 1))
        expect(err.code).toBe('ERR_UNSUPPORTED_TYPE')
        expect(err.message).toMatch(/primitives.*Dates.*frozen arrays/)
        expect(err.message).toContain('tuple key')
        expect(shmError(() => set.add(k)).code).toBe('ERR_UNSUPPORTED_TYPE')
      }
      expect(shmError(() => map.set([1, 2], 1)).message).toContain('Object.freeze')
      expect(shmError(() => map.set(view, 1)).message).toContain('mapped view')
      expect(map.size).toBe(1)
      expect(set.size).toBe(1)
      // A whole Map put at once names where the bad key is.
      expect(shmError(() => tx.put({ m: new Map([[{}, 1]]) })).message).toContain('value.m')
    })
    expect(shm.check().clean).toBe(true)
  })
})

describe('iteration and copies', () => {
  it('keys(), entries(), forEach, for…of and tx.copy give Dates and frozen arrays back', () => {
    const shm = segment()
    shm.access((tx) => {
      const date = new Date(123)
      const tuple = Object.freeze(['t', 1])
      const map = tx.put(new Map<unknown, string>([[date, 'd'], [tuple, 't'], ['s', 's']]))
      const expected = [[canon(date), 'd'], [canon(tuple), 't'], [canon('s'), 's']]
      expect([...map.entries()].map(([k, v]) => [canon(k), v])).toEqual(expected)
      expect([...map].map(([k, v]) => [canon(k), v])).toEqual(expected)
      const viaForEach: unknown[][] = []
      map.forEach((v, k) => viaForEach.push([canon(k), v]))
      expect(viaForEach).toEqual(expected)

      const copy = tx.copy(map)
      expect(copy).toBeInstanceOf(Map)
      const keys = [...copy.keys()]
      expect(keys[0]).toBeInstanceOf(Date)
      expect(Array.isArray(keys[1]) && Object.isFrozen(keys[1])).toBe(true)
      expect(keys[1]).toEqual(['t', 1])
      expect(mappedHandleOf(keys[1] as object)).toBeUndefined()

      const set = tx.put(new Set<unknown>([tuple, date]))
      const setCopy = tx.copy(set)
      expect([...setCopy].map(canon)).toEqual([canon(tuple), canon(date)])
      expect([...set.entries()].map(([a, b]) => [canon(a), canon(b)])).toEqual([[canon(tuple), canon(tuple)], [canon(date), canon(date)]])
    })
  })
})

describe('shm.check() and key hashes', () => {
  it('verifies each entry hash against its key', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, number>([[Object.freeze(['a', new Date(1)]), 1], [new Date(2), 2], ['s', 3]]))
      tx.putMessage(map, { channel: 'm' })
    })
    expect(shm.check().clean).toBe(true)
    shm.access((tx) => {
      const map = tx.takeMessage<MappedMap>({ channel: 'm' })
      const { heap, ref } = mappedHandleOf(map)!
      const first = heap.u32[(ref + Hash.Entries) >>> 2]! + Entry.HashCode
      // Flip a bit the bucket mask does not see: only the hash check can notice.
      heap.u32[first >>> 2] = heap.u32[first >>> 2]! ^ 0x80000000
      tx.putMessage(map, { channel: 'm' })
    })
    const err = shmError(() => shm.check())
    expect(err.code).toBe('ERR_SHM_CORRUPT')
    expect(err.message).toContain('hashes to')
  })

  it('a key slot that names a container (a stray write) is ERR_SHM_CORRUPT, not an endless walk', () => {
    const shm = segment()
    shm.access((tx) => {
      const map = tx.put(new Map<unknown, number>([['a', 1]]))
      const { heap, ref } = mappedHandleOf(map)!
      const key = heap.u32[(ref + Hash.Entries) >>> 2]! + Entry.Key
      // The map becomes its own key.
      heap.i32[key >>> 2] = Tag.Map
      heap.u32[(key + Slot.Payload) >>> 2] = ref
      expect(shmError(() => tx.copy(map)).code).toBe('ERR_SHM_CORRUPT')
      expect(shmError(() => [...map.keys()]).code).toBe('ERR_SHM_CORRUPT')
      tx.putMessage(map, { channel: 'm' })
    })
    const err = shmError(() => shm.check())
    expect(err.code).toBe('ERR_SHM_CORRUPT')
    expect(err.message).toContain('no key has')
  })
})

describe('another process', () => {
  it('finds Date and tuple keys put here, and its own are found here', async () => {
    const shm = segment()
    shm.access((tx) => {
      const map = new Map<unknown, string>([
        [new Date(Date.UTC(2024, 0, 2)), 'date'],
        [Object.freeze(['key', 2]), 'tuple'],
        [Object.freeze(['at', new Date(0), 7n]), 'mixed'],
        [Object.freeze([Object.freeze([1, 2]), 'x']), 'nested'],
        [Object.freeze([-0]), 'zero'],
      ])
      const set = new Set<unknown>([Object.freeze([1, 'a']), new Date(86_400_000)])
      // Put in the segment and sent by reference: the child gets the live Map and Set.
      const state = tx.put({ map, set })
      tx.putMessage(state, { channel: 'keys' })
      tx.destroy(state) // the queued message holds its own reference
    })
    const child = startChild('keys-peer.ts', [shm.name])
    const found = await child.next()
    expect(await child.exited).toBe(0)
    expect(found).toEqual({
      live: true,
      date: 'date', tuple: 'tuple', helperTuple: 'tuple', mixed: 'mixed', nested: 'nested', negativeZero: 'zero',
      setTuple: true, setDate: true,
      keys: [{ date: Date.UTC(2024, 0, 2) }, { tuple: true }, { tuple: true }, { tuple: true }, { tuple: true }],
    })
    shm.access((tx) => {
      // The child sent the live views back: this process owns a reference to each.
      const { map, set } = tx.takeMessage<{ map: MappedMap<unknown, string>; set: MappedSet<unknown> }>({ channel: 'back' })
      expect(map).toBeInstanceOf(MappedMap)
      expect(set).toBeInstanceOf(MappedSet)
      expect(map.get(new Date(1_000))).toBe('child date')
      expect(map.get(Object.freeze(['child', 1]))).toBe('child tuple')
      expect(map.get(Object.freeze(['key', 2]))).toBe('tuple')
      expect(set.has(Object.freeze(['child', new Date(5)]))).toBe(true)
      expect(set.size).toBe(3)
      // Queued again by reference and left there: check() walks the records a queued frame refers to.
      tx.putMessage({ map, set }, { channel: 'kept' })
      tx.destroy(map)
      tx.destroy(set)
    })
    const report = shm.check()
    expect(report.clean).toBe(true)
    expect(report.records).toBeGreaterThanOrEqual(2)
  })
})

// ---------------------------------------------------------------------------------
// Property: a MappedMap / MappedSet behaves like a plain Map keyed by canon(key).

const primitive = fc.oneof(
  fc.string({ maxLength: 4 }),
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(0, -0, NaN, 1.5, Infinity, 2 ** 40),
  fc.bigInt({ min: -3n, max: 3n }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
)
const date = fc.integer({ min: -2, max: 2 }).map((t) => new Date(t))
const element = fc.oneof(primitive, date)
const tuple = fc
  .array(fc.oneof(element, fc.array(element, { maxLength: 2 }).map((a) => Object.freeze(a))), { maxLength: 3 })
  .chain((a) => fc.boolean().map((useHelper) => (useHelper ? frozen(a) : Object.freeze(a))))
const key = fc.oneof(primitive, date, tuple)

type Op = { op: 'set'; key: unknown; value: number } | { op: 'get' | 'has' | 'delete'; key: unknown }
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }),
  fc.record({ op: fc.constantFrom('get' as const, 'has' as const, 'delete' as const), key }),
)

describe('property', () => {
  it('MappedMap and MappedSet agree with a model Map keyed by the canonical key', () => {
    const shm = segment(4 << 20)
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        shm.access((tx) => {
          const map = tx.put(new Map<unknown, number>())
          const set = tx.put(new Set<unknown>())
          const model = new Map<string, number>()
          // Put whole, a plain Map of the same sets merges equal keys as set() one by one does.
          const sets = ops.filter((o): o is Extract<Op, { op: 'set' }> => o.op === 'set')
          const bulk = tx.put(new Map(sets.map((o) => [o.key, o.value])))
          const bulkModel = new Map(sets.map((o) => [canon(o.key), o.value]))
          expect([...bulk].map(([k, v]) => [canon(k), v])).toEqual([...bulkModel])
          tx.destroy(bulk)
          for (const o of ops) {
            const c = canon(o.key)
            if (o.op === 'set') {
              map.set(o.key, o.value)
              set.add(o.key)
              model.set(c, o.value)
            } else if (o.op === 'get') {
              expect(map.get(o.key)).toBe(model.get(c))
            } else if (o.op === 'has') {
              expect(map.has(o.key)).toBe(model.has(c))
              expect(set.has(o.key)).toBe(model.has(c))
            } else {
              const had = model.delete(c)
              expect(map.delete(o.key)).toBe(had)
              expect(set.delete(o.key)).toBe(had)
            }
          }
          expect(map.size).toBe(model.size)
          expect([...map].map(([k, v]) => [canon(k), v])).toEqual([...model])
          expect([...set].map(canon)).toEqual([...model.keys()])
          for (const k of map.keys()) if (Array.isArray(k)) expect(Object.isFrozen(k)).toBe(true)
          expect([...tx.copy(map)].map(([k, v]) => [canon(k), v])).toEqual([...model])
          tx.destroy(map)
          tx.destroy(set)
        })
      }),
      { numRuns: 200 },
    )
    expect(shm.check().clean).toBe(true)
  })
})
