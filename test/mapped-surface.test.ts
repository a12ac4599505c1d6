// Mapped views against plain JavaScript values: conversions (String, join, template
// literals, ==, valueOf, toLocaleString), property order, JSON, util.inspect, writes
// that JavaScript allows or refuses, Map/Set details — and async turn callbacks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { SharedMemory, ShmError, MappedMap, MappedSet, registerClass, type Turn } from 'interprocess-objects'
import { runChild, uniqueName } from './helpers/processes'
import { afterCollection, shmError } from './helpers/segments'

class Temperature {
  celsius = 0
  get fahrenheit(): number {
    return this.celsius * 1.8 + 32
  }
  set fahrenheit(f: number) {
    this.celsius = (f - 32) / 1.8
  }
  get kelvin(): number {
    return this.celsius + 273.15
  }
}
registerClass(Temperature)

let shm: SharedMemory
beforeAll(() => {
  shm = SharedMemory.create({ name: uniqueName('surface'), size: 32 << 20 })
})
afterAll(() => shm.close())

/**
 * Runs fn in a turn and checks that it freed what it put (every run destroys its views)
 * once the turn is over: records this process still had views of last until then.
 */
async function turn<T>(fn: (tx: Turn) => T): Promise<T> {
  const before = shm.stats().used
  const out = shm.access(fn)
  // TypedArrays read out of containers (by JSON.stringify, join, inspect…) hold their
  // records until they are collected: core/view_holds.ts.
  await afterCollection(() => shm.stats().used === before)
  expect(shm.stats().used).toBe(before)
  return out
}

/** A value or the kind of error: conversions must fail where the plain value's fail. */
function outcome(fn: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: fn() }
  } catch (err) {
    return { error: (err as Error).constructor.name }
  }
}

// ---------------------------------------------------------------------------------
// Generated values (JSON-relevant: holes, undefined, NaN, -0, Dates, Maps, Sets, bytes)

const leaf = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }),
)
// Integer-like keys ('0', '10', '4294967294') are ordered before the others by JavaScript;
// '01', '-1', '1.5' and '4294967295' are not array indices and keep their place.
const key = fc.oneof(
  fc.string({ maxLength: 5 }),
  fc.nat(30).map(String),
  fc.constantFrom('01', '-1', '1.5', '4294967294', '4294967295', 'length', 'toString', 'toJSON', '__proto__', 'constructor'),
)
const mapKey = fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ min: -5, max: 5 }), fc.constantFrom(0, -0, NaN, 1.5), fc.boolean(), fc.constant(null))

const { tree, node } = fc.letrec<{ tree: unknown; node: unknown }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('node')),
  node: fc.oneof(
    fc.array(tie('tree'), { maxLength: 5 }),
    fc.sparseArray(tie('tree'), { maxLength: 6 }),
    fc.dictionary(key, tie('tree'), { maxKeys: 6 }),
    fc.uniqueArray(fc.tuple(mapKey, tie('tree')), { maxLength: 4, selector: ([k]) => k, comparator: 'SameValueZero' }).map((e) => new Map(e)),
    fc.uniqueArray(mapKey, { maxLength: 4, comparator: 'SameValueZero' }).map((e) => new Set(e)),
    fc.uint8Array({ maxLength: 4 }),
  ),
}))

describe('mapped values against plain values (generated)', () => {
  it('JSON.stringify equals that of the plain value and of tx.copy, nested Maps and Sets included', async () => {
    await fc.assert(
      fc.asyncProperty(node, async (plain) => {
        await turn((tx) => {
          const mapped = tx.put(plain)
          const json = outcome(() => JSON.stringify(plain))
          expect(outcome(() => JSON.stringify(mapped))).toEqual(json)
          expect(outcome(() => JSON.stringify(tx.copy(mapped)))).toEqual(json)
          expect(outcome(() => JSON.stringify(mapped, null, 2))).toEqual(outcome(() => JSON.stringify(plain, null, 2)))
          tx.destroy(mapped)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('arrays convert to strings as plain arrays do: String, template literals, + "", join, ==, toLocaleString', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.array(tree, { maxLength: 6 }), fc.sparseArray(tree, { maxLength: 6 })), async (plain) => {
        await turn((tx) => {
          const mapped = tx.put(plain)
          const text = outcome(() => String(plain))
          expect(outcome(() => String(mapped))).toEqual(text)
          expect(outcome(() => `${mapped as unknown as string}`)).toEqual(text)
          expect(outcome(() => (mapped as unknown as string) + '')).toEqual(text)
          expect(outcome(() => mapped.toString())).toEqual(text)
          expect(outcome(() => mapped.join(' | '))).toEqual(outcome(() => plain.join(' | ')))
          expect(outcome(() => mapped.toLocaleString())).toEqual(outcome(() => plain.toLocaleString()))
          if ('value' in text) {
            expect((mapped as unknown) == text.value).toBe(true)
            expect((mapped as unknown) == `${text.value as string}!`).toBe(false)
          }
          expect(mapped.valueOf()).toBe(mapped)
          expect(mapped.length).toBe(plain.length)
          expect(Object.keys(mapped)).toEqual(Object.keys(plain))
          for (let i = 0; i < plain.length; i++) {
            expect(i in mapped).toBe(i in plain)
            expect(Object.prototype.hasOwnProperty.call(mapped, i)).toBe(Object.prototype.hasOwnProperty.call(plain, i))
          }
          tx.destroy(mapped)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('objects list keys in JavaScript order after any sequence of writes and deletes', async () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('set' as const), key, fc.oneof(fc.integer(), fc.string({ maxLength: 3 }))),
      fc.tuple(fc.constant('delete' as const), key, fc.constant(0)),
      fc.tuple(fc.constant('define' as const), key, fc.integer()),
    )
    await fc.assert(
      fc.asyncProperty(fc.dictionary(key, fc.integer(), { maxKeys: 4 }), fc.array(op, { maxLength: 12 }), async (start, ops) => {
        await turn((tx) => {
          const plain: Record<string, unknown> = { ...start }
          const mapped = tx.put({ ...start }) as Record<string, unknown>
          for (const [kind, k, v] of ops) {
            for (const o of [plain, mapped]) {
              if (kind === 'delete') delete o[k]
              else if (kind === 'set' && k !== '__proto__') o[k] = v
              // defineProperty, not assignment: "__proto__" stays an ordinary key in both.
              else Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true })
            }
          }
          expect(Object.keys(mapped)).toEqual(Object.keys(plain))
          expect(Reflect.ownKeys(mapped)).toEqual(Reflect.ownKeys(plain))
          expect(Object.values(mapped)).toEqual(Object.values(plain))
          expect(Object.entries(mapped)).toEqual(Object.entries(plain))
          const forIn: string[] = []
          for (const k in mapped) forIn.push(k)
          expect(forIn).toEqual(Object.keys(plain))
          expect(JSON.stringify(mapped)).toBe(JSON.stringify(plain))
          expect(Object.keys(tx.copy(mapped))).toEqual(Object.keys(plain))
          tx.destroy(mapped)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('arrays follow a plain array through push, pop, index writes, deletes and length writes', async () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('push' as const), fc.integer()),
      fc.tuple(fc.constant('pop' as const), fc.constant(0)),
      fc.tuple(fc.constant('set' as const), fc.nat(12), fc.integer()),
      fc.tuple(fc.constant('delete' as const), fc.nat(12)),
      fc.tuple(fc.constant('length' as const), fc.oneof(fc.nat(12), fc.nat(12).map(String), fc.constantFrom(-1, 2.5, NaN, '', ' 3 ', '0x2', null, true, 2 ** 32))),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer(), { maxLength: 5 }), fc.array(op, { maxLength: 12 }), async (start, ops) => {
        await turn((tx) => {
          const plain: unknown[] = [...start]
          const mapped = tx.put([...start]) as unknown[]
          for (const o of ops) {
            const results = [plain, mapped].map((a) =>
              outcome(() => {
                switch (o[0]) {
                  case 'push':
                    return a.push(o[1])
                  case 'pop':
                    return a.pop()
                  case 'set':
                    return (a[o[1]] = o[2])
                  case 'delete':
                    return delete a[o[1]]
                  case 'length':
                    return (a.length = o[1] as number)
                }
              }),
            )
            expect(results[1]).toEqual(results[0])
          }
          expect(mapped.length).toBe(plain.length)
          expect(Object.keys(mapped)).toEqual(Object.keys(plain))
          expect(JSON.stringify(mapped)).toBe(JSON.stringify(plain))
          expect(String(mapped)).toBe(String(plain))
          tx.destroy(mapped)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('Maps and Sets follow plain ones, -0 keys normalized to 0', async () => {
    const op = fc.oneof(
      fc.tuple(fc.constant('set' as const), mapKey, fc.integer()),
      fc.tuple(fc.constant('delete' as const), mapKey, fc.constant(0)),
      fc.tuple(fc.constant('clear' as const), fc.constant(0), fc.constant(0)),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 14 }), fc.array(mapKey, { maxLength: 4 }), async (ops, probes) => {
        await turn((tx) => {
          const plainMap = new Map<unknown, number>()
          const plainSet = new Set<unknown>()
          const map = tx.put(new Map<unknown, number>()) as unknown as MappedMap<unknown, number>
          const set = tx.put(new Set<unknown>()) as unknown as MappedSet<unknown>
          for (const [kind, k, v] of ops) {
            if (kind === 'set') {
              expect(map.set(k, v)).toBe(map)
              plainMap.set(k, v)
              expect(set.add(k)).toBe(set)
              plainSet.add(k)
            } else if (kind === 'delete') {
              expect(map.delete(k)).toBe(plainMap.delete(k))
              expect(set.delete(k)).toBe(plainSet.delete(k))
            } else {
              map.clear()
              plainMap.clear()
              set.clear()
              plainSet.clear()
            }
          }
          // toEqual tells -0 from 0 (Object.is): keys must come back as the plain ones.
          expect([...map]).toEqual([...plainMap])
          expect([...map.keys()].map((k) => Object.is(k, -0))).toEqual([...plainMap.keys()].map((k) => Object.is(k, -0)))
          expect([...set]).toEqual([...plainSet])
          expect([...set].map((k) => Object.is(k, -0))).toEqual([...plainSet].map((k) => Object.is(k, -0)))
          expect(map.size).toBe(plainMap.size)
          expect(set.size).toBe(plainSet.size)
          for (const k of [...probes, 0, -0, NaN]) {
            expect(map.has(k)).toBe(plainMap.has(k))
            expect(map.get(k)).toBe(plainMap.get(k))
            expect(set.has(k)).toBe(plainSet.has(k))
          }
          expect(JSON.stringify(map)).toBe(JSON.stringify(plainMap))
          expect(JSON.stringify(set)).toBe(JSON.stringify(plainSet))
          expect(Object.keys(map)).toEqual([])
          expect(Object.keys(set)).toEqual([])
          tx.destroy(map)
          tx.destroy(set)
        })
      }),
      { numRuns: 300 },
    )
  })

  it('util.inspect never throws, never shows internals, and stays small', async () => {
    await fc.assert(
      fc.asyncProperty(node, async (plain) => {
        await turn((tx) => {
          const mapped = tx.put(plain)
          const text = inspect(mapped)
          const deep = inspect(mapped, { depth: Infinity })
          for (const t of [text, deep]) {
            expect(t).not.toMatch(/heap|Heap|allocator|segment|\[Symbol\(/)
            expect(t.length).toBeLessThan(20_000)
          }
          if (Array.isArray(plain)) expect(text.startsWith(`MappedArray(${plain.length}) [`)).toBe(true)
          else if (plain instanceof Map) expect(text.startsWith(`MappedMap(${plain.size}) {`)).toBe(true)
          else if (plain instanceof Set) expect(text.startsWith(`MappedSet(${plain.size}) {`)).toBe(true)
          else if (!ArrayBuffer.isView(plain)) expect(text.startsWith('MappedObject {')).toBe(true)
          tx.destroy(mapped)
        })
      }),
      { numRuns: 200 },
    )
  })
})

// ---------------------------------------------------------------------------------

describe('mapped arrays', () => {
  it('are arrays: prototype, constructor, isArray, methods of Array.prototype and Object.prototype', async () => {
    await turn((tx) => {
      const a = tx.put([1, [2, [3, 4]], 'x'])
      expect(Array.isArray(a)).toBe(true)
      expect(Object.getPrototypeOf(a)).toBe(Array.prototype)
      expect(a.constructor).toBe(Array)
      expect(a instanceof Array).toBe(true)
      expect(Object.prototype.toString.call(a)).toBe('[object Array]')
      expect(String(a)).toBe('1,2,3,4,x')
      expect(`${a}`).toBe('1,2,3,4,x')
      expect(a + '').toBe('1,2,3,4,x')
      expect(a == ('1,2,3,4,x' as unknown)).toBe(true)
      expect(a.join('-')).toBe('1-2,3,4-x')
      expect(a.toString).toBe(Array.prototype.toString)
      expect(a.valueOf()).toBe(a)
      expect(a.hasOwnProperty(0)).toBe(true)
      expect(a.hasOwnProperty('length')).toBe(true)
      expect(a.hasOwnProperty(3)).toBe(false)
      expect(a.propertyIsEnumerable(0)).toBe(true)
      expect((a as unknown as Record<symbol, unknown>)[Symbol.toPrimitive]).toBeUndefined()
      expect(a.toLocaleString()).toBe([1, [2, [3, 4]], 'x'].toLocaleString())
      expect(a.push).toBe(a.push) // one function, not a new wrapper per read
      expect(([0] as unknown[]).concat(a)).toEqual([0, 1, [2, [3, 4]], 'x'])
      expect(a.map((x) => typeof x)).toEqual(['number', 'object', 'string'])
      expect(Object.getPrototypeOf(a.slice())).toBe(Array.prototype)
      tx.destroy(a)
    })
  })

  it('refuse properties other than elements and length with ERR_UNSUPPORTED_TYPE; deleting what is not there works', async () => {
    await turn((tx) => {
      const a = tx.put([1, 2, 3]) as unknown[] & Record<string | symbol, unknown>
      for (const write of [() => (a.foo = 1), () => (a[-1] = 1), () => (a['01'] = 1), () => (a[Symbol('s')] = 1), () => Object.defineProperty(a, 'foo', { value: 1 })]) {
        const err = shmError(write)
        expect(err).toBeInstanceOf(ShmError)
        expect(err.code).toBe('ERR_UNSUPPORTED_TYPE')
        expect(err.message).toMatch(/elements .* and its length only/)
      }
      expect(delete a.foo).toBe(true)
      expect(delete a[-1]).toBe(true)
      expect(() => delete (a as { length?: number }).length).toThrow(TypeError) // as on a plain array (strict mode)
      expect(delete a[1]).toBe(true)
      expect(1 in a).toBe(false)
      expect(a.length).toBe(3)
      expect(JSON.stringify(a)).toBe('[1,null,3]')
      expect(shmError(() => Object.freeze(a)).code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(shmError(() => Object.setPrototypeOf(a, null)).code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(shmError(() => Object.defineProperty(a, 0, { get: () => 1 })).code).toBe('ERR_UNSUPPORTED_TYPE')
      Object.defineProperty(a, 0, { value: 'defined' }) // an existing element keeps its attributes
      Object.defineProperty(a, 5, { value: 'new', writable: true, enumerable: true, configurable: true })
      expect([...a]).toEqual(['defined', undefined, 3, undefined, undefined, 'new'])
      tx.destroy(a)
    })
  })

  it('coerce length like plain arrays', async () => {
    await turn((tx) => {
      const a = tx.put([1, 2, 3, 4])
      ;(a as { length: unknown }).length = '3'
      expect(a.length).toBe(3)
      ;(a as { length: unknown }).length = { valueOf: () => 2 }
      expect([...a]).toEqual([1, 2])
      for (const bad of [-1, 1.5, 2 ** 32, NaN, 'x']) expect(() => ((a as { length: unknown }).length = bad)).toThrow(RangeError)
      expect(() => ((a as { length: unknown }).length = 1n)).toThrow(TypeError)
      expect(a.length).toBe(2)
      tx.destroy(a)
    })
  })

  it('writes through a prototype chain go to the inheriting object', async () => {
    await turn((tx) => {
      const a = tx.put([1, 2])
      const plain = [1, 2]
      const children = [Object.create(a), Object.create(plain)] as Array<unknown[] & { extra?: number }>
      for (const child of children) {
        child[0] = 'mine'
        child.extra = 5
        child.push(3) // Array.prototype.push on the child: its own elements and length
      }
      expect(Object.keys(children[0]!)).toEqual(Object.keys(children[1]!))
      expect(Object.keys(children[0]!)).toEqual(['0', '2', 'extra', 'length'])
      expect(children[0]!.length).toBe(3)
      expect([...a]).toEqual([1, 2])
      expect(a.length).toBe(2)
      tx.destroy(a)
    })
  })
})

describe('mapped objects', () => {
  it('writes through a prototype chain go to the inheriting object, not into shared memory', async () => {
    await turn((tx) => {
      const o = tx.put({ a: 1 } as Record<string, unknown>)
      const child = Object.create(o) as Record<string, unknown>
      child.x = 1
      child.a = 2
      expect(Object.keys(o)).toEqual(['a'])
      expect(o.a).toBe(1)
      expect(Object.keys(child)).toEqual(['x', 'a'])
      expect(child.a).toBe(2)
      expect(Reflect.set(o, 'y', 3, child)).toBe(true)
      expect('y' in o).toBe(false)
      expect(child.y).toBe(3)
      tx.destroy(o)
    })
  })

  it('order integer-like keys first, ascending, then the rest in insertion order', async () => {
    await turn((tx) => {
      const o = tx.put({ a: 1 } as Record<string, unknown>)
      o[2] = 'x'
      o.b = 2
      o[1] = 'y'
      o['01'] = 'z'
      o[4294967295] = 'not an index'
      o[4294967294] = 'the last index'
      const expected = ['1', '2', '4294967294', 'a', 'b', '01', '4294967295']
      expect(Object.keys(o)).toEqual(expected)
      expect(JSON.stringify(o)).toBe('{"1":"y","2":"x","4294967294":"the last index","a":1,"b":2,"01":"z","4294967295":"not an index"}')
      expect(Object.keys(tx.copy(o))).toEqual(expected)
      tx.destroy(o)
    })
  })

  it('String, toString, valueOf, hasOwnProperty, constructor as on a plain object', async () => {
    await turn((tx) => {
      const o = tx.put({ a: 1 })
      expect(String(o)).toBe('[object Object]')
      expect(`${o as unknown as string}`).toBe('[object Object]')
      expect(o.valueOf()).toBe(o)
      expect(o.hasOwnProperty('a')).toBe(true)
      expect(o.hasOwnProperty('toString')).toBe(false)
      expect(o.constructor).toBe(Object)
      expect(Object.getPrototypeOf(o)).toBe(Object.prototype)
      expect(shmError(() => Object.defineProperty(o, 'hidden', { value: 1 })).code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(shmError(() => ((o as Record<symbol, unknown>)[Symbol('s')] = 1)).code).toBe('ERR_UNSUPPORTED_TYPE')
      tx.destroy(o)
    })
  })

  it("a registered class's accessors run on the view", async () => {
    await turn((tx) => {
      const t = tx.put(new Temperature())
      t.fahrenheit = 212
      expect(t.celsius).toBeCloseTo(100)
      expect(Object.keys(t)).toEqual(['celsius'])
      expect(() => ((t as { kelvin: number }).kelvin = 1)).toThrow(TypeError) // getter only, as on a plain instance
      expect(t).toBeInstanceOf(Temperature)
      tx.destroy(t)
    })
  })
})

describe('MappedMap and MappedSet', () => {
  it('serialize as plain ones: {} from JSON.stringify, no enumerable internals', async () => {
    await turn((tx) => {
      const v = tx.put({ m: new Map([['k', 1]]), s: new Set([1]) })
      expect(JSON.stringify(v)).toBe('{"m":{},"s":{}}')
      expect(Object.keys(v.m)).toEqual([])
      expect(Object.getOwnPropertyNames(v.m)).toEqual([])
      expect(Object.getOwnPropertySymbols(v.m)).toEqual([])
      expect({ ...v.m }).toEqual({})
      expect(Object.prototype.toString.call(v.m)).toBe('[object Map]')
      expect(String(v.s)).toBe('[object Set]')
      // A copy made with Object.assign is no view: putting it stores an empty object.
      const assigned = tx.put(Object.assign({}, v.m))
      expect(Object.keys(assigned)).toEqual([])
      tx.destroy(assigned)
      tx.destroy(v)
    })
  })

  it('forEach passes thisArg, value, key and the view', async () => {
    await turn((tx) => {
      const m = tx.put(new Map([['a', 1]]))
      const s = tx.put(new Set(['x']))
      const self = { seen: [] as unknown[] }
      m.forEach(function (this: typeof self, v, k, map) {
        this.seen.push(v, k, map === m)
      }, self)
      s.forEach(function (this: typeof self, v, k, set) {
        this.seen.push(v, k, set === s)
      }, self)
      expect(self.seen).toEqual([1, 'a', true, 'x', 'x', true])
      tx.destroy(m)
      tx.destroy(s)
    })
  })

  it('methods called on another receiver throw a TypeError, as Map methods do', async () => {
    await turn((tx) => {
      const m = tx.put(new Map([['a', 1]]))
      expect(() => MappedMap.prototype.get.call({}, 'a')).toThrow(TypeError)
      expect(() => (Object.create(m) as Map<string, number>).get('a')).toThrow(TypeError)
      tx.destroy(m)
    })
  })
})

describe('util.inspect / console.log', () => {
  it('prints contents like the plain value, marked as mapped', async () => {
    await turn((tx) => {
      const v = tx.put({ a: 1, list: [1, 2, 3], m: new Map([['k', 1]]), s: new Set(['x']), bytes: new Uint8Array([1, 2]) })
      expect(inspect(v.list)).toBe('MappedArray(3) [ 1, 2, 3 ]')
      expect(inspect(v.m)).toBe("MappedMap(1) { 'k' => 1 }")
      expect(inspect(v.s)).toBe("MappedSet(1) { 'x' }")
      const o = tx.put({ a: 1 })
      expect(inspect(o)).toBe('MappedObject { a: 1 }')
      tx.destroy(o)
      expect(inspect(v)).toBe("MappedObject {\n  a: 1,\n  list: MappedArray(3) [ 1, 2, 3 ],\n  m: MappedMap(1) { 'k' => 1 },\n  s: MappedSet(1) { 'x' },\n  bytes: Uint8Array(2) [ 1, 2 ]\n}")
      const holey = tx.put([1, , 3])
      expect(inspect(holey)).toBe('MappedArray(3) [ 1, <1 empty item>, 3 ]')
      tx.destroy(holey)
      const t = tx.put(new Temperature())
      expect(inspect(t)).toBe('Mapped<Temperature> { celsius: 0 }')
      tx.destroy(t)
      tx.destroy(v)
    })
  })

  it('is depth-limited like the plain value, and marks cycles', async () => {
    await turn((tx) => {
      const plain = { a: { b: { c: { d: 1 } } }, arr: [[[[1]]]] }
      const v = tx.put(plain)
      expect(inspect(v)).toBe('MappedObject {\n  a: MappedObject { b: MappedObject { c: [MappedObject] } },\n  arr: MappedArray(1) [ MappedArray(1) [ [MappedArray] ] ]\n}')
      expect(inspect(v, { depth: 0 })).toBe('MappedObject { a: [MappedObject], arr: [MappedArray] }')
      expect(inspect(v, { depth: Infinity })).toContain('d: 1')
      const cycle = tx.put([1] as unknown[])
      cycle.push(cycle)
      expect(inspect(cycle, { depth: Infinity })).toBe('MappedArray(2) [ 1, [Circular MappedArray] ]')
      cycle.length = 1 // break the cycle before destroying
      tx.destroy(cycle)
      tx.destroy(v)
    })
  })

  it('prints only the first maxArrayLength elements of a long array', async () => {
    await turn((tx) => {
      const a = tx.put(Array.from({ length: 10_000 }, (_, i) => i))
      expect(inspect(a, { maxArrayLength: 3 })).toBe('MappedArray(10000) [ 0, 1, 2, ... 9997 more items ]')
      tx.destroy(a)
    })
  })

  it('outside a turn prints a placeholder instead of throwing', () => {
    const [a, o, m, s] = shm.access((tx) => [tx.put([1]), tx.put({ a: 1 }), tx.put(new Map()), tx.put(new Set())] as const)
    expect(inspect(a)).toBe('MappedArray <outside a turn>')
    expect(inspect(o)).toBe('MappedObject <outside a turn>')
    expect(inspect(m)).toBe('MappedMap <outside a turn>')
    expect(inspect(s)).toBe('MappedSet <outside a turn>')
    expect(inspect({ nested: a })).toBe('{ nested: MappedArray <outside a turn> }')
    shm.access((tx) => [a, o, m, s].forEach((v) => tx.destroy(v)))
  })
})

describe('async turn callbacks', () => {
  it('are refused before they run; promises returned by plain callbacks leave no unhandled rejection (child process)', async () => {
    const name = uniqueName('asynccb')
    const { code, messages } = await runChild('async-callback.ts', [name])
    expect(code).toBe(0)
    const seen = messages[0] as Record<string, unknown>
    expect(seen).toMatchObject({
      asyncArrow: 'ERR_INVALID_ARGUMENT',
      asyncMethod: 'ERR_INVALID_ARGUMENT',
      asyncBound: 'ERR_INVALID_ARGUMENT',
      asyncGenerator: 'ERR_INVALID_ARGUMENT',
      accessAsyncAsync: 'ERR_INVALID_ARGUMENT',
      continuation: 'ERR_INVALID_ARGUMENT',
      rejected: 'ERR_INVALID_ARGUMENT',
      rejectsLater: 'ERR_INVALID_ARGUMENT',
      thenable: 'ERR_INVALID_ARGUMENT',
      throwingThen: 'ERR_INVALID_ARGUMENT',
      accessAsyncPlain: 'ERR_INVALID_ARGUMENT',
      accessAsyncContinuation: 'ERR_INVALID_ARGUMENT',
      mappedResult: 'returned',
      queued: 0, // the async callbacks never ran: nothing was put before their await
      ran: 0,
    })
    expect(seen.message).toMatch(/async function.*await outside the callback/)
  })

  it('an async callback is refused in this process too, and the turn stays usable', async () => {
    expect(shmError(() => shm.access(async () => 1)).code).toBe('ERR_INVALID_ARGUMENT')
    await expect(shm.accessAsync(async () => 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    expect(shm.access(() => 2)).toBe(2)
    expect(await shm.accessAsync(() => 3)).toBe(3)
  })
})
