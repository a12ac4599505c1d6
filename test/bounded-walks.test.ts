// Every walk over shared structures is bounded by what it walks (docs/reliability.md,
// "Faults tried"). A stray write or a hostile peer puts a huge count (0xFFFFFFF0) or
// a count one past its block, or a cycle, into a real record of a real segment:
// records reached from queued messages (a value sent by reference, listed in its
// frame's refs trailer), ring slots and Frame records, the channel directory. Taking
// the message, reading what it refers to, destroying it, copying, and shm.check() then
// throw ERR_SHM_CORRUPT naming the record and the field, instead of looping up to 2^32
// times while every process waits for the turn (or spins in a lock-free send or
// receive). After each failing call a child process (test/children/walk-peer.ts) takes
// the turn: the throw released it. No timing is asserted.
import { afterEach, describe, expect, it } from 'vitest'
import { SharedMemory, ShmError, registerClass, type Channel, type Turn } from 'interprocess-objects'
import { findChannel } from '../core/channel'
import { FRAME_LENGTH, WITH_REFS } from '../core/records'
import { mappedHandleOf } from '../core/values/mapped_handle'
import { frameRefs } from '../core/values/frame'
import type { Heap } from '../core/heap'
import { Header } from '../core/layout'
import { Arr, Bin, Chan, ChannelDir, Entry, ENTRY_SIZE, FrameRec, Hash, Inst, OUT_OF_LINE, POOLED_FRAME_MAX, Rec, RingSlot, Slot, SLOT_SIZE, Str, TOMBSTONE } from '../core/records'
import { loanDataAt } from '../core/loan_pool'
import { Ring } from '../core/ring'
import { Point } from './children/shared-classes'
import { startChild, uniqueName, type Child } from './helpers/processes'
import { shmError } from './helpers/segments'

registerClass(Point)

const HUGE = 0xfffffff0

/** `fn` throws ERR_SHM_CORRUPT whose message names every one of `words` (record offset, field). */
function expectCorrupt(fn: () => unknown, ...words: Array<string | number>): ShmError {
  const err = shmError(fn)
  expect(err.code, err.message).toBe('ERR_SHM_CORRUPT')
  for (const w of words) expect(err.message).toContain(String(w))
  return err
}

/** The oldest message of channel `name`: its ring slot, and where its frame is. */
function headFrame(heap: Heap, name: string): { ring: Ring; slot: number; word: number; at: number; length: number } {
  const ch = findChannel(heap, name)
  expect(ch, `channel ${name}`).toBeGreaterThan(0)
  const ring = new Ring(heap.i32, ch)
  const slot = ring.slotAt(heap.i32[(ch + Chan.Dequeue) >>> 2]!)
  const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
  const ref = heap.u32[(slot + RingSlot.Ref) >>> 2]!
  // Out of line: a Frame record, or (a small Ref) the array of loan pool entry Ref − 1.
  const at = (word & OUT_OF_LINE) === 0 ? slot + RingSlot.Data : ref <= POOLED_FRAME_MAX ? loanDataAt(heap, ref - 1) : ref + FrameRec.Data
  return { ring, slot, word, at, length: word & FRAME_LENGTH }
}

/** The records the oldest message of `channel` refers to: its frame's refs trailer. */
function queuedRecords(heap: Heap, channel: string): number[] {
  const { word, at, length } = headFrame(heap, channel)
  expect(word & WITH_REFS).toBe(WITH_REFS)
  return frameRefs(heap.u8, at, length)
}

/** Usable bytes of the block at `ref`. */
const usable = (heap: Heap, ref: number): number => heap.allocator.blockSize(ref)

interface Segment {
  shm: SharedMemory
  heap: Heap
  peer: Child
  toPeer: Channel<unknown>
  fromPeer: Channel<unknown>
  echoes: number
}

const open: Segment[] = []

afterEach(async () => {
  for (const s of open.splice(0)) {
    s.peer.proc.kill('SIGKILL')
    await s.peer.exited
    s.shm.close() // the creator's close unlinks the name
  }
})

/** A fresh segment, and a peer process that takes the turn for each message on channel "in". */
async function segment(): Promise<Segment> {
  const shm = SharedMemory.create({ name: uniqueName('walk'), size: 512 * 1024 })
  const toPeer = shm.channel('in', { capacity: 2 })
  const fromPeer = shm.channel('out', { capacity: 2 })
  const s = { shm, heap: shm.heap, peer: startChild('walk-peer.ts', [shm.name]), toPeer, fromPeer, echoes: 0 }
  open.push(s)
  expect(await s.peer.next()).toBe('ready')
  return s
}

/** Another process takes the turn (and this one again after it): nothing still holds it. */
async function peerTakesTurn(s: Segment): Promise<void> {
  const n = ++s.echoes
  s.toPeer.send({ echo: n })
  expect(await s.fromPeer.receive({ timeoutMs: 30_000 })).toEqual({ echo: n })
  expect(s.shm.access(() => n)).toBe(n)
}

/** A word to overwrite, and what it held. */
interface Damage {
  at: number
  old: number
}

/** Overwrites the u32 at byte `at` (little-endian; a frame's words need not be aligned). */
function overwrite(heap: Heap, at: number, value: number): Damage {
  const old = readU32(heap, at)
  for (let i = 0; i < 4; i++) heap.u8[at + i] = (value >>> (8 * i)) & 0xff
  return { at, old }
}

function readU32(heap: Heap, at: number): number {
  return (heap.u8[at]! | (heap.u8[at + 1]! << 8) | (heap.u8[at + 2]! << 16) | (heap.u8[at + 3]! << 24)) >>> 0
}

function undo(heap: Heap, damage: Damage[]): void {
  for (const d of damage.reverse()) overwrite(heap, d.at, d.old)
}

type Op = 'check' | 'copy' | 'read' | 'take' | 'release' | 'destroy'

interface Case {
  kind: string
  make: () => unknown
  /** The record whose count is damaged, given the value's own record. */
  target: (heap: Heap, ref: number) => number
  field: string
  /** Offset of the count inside the target record. */
  offset: number
  /** The smallest count that does not fit the block the count describes. */
  pastBlock: (heap: Heap, target: number) => number
  /** Reads the live view the way an application would. */
  read: (view: unknown, tx: Turn) => unknown
}

const cases: Case[] = [
  {
    kind: 'array',
    make: () => [1, 'two', [3], { a: 1 }],
    target: (_heap, ref) => ref,
    field: 'Length',
    offset: Arr.Length,
    pastBlock: (heap, t) => Math.floor(usable(heap, heap.u32[(t + Arr.Items) >>> 2]!) / SLOT_SIZE) + 1,
    read: (view) => [...(view as unknown[])],
  },
  {
    kind: 'object',
    make: () => ({ a: 1, b: 'x', c: [1] }),
    target: (_heap, ref) => ref,
    field: 'Used',
    offset: Hash.Used,
    pastBlock: (heap, t) => Math.floor(usable(heap, heap.u32[(t + Hash.Entries) >>> 2]!) / ENTRY_SIZE) + 1,
    read: (view) => (view as Record<string, unknown>).b,
  },
  {
    kind: 'Map',
    make: () => new Map<unknown, unknown>([[1, 'one'], ['k', { z: 1 }], [2n, null]]),
    target: (_heap, ref) => ref,
    field: 'Used',
    offset: Hash.Used,
    pastBlock: (heap, t) => Math.floor(usable(heap, heap.u32[(t + Hash.Entries) >>> 2]!) / ENTRY_SIZE) + 1,
    read: (view) => [...(view as Map<unknown, unknown>)],
  },
  {
    kind: 'Set',
    make: () => new Set<unknown>([1, 's', 2n, null]),
    target: (_heap, ref) => ref,
    field: 'Used',
    offset: Hash.Used,
    pastBlock: (heap, t) => Math.floor(usable(heap, heap.u32[(t + Hash.Entries) >>> 2]!) / ENTRY_SIZE) + 1,
    read: (view) => (view as Set<unknown>).has('s'),
  },
  {
    // The string inside an array: strings come out as copies, the array is what stays mapped.
    kind: 'string',
    make: () => ['x', 'ünïcödé string ✓ '.repeat(3)],
    target: (heap, ref) => heap.u32[(heap.u32[(ref + Arr.Items) >>> 2]! + SLOT_SIZE + Slot.Payload) >>> 2]!,
    field: 'ByteLength',
    offset: Str.ByteLength,
    pastBlock: (heap, t) => usable(heap, t) - Str.Data + 1,
    read: (view) => (view as string[])[1],
  },
  {
    kind: 'binary',
    make: () => new Float64Array([1.5, -2, 3]),
    target: (_heap, ref) => ref,
    field: 'ByteLength',
    offset: Bin.ByteLength,
    pastBlock: (heap, t) => usable(heap, t) - Bin.Data + 1,
    read: (view, tx) => tx.bufferOf(view as Float64Array),
  },
  {
    // A registered class: its fields are an object table behind the Instance record.
    kind: 'instance',
    make: () => new Point(3, 4),
    target: (heap, ref) => heap.u32[(ref + Inst.Fields) >>> 2]!,
    field: 'Used',
    offset: Hash.Used,
    pastBlock: (heap, t) => Math.floor(usable(heap, heap.u32[(t + Hash.Entries) >>> 2]!) / ENTRY_SIZE) + 1,
    read: (view) => (view as Point).norm(),
  },
]

/** The record a mapped value stands for. */
function refOfView(view: unknown): number {
  return mappedHandleOf(view as object)!.ref
}

describe('a damaged count is ERR_SHM_CORRUPT naming the record and the field, and the turn is released', () => {
  for (const c of cases) {
    it(`${c.kind}: ${c.field} = 0x${HUGE.toString(16)}, and one past its block`, async () => {
      const s = await segment()
      const { shm, heap } = s
      for (const [round, huge] of [[0, true], [1, false]] as const) {
        const channel = `m${round}`
        const other = `m${round}-release`
        // Two values queued by reference, each the only holder of its record (check and
        // take; take and release), one kept for copy and reads, one for destroy.
        const { put, copied, destroyed } = shm.access((tx) => {
          const queued = tx.put(c.make())
          tx.putMessage(queued, { channel })
          const released = tx.put(c.make())
          tx.putMessage({ released }, { channel: other })
          const put = { queued: refOfView(queued), released: refOfView(released) }
          tx.destroy(queued)
          tx.destroy(released)
          return { put, copied: tx.put(c.make()), destroyed: tx.put(c.make()) }
        })
        // The records reach the messages through their frames' refs trailers.
        expect(shm.access(() => queuedRecords(heap, channel))).toEqual([put.queued])
        expect(shm.access(() => queuedRecords(heap, other))).toEqual([put.released])
        for (const ref of [put.queued, put.released]) expect(heap.u32[(ref + Rec.RefCount) >>> 2]).toBe(1)
        const records = { ...put, copied: refOfView(copied), destroyed: refOfView(destroyed) }
        const which = ['queued', 'released', 'copied', 'destroyed'] as const
        type Which = (typeof which)[number]
        const targets = Object.fromEntries(which.map((k) => [k, c.target(heap, records[k])])) as Record<Which, number>
        const counts = Object.fromEntries(which.map((k) => [k, huge ? HUGE : c.pastBlock(heap, targets[k])])) as Record<Which, number>
        const damage: Damage[] = []
        const spoil = (k: Which): void => {
          damage.push(overwrite(heap, targets[k] + c.offset, counts[k]))
        }
        // The released record is damaged once check has run: check names the first damage it meets.
        for (const k of ['queued', 'copied', 'destroyed'] as const) spoil(k)
        let taken: unknown
        const ops: Array<[Op, () => unknown, Which]> = [
          ['check', () => shm.check(), 'queued'],
          ['copy', () => shm.access((tx) => tx.copy(copied)), 'copied'],
          ['read', () => shm.access((tx) => c.read(copied, tx)), 'copied'],
          // Taking hands out the live view (or refuses the record); reading it walks the count.
          ['take', () => shm.access((tx) => {
            taken = tx.takeMessage({ channel })
            return c.read(taken, tx)
          }), 'queued'],
          // The receiver owns what came by reference: destroying it walks the count.
          ['release', () => {
            spoil('released')
            return shm.access((tx) => tx.destroy(tx.takeMessage<{ released: unknown }>({ channel: other }).released))
          }, 'released'],
          ['destroy', () => shm.access((tx) => tx.destroy(destroyed)), 'destroyed'],
        ]
        const taking: Record<string, string> = {}
        for (const [op, fn, k] of ops) {
          const err = expectCorrupt(fn, targets[k])
          // check.ts words its findings its own way; the codec names the field it refused.
          if (op !== 'check') expect(err.message, op).toContain(`${c.field} = ${counts[k]}`)
          if (op === 'take') taking.take = taken === undefined ? 'refused at take' : 'refused when read'
          await peerTakesTurn(s)
        }
        // With the damage undone the heap checks out, and a view that was taken reads whole.
        undo(heap, damage)
        expect(shm.check().clean).toBe(true)
        if (taken !== undefined) {
          expect(shm.access((tx) => tx.copy(taken))).toEqual(c.make())
          shm.access((tx) => tx.destroy(taken))
        }
        expect(shm.access((tx) => tx.copy(copied))).toEqual(c.make())
        shm.access((tx) => tx.destroy(copied))
        expect(shm.access((tx) => [tx.messageCount({ channel }), tx.messageCount({ channel: other })])).toEqual([0, 0])
        expect(shm.check().clean).toBe(true)
        console.log(`${c.kind} (${huge ? 'huge' : 'one past'}): take ${taking.take}`)
      }
    })
  }
})

describe('a cycle in a damaged structure ends in ERR_SHM_CORRUPT, not a loop', () => {
  it('destroy: a self-referencing array, and an instance that holds itself, whose reference counts were lowered', async () => {
    const s = await segment()
    const { shm, heap } = s
    const array: unknown[] = [1, 'x']
    array.push(array)
    const point = new Point(1, 2) as Point & { self?: unknown }
    point.self = point
    for (const value of [array, point]) {
      const view = shm.access((tx) => tx.put(value))
      const ref = refOfView(view)
      // The put's own reference and the one inside: 2. As if one of them were never counted.
      expect(heap.u32[(ref + Rec.RefCount) >>> 2]).toBe(2)
      heap.u32[(ref + Rec.RefCount) >>> 2] = 1
      // Freeing it reaches it again through its own slot: it is no longer a live block.
      expectCorrupt(() => shm.access((tx) => tx.destroy(view)), ref, 'not a live block')
      await peerTakesTurn(s)
    }
    expect(shm.check().clean).toBe(true)
  })

  it('a hash chain that loops, in a Map queued by reference: lookups, inserts and shm.check() refuse it; walks in insertion order are unaffected', async () => {
    const s = await segment()
    const { shm, heap } = s
    const value = new Map<unknown, unknown>([['a', 1], ['b', 2], ['c', 3], [4, 'four']])
    const view = shm.access((tx) => {
      const v = tx.put(value)
      tx.putMessage(v)
      return v
    })
    const table = refOfView(view)
    expect(shm.access(() => queuedRecords(heap, ''))).toEqual([table])
    const entries = heap.u32[(table + Hash.Entries) >>> 2]!
    const buckets = heap.u32[(table + Hash.Buckets) >>> 2]!
    const bucketCount = heap.u32[(table + Hash.BucketCount) >>> 2]!
    // Every bucket starts at entry 1, whose chain link points back at itself.
    const damage = [overwrite(heap, entries + Entry.Next, 1)]
    for (let b = 0; b < bucketCount; b++) damage.push(overwrite(heap, buckets + b * 4, 1))
    const calls: Array<() => unknown> = [
      () => view.get('absent'),
      () => view.has(12345),
      () => view.set('new', 1),
      () => view.delete('absent'),
    ]
    for (const call of calls) {
      expectCorrupt(() => shm.access(call), table, 'a cycle')
      await peerTakesTurn(s)
    }
    expectCorrupt(() => shm.check(), table)
    await peerTakesTurn(s)
    // Copies walk the entries in insertion order, bounded by Used: no chain is followed.
    expect(shm.access((tx) => tx.copy(view))).toEqual(value)
    undo(heap, damage)
    expect(shm.check().clean).toBe(true)
    // The message brings the same record; each view holds a reference.
    shm.access((tx) => {
      const taken = tx.takeMessage<Map<unknown, unknown>>()
      expect(refOfView(taken)).toBe(table)
      expect(tx.copy(taken)).toEqual(value)
      tx.destroy(taken)
      tx.destroy(view)
    })
    expect(shm.check().clean).toBe(true)
  })
})

/** What take / receive / send may answer on a damaged channel: an error, never a hang or a crash. */
const CLEAN = ['ERR_SHM_CORRUPT', 'ERR_NO_MESSAGES', 'ERR_TIMEOUT', 'ERR_CHANNEL_FULL']

/** What a call returned, for the log (a view sent by reference cannot be read outside a turn). */
function summary(value: unknown): unknown {
  return { value: typeof value === 'object' && value !== null ? `(${Object.keys(value).join(',')})` : value }
}

/** The outcome of `fn`: what it returned, or the code of the ShmError it threw (anything else fails the test). */
function outcome(fn: () => unknown): unknown {
  try {
    return summary(fn())
  } catch (err) {
    if (!(err instanceof ShmError)) throw err
    expect(CLEAN, err.message).toContain(err.code)
    return err.code
  }
}

async function asyncOutcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return summary(await p)
  } catch (err) {
    if (!(err instanceof ShmError)) throw err
    expect(CLEAN, err.message).toContain(err.code)
    return err.code
  }
}

describe('a damaged ring or frame is ERR_SHM_CORRUPT in check(), and a clean error (no loop, no crash) in take, receive and send', () => {
  const CAPACITY = 4

  /**
   * A fresh segment (each damage gets its own: the calls below move the ring on) with
   * `values` queued on channel "c" (by reference where they are segment values).
   */
  async function queued(values: (tx: Turn) => unknown[]): Promise<{ s: Segment; ch: Channel<unknown> }> {
    const s = await segment()
    const ch = s.shm.channel('c', { capacity: CAPACITY })
    s.shm.access((tx) => {
      for (const v of values(tx)) ch.send(v)
    })
    return { s, ch }
  }

  /** Every way a process reaches a damaged channel; each one ends, with a value or a clean error. */
  async function everyWay(s: Segment, ch: Channel<unknown>): Promise<Record<string, unknown>> {
    const { shm } = s
    const seen: Record<string, unknown> = {}
    seen.take = outcome(() =>
      shm.access((tx) => {
        let taken = 0
        // Bounded by the ring: a take that neither takes nor refuses would be a loop.
        for (; taken <= CAPACITY && tx.hasMessages({ channel: ch.name }); taken++) tx.takeMessage({ channel: ch.name })
        return taken
      }),
    )
    if (typeof seen.take !== 'string') expect((seen.take as { value: number }).value).toBeLessThanOrEqual(CAPACITY)
    await peerTakesTurn(s)
    seen.tryReceive = outcome(() => ch.tryReceive())
    seen.receive = await asyncOutcome(ch.receive({ timeoutMs: 50 }))
    seen.receiveSync = outcome(() => ch.receiveSync({ timeoutMs: 50 }))
    seen.trySend = outcome(() => ch.trySend('more'))
    seen.send = outcome(() => ch.send('more', { timeoutMs: 50 }))
    await peerTakesTurn(s)
    return seen
  }

  it('Enqueue and Dequeue far apart (0x' + HUGE.toString(16) + ', past the capacity, a lap behind, the wrong way round)', async () => {
    const variants: Array<[string, (e: number, d: number) => [number, number]]> = [
      ['Enqueue 0xfffffff0 ahead', (_e, d) => [(d + HUGE) >>> 0, d]],
      ['Enqueue past the capacity', (_e, d) => [d + CAPACITY + 3, d]],
      ['Enqueue a lap behind', (e, d) => [(e - CAPACITY) >>> 0, d]],
      ['Dequeue ahead of Enqueue', (e, d) => [e, d + 5]],
      ['Dequeue a lap behind', (e, d) => [e, (d - CAPACITY) >>> 0]],
      ['both near 2^32', () => [HUGE, HUGE - CAPACITY - 1]],
    ]
    for (const [what, place] of variants) {
      const { s, ch } = await queued((tx) => ['first', { big: 'b'.repeat(300) }, { ref: tx.put([1, 2]) }])
      const { shm, heap } = s
      const e = heap.u32[(ch.ref + Chan.Enqueue) >>> 2]!
      const d = heap.u32[(ch.ref + Chan.Dequeue) >>> 2]!
      expect(e - d).toBe(3)
      const [enqueue, dequeue] = place(e, d)
      overwrite(heap, ch.ref + Chan.Enqueue, enqueue)
      overwrite(heap, ch.ref + Chan.Dequeue, dequeue)
      expectCorrupt(() => shm.check(), `channel "c": Enqueue ${enqueue} and Dequeue ${dequeue} are ${(enqueue - dequeue) | 0} apart`)
      await peerTakesTurn(s)
      console.log(`${what}: ${JSON.stringify(await everyWay(s, ch))}`)
    }
  })

  /**
   * The head message's frame was damaged: check and take both report ERR_SHM_CORRUPT
   * (with `findings` in check's message) and the peer can still take turns; every other
   * way is logged; undone (and `afterUndo` asserted), the segment checks clean.
   */
  async function damagedHead(s: Segment, ch: Channel<unknown>, what: string, damage: Damage[], findings: Array<string | number>, afterUndo?: () => void): Promise<void> {
    const { shm, heap } = s
    expectCorrupt(() => shm.check(), ...findings)
    await peerTakesTurn(s)
    expectCorrupt(() => shm.access((tx) => tx.takeMessage({ channel: 'c' })))
    await peerTakesTurn(s)
    console.log(`${what}: ${JSON.stringify(await everyWay(s, ch))}`)
    undo(heap, damage)
    afterUndo?.()
    expect(shm.check().clean).toBe(true)
  }

  it('a slot whose Length is larger than the slot (0x3fffffff, one byte past, with references, past its Frame record or loan)', async () => {
    const room = 128 - RingSlot.Data // SLOT_BYTES less the slot's bookkeeping
    const variants: Array<[string, (tx: Turn) => unknown, (word: number) => number, string]> = [
      ['inline 0x3fffffff', () => 'inline', () => FRAME_LENGTH, `a frame of ${FRAME_LENGTH} bytes does not fit`],
      // One byte past the head slot: it claims to span the next slot, which holds a message of its own.
      ['inline, one byte past', () => 'inline', () => room + 1, 'slot 1 of the message at position'],
      ['with references', (tx) => ({ ref: tx.put([1]) }), () => WITH_REFS | 0x3ffffff0, `a frame of ${0x3ffffff0} bytes does not fit`],
      ['Frame record, past its block', (tx) => ({ big: 'b'.repeat(300), ref: tx.put([1]) }), (w) => (w & ~FRAME_LENGTH) | 100_000, 'is not a live Frame record of 100000 bytes'],
      ['loan pool array, past the loan', () => ({ big: 'b'.repeat(300) }), (w) => (w & ~FRAME_LENGTH) | 100_000, 'does not fit loan pool entry'],
    ]
    for (const [what, value, length, finding] of variants) {
      const { s, ch } = await queued((tx) => [value(tx), 'second'])
      const { shm, heap } = s
      const { slot, word } = shm.access(() => headFrame(heap, 'c'))
      const damage = [overwrite(heap, slot + RingSlot.Length, length(word))]
      await damagedHead(s, ch, what, damage, [finding])
    }
  })

  it('an out-of-line frame that points at a record that is not a Frame record, or at one of another generation', async () => {
    const variants: Array<[string, (heap: Heap, slot: number, other: number, size: number) => Damage[], string]> = [
      ['an array record', (heap, slot, other) => [overwrite(heap, slot + RingSlot.Ref, other)], 'is not a live Frame record'],
      ['no block start', (heap, slot) => [overwrite(heap, slot + RingSlot.Ref, heap.u32[(slot + RingSlot.Ref) >>> 2]! + 8)], 'is not a live Frame record'],
      ['the end of the segment', (heap, slot, _other, size) => [overwrite(heap, slot + RingSlot.Ref, size - 16)], 'is not a live Frame record'],
      ['0x' + HUGE.toString(16), (heap, slot) => [overwrite(heap, slot + RingSlot.Ref, HUGE)], 'is not a live Frame record'],
      ['another generation', (heap, slot) => [overwrite(heap, slot + RingSlot.Generation, heap.u32[(slot + RingSlot.Generation) >>> 2]! + 1)], 'was freed'],
    ]
    for (const [what, spoil, finding] of variants) {
      let other: unknown
      const { s, ch } = await queued((tx) => {
        other = tx.put(['not', 'a', 'frame'])
        return [{ big: 'f'.repeat(500), ref: tx.put({ k: 1 }) }, 'second']
      })
      const { shm, heap } = s
      const { slot, word } = shm.access(() => headFrame(heap, 'c'))
      expect((word & OUT_OF_LINE) !== 0).toBe(true)
      const record = heap.u32[(slot + RingSlot.Ref) >>> 2]!
      const damage = spoil(heap, slot, refOfView(other), shm.size)
      await damagedHead(s, ch, what, damage, ['frame record', finding], () => {
        expect(heap.u8[record + Rec.Kind]).toBe(65) // InternalKind.Frame: the failed take freed nothing
      })
    }
  })

  it('a refs trailer that lists 0x' + HUGE.toString(16) + ' references, none, or a record that is not a live value', async () => {
    const variants: Array<[string, (tx: Turn) => unknown, (heap: Heap, at: number, length: number, channel: number) => Damage[], (channel: number) => string]> = [
      ['inline, count 0x' + HUGE.toString(16), (tx) => ({ ref: tx.put([1]) }), (heap, at, length) => [overwrite(heap, at + length - 4, HUGE)], () => `lists ${HUGE} refs`],
      ['inline, count 0', (tx) => ({ ref: tx.put([1]) }), (heap, at, length) => [overwrite(heap, at + length - 4, 0)], () => 'lists 0 refs'],
      ['Frame record, count 0x' + HUGE.toString(16), (tx) => ({ big: 'g'.repeat(400), ref: tx.put([1]) }), (heap, at, length) => [overwrite(heap, at + length - 4, HUGE)], () => `lists ${HUGE} refs`],
      ['a channel record listed', (tx) => ({ ref: tx.put([1]) }), (heap, at, length, channel) => [overwrite(heap, at + length - 8, channel)], (channel) => `${channel}`],
      ['an offset inside a record listed', (tx) => ({ ref: tx.put([1]) }), (heap, at, length) => [overwrite(heap, at + length - 8, readU32(heap, at + length - 8) + 16)], () => 'record'],
    ]
    for (const [what, value, spoil, finding] of variants) {
      const { s, ch } = await queued((tx) => [value(tx), 'second'])
      const { shm, heap } = s
      const { at, length, word } = shm.access(() => headFrame(heap, 'c'))
      expect(word & WITH_REFS).toBe(WITH_REFS)
      const damage = spoil(heap, at, length, ch.ref)
      await damagedHead(s, ch, what, damage, [finding(ch.ref)])
    }
  })
})

describe('a damaged channel directory is ERR_SHM_CORRUPT, not a loop', () => {
  it('Capacity = 0x' + HUGE.toString(16) + ' or 2^31, Count or Used = 0x' + HUGE.toString(16) + ', or a table a stray write filled: lookups and new channels end', async () => {
    const root = Header.ChannelRoot
    const variants: Array<[string, (heap: Heap) => Damage[], string, boolean]> = [
      ['Capacity = 0x' + HUGE.toString(16), (heap) => [overwrite(heap, root + ChannelDir.Capacity, HUGE)], `capacity ${HUGE}`, true],
      ['Capacity = 2^31', (heap) => [overwrite(heap, root + ChannelDir.Capacity, 2 ** 31)], `is not a live block of ${2 ** 33} bytes`, true],
      ['Count = 0x' + HUGE.toString(16), (heap) => [overwrite(heap, root + ChannelDir.Count, HUGE)], `says ${HUGE} channels`, false],
      ['Used = 0x' + HUGE.toString(16), (heap) => [overwrite(heap, root + ChannelDir.Used, HUGE)], `${HUGE} used entries`, false],
      [
        'every entry taken',
        (heap) => {
          const table = heap.u32[(root + ChannelDir.Table) >>> 2]!
          const damage: Damage[] = []
          for (let i = 0; i < heap.u32[(root + ChannelDir.Capacity) >>> 2]!; i++) if (heap.u32[(table >>> 2) + i] === 0) damage.push(overwrite(heap, table + i * 4, TOMBSTONE))
          return damage
        },
        'tombstones',
        true,
      ],
    ]
    for (const [what, spoil, finding, refused] of variants) {
      const s = await segment()
      const { shm, heap } = s
      const damage = spoil(heap)
      expectCorrupt(() => shm.check(), finding)
      await peerTakesTurn(s)
      // A lookup of a name that is not there walks the table; a new channel is placed in it.
      const seen: unknown[] = []
      for (const fn of [
        () => shm.access((tx) => tx.messageCount({ channel: 'never-used' })),
        () => shm.channel('never-used').close(),
        () => shm.access((tx) => tx.putMessage('x', { channel: 'never-used-either' })),
      ]) {
        seen.push(outcome(fn))
        await peerTakesTurn(s)
      }
      console.log(`directory ${what}: ${JSON.stringify(seen)}`)
      // Capacity walks and placing in a full table are refused (the lookup of a name in
      // a full table ends at Capacity, finding nothing); Count and Used are never walked.
      if (refused) {
        expect(seen.slice(1)).toEqual(['ERR_SHM_CORRUPT', 'ERR_SHM_CORRUPT'])
        // The refused calls changed nothing.
        undo(heap, damage)
        expect(shm.check().clean).toBe(true)
      }
    }
  })
})
