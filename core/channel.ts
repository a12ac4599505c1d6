// Message channels: one FIFO queue per channel name. Queue records are created
// once and never move, because waiting processes sleep on their Seq word; the
// directory that lists them may grow. Nodes are freed on take; the message value
// itself passes to the taker (it frees it with tx.destroy).
import { ShmError } from './errors'
import { corrupt } from './errors'
import type { Heap } from './heap'
import { Header } from './layout'
import { EncodeContext, encodeValue } from './values/encode'
import { readSlot } from './values/decode'
import { releaseRecord } from './values/release'
import { readStringRecord, writeStringRecord } from './values/strings'
import { hashKey } from './values/hash'
import { checkFits } from './values/bounds'
import { Bin, BinaryKind, ChannelDir, FIRST_REF_TAG, InternalKind, QNode, Queue, Rec, Slot, Tag } from './records'

export const DEFAULT_CHANNEL = ''

/** The u32 index of a word of the channel directory's root in the header. */
export const dirWord = (field: ChannelDir): number => (Header.ChannelRoot + field) >>> 2

export class Channels {
  private readonly heap: Heap
  /** Queue records never move, so a name resolved once stays valid. */
  private readonly cache = new Map<string, number>()

  constructor(heap: Heap) {
    this.heap = heap
  }

  /** Called once by the creator, inside its first turn. */
  static format(heap: Heap): void {
    heap.u32[dirWord(ChannelDir.Queues)] = 0
    heap.u32[dirWord(ChannelDir.Count)] = 0
    heap.u32[dirWord(ChannelDir.Capacity)] = 0
    new Channels(heap).queue(DEFAULT_CHANNEL, true)
  }

  /**
   * The queue record for `name` if this process has seen it before. Queues never
   * move and are never freed, so this needs no turn.
   */
  known(name: string): number | undefined {
    return this.cache.get(name)
  }

  /** The queue record for `name`; 0 if it does not exist and `create` is false. */
  queue(name: string, create: boolean): number {
    const cached = this.cache.get(name)
    if (cached !== undefined) return cached
    const heap = this.heap
    const hash = hashKey(name, () => 'channel')
    const count = heap.u32[dirWord(ChannelDir.Count)]!
    const dir = heap.u32[dirWord(ChannelDir.Queues)]!
    // The walk below is bounded by the directory block, not by what Count says.
    if (count > 0) checkFits(heap, dir, 0, count, 4, 'channel directory', Header.ChannelRoot, 'Count')
    for (let i = 0; i < count; i++) {
      const q = heap.record(heap.u32[(dir >>> 2) + i]!, InternalKind.Queue)
      heap.range(q, Queue.Size)
      if (heap.u32[(q + Queue.NameHash) >>> 2] === hash && readStringRecord(heap, heap.u32[(q + Queue.Name) >>> 2]!) === name) {
        this.cache.set(name, q)
        return q
      }
    }
    if (!create) return 0
    const q = heap.atomically(() => this.createQueue(name, hash, dir, count))
    this.cache.set(name, q)
    return q
  }

  private createQueue(name: string, hash: number, dir: number, count: number): number {
    const heap = this.heap
    const capacity = heap.u32[dirWord(ChannelDir.Capacity)]!
    let newDir = dir
    if (count === capacity) {
      newDir = heap.alloc(Math.max(8, capacity * 2) * 4)
      if (count > 0) heap.u8.copyWithin(newDir, dir, dir + count * 4)
    }
    const q = heap.allocRecord(InternalKind.Queue, Queue.Size)
    heap.u8.fill(0, q + Rec.Body, q + Queue.Size)
    heap.u32[(q + Queue.Name) >>> 2] = writeStringRecord(heap, name)
    heap.u32[(q + Queue.NameHash) >>> 2] = hash
    // Commit. The new directory is linked before the old one is freed, so a process
    // killed in between leaks the old block instead of leaving a dangling reference.
    if (newDir !== dir) {
      heap.u32[dirWord(ChannelDir.Queues)] = newDir
      heap.u32[dirWord(ChannelDir.Capacity)] = heap.allocator.usableSize(newDir) >>> 2
      if (dir !== 0) heap.free(dir)
    }
    heap.u32[(newDir >>> 2) + count] = q
    heap.u32[dirWord(ChannelDir.Count)] = count + 1
    return q
  }

  /**
   * Appends a message to channel `name`, making the channel if it does not exist yet —
   * only once the value is stored, so a put that fails (ERR_UNSUPPORTED_TYPE,
   * ERR_SHM_FULL) leaves no empty channel behind. Returns the node's value slot (the
   * caller maps it back) and the queue.
   */
  put(name: string, value: unknown): { at: number; q: number } {
    const heap = this.heap
    return heap.atomically(() => {
      const ctx = new EncodeContext(heap)
      encodeValue(ctx, value)
      const node = heap.alloc(QNode.Size)
      heap.u32[(node + QNode.Next) >>> 2] = 0
      ctx.store(node + QNode.Value)
      // Nothing below can fail for a new (empty) queue: its creation is the last step
      // that allocates, and linking into it checks no tail.
      const q = this.queue(name, true)
      const tail = heap.u32[(q + Queue.Tail) >>> 2]!
      // Checked before the commit: a corrupt tail must not make us write elsewhere.
      if (tail !== 0) heap.block(tail, QNode.Size, 'channel tail node')
      if (tail === 0) heap.u32[(q + Queue.Head) >>> 2] = node
      else heap.u32[(tail + QNode.Next) >>> 2] = node
      heap.u32[(q + Queue.Tail) >>> 2] = node
      heap.u32[(q + Queue.Count) >>> 2]! += 1
      Atomics.add(heap.i32, (q + Queue.Seq) >>> 2, 1)
      return { at: node + QNode.Value, q }
    })
  }

  count(q: number): number {
    return this.heap.u32[(q + Queue.Count) >>> 2]!
  }

  /**
   * Removes the oldest message of queue `q` (0: a channel never used, so empty).
   * `copy`: return it as a plain copy and free its records.
   */
  take(q: number, channel: string, copy = false): unknown {
    const heap = this.heap
    const node = q === 0 ? 0 : heap.u32[(q + Queue.Head) >>> 2]!
    if (node === 0) {
      throw new ShmError('ERR_NO_MESSAGES', `channel ${channel === DEFAULT_CHANNEL ? '(default)' : `"${channel}"`} has no messages: check tx.hasMessages() first, or await shm.waitForMessage()`)
    }
    // Everything is validated and read before anything is written, so a corrupt
    // queue throws ERR_SHM_CORRUPT and changes nothing.
    heap.block(node, QNode.Size, 'channel head node')
    const next = heap.u32[(node + QNode.Next) >>> 2]!
    if (next !== 0) heap.block(next, QNode.Size, 'channel node')
    const count = heap.u32[(q + Queue.Count) >>> 2]!
    if (count === 0) throw corrupt(`channel queue ${q} has a head node but a message count of 0`)
    const at = node + QNode.Value
    const owned = !copy && isMappedSlot(heap, at)
    const value = readSlot(heap, at, owned)
    const tag = heap.i32[at >>> 2]!
    const ref = heap.u32[(at + Slot.Payload) >>> 2]!
    // Unlink first, release last: a process killed in between leaks the value's
    // records rather than leaving a queued message that points at freed memory.
    heap.u32[(q + Queue.Head) >>> 2] = next
    if (next === 0) heap.u32[(q + Queue.Tail) >>> 2] = 0
    heap.u32[(q + Queue.Count) >>> 2] = count - 1
    heap.free(node)
    // Values copied out (no mapped form, or asked for a copy): their records have no other owner.
    if (!owned && tag >= FIRST_REF_TAG) releaseRecord(heap, ref, tag)
    return value
  }

  /** Offset of the word waiters sleep on for this queue. */
  static seqOffset(q: number): number {
    return q + Queue.Seq
  }

  static countOffset(q: number): number {
    return q + Queue.Count
  }

  static waitersOffset(q: number): number {
    return q + Queue.Waiters
  }
}

/**
 * Whether the value in a slot comes back as a live view whose record the reader
 * then owns (containers, TypedArrays, instances, structs) rather than as a copy.
 */
export function isMappedSlot(heap: Heap, at: number): boolean {
  const tag = heap.i32[at >>> 2]! as Tag
  if (tag === Tag.Binary) {
    // An out-of-range reference counts as mapped here; decoding it then reports the corruption.
    const ref = heap.u32[(at + Slot.Payload) >>> 2]!
    return ref + Bin.Data > heap.size || heap.u8[ref + Bin.Kind] !== BinaryKind.ArrayBuffer
  }
  return tag === Tag.Array || tag === Tag.Object || tag === Tag.Map || tag === Tag.Set || tag === Tag.Instance || tag === Tag.Struct
}
