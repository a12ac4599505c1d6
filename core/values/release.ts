// Dropping references. A record is freed when its last in-segment reference goes;
// freeing a container drops the references its slots hold. An explicit stack keeps
// deep structures from overflowing the JS stack. Cycles keep each other alive:
// break them (assign null) before destroying their root.
//
// The walk is bounded by what it frees: each record is checked to be a live block
// before it is touched, and its counts against its blocks before its slots are
// visited (./bounds.ts), so a corrupt graph is ERR_SHM_CORRUPT, never a loop.
import { corrupt } from '../errors'
import type { Heap } from '../heap'
import { Arr, Big, Bin, Entry, ENTRY_SIZE, EntryFlag, FIRST_REF_TAG, Hash, Inst, Rec, Slot, SLOT_SIZE, Str, StructRec, Tag } from '../records'
import { checkFits, checkHeader, checkedArrayLength, checkedTableUsed } from './bounds'

export function releaseSlot(heap: Heap, at: number): void {
  const tag = heap.i32[at >>> 2]!
  if (tag >= FIRST_REF_TAG) releaseRecord(heap, heap.u32[(at + Slot.Payload) >>> 2]!, tag)
}

/**
 * Overwrites a slot with `store`, then drops the reference the slot held. In this
 * order a process killed in between leaks the old record at worst; the other order
 * would leave the slot pointing at freed memory.
 */
export function replaceSlot(heap: Heap, at: number, store: (at: number) => void): void {
  const tag = heap.i32[at >>> 2]!
  const ref = heap.u32[(at + Slot.Payload) >>> 2]!
  store(at)
  if (tag >= FIRST_REF_TAG) releaseRecord(heap, ref, tag)
}

/**
 * Drops one reference to record `first` and frees what loses its last one. A record
 * this process still has a view of is kept until the turn ends (heap.deferFree),
 * except `first` itself when `freeFirst` (tx.destroy: its caller is done with it).
 */
export function releaseRecord(heap: Heap, first: number, firstTag: number, freeFirst = false): void {
  const stack = [first, firstTag]
  while (stack.length > 0) {
    const tag = stack.pop()!
    const ref = stack.pop()!
    // Before the reference is dropped: a record that is not a live block was freed
    // already (a corrupt graph reaches it twice, e.g. through a cycle whose counts
    // were overwritten) and must not be written to, let alone freed again. Every
    // record is freed once, so the walk ends.
    if (heap.allocator.blockSize(ref) < Rec.Body) throw corrupt(`record ${ref} (tag ${tag}) is referenced but is not a live block: freed already, or overwritten`)
    heap.record(ref, tag)
    // (Not the last: dropped by a compare-and-swap, as another process may drop one outside a turn at once.)
    if (heap.dropShared(ref)) continue
    if (!(freeFirst && ref === first) && heap.deferFree(ref)) {
      heap.unretain(ref)
      continue
    }
    // The last reference: every count the loops below use is checked against its
    // block first, so a corrupt record throws here and nothing of it is freed.
    // (What this walk freed before stays freed; what it had still to visit leaks.)
    switch (tag) {
      case Tag.Array: {
        checkHeader(heap, ref, Arr.Size, 'array')
        const length = checkedArrayLength(heap, ref)
        const items = heap.u32[(ref + Arr.Items) >>> 2]!
        for (let i = 0; i < length; i++) pushSlot(heap, stack, items + i * SLOT_SIZE)
        if (items !== 0) heap.free(items)
        break
      }
      case Tag.Object:
      case Tag.Map:
      case Tag.Set:
      case Tag.Error: {
        checkHeader(heap, ref, Hash.Size, 'table')
        const used = checkedTableUsed(heap, ref)
        const entries = heap.u32[(ref + Hash.Entries) >>> 2]!
        const buckets = heap.u32[(ref + Hash.Buckets) >>> 2]!
        checkFits(heap, buckets, 0, heap.u32[(ref + Hash.BucketCount) >>> 2]!, 4, 'table', ref, 'BucketCount')
        for (let i = 0; i < used; i++) {
          const e = entries + i * ENTRY_SIZE
          if ((heap.u32[(e + Entry.Flags) >>> 2]! & EntryFlag.Deleted) !== 0) continue
          pushSlot(heap, stack, e + Entry.Key)
          pushSlot(heap, stack, e + Entry.Value)
        }
        if (entries !== 0) heap.free(entries)
        heap.free(buckets)
        break
      }
      case Tag.Instance:
        checkHeader(heap, ref, Inst.Size, 'instance')
        stack.push(heap.u32[(ref + Inst.ClassName) >>> 2]!, Tag.String, heap.u32[(ref + Inst.Fields) >>> 2]!, Tag.Object)
        break
      // No references inside; their lengths are checked all the same, so that
      // destroying a graph reports a damaged leaf as copying it would.
      case Tag.String:
      case Tag.RegExp:
        checkFits(heap, ref, Str.Data, heap.u32[(ref + Str.ByteLength) >>> 2]!, 1, 'string', ref, 'ByteLength')
        break
      case Tag.BigInt:
        checkFits(heap, ref, Big.Data, heap.u32[(ref + Big.ByteLength) >>> 2]!, 1, 'bigint', ref, 'ByteLength')
        break
      case Tag.Binary:
      case Tag.Serialized:
        checkFits(heap, ref, Bin.Data, heap.u32[(ref + Bin.ByteLength) >>> 2]!, 1, 'binary', ref, 'ByteLength')
        break
      case Tag.Struct:
        checkFits(heap, ref, StructRec.Data, heap.u32[(ref + StructRec.ByteLength) >>> 2]!, 1, 'struct', ref, 'ByteLength')
        break
      default:
        break
    }
    heap.freeRecord(ref)
  }
}

function pushSlot(heap: Heap, stack: number[], at: number): void {
  const t = heap.i32[at >>> 2]!
  if (t >= FIRST_REF_TAG) stack.push(heap.u32[(at + Slot.Payload) >>> 2]!, t)
}
