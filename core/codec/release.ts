// Dropping references. A record is freed when its last in-segment reference goes;
// freeing a container drops the references its slots hold. An explicit stack keeps
// deep structures from overflowing the JS stack. Cycles keep each other alive:
// break them (assign null) before destroying their root.
import type { Heap } from '../heap'
import { Arr, Entry, ENTRY_SIZE, FIRST_REF_TAG, Hash, Inst, Slot, SLOT_SIZE, Tag } from '../records'

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

export function releaseRecord(heap: Heap, first: number, firstTag: number): void {
  const stack = [first, firstTag]
  while (stack.length > 0) {
    const tag = stack.pop()!
    const ref = heap.record(stack.pop()!, tag)
    if (heap.unretain(ref) > 0) continue
    const pushSlot = (at: number): void => {
      const t = heap.i32[at >>> 2]!
      if (t >= FIRST_REF_TAG) stack.push(heap.u32[(at + Slot.Payload) >>> 2]!, t)
    }
    switch (tag) {
      case Tag.Array: {
        const length = heap.u32[(ref + Arr.Length) >>> 2]!
        const items = heap.u32[(ref + Arr.Items) >>> 2]!
        for (let i = 0; i < length; i++) pushSlot(items + i * SLOT_SIZE)
        if (items !== 0) heap.free(items)
        break
      }
      case Tag.Object:
      case Tag.Map:
      case Tag.Set:
      case Tag.Error: {
        const used = heap.u32[(ref + Hash.Used) >>> 2]!
        const entries = heap.u32[(ref + Hash.Entries) >>> 2]!
        for (let i = 0; i < used; i++) {
          const e = entries + i * ENTRY_SIZE
          if ((heap.u32[(e + Entry.Flags) >>> 2]! & 1) !== 0) continue
          pushSlot(e + Entry.Key)
          pushSlot(e + Entry.Value)
        }
        if (entries !== 0) heap.free(entries)
        heap.free(heap.u32[(ref + Hash.Buckets) >>> 2]!)
        break
      }
      case Tag.Instance:
        stack.push(heap.u32[(ref + Inst.ClassName) >>> 2]!, Tag.String, heap.u32[(ref + Inst.Fields) >>> 2]!, Tag.Object)
        break
      default:
        break // strings, bigints, binary, structs: no references inside
    }
    heap.free(ref)
  }
}
