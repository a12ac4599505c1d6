// Operations on the insertion-ordered hash table behind shared Map, Set and
// plain objects (layout in records.ts). Every mutation allocates first and links
// last, inside heap.atomically(), so ERR_SHM_FULL leaves the table as it was.
import { corrupt, ShmError } from '../errors'
import type { Heap } from '../heap'
import { EncodeContext, bucketCountFor, encodeValue, writeInlineValue } from './encode'
import { hashKey, lookupHash, sameKey } from './hash'
import { readKey, readSlot } from './decode'
import { releaseSlot, replaceSlot } from './release'
import { checkFits, checkedTableUsed } from './bounds'
import { Entry, ENTRY_SIZE, EntryFlag, FIRST_REF_TAG, Hash, RecFlag, Slot, Str, StrEncoding, Tag } from '../records'

const u32 = (heap: Heap, at: number): number => heap.u32[at >>> 2]!
const keyPath = (): string => 'key'

export function tableCount(heap: Heap, table: number): number {
  return u32(heap, table + Hash.Count)
}

/** The entry holding `key`, or 0. */
export function findEntry(heap: Heap, table: number, key: unknown, hash: number): number {
  const entries = u32(heap, table + Hash.Entries)
  const used = checkedTableUsed(heap, table)
  const buckets = u32(heap, table + Hash.Buckets)
  const bucketCount = u32(heap, table + Hash.BucketCount)
  let index = u32(heap, buckets + (hash & (bucketCount - 1)) * 4)
  // A chain visits each entry at most once: a longer walk is a cycle.
  let guard = used
  while (index !== 0) {
    if (!(index <= used) || guard-- <= 0) throw corrupt(`table record ${table}: the chain of bucket ${hash & (bucketCount - 1)} ${index > used ? `links to entry ${index} of ${used}` : `is longer than its ${used} entries (a cycle)`}; run shm.check()`)
    const e = entries + (index - 1) * ENTRY_SIZE
    if (u32(heap, e + Entry.HashCode) === hash && (u32(heap, e + Entry.Flags) & EntryFlag.Deleted) === 0 && keyEquals(heap, e + Entry.Key, key)) {
      return e
    }
    index = u32(heap, e + Entry.Next)
  }
  return 0
}

/** Compares a stored key with `key`; ASCII string keys without decoding them. */
function keyEquals(heap: Heap, at: number, key: unknown): boolean {
  if (typeof key === 'string' && heap.i32[at >>> 2] === Tag.String) {
    const ref = heap.u32[(at + Slot.Payload) >>> 2]!
    if (heap.u8[ref + Str.Encoding] === StrEncoding.Utf8 && heap.u32[(ref + Str.ByteLength) >>> 2] === key.length) {
      const u8 = heap.u8
      const data = ref + Str.Data
      let i = 0
      while (i < key.length && u8[data + i] === key.charCodeAt(i)) i++
      if (i === key.length) return true
      // A non-ASCII byte may still spell the same string: decode to be sure.
      if (key.charCodeAt(i) < 0x80 && u8[data + i]! < 0x80) return false
    }
  }
  return sameKey(readKey(heap, at), key)
}

export function assertWritable(heap: Heap, table: number, what: string): void {
  if ((heap.flagsOf(table) & RecFlag.Frozen) !== 0) {
    throw new ShmError('ERR_SHM_READONLY', `this shared ${what} was stored frozen (read-only); put a non-frozen copy to change it`)
  }
}

/**
 * The entry holding `key`, or 0: one lookup where has-then-get would take two. A value
 * that cannot be a key (a plain object, an unfrozen array, a view) is in no table: 0.
 */
export function tableEntry(heap: Heap, table: number, key: unknown): number {
  const hash = lookupHash(key)
  return hash < 0 ? 0 : findEntry(heap, table, key, hash)
}

/** The value of an entry tableEntry found. */
export function entryValue(heap: Heap, entry: number, mapped: boolean): unknown {
  return readSlot(heap, entry + Entry.Value, mapped)
}

export function tableGet(heap: Heap, table: number, key: unknown, mapped: boolean): unknown {
  const e = tableEntry(heap, table, key)
  return e === 0 ? undefined : entryValue(heap, e, mapped)
}

export function tableHas(heap: Heap, table: number, key: unknown): boolean {
  return tableEntry(heap, table, key) !== 0
}

/** Sets key → value (sets store only the key). */
export function tableSet(heap: Heap, table: number, key: unknown, value: unknown, kind: Tag): void {
  const hash = hashKey(key, keyPath)
  const found = findEntry(heap, table, key, hash)
  if (found !== 0) {
    // Replacing a number with a number (the common update) needs no allocation and no undo.
    if (kind === Tag.Set) return
    const at = found + Entry.Value
    if (heap.i32[at >>> 2]! < FIRST_REF_TAG && writeInlineValue(heap, at, value)) return
  }
  heap.atomically(() => {
    const existing = findEntry(heap, table, key, hash)
    if (existing !== 0) {
      const ctx = new EncodeContext(heap)
      encodeValue(ctx, value)
      replaceSlot(heap, existing + Entry.Value, (slot) => ctx.store(slot))
      return
    }
    const count = u32(heap, table + Hash.Count)
    const used = u32(heap, table + Hash.Used)
    const capacity = u32(heap, table + Hash.Capacity)
    let entries = u32(heap, table + Hash.Entries)
    let buckets = u32(heap, table + Hash.Buckets)
    let bucketCount = u32(heap, table + Hash.BucketCount)
    let index = used
    const grow = used === capacity
    // Where the new entry and its bucket word go must lie in their blocks.
    checkFits(heap, buckets, 0, bucketCount, 4, 'table', table, 'BucketCount')
    if (!grow) checkFits(heap, entries, 0, used + 1, ENTRY_SIZE, 'table', table, 'Capacity')
    if (grow) {
      // Compact live entries into a bigger block; the old blocks go at commit.
      const newCapacity = Math.max(4, (count + 1) * 2)
      const newEntries = heap.alloc(newCapacity * ENTRY_SIZE)
      const newBucketCount = bucketCountFor(newCapacity)
      const newBuckets = heap.allocZeroed(newBucketCount * 4)
      let j = 0
      for (let i = 0; i < used; i++) {
        const from = entries + i * ENTRY_SIZE
        if ((u32(heap, from + Entry.Flags) & EntryFlag.Deleted) !== 0) continue
        const to = newEntries + j * ENTRY_SIZE
        heap.u8.copyWithin(to, from, from + ENTRY_SIZE)
        const b = newBuckets + (u32(heap, to + Entry.HashCode) & (newBucketCount - 1)) * 4
        heap.u32[(to + Entry.Next) >>> 2] = u32(heap, b)
        heap.u32[b >>> 2] = ++j
      }
      entries = newEntries
      buckets = newBuckets
      bucketCount = newBucketCount
      index = j
    }
    const e = entries + index * ENTRY_SIZE
    const ctx = new EncodeContext(heap)
    ctx.encodeKeyInto(e + Entry.Key, key, '<key>')
    ctx.encodeInto(e + Entry.Value, kind === Tag.Set ? undefined : value, String(key))
    // Commit: nothing below allocates, so nothing below can fail for lack of room.
    if (grow) {
      const oldEntries = u32(heap, table + Hash.Entries)
      if (oldEntries !== 0) heap.free(oldEntries)
      heap.free(u32(heap, table + Hash.Buckets))
      heap.u32[(table + Hash.Entries) >>> 2] = entries
      heap.u32[(table + Hash.Buckets) >>> 2] = buckets
      heap.u32[(table + Hash.BucketCount) >>> 2] = bucketCount
      heap.u32[(table + Hash.Capacity) >>> 2] = Math.max(4, (count + 1) * 2)
      bumpEpoch(heap, table)
    }
    const b = buckets + (hash & (bucketCount - 1)) * 4
    heap.u32[(e + Entry.HashCode) >>> 2] = hash
    heap.u32[(e + Entry.Next) >>> 2] = u32(heap, b)
    heap.u32[(e + Entry.Flags) >>> 2] = 0
    const seq = u32(heap, table + Hash.NextSeq)
    heap.u32[(e + Entry.Seq) >>> 2] = seq
    heap.u32[(table + Hash.NextSeq) >>> 2] = (seq + 1) >>> 0
    heap.u32[b >>> 2] = index + 1
    heap.u32[(table + Hash.Used) >>> 2] = index + 1
    heap.u32[(table + Hash.Count) >>> 2] = count + 1
  })
}

export function tableDelete(heap: Heap, table: number, key: unknown): boolean {
  const e = tableEntry(heap, table, key)
  if (e === 0) return false
  heap.u32[(e + Entry.Flags) >>> 2] = EntryFlag.Deleted
  const count = u32(heap, table + Hash.Count) - 1
  heap.u32[(table + Hash.Count) >>> 2] = count
  releaseSlot(heap, e + Entry.Key)
  releaseSlot(heap, e + Entry.Value)
  if (count === 0) resetTable(heap, table)
  return true
}

export function tableClear(heap: Heap, table: number): void {
  const used = checkedTableUsed(heap, table)
  const entries = u32(heap, table + Hash.Entries)
  for (let i = 0; i < used; i++) {
    const e = entries + i * ENTRY_SIZE
    if ((u32(heap, e + Entry.Flags) & EntryFlag.Deleted) !== 0) continue
    heap.u32[(e + Entry.Flags) >>> 2] = EntryFlag.Deleted
    releaseSlot(heap, e + Entry.Key)
    releaseSlot(heap, e + Entry.Value)
  }
  heap.u32[(table + Hash.Count) >>> 2] = 0
  resetTable(heap, table)
}

/** An empty table reuses its blocks from the start. */
function resetTable(heap: Heap, table: number): void {
  const buckets = u32(heap, table + Hash.Buckets)
  const bucketCount = u32(heap, table + Hash.BucketCount)
  checkFits(heap, buckets, 0, bucketCount, 4, 'table', table, 'BucketCount')
  heap.u32[(table + Hash.Used) >>> 2] = 0
  heap.u8.fill(0, buckets, buckets + bucketCount * 4)
  bumpEpoch(heap, table)
}

/** Entries moved: a live iterator's position means nothing any more (see MappedTable.walk). */
function bumpEpoch(heap: Heap, table: number): void {
  heap.u32[(table + Hash.Epoch) >>> 2] = (u32(heap, table + Hash.Epoch) + 1) >>> 0
}

export function tableEpoch(heap: Heap, table: number): number {
  return u32(heap, table + Hash.Epoch)
}
