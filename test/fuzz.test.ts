// Bad input: random byte flips in every structure a segment holds — the segment
// header, the allocator root, the channel directory and its table, channel records and
// their ring slots (inline frames), Frame records, allocator block headers and the
// value records of every kind that queued frames refer to (values sent by reference) —
// followed by what processes do with a segment: open it, take and decode messages,
// check and repair the heap, send new messages. The rule: a ShmError or a value,
// never any other exception, never a hang, never an out-of-bounds access.
//
// Out-of-bounds *reads* from a TypedArray do not throw in JavaScript (they yield
// undefined and the NaN spreads quietly), so a share of the cases runs with the
// heap's byte, u32 and f64 arrays (and the allocator's words) wrapped in proxies that
// throw on any index outside the segment: a missing bounds check shows up as a failure
// instead of a wrong value. (Not the heap's Int32Array: the rings work on it with
// Atomics, which refuse a proxy.)
//
// The segment is small and its bytes are restored from a snapshot between cases,
// so 100k cases run in seconds. IPO_LONG=1 runs 2M with a random seed; IPO_FUZZ_SEED=n
// repeats a run, IPO_FUZZ_SEED=random picks a new seed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SharedMemory, ShmError, defineStruct, enableV8Fallback, registerClass, Turn, Channel } from 'interprocess-objects'
import { findChannel, openChannel } from '../core/channel'
import { Holders } from '../core/holders'
import { checkHeap } from '../core/check'
import { type ChannelHost } from '../core/message_channel'
import { Messages } from '../core/messages'
import { ViewHolds } from '../core/view_holds'
import { FRAME_LENGTH, WITH_REFS } from '../core/records'
import { Ring } from '../core/ring'
import type { Segment } from '../core/segment'
import type { TurnChannels } from '../core/turn'
import { readRecord } from '../core/values/decode'
import { frameRefs, readFrame } from '../core/values/frame'
import { mappedHandleOf } from '../core/values/mapped_handle'
import { readStringRecord } from '../core/values/strings'
import type { Heap } from '../core/heap'
import { Header } from '../core/layout'
import { Arr, Chan, ChannelDir, ENTRY_SIZE, FrameRec, Hash, Inst, OUT_OF_LINE, POOLED_FRAME_MAX, Rec, RingSlot, Tag } from '../core/records'
import { loanDataAt } from '../core/loan_pool'
import { Point } from './children/shared-classes'
import { uniqueName } from './helpers/processes'
import { prng } from './helpers/prng'

const LONG = process.env.IPO_LONG === '1'
const CASES = Number(process.env.IPO_FUZZ_CASES ?? (LONG ? 2_000_000 : 100_000))
// A fixed seed by default, so that `npm test` (and CI) runs the same cases every time;
// the long mode and IPO_FUZZ_SEED=random explore new ones.
const seedSetting = process.env.IPO_FUZZ_SEED ?? (LONG ? 'random' : '1473550890')
const SEED = seedSetting === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedSetting)
const SIZE = 64 * 1024
/** Cases per million that run with bounds-checking proxies (they are ~20× slower). */
const OOB_SHARE = 0.1
/** Messages are spread over several channels so a case only takes a few. */
const CHANNELS = ['', 'a', 'b', 'c', 'd', 'e', 'f', 'g']
/** Ring slots per channel: small rings keep eight channels inside the small segment. */
const CAPACITY = 8

registerClass(Point)
enableV8Fallback()
const Vec = defineStruct({ x: 'float64', y: 'float64', n: 'uint32' }, 'FuzzVec')

/**
 * Messages of every kind: copied ones (inline frames in their ring slots, larger ones in
 * Frame records) with shared references, a cycle and holes; and values of the segment
 * sent by reference, so that value records of every kind are reachable from queued frames.
 */
function populate(shm: SharedMemory): void {
  const shared = { s: 'shared' }
  const cyclic: Record<string, unknown> = { n: 1 }
  cyclic.self = cyclic
  const sparse: unknown[] = [1, 'two', [3]]
  sparse[5] = 5
  const nullProto = Object.create(null) as Record<string, unknown>
  nullProto.k = 'v'
  const err = new Error('boom', { cause: 7 })
  err.stack = 'Error: boom\n    at fuzz'
  const vec = Vec.view(new Uint8Array(Vec.byteLength))
  vec.x = 1.5
  vec.n = 9
  // The channels exist before the turn, with small rings (the handles keep them).
  for (const name of CHANNELS) shm.channel(name, { capacity: CAPACITY })
  shm.access((tx) => {
    const def = [
      'hello', 'ünïcödé ✓', '\ud800lone', 12345678901234567890n, -5n, /ab+c/gi, new Date(0), 3.5, 42, true, null, undefined,
      sparse, { a: 1, b: 'x', nested: { c: [1, 2] } }, nullProto,
      new Map<unknown, unknown>([[1, 'one'], ['k', { z: 1 }], [2n, null]]), new Set([1, 's', undefined]), err,
      new Uint8Array([1, 2, 3]), new Float64Array([1.5, -2]), new DataView(new ArrayBuffer(8)), new ArrayBuffer(16),
      Buffer.from('buf'), new BigInt64Array([1n]), new Point(1, 2), vec, new String('boxed'),
    ]
    // Copied: each value one frame.
    def.forEach((v, i) => tx.putMessage(v, { channel: CHANNELS[i % 7] }))
    tx.putMessage([shared, shared], { channel: 'a' })
    tx.putMessage(cyclic, { channel: 'b' })
    tx.putMessage(new Map([['m', new Set(['x'])]]), { channel: 'c' })
    // Larger than half a ring (frames up to that span slots): Frame records.
    tx.putMessage({ long: 'L'.repeat(600), list: [1, 2, 3] }, { channel: 'd' })
    tx.putMessage(new Uint8Array(600).fill(7), { channel: 'e' })
    // By reference: the message holds the record; what tx.put returned is destroyed.
    const byReference = (value: unknown, channel: string, wrap: boolean): void => {
      const view = tx.put(value)
      tx.putMessage(wrap ? { view, pad: 'p'.repeat(600) } : view, { channel })
      tx.destroy(view)
    }
    byReference(def, 'f', false) // an array record holding a record of every kind
    byReference({ a: 1, b: 'x', nested: { c: [1, 2] }, m: new Map([[1, new Set([2])]]) }, 'a', true) // refs in a Frame record
    byReference(new Point(3, 4), 'b', false)
    byReference(new Float64Array([1, 2, 3]), 'c', false)
    byReference(vec, 'd', true)
    tx.putMessage(0, { channel: 'g' })
    tx.takeMessage({ channel: 'g' }) // a channel that exists and is empty
    // Free space of several sizes, and live values that no message references.
    const keep = [tx.put({ kept: 'x'.repeat(40) }), tx.put(new Uint8Array(300))]
    for (const size of [24, 100, 700]) tx.destroy(tx.put(new Uint8Array(size)))
    tx.destroy(tx.put({ gone: [1, 2, 3] }))
    void keep
  })
}

interface Region {
  name: string
  start: number
  length: number
  /** The channel whose messages reach this region, if it is part of a message. */
  channel?: string
  /** Position of that message in its channel (0: the oldest). */
  position?: number
}

/** A queued message as the snapshot has it: where its frame is. */
interface Queued {
  channel: string
  at: number
  length: number
}

/**
 * Walks the populated segment and lists every structure in it: headers, the
 * directory and its table, channel records, ring slots, Frame records, block headers
 * and value records by kind; and every queued message's frame.
 */
function regionsOf(heap: Heap): { regions: Region[]; queued: Queued[] } {
  const u32 = heap.u32
  const out: Region[] = [
    { name: 'segment header', start: 0, length: Header.LockOwner }, // lock words excluded: liveness is trusted
    { name: 'allocator root', start: Header.AllocatorRoot, length: 1808 - Header.AllocatorRoot },
    { name: 'channel directory', start: Header.ChannelRoot, length: 16 },
  ]
  const queued: Queued[] = []
  const seen = new Set<number>()
  let channel: string | undefined
  let position: number | undefined
  const block = (name: string, ref: number, length = heap.allocator.usableSize(ref)): void => {
    if (ref === 0 || seen.has(ref)) return
    seen.add(ref)
    out.push({ name, start: ref, length, channel, position })
    out.push({ name: 'block header', start: ref - 8, length: 8, channel, position })
  }
  // The loan pool's table (made by the first loan or long frame): its entries' words.
  block('loan pool table', u32[Header.LoanPool >>> 2]!)
  const tagNames: Record<number, string> = {
    [Tag.String]: 'string', [Tag.BigInt]: 'bigint', [Tag.RegExp]: 'regexp', [Tag.Array]: 'array', [Tag.Object]: 'object',
    [Tag.Map]: 'map', [Tag.Set]: 'set', [Tag.Binary]: 'binary', [Tag.Error]: 'error', [Tag.Instance]: 'instance',
    [Tag.Struct]: 'struct', [Tag.Serialized]: 'serialized',
  }
  const value = (tag: number, ref: number): void => {
    if (seen.has(ref)) return
    block(`${tagNames[tag]} record`, ref)
    if (tag === Tag.Array) {
      const items = u32[(ref + Arr.Items) >>> 2]!
      block('array items', items)
      for (let i = 0; i < u32[(ref + Arr.Length) >>> 2]!; i++) slot(items + i * 16)
    } else if (tag === Tag.Object || tag === Tag.Map || tag === Tag.Set || tag === Tag.Error) {
      table(ref)
    } else if (tag === Tag.Instance) {
      block('string record', u32[(ref + Inst.ClassName) >>> 2]!)
      const fields = u32[(ref + Inst.Fields) >>> 2]!
      block('object record', fields)
      table(fields)
    }
  }
  const slot = (at: number): void => {
    const tag = heap.i32[at >>> 2]!
    if (tag >= Tag.String) value(tag, u32[(at + 8) >>> 2]!)
  }
  const table = (ref: number): void => {
    const entries = u32[(ref + Hash.Entries) >>> 2]!
    block('table entries', entries)
    block('table buckets', u32[(ref + Hash.Buckets) >>> 2]!)
    for (let i = 0; i < u32[(ref + Hash.Used) >>> 2]!; i++) {
      slot(entries + i * ENTRY_SIZE + 16)
      slot(entries + i * ENTRY_SIZE + 32)
    }
  }
  const dirTable = u32[(Header.ChannelRoot + ChannelDir.Table) >>> 2]!
  const capacity = u32[(Header.ChannelRoot + ChannelDir.Capacity) >>> 2]!
  block('directory table', dirTable, capacity * 4)
  for (let i = 0; i < capacity; i++) {
    const ch = u32[(dirTable >>> 2) + i]!
    if (ch <= 1) continue // empty, tombstone
    channel = position = undefined
    block('channel record', ch, Chan.Slots)
    block('string record', u32[(ch + Chan.Name) >>> 2]!)
    channel = readStringRecord(heap, u32[(ch + Chan.Name) >>> 2]!)
    const ring = new Ring(heap.i32, ch)
    const dequeue = heap.i32[(ch + Chan.Dequeue) >>> 2]!
    const size = ring.size()
    for (let k = 0; k < ring.capacity; k++) {
      // The slots in ring order from the oldest message: queued ones, then free ones.
      const at = ring.slotAt(dequeue + k)
      position = k < size ? k : undefined
      out.push({ name: k < size ? 'ring slot' : 'free ring slot', start: at, length: ring.slotBytes, channel: k < size ? channel : undefined, position })
      if (k >= size) continue
      const word = u32[(at + RingSlot.Length) >>> 2]!
      const length = word & FRAME_LENGTH
      let frame = at + RingSlot.Data
      if ((word & OUT_OF_LINE) !== 0) {
        const record = u32[(at + RingSlot.Ref) >>> 2]!
        if (record <= POOLED_FRAME_MAX) {
          // A frame too long for the ring, in a loan pool array.
          frame = loanDataAt(heap, record - 1)
          out.push({ name: 'loan pool array', start: frame, length, channel, position })
        } else {
          block('frame record', record)
          frame = record + FrameRec.Data
        }
      }
      queued.push({ channel, at: frame, length })
      if ((word & WITH_REFS) !== 0) for (const ref of frameRefs(heap.u8, frame, length)) value(heap.kindOf(ref), ref)
    }
  }
  return { regions: out, queued }
}

/**
 * Reads a value the way an application would, within a budget (corrupt lengths can be
 * huge). `views`: also through the live views of values sent by reference.
 */
function touch(tx: Turn, value: unknown, views = true, budget = { left: 200 }): void {
  if (budget.left-- <= 0 || typeof value !== 'object' || value === null) return
  if (!views && mappedHandleOf(value) !== undefined) return
  if (value instanceof Map) {
    for (const [k, v] of value) {
      touch(tx, k, views, budget)
      touch(tx, v, views, budget)
    }
  } else if (value instanceof Set) {
    for (const v of value) touch(tx, v, views, budget)
  } else if (Array.isArray(value)) {
    const n = Math.min(value.length, 16)
    for (let i = 0; i < n; i++) touch(tx, value[i], views, budget)
  } else if (!ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer) && !(value instanceof Date) && !(value instanceof RegExp)) {
    for (const k of ['a', 'b', 'nested', 'self', 's', 'k', 'x', 'y', 'n', 'z', 'm', 'message', 'view', 'pad', 'long', 'list', 'v', 'r']) {
      touch(tx, (value as Record<string, unknown>)[k], views, budget)
    }
  }
}

class OutOfBounds extends Error {}

/** A TypedArray proxy that throws on any numeric index outside the array. */
function strict<T extends object>(array: T & { length: number }): T {
  return new Proxy(array, {
    get(target, prop) {
      if (typeof prop === 'string') {
        const n = Number(prop)
        if (String(n) === prop && !(Number.isInteger(n) && n >= 0 && n < target.length)) throw new OutOfBounds(`read at index ${prop} of ${target.length}`)
      }
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
    set(target, prop, value) {
      if (typeof prop === 'string') {
        const n = Number(prop)
        if (String(n) === prop && !(Number.isInteger(n) && n >= 0 && n < target.length)) throw new OutOfBounds(`write at index ${prop} of ${target.length}`)
      }
      return Reflect.set(target, prop, value, target)
    },
  })
}

type Op = 'take' | 'decode' | 'check' | 'repair' | 'put' | 'open'
// Weighted: taking and decoding are what peers do most; checks walk the whole heap.
const OPS: readonly Op[] = ['take', 'take', 'take', 'take', 'decode', 'decode', 'decode', 'put', 'put', 'check', 'check', 'repair']
// Through the bounds-checking proxies: no live views (the container code is not
// covered here, see reliability.test.ts).
const STRICT_OPS: readonly Op[] = ['take', 'take', 'decode', 'decode', 'put', 'check', 'repair']

interface Failure {
  case: number
  op: Op
  strict: boolean
  mutations: string
  error: string
}

/** The views a taken message owns (values sent by reference): the message itself, or one of its properties. */
function ownedViews(m: unknown): object[] {
  if (typeof m !== 'object' || m === null) return []
  if (mappedHandleOf(m) !== undefined) return [m]
  if (ArrayBuffer.isView(m) || m instanceof Map || m instanceof Set) return []
  return Object.values(m as Record<string, unknown>).filter((v): v is object => typeof v === 'object' && v !== null && mappedHandleOf(v) !== undefined)
}

describe('fuzz: corrupt segments give a ShmError or a value', () => {
  let shm: SharedMemory
  let heap: Heap
  let snapshot: Uint8Array
  let regions: Region[]
  let queued: Queued[]
  let byName: Map<string, Region[]>

  beforeAll(() => {
    shm = SharedMemory.create({ name: uniqueName('fuzz'), size: SIZE })
    populate(shm)
    heap = shm.heap
    ;({ regions, queued } = shm.access(() => regionsOf(heap)))
    byName = new Map()
    for (const r of regions) byName.set(r.name, [...(byName.get(r.name) ?? []), r])
    snapshot = shm.bytes.slice()
  })

  afterAll(() => shm.close())

  /** A frame read the way a receiver reads it, values sent by reference copied out of their records. */
  const decode = (q: Queued): unknown =>
    readFrame(heap.u8, q.at, q.length, (ref) => {
      heap.range(ref, Rec.Body)
      return readRecord(heap, heap.kindOf(heap.record(ref, heap.kindOf(ref))) as Tag, ref, false)
    })

  it('the corpus covers every structure and every record kind', () => {
    expect([...byName.keys()].sort()).toEqual([
      'allocator root', 'array items', 'array record', 'bigint record', 'binary record', 'block header', 'channel directory',
      'channel record', 'directory table', 'error record', 'frame record', 'free ring slot', 'instance record', 'loan pool array',
      'loan pool table', 'map record', 'object record', 'regexp record', 'ring slot', 'segment header', 'serialized record', 'set record', 'string record',
      'struct record', 'table buckets', 'table entries',
    ])
    // Every channel holds messages (but "g", drained), some in Frame records (with references), some in loan pool arrays.
    expect(new Set(queued.map((q) => q.channel))).toEqual(new Set(CHANNELS.filter((c) => c !== 'g')))
    expect(byName.get('frame record')!.length).toBeGreaterThanOrEqual(1)
    expect(byName.get('loan pool array')!.length).toBeGreaterThanOrEqual(2)
    // The unmodified snapshot decodes and checks clean.
    shm.access(() => {
      for (const q of queued) decode(q)
      const report = checkHeap(heap, { repair: false })
      expect(report.clean).toBe(true)
      expect(report.records).toBeGreaterThan(20) // value records reached from queued frames
    })
  })

  it(`${CASES} random corruptions (seed ${SEED})`, () => {
    const rnd = prng(SEED)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!
    const names = [...byName.keys()]
    const refs = regions.filter((r) => r.name !== 'block header' && r.start >= Header.HeapStart).map((r) => r.start)
    const bytes = shm.bytes
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const interesting = [0, 1, 7, 8, 16, 0xffffffff, 0x7fffffff, 0x80000000, 0x40000000, 0xc0000000, SIZE, SIZE - 8, SIZE - 16, Header.HeapStart]
    const real = { u8: heap.u8, u32: heap.u32, f64: heap.f64, words: (heap.allocator as unknown as { words: Int32Array }).words }
    const strictArrays = { u8: strict(real.u8), u32: strict(real.u32), f64: strict(real.f64), words: strict(real.words) }
    const setArrays = (a: typeof real): void => {
      const h = heap as unknown as Record<string, unknown>
      h.u8 = a.u8
      h.u32 = a.u32
      h.f64 = a.f64
      ;(heap.allocator as unknown as { words: Int32Array }).words = a.words
    }
    const segment = (shm as unknown as { segment: Segment }).segment
    const failures: Failure[] = []
    const errorCodes = new Map<string, number>()
    const opCounts = new Map<string, number>()
    const opTime = new Map<string, number>()
    let values = 0
    let slowest = { ms: 0, case: -1, op: '' }

    const mutate = (region: Region): string => {
      const name = region.name
      const flips = 1 + (rnd() < 0.7 ? 0 : Math.floor(rnd() * 3))
      const done: string[] = []
      for (let k = 0; k < flips; k++) {
        const span = rnd() < 0.8 ? Math.min(region.length, 48) : region.length
        const at = region.start + Math.floor(rnd() * span)
        const how = rnd()
        if (how < 0.4) {
          bytes[at] ^= 1 << Math.floor(rnd() * 8)
          done.push(`bit@${at}`)
        } else if (how < 0.6) {
          bytes[at] = Math.floor(rnd() * 256)
          done.push(`byte@${at}=${bytes[at]}`)
        } else {
          const w = at & ~3
          const r = rnd()
          const value = r < 0.45 ? pick(interesting) : r < 0.8 ? pick(refs) + pick([0, 0, 8, 16, -16, 4]) : Math.floor(rnd() * 2 ** 32)
          view.setUint32(w, value >>> 0, true)
          done.push(`word@${w}=${value >>> 0}`)
        }
      }
      return `${name}: ${done.join(' ')}`
    }

    const queuedOf = new Map<string, Queued[]>()
    for (const q of queued) queuedOf.set(q.channel, [...(queuedOf.get(q.channel) ?? []), q])

    /**
     * The in-turn channel handles of one operation, each looked up afresh (as another
     * process would): a turn's Messages, and this handle's holders.
     */
    const turnChannels = (holders: Holders): TurnChannels => {
      const inTurn = <T>(fn: () => T): T => fn()
      const host: ChannelHost = { segment, identity: 0, heap, messages: new Messages(heap, holders, inTurn, new ViewHolds(heap, holders, inTurn)), inTurn, closeChannel: () => {} }
      const open = new Map<string, Channel>()
      return {
        get: (name, create) => {
          let ch = open.get(name)
          if (ch !== undefined) return ch
          const ref = create ? openChannel(heap, name, CAPACITY) : findChannel(heap, name)
          if (ref === 0) return undefined
          ch = new Channel(host, name, ref)
          open.set(name, ch)
          return ch
        },
        drop: (name) => void open.delete(name),
      }
    }

    /** Takes `count` messages (fewer if there are not); `views` also reads what came by reference, `destroy` frees it. */
    const takeSome = (tx: Turn, channel: string, count: number, views: boolean, destroy: boolean): void => {
      for (let i = 0; i < count && tx.hasMessages({ channel }); i++) {
        const m = tx.takeMessage({ channel })
        values++
        touch(tx, m, views)
        for (const v of ownedViews(m)) {
          if (views) touch(tx, v)
          touch(tx, tx.copy(v))
          if (destroy) tx.destroy(v)
        }
      }
    }

    const runOp = (op: Op, region: Region, useStrict: boolean): void => {
      const channel = region.channel ?? pick(CHANNELS)
      // Up to and including the damaged message (two for damage outside messages).
      const count = region.position === undefined ? 2 : region.position + 1
      if (op === 'open') {
        const peer = SharedMemory.open({ name: shm.name, readyTimeoutMs: 0 })
        try {
          peer.access((tx) => takeSome(tx, channel, count, true, true), { timeoutMs: 1000 })
        } finally {
          peer.close()
        }
        return
      }
      heap.inTurn = true
      try {
        const holders = new Holders(heap)
        const tx = new Turn(heap, holders, turnChannels(holders))
        switch (op) {
          case 'take':
            takeSome(tx, channel, count, !useStrict, !useStrict)
            break
          case 'decode':
            // Straight through the frame reader, from where the snapshot had the frames.
            for (const q of queuedOf.get(channel) ?? []) {
              touch(tx, decode(q))
              values++
            }
            break
          case 'check':
            checkHeap(heap, { repair: false })
            break
          case 'repair': {
            checkHeap(heap)
            // Whatever was repaired must now pass a strict check, and stay usable.
            const again = checkHeap(heap, { repair: false })
            if (!again.clean) throw new Error(`repair left findings: ${again.repairs.join('; ')}`)
            tx.putMessage({ after: 'repair' }, { channel })
            takeSome(tx, channel, 99, !useStrict, !useStrict)
            break
          }
          case 'put': {
            const value = pick<unknown>([{ p: 1, q: ['x', 2n] }, 'a string', new Uint8Array(33), new Map([[1, 2]]), { long: 'y'.repeat(150) }, 'by reference'])
            if (value === 'by reference') {
              const v = tx.put({ r: [1, 'two'] })
              tx.putMessage({ v }, { channel })
              tx.destroy(v)
            } else tx.putMessage(value, { channel })
            takeSome(tx, channel, count + 1, !useStrict, !useStrict)
            break
          }
        }
      } finally {
        heap.inTurn = false
      }
    }

    const started = performance.now()
    for (let c = 0; c < CASES; c++) {
      const region = pick(byName.get(pick(names))!)
      const mutations = mutate(region)
      const header = region.name === 'segment header'
      const useStrict = !header && rnd() < OOB_SHARE
      const op: Op = header ? 'open' : pick(useStrict ? STRICT_OPS : OPS)
      opCounts.set(op, (opCounts.get(op) ?? 0) + 1)
      if (useStrict) setArrays(strictArrays)
      const t0 = performance.now()
      try {
        runOp(op, region, useStrict)
      } catch (err) {
        if (err instanceof ShmError) {
          errorCodes.set(err.code, (errorCodes.get(err.code) ?? 0) + 1)
        } else if (failures.length < 25) {
          failures.push({ case: c, op, strict: useStrict, mutations, error: (err as Error)?.stack?.split('\n').slice(0, 6).join('\n') ?? String(err) })
        }
      } finally {
        if (useStrict) setArrays(real)
        heap.inTurn = false
      }
      const ms = performance.now() - t0
      const key = `${op}${useStrict ? '*' : ''}`
      opTime.set(key, (opTime.get(key) ?? 0) + ms)
      if (ms > slowest.ms) slowest = { ms, case: c, op }
      bytes.set(snapshot)
      if (process.env.IPO_FUZZ_TRACE && c % 2000 === 1999) console.log(c, Math.round(performance.now() - started), JSON.stringify(Object.fromEntries([...opTime].map(([k, v]) => [k, Math.round(v)]))))
    }
    const total = performance.now() - started
    console.log(
      `fuzz: ${CASES} cases (seed ${SEED}) in ${(total / 1000).toFixed(1)} s, ${((total * 1000) / CASES).toFixed(1)} µs/case; ` +
        `ops ${JSON.stringify(Object.fromEntries(opCounts))}; ShmError codes ${JSON.stringify(Object.fromEntries(errorCodes))}; ` +
        `time per op (ms) ${JSON.stringify(Object.fromEntries([...opTime].map(([k, v]) => [k, Math.round(v)])))}; ` +
        `${values} values decoded; slowest case ${slowest.ms.toFixed(1)} ms (${slowest.op}, #${slowest.case})`,
    )
    expect(failures, `non-ShmError failures (rerun with IPO_FUZZ_SEED=${SEED}):\n${failures.map((f) => JSON.stringify(f, null, 1)).join('\n')}`).toEqual([])
    // Every operation met corrupt data and refused it, and values were decoded: the cases did reach the structures.
    expect(errorCodes.get('ERR_SHM_CORRUPT')).toBeGreaterThan(CASES / 20)
    expect(values).toBeGreaterThan(CASES)
    // The snapshot itself is still intact after all that.
    shm.access(() => expect(checkHeap(heap, { repair: false }).clean).toBe(true))
  }, LONG ? 3_600_000 : 300_000)
})
