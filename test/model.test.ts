// Model-based test: mapped values behave like JavaScript values.
//
// Random sequences of operations run on a plain JavaScript model and on the mapped
// view of the same value (a root object holding an Array, a plain object, a Map, a
// Set and a registered-class instance), half of them from a second process that
// opened the segment and shares the root by reference. Every operation's result
// (value or thrown error kind), and after every operation the whole root — copied
// out with tx.copy and read through the view itself — must equal the model's; a
// final observation compares JSON.stringify, Object.keys, String(), spread,
// Array.isArray, Object.getPrototypeOf, Reflect.ownKeys, for…in, size. After each
// run the heap must pass shm.check() and nothing may be left allocated.
//
// The operations and the encoding of results live in test/children/model-ops.ts (the
// child runs the same code). Elements may be small nested arrays and objects, so
// moving them (reverse, sort, shift, unshift, splice, copyWithin, alias) and reading
// them afterwards, identity (a[i] === a[i], a.indexOf(a[i])) and aliasing (one
// nested value reachable twice) are all exercised.
//
// Left out on purpose (the SDK defines these differently, or JavaScript does not
// define them); each would need its own expected result:
// - functions, symbols, unregistered class instances as values: ERR_UNSUPPORTED_TYPE
//   (so obj.alias only copies own values, never an inherited method);
// - named properties on arrays (a.foo = 1, a[-1] = 1): ERR_UNSUPPORTED_TYPE;
// - fill(), Map.set/Set.add or push with one *plain* object reaching several places:
//   each write into shared memory stores a copy of a plain value, so fill({x: 1})
//   gives distinct objects where JavaScript gives one (fill takes primitives only);
// - objects as Map keys or Set elements (keys are compared by value once stored);
// - Object.getPrototypeOf / instanceof of Map and Set views (MappedMap / MappedSet,
//   documented not to be instanceof Map / Set); util.inspect;
// - the '__proto__' key (assignment changes a plain object's prototype);
// - cycles (a value stored into itself): destroy cannot free them;
// - sort with an inconsistent comparator (implementation-defined order).
//
// Default run: 150 runs of 1–200 operations (≥ 10,000 in all, asserted). MODEL_NIGHTLY=1 runs 100× more.
// A failure prints fast-check's seed and path; replay with MODEL_SEED=<seed>
// MODEL_PATH=<path> npx vitest run test/model.test.ts (MODEL_NO_SHRINK=1: report the
// first failing run as generated, without shrinking it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { SharedMemory } from 'interprocess-objects'
import { startChild, uniqueName, type Child } from './helpers/processes'
import { buildRoot, comparable, identity, kinds, outcome, runStep, type Desc, type Kind, type Op, type Outcome, type Root, type RootInit, type StepResult } from './children/model-ops'

const NIGHTLY = process.env.MODEL_NIGHTLY === '1'
// Run lengths from 1 to 200 operations (about 90 on average, so that shrinking can drop
// operations): 150 runs make well over 10,000 operations, which the test asserts.
const RUNS = NIGHTLY ? 15_000 : 150
const MAX_OPS = 200
const MIN_TOTAL = NIGHTLY ? 1_000_000 : 10_000
const SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED)
const PATH = process.env.MODEL_PATH
const TURN = { timeoutMs: 15_000 }

// ---------------------------------------------------------------------------------
// Generated values (descriptions: see build() in model-ops.ts)

const prim: fc.Arbitrary<Desc> = fc.oneof(
  { arbitrary: fc.integer({ min: -3, max: 12 }), weight: 5 },
  { arbitrary: fc.constantFrom<Desc>('‹NaN›', '‹-0›', '‹undefined›', '‹Infinity›', null, true, false, 1.5, '‹3n›'), weight: 2 },
  { arbitrary: fc.constantFrom<Desc>('', 'a', 'b', 'ab', '10'), weight: 2 },
)
const nestedKey = fc.constantFrom('x', 'y', '2', '0')
const nested: fc.Arbitrary<Desc> = fc.oneof(
  fc.array(prim, { maxLength: 3 }),
  fc.uniqueArray(fc.tuple(nestedKey, prim), { maxLength: 3, selector: ([k]) => k }).map((e) => ({ '‹Object›': e })),
)
const value: fc.Arbitrary<Desc> = fc.oneof({ arbitrary: prim, weight: 3 }, { arbitrary: nested, weight: 2 })
const values = (max: number) => fc.array(value, { maxLength: max })
// Integer-like keys ('0', '2', '10') come first in JavaScript's key order; '01', '-1', '1.5' are not indices.
const objKey = fc.constantFrom('a', 'b', 'c', '0', '2', '10', '01', '-1', '1.5', 'length', 'x y', 'toString', 'constructor')
const tableKey = fc.constantFrom<Desc>(0, '‹-0›', '‹NaN›', 1, 2, 1.5, '1', 'a', 'b', '', true, null, '‹undefined›', '‹7n›')
const field = fc.constantFrom('count', 'label', 'items', 'extra')
const index = fc.nat(12)
const position = fc.integer({ min: -4, max: 12 }) // relative positions of slice, splice, fill, copyWithin, at
// Numbers and numeric strings; -1, 1.5 and 'x' must throw RangeError as on a plain array.
const newLength = fc.oneof({ arbitrary: fc.nat(12), weight: 4 }, { arbitrary: fc.nat(12).map(String), weight: 2 }, fc.constantFrom<unknown>(-1, 1.5, 'x', ' 3 ', '0x2'))
const walk = fc.constantFrom('forOf', 'forEach', 'keys', 'values', 'entries')
const actions = (v: fc.Arbitrary<Desc>) => fc.array(fc.tuple(fc.nat(6), fc.constantFrom<'del' | 'add'>('del', 'add'), tableKey, v), { maxLength: 4 })

const op = (name: string, ...args: Array<fc.Arbitrary<unknown>>) => fc.tuple(fc.constant(name), ...args).map(([n, ...a]) => ({ op: n as string, a }))
const none = (name: string) => fc.constant({ op: name, a: [] as unknown[] })

const opsOf: Record<Kind, fc.Arbitrary<{ op: string; a: unknown[] }>> = {
  arr: fc.oneof(
    op('get', fc.integer({ min: -1, max: 12 })),
    { arbitrary: op('set', index, value), weight: 3 },
    op('alias', index, index),
    op('delete', index),
    op('has', index),
    op('own', index),
    op('setLength', newLength),
    { arbitrary: op('push', values(2)), weight: 2 },
    none('pop'),
    none('shift'),
    op('unshift', values(2)),
    { arbitrary: op('splice', position, fc.nat(3), values(2)), weight: 2 },
    { arbitrary: none('reverse'), weight: 2 },
    { arbitrary: none('sort'), weight: 2 },
    none('sortDefault'),
    op('fill', prim, position, position),
    op('copyWithin', position, position, position),
    op('indexOfOwn', index),
    op('lastIndexOfOwn', index),
    op('includesOwn', index),
    op('indexOf', prim),
    op('includes', prim),
    { arbitrary: op('same', index), weight: 2 },
    op('at', position),
    op('concat', values(2)),
    op('slice', position, position),
    op('join', fc.constantFrom(',', '-', '')),
    none('map'),
    none('filter'),
    none('find'),
    { arbitrary: op('nested', index, prim), weight: 2 },
    none('observe'),
  ),
  obj: fc.oneof(
    op('get', objKey),
    { arbitrary: op('set', objKey, value), weight: 4 },
    op('alias', objKey, objKey),
    { arbitrary: op('delete', objKey), weight: 2 },
    op('has', objKey),
    op('own', objKey),
    op('same', objKey),
    op('nested', objKey, prim),
    none('observe'),
  ),
  map: fc.oneof(
    { arbitrary: op('set', tableKey, value), weight: 4 },
    op('get', tableKey),
    op('has', tableKey),
    { arbitrary: op('delete', tableKey), weight: 2 },
    none('clear'),
    none('size'),
    op('same', tableKey),
    op('nested', tableKey, prim),
    op('alias', tableKey, tableKey),
    { arbitrary: op('iterate', walk, actions(value)), weight: 2 },
    none('observe'),
  ),
  set: fc.oneof(
    { arbitrary: op('add', tableKey), weight: 4 },
    op('has', tableKey),
    { arbitrary: op('delete', tableKey), weight: 2 },
    none('clear'),
    none('size'),
    { arbitrary: op('iterate', walk, actions(fc.constant(0))), weight: 2 },
    none('observe'),
  ),
  ctr: fc.oneof(
    op('get', field),
    op('set', field, value),
    op('delete', field),
    { arbitrary: op('increment', fc.integer({ min: -3, max: 5 })), weight: 2 },
    { arbitrary: op('pushItem', value), weight: 2 },
    op('rename', fc.constantFrom('', 'a', 'b')),
    none('takeFirst'),
    op('item', fc.integer({ min: -1, max: 5 })),
    none('same'),
    none('observe'),
  ),
}

// Arrays get the most operations; each operation runs in either process, half and half.
const weights: Record<Kind, number> = { arr: 4, obj: 2, map: 2, set: 1, ctr: 1 }
const step: fc.Arbitrary<Op> = fc.oneof(
  ...kinds.map((t) => ({
    arbitrary: fc.tuple(opsOf[t], fc.constantFrom<Op['by']>('parent', 'child')).map(([o, by]): Op => ({ t, by, ...o })),
    weight: weights[t],
  })),
)

const init: fc.Arbitrary<RootInit> = fc.record({
  arr: values(6),
  obj: fc.uniqueArray(fc.tuple(objKey, value), { maxLength: 5, selector: ([k]) => k }),
  map: fc.uniqueArray(fc.tuple(tableKey, value), { maxLength: 4, selector: ([k]) => JSON.stringify(k) }),
  set: fc.uniqueArray(tableKey, { maxLength: 4, selector: (k) => JSON.stringify(k) }),
  ctr: fc.record({ count: fc.integer({ min: 0, max: 9 }), label: fc.constantFrom('c', 'd'), items: values(3) }),
})

// The map and set may start with both 0 and '‹-0›': one key, as in JavaScript (both
// sides build their initial Map and Set from the same descriptions).

// ---------------------------------------------------------------------------------
// The second process

interface Peer {
  child: Child
  call(message: unknown): Promise<unknown>
}

function startPeer(): Peer {
  const child = startChild('model-peer.ts')
  const call = async (message: unknown): Promise<unknown> => {
    child.send(message)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the child did not answer ${JSON.stringify(message).slice(0, 300)} within 20 s`)), 20_000)
    })
    try {
      const reply = (await Promise.race([child.next(), timeout])) as { ok?: unknown; error?: string; exited?: unknown }
      if ('exited' in reply) throw new Error(`the child exited (${String(reply.exited)}) on ${JSON.stringify(message).slice(0, 300)}`)
      if (reply.error !== undefined) throw new Error(`the child failed on ${JSON.stringify(message).slice(0, 300)}:\n${reply.error}`)
      return reply.ok
    } finally {
      clearTimeout(timer)
    }
  }
  return { child, call }
}

let peer: Peer
let peerReady: Promise<unknown>

async function restartPeer(): Promise<void> {
  peer.child.proc.kill('SIGKILL')
  await peer.child.exited
  peer = startPeer()
  await (peerReady = peer.child.next())
}

beforeAll(async () => {
  peer = startPeer()
  await (peerReady = peer.child.next())
})

afterAll(async () => {
  peer.child.proc.disconnect()
  await peer.child.exited
})

// ---------------------------------------------------------------------------------
// One run

let opsRun = 0

function describeOp(n: number, op: Op): string {
  return `operation #${n} ${op.t}.${op.op}(${op.a.map((x) => JSON.stringify(x)).join(', ')}) by the ${op.by}`
}

function compare(n: number, op: Op, expected: StepResult, actual: StepResult, heap: Outcome): void {
  const what = `${describeOp(n, op)} [shm.check() afterwards: ${'err' in heap ? `${heap.err}: ${heap.msg}` : 'ok'}]`
  const note = (o: Outcome) => ('err' in o ? ` (${o.msg})` : '')
  expect(comparable(actual.out), `${what}: its result${note(actual.out)}`).toStrictEqual(comparable(expected.out))
  expect(comparable(actual.snap), `${what}: tx.copy(root) afterwards${note(actual.snap)}`).toStrictEqual(comparable(expected.snap))
  expect(comparable(actual.live), `${what}: the root read through its view afterwards${note(actual.live)}`).toStrictEqual(comparable(expected.live))
  expect(heap, `${what}: the heap afterwards`).toStrictEqual({ v: 'ok' })
}

async function runModel(start: RootInit, ops: Op[]): Promise<void> {
  await peerReady
  const name = uniqueName('model')
  const shm = SharedMemory.create({ name, size: 4 << 20 })
  let childOpen = false
  try {
    // The channel's ring is made on first use and this handle keeps it until close: make it before the baseline.
    shm.access((tx) => {
      tx.putMessage(0, { channel: 'model-root' })
      tx.takeMessage({ channel: 'model-root' })
    })
    const baseline = shm.stats().used
    const model = buildRoot(start)
    const view = shm.access((tx) => {
      const v = tx.put(buildRoot(start))
      tx.putMessage(v, { channel: 'model-root' }) // shared by reference with the child
      return v
    }, TURN)
    await peer.call({ cmd: 'open', name })
    childOpen = true
    // Last, every observation from both processes.
    const all = [...ops, ...kinds.flatMap((t) => (['parent', 'child'] as const).map((by): Op => ({ t, op: 'observe', a: [], by })))]
    for (let n = 0; n < all.length; n++) {
      const op = all[n]!
      const expected = runStep(model, op, identity)
      const actual = op.by === 'child' ? ((await peer.call({ cmd: 'op', op })) as StepResult) : shm.access((tx) => runStep(view, op, (r: Root) => tx.copy(r)), TURN)
      if (n < ops.length) opsRun++
      const heap = outcome(() => {
        shm.check()
        return 'ok'
      })
      compare(n, op, expected, actual, heap)
    }
    childOpen = false
    await peer.call({ cmd: 'close' })
    shm.access((tx) => tx.destroy(view), TURN)
    expect(() => shm.check(), 'shm.check() after the run').not.toThrow()
    expect(shm.stats().used, 'bytes still allocated after both processes dropped the root').toBe(baseline)
  } finally {
    if (childOpen) await peer.call({ cmd: 'close' }).catch(() => restartPeer())
    shm.close()
    try {
      SharedMemory.unlink(name)
    } catch {
      // closed and unlinked already
    }
  }
}

describe('mapped values against a plain JavaScript model (two processes)', () => {
  it(
    `${RUNS} runs of up to ${MAX_OPS} operations on Array, object, Map, Set and a registered class`,
    async () => {
      opsRun = 0
      await fc.assert(
        fc.asyncProperty(init, fc.array(step, { minLength: 1, maxLength: MAX_OPS, size: 'max' }), async (start, ops) => {
          try {
            await runModel(start, ops)
          } catch (err) {
            // A child that stopped answering is replaced, so that shrinking can go on.
            if (err instanceof Error && /did not answer|exited/.test(err.message)) await restartPeer()
            throw err
          }
        }),
        { numRuns: RUNS, seed: SEED, path: PATH, endOnFailure: process.env.MODEL_NO_SHRINK === '1' },
      )
      expect(opsRun).toBeGreaterThanOrEqual(MIN_TOTAL)
    },
    NIGHTLY ? 6 * 60 * 60_000 : 300_000,
  )
})
