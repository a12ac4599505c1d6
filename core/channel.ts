// The channel directory: names to channel records (records.ts Chan), and their
// lifetime. A channel is made by the first handle that opens its name and counts
// its open handles in its RefCount (each handle is listed with the process's holders,
// so a killed process's handles are closed for it). It is freed, and its name
// forgotten, when its last handle closes while it is empty; a channel closed with
// messages in it stays until a later handle drains it. So short-lived channels (a
// reply channel per request) leave nothing behind, and lookups stay one hash probe.
//
// Every function here runs in a turn. Sending and receiving do not (core/ring.ts):
// they rely on the handle they hold to keep the record alive.
import { corrupt, ShmError } from './errors'
import type { Heap } from './heap'
import { Header } from './layout'
import { Chan, ChannelDir, InternalKind, Rec, TOMBSTONE } from './records'
import { Ring } from './ring'
import { hashKey } from './values/hash'
import { readStringRecord, writeStringRecord } from './values/strings'

export const DEFAULT_CHANNEL = ''

/** Slots a channel's ring has unless `capacity` says otherwise. */
export const DEFAULT_CAPACITY = 64
export const MAX_CAPACITY = 1 << 16
/**
 * Bytes per ring slot: 24 of bookkeeping and 104 of inline frame, enough for a small
 * object or a short string. Larger frames go to a Frame record (a turn at each end).
 */
export const SLOT_BYTES = 128

const FIRST_TABLE = 16

/** The u32 index of a word of the channel directory's root in the header. */
export const dirWord = (field: ChannelDir): number => (Header.ChannelRoot + field) >>> 2

export function channelLabel(name: string): string {
  return name === DEFAULT_CHANNEL ? 'the default channel' : `channel ${JSON.stringify(name)}`
}

/** Called once by the creator, inside its first turn. */
export function formatChannels(heap: Heap): void {
  for (const field of [ChannelDir.Table, ChannelDir.Capacity, ChannelDir.Count, ChannelDir.Used]) heap.u32[dirWord(field)] = 0
}

/** The channel named `name`, or 0. */
export function findChannel(heap: Heap, name: string): number {
  const table = heap.u32[dirWord(ChannelDir.Table)]!
  if (table === 0) return 0
  const capacity = checkedTable(heap, table)
  const hash = nameHash(name)
  const mask = capacity - 1
  for (let i = hash & mask, n = 0; n < capacity; i = (i + 1) & mask, n++) {
    const ref = heap.u32[(table >>> 2) + i]!
    if (ref === 0) return 0
    if (ref === TOMBSTONE) continue
    checkChannel(heap, ref)
    if (heap.u32[(ref + Chan.NameHash) >>> 2] === hash && readStringRecord(heap, heap.u32[(ref + Chan.Name) >>> 2]!) === name) return ref
  }
  return 0
}

/**
 * One more handle on channel `name`, made now (with `capacity` slots) if it does not
 * exist. The caller lists the reference with its holders.
 */
export function openChannel(heap: Heap, name: string, capacity: number): number {
  const found = findChannel(heap, name)
  if (found !== 0) {
    heap.retain(found)
    return found
  }
  return heap.atomically(() => {
    const size = Chan.Slots + capacity * SLOT_BYTES
    const ref = heap.allocRecord(InternalKind.Channel, size)
    heap.u8.fill(0, ref + Rec.Body, ref + Chan.Slots)
    heap.u32[(ref + Chan.Name) >>> 2] = writeStringRecord(heap, name)
    heap.u32[(ref + Chan.NameHash) >>> 2] = nameHash(name)
    Ring.format(heap.i32, ref, capacity, SLOT_BYTES)
    // Last, as it commits a grown directory (its undo would free a table in use): a
    // full segment up to here leaves no channel behind, and nothing after it fails.
    reserveSlot(heap)
    insert(heap, ref)
    return ref
  })
}

/** Drops one handle on channel `ref`; frees it when that was the last and it is empty. */
export function closeChannel(heap: Heap, ref: number): void {
  checkChannel(heap, ref)
  if (heap.unretain(ref) > 0) return
  const ring = new Ring(heap.i32, ref)
  if (ring.size() > 0) return
  remove(heap, ref)
  heap.freeRecord(heap.u32[(ref + Chan.Name) >>> 2]!)
  heap.freeRecord(ref)
}

/** The channel's capacity and name, checked. */
export function checkChannel(heap: Heap, ref: number): number {
  heap.record(ref, InternalKind.Channel)
  const capacity = heap.u32[(ref + Chan.Capacity) >>> 2]!
  if (capacity < 2 || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0 || heap.u32[(ref + Chan.SlotBytes) >>> 2] !== SLOT_BYTES) {
    throw corrupt(`channel ${ref} has capacity ${capacity} and ${heap.u32[(ref + Chan.SlotBytes) >>> 2]}-byte slots`)
  }
  heap.block(ref, Chan.Slots + capacity * SLOT_BYTES, 'channel')
  return capacity
}

export function channelName(heap: Heap, ref: number): string {
  return readStringRecord(heap, heap.u32[(ref + Chan.Name) >>> 2]!)
}

/** Every live channel of the directory (for check and the CLI). */
export function listChannels(heap: Heap): number[] {
  const table = heap.u32[dirWord(ChannelDir.Table)]!
  if (table === 0) return []
  const capacity = checkedTable(heap, table)
  const out: number[] = []
  for (let i = 0; i < capacity; i++) {
    const ref = heap.u32[(table >>> 2) + i]!
    if (ref !== 0 && ref !== TOMBSTONE) out.push(ref)
  }
  return out
}

export function checkCapacity(capacity: unknown, call: string): number {
  if (capacity === undefined) return DEFAULT_CAPACITY
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 2 || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: capacity must be a power of two from 2 to ${MAX_CAPACITY} (messages the ring holds), got ${String(capacity)}`)
  }
  return capacity
}

function nameHash(name: string): number {
  return hashKey(name, () => 'channel')
}

function checkedTable(heap: Heap, table: number): number {
  const capacity = heap.u32[dirWord(ChannelDir.Capacity)]!
  if (capacity < FIRST_TABLE || (capacity & (capacity - 1)) !== 0) throw corrupt(`the channel directory has capacity ${capacity}`)
  heap.block(table, capacity * 4, 'channel directory')
  return capacity
}

/** Makes sure one more channel fits the directory (at most half full, tombstones counted). */
function reserveSlot(heap: Heap): void {
  const table = heap.u32[dirWord(ChannelDir.Table)]!
  const capacity = table === 0 ? 0 : checkedTable(heap, table)
  const used = heap.u32[dirWord(ChannelDir.Used)]!
  if ((used + 1) * 2 <= capacity) return
  const count = heap.u32[dirWord(ChannelDir.Count)]!
  let next = FIRST_TABLE
  while (next < (count + 1) * 4) next *= 2
  const fresh = heap.alloc(next * 4)
  heap.u8.fill(0, fresh, fresh + next * 4)
  for (let i = 0; i < capacity; i++) {
    const ref = heap.u32[(table >>> 2) + i]!
    if (ref === 0 || ref === TOMBSTONE) continue
    checkChannel(heap, ref) // before its name hash is read
    place(heap, fresh, next, ref)
  }
  // Commit: the new table is whole before the header names it.
  heap.u32[dirWord(ChannelDir.Table)] = fresh
  heap.u32[dirWord(ChannelDir.Capacity)] = next
  heap.u32[dirWord(ChannelDir.Used)] = count
  if (table !== 0) heap.free(table)
}

function place(heap: Heap, table: number, capacity: number, ref: number): void {
  const mask = capacity - 1
  let i = heap.u32[(ref + Chan.NameHash) >>> 2]! & mask
  // Bounded: Used keeps the table at most half full, unless a stray write filled it.
  for (let n = 0; heap.u32[(table >>> 2) + i] !== 0; n++) {
    if (n === capacity) throw corrupt(`the channel directory has no empty entry in its ${capacity} (it says ${heap.u32[dirWord(ChannelDir.Used)]} are used)`)
    i = (i + 1) & mask
  }
  heap.u32[(table >>> 2) + i] = ref
}

function insert(heap: Heap, ref: number): void {
  const table = heap.u32[dirWord(ChannelDir.Table)]!
  place(heap, table, heap.u32[dirWord(ChannelDir.Capacity)]!, ref)
  heap.u32[dirWord(ChannelDir.Count)]! += 1
  heap.u32[dirWord(ChannelDir.Used)]! += 1
}

function remove(heap: Heap, ref: number): void {
  const table = heap.u32[dirWord(ChannelDir.Table)]!
  const capacity = checkedTable(heap, table)
  const mask = capacity - 1
  for (let i = heap.u32[(ref + Chan.NameHash) >>> 2]! & mask, n = 0; n < capacity; i = (i + 1) & mask, n++) {
    const at = (table >>> 2) + i
    if (heap.u32[at] === 0) break
    if (heap.u32[at] !== ref) continue
    // A tombstone keeps later entries of the probe chain reachable; none is needed before an empty entry.
    if (heap.u32[(table >>> 2) + ((i + 1) & mask)] === 0) {
      heap.u32[at] = 0
      heap.u32[dirWord(ChannelDir.Used)]! -= 1
    } else heap.u32[at] = TOMBSTONE
    heap.u32[dirWord(ChannelDir.Count)]! -= 1
    return
  }
  throw corrupt(`channel ${ref} is not in the channel directory`)
}
