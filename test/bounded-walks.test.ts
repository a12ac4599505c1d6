// Every walk over shared structures is bounded by what it walks (docs/reliability.md,
// "Faults tried"). A stray write or a hostile peer puts a huge count (0xFFFFFFF0) or
// a count one past its block, or a cycle, into a real record of a real segment;
// destroying, copying, taking with { copy: true }, reading the live view and
// shm.check() then throw ERR_SHM_CORRUPT naming the record and the field, instead
// of looping up to 2^32 times while every process waits for the turn. After each
// failing call a child process (test/children/codec-echo.ts) takes the turn and
// echoes a message: the throw released the turn. No timing is asserted.
import { afterEach, describe, expect, it } from 'vitest'
import { SharedMemory, ShmError, registerClass, type Turn } from 'interprocess-objects'
import { Channels } from '../core/channel'
import { mappedHandleOf } from '../core/values/mapped_handle'
import type { Heap } from '../core/heap'
import { Header } from '../core/layout'
import { Arr, Bin, ChannelDir, Entry, ENTRY_SIZE, Hash, Inst, QNode, Queue, Rec, Slot, SLOT_SIZE, Str } from '../core/records'
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

/** The record referenced by the oldest message of `channel`. */
function messageRecord(heap: Heap, channel: string): number {
  const q = new Channels(heap).queue(channel, false)
  const node = heap.u32[(q + Queue.Head) >>> 2]!
  return heap.u32[(node + QNode.Value + Slot.Payload) >>> 2]!
}

/** Usable bytes of the block at `ref`. */
const usable = (heap: Heap, ref: number): number => heap.allocator.blockSize(ref)

interface Segment {
  shm: SharedMemory
  heap: Heap
  peer: Child
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

/** A fresh segment, and a peer process that echoes messages from channel "in" to "out" in its own turns. */
function segment(): Segment {
  const shm = SharedMemory.create({ name: uniqueName('walk'), size: 256 * 1024 })
  const s = { shm, heap: shm.heap, peer: startChild('codec-echo.ts', [shm.name]), echoes: 0 }
  open.push(s)
  return s
}

/** Another process takes the turn (and this one again after it): nothing still holds it. */
async function peerTakesTurn(s: Segment): Promise<void> {
  const n = ++s.echoes
  s.shm.access((tx) => tx.putMessage({ echo: n }, { channel: 'in' }))
  await s.shm.waitForMessage({ channel: 'out', timeoutMs: 30_000 })
  expect(s.shm.access((tx) => tx.takeMessage({ channel: 'out', copy: true }))).toEqual({ echo: n })
}

/** A word to overwrite, and what it held. */
interface Damage {
  at: number
  old: number
}

function overwrite(heap: Heap, at: number, value: number): Damage {
  const old = heap.u32[at >>> 2]!
  heap.u32[at >>> 2] = value
  return { at, old }
}

function undo(heap: Heap, damage: Damage[]): void {
  for (const d of damage.reverse()) heap.u32[d.at >>> 2] = d.old
}

type Op = 'check' | 'copy' | 'read' | 'take-copy' | 'take' | 'destroy'

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
  /** Operations that do not walk the damaged count (a lazy view does not read what it holds). */
  skip?: Op[]
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
    skip: ['take'], // the array view is handed out without reading its items
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
function refOfView(heap: Heap, view: unknown): number {
  return mappedHandleOf(view as object)!.ref
}

describe('a damaged count is ERR_SHM_CORRUPT naming the record and the field, and the turn is released', () => {
  for (const c of cases) {
    it(`${c.kind}: ${c.field} = 0x${HUGE.toString(16)}, and one past its block`, async () => {
      const s = segment()
      const { shm, heap } = s
      for (const [round, huge] of [[0, true], [1, false]] as const) {
        const channel = `m${round}`
        // One copy queued (check, take), one kept for copy and reads, one for destroy.
        const { copied, destroyed } = shm.access((tx) => {
          tx.putMessage(c.make(), { channel })
          return { copied: tx.put(c.make()), destroyed: tx.put(c.make()) }
        })
        const records = { queued: messageRecord(heap, channel), copied: refOfView(heap, copied), destroyed: refOfView(heap, destroyed) }
        const targets = { queued: c.target(heap, records.queued), copied: c.target(heap, records.copied), destroyed: c.target(heap, records.destroyed) }
        const counts = {
          queued: huge ? HUGE : c.pastBlock(heap, targets.queued),
          copied: huge ? HUGE : c.pastBlock(heap, targets.copied),
          destroyed: huge ? HUGE : c.pastBlock(heap, targets.destroyed),
        }
        const damage = (['queued', 'copied', 'destroyed'] as const).map((k) => overwrite(heap, targets[k] + c.offset, counts[k]))
        const ops: Array<[Op, () => unknown, 'queued' | 'copied' | 'destroyed']> = [
          ['check', () => shm.check(), 'queued'],
          ['copy', () => shm.access((tx) => tx.copy(copied)), 'copied'],
          ['read', () => shm.access((tx) => c.read(copied, tx)), 'copied'],
          ['take-copy', () => shm.access((tx) => tx.takeMessage({ channel, copy: true })), 'queued'],
          ['take', () => shm.access((tx) => tx.takeMessage({ channel })), 'queued'],
          ['destroy', () => shm.access((tx) => tx.destroy(destroyed)), 'destroyed'],
        ]
        for (const [op, fn, which] of ops) {
          if (c.skip?.includes(op)) continue
          const err = expectCorrupt(fn, targets[which])
          // check.ts words its findings its own way; the codec names the field it refused.
          if (op !== 'check') expect(err.message, op).toContain(`${c.field} = ${counts[which]}`)
          await peerTakesTurn(s)
        }
        // The failed takes changed nothing: with the damage undone the message checks
        // out and comes out whole.
        undo(heap, damage)
        expect(shm.check().clean).toBe(true)
        expect(shm.access((tx) => tx.takeMessage({ channel, copy: true }))).toEqual(c.make())
        expect(shm.access((tx) => tx.messageCount({ channel }))).toBe(0)
      }
    })
  }
})

describe('a cycle in a damaged structure ends in ERR_SHM_CORRUPT, not a loop', () => {
  it('destroy: a self-referencing array, and an instance that holds itself, whose reference counts were lowered', async () => {
    const s = segment()
    const { shm, heap } = s
    const array: unknown[] = [1, 'x']
    array.push(array)
    const point = new Point(1, 2) as Point & { self?: unknown }
    point.self = point
    for (const value of [array, point]) {
      const view = shm.access((tx) => tx.put(value))
      const ref = refOfView(heap, view)
      // The put's own reference and the one inside: 2. As if one of them were never counted.
      expect(heap.u32[(ref + Rec.RefCount) >>> 2]).toBe(2)
      heap.u32[(ref + Rec.RefCount) >>> 2] = 1
      // Freeing it reaches it again through its own slot: it is no longer a live block.
      expectCorrupt(() => shm.access((tx) => tx.destroy(view)), ref, 'not a live block')
      await peerTakesTurn(s)
    }
    expect(shm.check().clean).toBe(true)
  })

  it('a hash chain that loops: lookups, inserts and shm.check() refuse it; walks in insertion order are unaffected', async () => {
    const s = segment()
    const { shm, heap } = s
    const value = new Map<unknown, unknown>([['a', 1], ['b', 2], ['c', 3], [4, 'four']])
    const view = shm.access((tx) => tx.putMessage(value)) as Map<unknown, unknown>
    const table = refOfView(heap, view)
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
    expect(shm.access((tx) => tx.takeMessage({ copy: true }))).toEqual(value)
  })

  it('a queue whose node chain loops and whose Count is 0x' + HUGE.toString(16) + ': draining stops at the first node seen twice', async () => {
    const s = segment()
    const { shm, heap } = s
    const q = shm.access((tx) => {
      for (let i = 0; i < 3; i++) tx.putMessage({ i }, { channel: 'loop' })
      return new Channels(heap).queue('loop', false)
    })
    const head = heap.u32[(q + Queue.Head) >>> 2]!
    const tail = heap.u32[(q + Queue.Tail) >>> 2]!
    overwrite(heap, tail + QNode.Next, head)
    overwrite(heap, q + Queue.Count, HUGE)
    expectCorrupt(() => shm.check(), head, 'twice')
    await peerTakesTurn(s)
    // An application drains while there are messages: each take frees its node, so
    // the loop back to the first node finds a freed block, however large Count is.
    let taken = 0
    expectCorrupt(
      () =>
        shm.access((tx) => {
          while (tx.hasMessages({ channel: 'loop' })) {
            tx.takeMessage({ channel: 'loop', copy: true })
            taken++
          }
        }),
      head,
    )
    expect(taken).toBe(2)
    await peerTakesTurn(s)
  })

  it('a queue node that links to itself', async () => {
    const s = segment()
    const { shm, heap } = s
    const q = shm.access((tx) => {
      tx.putMessage('first', { channel: 'self' })
      tx.putMessage('second', { channel: 'self' })
      return new Channels(heap).queue('self', false)
    })
    const head = heap.u32[(q + Queue.Head) >>> 2]!
    overwrite(heap, head + QNode.Next, head)
    expectCorrupt(() => shm.check(), head)
    await peerTakesTurn(s)
    let taken = 0
    expectCorrupt(() =>
      shm.access((tx) => {
        while (tx.hasMessages({ channel: 'self' })) {
          tx.takeMessage({ channel: 'self' })
          taken++
        }
      }),
    )
    expect(taken).toBe(1)
    await peerTakesTurn(s)
  })

  it('the channel directory with Count = 0x' + HUGE.toString(16) + ': looking a channel up refuses it', async () => {
    const s = segment()
    const { shm, heap } = s
    await peerTakesTurn(s) // the peer resolves "in" and "out" once; later turns use its cache
    const damage = [overwrite(heap, Header.ChannelRoot + ChannelDir.Count, HUGE)]
    expectCorrupt(() => shm.access((tx) => tx.messageCount({ channel: 'never-used' })), Header.ChannelRoot, `Count = ${HUGE}`)
    expectCorrupt(() => shm.check(), `${HUGE}`)
    await peerTakesTurn(s)
    undo(heap, damage)
    expect(shm.check().clean).toBe(true)
  })
})
