// The references processes hold through views, written down in the segment so that
// none is lost with its process: what a process that died held (or a handle whose
// worker thread ended: core/handles.ts) is released by the next process that registers
// or takes a turn over from a dead owner. Part of the
// segment layout (the directory and slot formats below; LAYOUT_VERSION 3).
//
// A process (one handle of the segment: pid + start stamp + handle token) holds a
// reference for each view that tx.put or tx.takeMessage returned and it has not
// destroyed, one for each channel handle it has open (shm.channel), the Frame record and
// references of a message whose send is waiting for room (core/messages.ts listPending),
// and one for each TypedArray, DataView or Buffer it read out of a container, until
// garbage collection takes that view (core/view_holds.ts). (Other views read out of
// containers hold none: they borrow their record and check its generation instead.)
//
// Directory (Header.Holders → block): +0 slot capacity, +4 slots in use, then slots
// of 16 bytes: +0 pid (0 = free), +4 identity (core/lock.ts identityOf), +8 list (a
// block of u32 record refs, 0 = none yet), +12 how many refs the list holds.
import { corrupt, ShmError } from './errors'
import type { Heap } from './heap'
import { Header } from './layout'
import { closeChannel } from './channel'
import { FIRST_REF_TAG, InternalKind, LAST_VALUE_TAG, Rec } from './records'
import { identityOf } from './lock'
import { handleRuns } from './handles'
import { releaseRecord } from './values/release'

const enum Dir {
  Capacity = 0,
  InUse = 4,
  Slots = 8,
}

const enum HolderSlot {
  Pid = 0,
  Identity = 4,
  List = 8,
  Count = 12,
  Size = 16,
}

/** Processes (handles) the directory has room for before it grows: a desktop app rarely has more on one segment. */
const FIRST_SLOTS = 32
const FIRST_LIST = 16

export class Holders {
  /** At create: an empty directory, so that the first process to hold a view allocates nothing lasting. */
  static format(heap: Heap): void {
    growDirectory(heap, 0)
  }

  private readonly heap: Heap
  private readonly identity: number
  /**
   * This handle's slot index, once registered in a turn (-1 before). An index, not an
   * offset: another process may move the directory when it grows it.
   */
  private index = -1
  /** References this handle's list holds, and how many it has room for (mirrors of its slot). */
  private count = 0
  private capacity = 0

  /** Byte offset of this handle's slot in the directory as it is now (0: not registered). */
  private get slot(): number {
    if (this.index < 0) return 0
    return this.heap.u32[Header.Holders >>> 2]! + Dir.Slots + this.index * HolderSlot.Size
  }
  /**
   * Where each held record sits in this handle's list: one index, or several when it
   * is held several times (an array only then: most records are held once).
   */
  private readonly places = new Map<number, number | number[]>()

  constructor(heap: Heap) {
    this.heap = heap
    this.identity = identityOf(heap.segment)
  }

  /**
   * Makes room to hold `more` references, so that hold() cannot fail: call it before
   * the operation whose result will be held (ERR_SHM_FULL then changes nothing else).
   * hold() grows the list ahead of need, so this rarely allocates. Not inside
   * heap.atomically: an undo must not free a list the slot points at.
   */
  reserve(more = 1): void {
    // Only this handle writes its slot (others only after it died), so what it wrote
    // last is what is there: count and capacity come from here, not from the segment.
    if (this.index >= 0 && this.count + more <= this.capacity) return
    this.growing = true
    try {
      const heap = this.heap
      const slot = this.ensureSlot()
      const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
      const size = Math.max(FIRST_LIST, (this.count + more) * 2) * 4
      const bigger = heap.allocator.alloc(size)
      if (this.count > 0) heap.u8.copyWithin(bigger, list, list + this.count * 4)
      // The new list is complete before the slot points at it; the old one goes last.
      heap.u32[(slot + HolderSlot.List) >>> 2] = bigger
      if (list !== 0) heap.allocator.free(list)
      this.capacity = heap.allocator.usableSize(bigger) >>> 2
    } finally {
      this.growing = false
    }
  }

  /**
   * True while reserve() allocates: an allocation that finds the heap full must not
   * change this handle's list then (core/view_holds.ts reclaim waits for the next one).
   */
  growing = false

  /** After a failed operation: a list reserve() made for nothing goes again. */
  trim(): void {
    if (this.index < 0 || this.count !== 0 || this.capacity === 0) return
    // Nothing held: the list goes, so that a handle holding nothing takes no space.
    const heap = this.heap
    const slot = this.slot
    const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
    heap.u32[(slot + HolderSlot.List) >>> 2] = 0
    heap.allocator.free(list)
    this.capacity = 0
  }

  /** Records that this handle holds one more reference to `ref` (already counted in the record). */
  hold(ref: number): void {
    const heap = this.heap
    this.reserve()
    const slot = this.slot
    const count = this.count
    const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
    heap.u32[(list + count * 4) >>> 2] = ref
    heap.u32[(slot + HolderSlot.Count) >>> 2] = this.count = count + 1
    // Grow now, after a success, so that the next operation's reserve() finds room and
    // a failing operation never leaves a grown list behind. No room: the next reserve
    // tries again (and fails that operation cleanly).
    try {
      this.reserve(2)
    } catch (err) {
      if (!(err instanceof ShmError) || err.code !== 'ERR_SHM_FULL') throw err
    }
    const at = this.places.get(ref)
    if (at === undefined) this.places.set(ref, count)
    else if (typeof at === 'number') this.places.set(ref, [at, count])
    else at.push(count)
  }

  /** Forgets one reference this handle held to `ref` (the caller drops it from the record); false if it held none. */
  unhold(ref: number): boolean {
    const at = this.places.get(ref)
    if (at === undefined || this.index < 0) return false
    let place: number
    if (typeof at === 'number') {
      place = at
      this.places.delete(ref)
    } else {
      place = at.pop()!
      if (at.length === 1) this.places.set(ref, at[0]!)
    }
    const heap = this.heap
    const slot = this.slot
    const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
    const last = this.count - 1
    if (place !== last) {
      // The last entry moves into the freed place.
      const moved = heap.u32[(list + last * 4) >>> 2]!
      heap.u32[(list + place * 4) >>> 2] = moved
      const movedAt = this.places.get(moved)!
      if (typeof movedAt === 'number') this.places.set(moved, place)
      else movedAt[movedAt.indexOf(last)] = place
    }
    heap.u32[(slot + HolderSlot.Count) >>> 2] = this.count = last
    if (last === 0) this.trim()
    return true
  }

  /** True once this handle holds (or held) references in the segment. */
  get registered(): boolean {
    return this.index >= 0
  }

  /** shm.close(), in a turn: every reference this handle holds is dropped. */
  releaseAll(): void {
    if (this.index < 0) return
    releaseHolderSlot(this.heap, this.slot)
    this.places.clear()
    this.index = -1
    this.count = 0
    this.capacity = 0
  }

  /**
   * Releases what dead processes held: run by a process registering (its first hold)
   * and after a turn was taken over from a dead owner. Returns how many slots it freed.
   */
  sweepDead(): number {
    const heap = this.heap
    let freed = 0
    for (const [i, slot] of occupiedSlots(heap)) {
      if (i === this.index) continue
      // Gone: its process, or its handle (closed, or its worker thread ended: core/handles.ts).
      if (handleRuns(heap.segment, heap.i32[(slot + HolderSlot.Pid) >>> 2]!, heap.u32[(slot + HolderSlot.Identity) >>> 2]!)) continue
      releaseHolderSlot(heap, slot)
      freed++
    }
    return freed
  }

  private ensureSlot(): number {
    if (this.index >= 0) return this.slot
    const heap = this.heap
    this.sweepDead()
    let dir = heap.u32[Header.Holders >>> 2]!
    if (dir === 0) dir = growDirectory(heap, 0)
    // (growDirectory allocates outside any undo journal, as reserve does.)
    let capacity = checkedCapacity(heap, dir)
    let free = -1
    for (let i = 0; i < capacity && free < 0; i++) if (heap.i32[(dir + Dir.Slots + i * HolderSlot.Size + HolderSlot.Pid) >>> 2] === 0) free = i
    if (free < 0) {
      free = capacity
      dir = growDirectory(heap, dir)
      capacity = checkedCapacity(heap, dir)
    }
    const slot = dir + Dir.Slots + free * HolderSlot.Size
    heap.u32[(slot + HolderSlot.Identity) >>> 2] = this.identity
    heap.u32[(slot + HolderSlot.List) >>> 2] = 0
    heap.u32[(slot + HolderSlot.Count) >>> 2] = 0
    heap.i32[(slot + HolderSlot.Pid) >>> 2] = process.pid
    heap.u32[(dir + Dir.InUse) >>> 2] = heap.u32[(dir + Dir.InUse) >>> 2]! + 1
    this.index = free
    return slot
  }
}

/** [index, byte offset] of each slot a process handle holds (pid not 0). */
function* occupiedSlots(heap: Heap): Generator<[number, number]> {
  const dir = heap.u32[Header.Holders >>> 2]!
  if (dir === 0) return
  const capacity = checkedCapacity(heap, dir)
  for (let i = 0; i < capacity; i++) {
    const slot = dir + Dir.Slots + i * HolderSlot.Size
    if (heap.i32[(slot + HolderSlot.Pid) >>> 2] !== 0) yield [i, slot]
  }
}

/** The directory's slot capacity, checked against its block. */
function checkedCapacity(heap: Heap, dir: number): number {
  const capacity = heap.u32[(dir + Dir.Capacity) >>> 2]!
  if (heap.allocator.blockSize(dir) < Dir.Slots + capacity * HolderSlot.Size) throw corrupt(`holder directory ${dir}: Capacity = ${capacity} does not fit its block`)
  return capacity
}

/** A directory with twice the slots (FIRST_SLOTS at first), the old one copied in and freed. */
function growDirectory(heap: Heap, old: number): number {
  const capacity = old === 0 ? 0 : checkedCapacity(heap, old)
  const next = Math.max(FIRST_SLOTS, capacity * 2)
  const size = Dir.Slots + next * HolderSlot.Size
  const dir = heap.allocator.alloc(size)
  heap.u8.fill(0, dir, dir + size)
  if (old !== 0) heap.u8.copyWithin(dir, old, old + Dir.Slots + capacity * HolderSlot.Size)
  heap.u32[(dir + Dir.Capacity) >>> 2] = next
  heap.u32[Header.Holders >>> 2] = dir
  if (old !== 0) heap.allocator.free(old)
  return dir
}

/** Drops every reference a slot lists, then frees the list and the slot. */
function releaseHolderSlot(heap: Heap, slot: number): void {
  const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
  const count = heap.u32[(slot + HolderSlot.Count) >>> 2]!
  if (list !== 0 && heap.allocator.blockSize(list) < count * 4) throw corrupt(`holder list ${list}: Count = ${count} does not fit its block`)
  // The slot is emptied first: a process killed half-way leaks the rest, never drops a reference twice.
  heap.u32[(slot + HolderSlot.Count) >>> 2] = 0
  heap.u32[(slot + HolderSlot.List) >>> 2] = 0
  heap.i32[(slot + HolderSlot.Pid) >>> 2] = 0
  const dir = heap.u32[Header.Holders >>> 2]!
  heap.u32[(dir + Dir.InUse) >>> 2] = Math.max(0, heap.u32[(dir + Dir.InUse) >>> 2]! - 1)
  for (let i = 0; i < count; i++) {
    const ref = heap.u32[(list + i * 4) >>> 2]!
    const kind = heap.kindOf(ref)
    if (kind === InternalKind.Channel) closeChannel(heap, ref)
    // The frame of a message its dead sender was waiting to send (its references are listed apart).
    else if (kind === InternalKind.Frame) heap.freeRecord(ref)
    else releaseRecord(heap, ref, kind)
  }
  if (list !== 0) heap.allocator.free(list)
}

/**
 * shm.check(): the directory and every list fit their blocks, and every held
 * reference is a live record with a non-zero count. Throws ERR_SHM_CORRUPT.
 */
export function checkHolders(heap: Heap): number {
  let held = 0
  for (const [i, slot] of occupiedSlots(heap)) {
    const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
    const count = heap.u32[(slot + HolderSlot.Count) >>> 2]!
    if (count > 0 && heap.allocator.blockSize(list) < count * 4) throw corrupt(`holder slot ${i}: list ${list} does not hold its Count = ${count} references`)
    for (let j = 0; j < count; j++) {
      const ref = heap.u32[(list + j * 4) >>> 2]!
      const kind = heap.kindOf(ref)
      if (heap.allocator.blockSize(ref) < Rec.Body || ((kind < FIRST_REF_TAG || kind > LAST_VALUE_TAG) && kind !== InternalKind.Channel && kind !== InternalKind.Frame) || heap.u32[(ref + Rec.RefCount) >>> 2] === 0) {
        throw corrupt(`holder slot ${i} (pid ${heap.i32[(slot + HolderSlot.Pid) >>> 2]}) holds ${ref}, which is not a live record`)
      }
    }
    held += count
  }
  return held
}
