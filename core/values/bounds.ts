// Every length or count a walk takes from the segment is checked here, once per
// record, against the allocator block that holds what it counts, before the loop
// starts. A stray write or a hostile peer can put any number in a Length or Used
// field; without this a loop would run up to 2^32 times while holding the
// segment-wide turn. With it, a walk is bounded by the block it walks, and a
// corrupt record is ERR_SHM_CORRUPT naming the record and the field.
import { corrupt } from '../errors'
import type { Heap } from '../heap'
import { Arr, ENTRY_SIZE, Hash, SLOT_SIZE } from '../records'

/**
 * Why `count` elements of `elementSize` bytes, `start` bytes into the block at
 * `block`, do not fit its payload; null when they do. For callers that report
 * corruption their own way (core/check.ts); everyone else calls checkFits.
 */
export function overrun(heap: Heap, block: number, start: number, count: number, elementSize: number): string | null {
  const need = start + count * elementSize // exact: a u32 count times a small size stays below 2^53
  // Outside a turn only blocks the caller holds are read (a record a message it takes
  // refers to): their own header says their size, while blockSize also follows the
  // neighbours' links, which another process may be rewriting in its turn (a split or a
  // merge next door), and would take a sound block for a damaged one.
  const usable = heap.inTurn ? heap.allocator.blockSize(block) : heap.allocator.heldBlockSize(block)
  if (need <= usable) return null
  const parts = elementSize === 0 ? `${need} bytes` : `${start > 0 ? `${start} + ` : ''}${count} × ${elementSize} = ${need} bytes`
  return usable < 0 ? `needs ${parts} in block ${block}, which is not a live allocation` : `needs ${parts}, block ${block} holds ${usable}`
}

/**
 * Throws ERR_SHM_CORRUPT unless `count` elements of `elementSize` bytes, starting
 * `start` bytes into the live block at `block`, fit its payload. The message names
 * the record the count was read from and the field: "array record 4096: Length =
 * 4294967280 needs …". `kind` and `field` should be constants: nothing is built
 * unless the check fails.
 */
export function checkFits(heap: Heap, block: number, start: number, count: number, elementSize: number, kind: string, ref: number, field: string): void {
  const why = overrun(heap, block, start, count, elementSize)
  if (why !== null) throw corrupt(`${kind} record ${ref}: ${field} = ${count} ${why}`)
}

/** The record's own block holds its fixed part (`size` bytes from the record start). */
export function checkHeader(heap: Heap, ref: number, size: number, kind: string): void {
  const why = overrun(heap, ref, size, 0, 0)
  if (why !== null) throw corrupt(`${kind} record ${ref}: its header ${why}`)
}

/**
 * An array record's Length, checked against its items block: the bound of every walk
 * over its items (copy, release, keys, growth). A Length with no items block fails too.
 */
export function checkedArrayLength(heap: Heap, ref: number): number {
  const length = heap.u32[(ref + Arr.Length) >>> 2]!
  if (length !== 0) checkFits(heap, heap.u32[(ref + Arr.Items) >>> 2]!, 0, length, SLOT_SIZE, 'array', ref, 'Length')
  return length
}

/** A table record's Used (entries written so far), checked against its entries block: the bound of every walk over them. */
export function checkedTableUsed(heap: Heap, ref: number): number {
  const used = heap.u32[(ref + Hash.Used) >>> 2]!
  if (used !== 0) checkFits(heap, heap.u32[(ref + Hash.Entries) >>> 2]!, 0, used, ENTRY_SIZE, 'table', ref, 'Used')
  return used
}
