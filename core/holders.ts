// The references processes hold through views, written down in the segment so that
// none is lost with its process: what a process that died held (or a handle whose
// worker thread ended: core/handles.ts) is released by the next process that registers
// or takes a turn over from a dead owner. Part of the
// segment layout (the directory, slot and list formats below; LAYOUT_VERSION 7).
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
// of 12 bytes: +0 pid (0 = free), +4 identity (core/lock.ts identityOf), +8 list (0 =
// none yet). List: +0 how many refs it holds, then the u32 record refs.
//
// A handle changes its own list outside turns too (holdWithoutTurn, unholdWithoutTurn:
// a message received or released by reference), within the room a turn reserved. That
// is why the count lives in the list and not in the slot: the list block is this
// handle's alone (only it replaces it, in its turns, and others free it only once the
// handle is gone), while the directory holding the slot may be moved and freed by any
// process that grows it in its turn. Others read a live handle's list only in their
// turns (shm.check), and every entry is written before the count that covers it.
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
  Size = 12,
}

/** A holder list: its count, then its refs. */
const enum HolderList {
  Count = 0,
  Refs = 4,
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
  /**
   * This handle's list block (0: none), how many references it holds and how many it
   * has room for: mirrors of the segment, which only this handle writes while it runs.
   * The turn-free paths read them from here, never the directory (another process
   * may move it meanwhile).
   */
  private list = 0
  private count = 0
  private capacity = 0

  /** Byte offset of this handle's slot in the directory as it is now (0: not registered). In a turn. */
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
   * hold() grows the list ahead of need, so this rarely allocates. In a turn, not
   * inside heap.atomically: an undo must not free a list the slot points at.
   */
  reserve(more = 1): void {
    if (this.index >= 0 && this.count + more <= this.capacity) return
    this.growing = true
    try {
      const heap = this.heap
      const slot = this.ensureSlot()
      const list = this.list
      const size = HolderList.Refs + Math.max(FIRST_LIST, (this.count + more) * 2) * 4
      const bigger = heap.allocator.alloc(size)
      heap.u8.copyWithin(bigger + HolderList.Refs, list + HolderList.Refs, list + HolderList.Refs + this.count * 4)
      heap.u32[(bigger + HolderList.Count) >>> 2] = this.count
      // The new list is complete before the slot points at it; the old one goes last.
      heap.u32[(slot + HolderSlot.List) >>> 2] = this.list = bigger
      if (list !== 0) heap.allocator.free(list)
      this.capacity = (heap.allocator.usableSize(bigger) - HolderList.Refs) >>> 2
    } finally {
      this.growing = false
    }
  }

  /**
   * True while reserve() allocates: an allocation that finds the heap full must not
   * change this handle's list then (core/view_holds.ts reclaim waits for the next one).
   */
  growing = false

  /** In a turn, after a failed operation or once nothing is held: the list goes, so that a handle holding nothing takes no space. */
  trim(): void {
    if (this.index < 0 || this.count !== 0 || this.list === 0) return
    const list = this.list
    this.heap.u32[(this.slot + HolderSlot.List) >>> 2] = this.list = 0
    this.heap.allocator.free(list)
    this.capacity = 0
  }

  /** In a turn: records that this handle holds one more reference to `ref` (already counted in the record). */
  hold(ref: number): void {
    this.reserve()
    this.holdWithoutTurn(ref)
    this.reserveAhead()
  }

  /**
   * In a turn, after a success: grows the list now, so that the next operation's
   * reserve() finds room (and holdWithoutTurn can go on) and a failing operation never
   * leaves a grown list behind. No room: the next reserve tries again (and fails that
   * operation cleanly).
   */
  reserveAhead(): void {
    try {
      this.reserve(2)
    } catch (err) {
      if (!(err instanceof ShmError) || err.code !== 'ERR_SHM_FULL') throw err
    }
  }

  /** True when `more` references can be held without a turn (holdWithoutTurn): the list has room for them. */
  hasRoom(more: number): boolean {
    return this.index >= 0 && this.count + more <= this.capacity
  }

  /**
   * hold() in the room the list has (hasRoom first), in a turn or not: only this
   * handle's list block is written, the entry before the count that covers it.
   */
  holdWithoutTurn(ref: number): void {
    const heap = this.heap
    const count = this.count
    const list = this.list
    heap.u32[(list + HolderList.Refs + count * 4) >>> 2] = ref
    Atomics.store(heap.i32, (list + HolderList.Count) >>> 2, (this.count = count + 1))
    const at = this.places.get(ref)
    if (at === undefined) this.places.set(ref, count)
    else if (typeof at === 'number') this.places.set(ref, [at, count])
    else at.push(count)
  }

  /** In a turn: forgets one reference this handle held to `ref` (the caller drops it from the record); false if it held none. */
  unhold(ref: number): boolean {
    if (!this.unholdWithoutTurn(ref)) return false
    if (this.count === 0) this.trim()
    return true
  }

  /** unhold() in a turn or not (only this handle's list block is written); an emptied list stays until a turn's unhold or trim. */
  unholdWithoutTurn(ref: number): boolean {
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
    const refs = this.list + HolderList.Refs
    const last = this.count - 1
    if (place !== last) {
      // The last entry moves into the freed place (a reader in between sees it twice: harmless, see checkHolders).
      const moved = heap.u32[(refs + last * 4) >>> 2]!
      heap.u32[(refs + place * 4) >>> 2] = moved
      const movedAt = this.places.get(moved)!
      if (typeof movedAt === 'number') this.places.set(moved, place)
      else movedAt[movedAt.indexOf(last)] = place
    }
    Atomics.store(heap.i32, (this.list + HolderList.Count) >>> 2, (this.count = last))
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
    this.list = 0
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
  const count = list === 0 ? 0 : listCount(heap, list, 'holder list')
  // The slot is emptied first: a process killed half-way leaks the rest, never drops a reference twice.
  heap.u32[(slot + HolderSlot.List) >>> 2] = 0
  heap.i32[(slot + HolderSlot.Pid) >>> 2] = 0
  const dir = heap.u32[Header.Holders >>> 2]!
  heap.u32[(dir + Dir.InUse) >>> 2] = Math.max(0, heap.u32[(dir + Dir.InUse) >>> 2]! - 1)
  for (let i = 0; i < count; i++) {
    const ref = heap.u32[(list + HolderList.Refs + i * 4) >>> 2]!
    const kind = heap.kindOf(ref)
    if (kind === InternalKind.Channel) closeChannel(heap, ref)
    // The frame of a message its dead sender was waiting to send (its references are listed apart).
    else if (kind === InternalKind.Frame) heap.freeRecord(ref)
    else releaseRecord(heap, ref, kind)
  }
  if (list !== 0) heap.allocator.free(list)
}

/** How many refs holder list `list` holds, checked against its block (ERR_SHM_CORRUPT). */
function listCount(heap: Heap, list: number, what: string): number {
  if (heap.allocator.blockSize(list) < HolderList.Refs) throw corrupt(`${what} ${list} is not a live block`)
  const count = Atomics.load(heap.i32, (list + HolderList.Count) >>> 2) >>> 0
  if (heap.allocator.blockSize(list) < HolderList.Refs + count * 4) throw corrupt(`${what} ${list}: Count = ${count} does not fit its block`)
  return count
}

/**
 * shm.check(): the directory and every list fit their blocks, and every held
 * reference is a live record with a non-zero count. Throws ERR_SHM_CORRUPT.
 */
export function checkHolders(heap: Heap): number {
  let held = 0
  for (const [i, slot] of occupiedSlots(heap)) {
    // A live handle may add to (or take from) its list meanwhile, outside turns: each entry
    // below its count is one it holds (an entry being moved may be seen twice).
    const list = heap.u32[(slot + HolderSlot.List) >>> 2]!
    const count = list === 0 ? 0 : listCount(heap, list, `holder slot ${i}: list`)
    for (let j = 0; j < count; j++) {
      const ref = heap.u32[(list + HolderList.Refs + j * 4) >>> 2]!
      const kind = heap.kindOf(ref)
      if (heap.allocator.blockSize(ref) < Rec.Body || ((kind < FIRST_REF_TAG || kind > LAST_VALUE_TAG) && kind !== InternalKind.Channel && kind !== InternalKind.Frame) || heap.u32[(ref + Rec.RefCount) >>> 2] === 0) {
        throw corrupt(`holder slot ${i} (pid ${heap.i32[(slot + HolderSlot.Pid) >>> 2]}) holds ${ref}, which is not a live record`)
      }
    }
    held += count
  }
  return held
}
