// Operations on shared arrays (layout in records.ts). Growth allocates a new items
// block first and frees the old one last, inside heap.atomically().
import { ShmError } from '../errors'
import type { Heap } from '../heap'
import { checkFits, checkedArrayLength } from './bounds'
import { EncodeContext, encodeValue, writeInlineValue, writeSlot } from './encode'
import { readSlot } from './decode'
import { releaseSlot, replaceSlot } from './release'
import { Arr, FIRST_REF_TAG, RecFlag, Slot, SLOT_SIZE, Tag } from '../records'

/** The stored length, unchecked: for single-element access (each element is range-checked). */
function storedLength(heap: Heap, ref: number): number {
  return heap.u32[(ref + Arr.Length) >>> 2]!
}

/**
 * The length, checked against the items block: what `length` reports and what
 * every walk over the items (keys, truncation, growth) is bounded by.
 */
export const arrayLength = checkedArrayLength

function itemsOf(heap: Heap, ref: number): number {
  return heap.u32[(ref + Arr.Items) >>> 2]!
}

export function arrayGet(heap: Heap, ref: number, index: number, mapped: boolean): unknown {
  if (index >= storedLength(heap, ref)) return undefined
  const at = itemsOf(heap, ref) + index * SLOT_SIZE
  heap.range(at, SLOT_SIZE)
  return readSlot(heap, at, mapped)
}

export function arrayHasIndex(heap: Heap, ref: number, index: number): boolean {
  return index < storedLength(heap, ref) && heap.i32[(itemsOf(heap, ref) + index * SLOT_SIZE) >>> 2] !== Tag.Hole
}

function assertWritable(heap: Heap, ref: number): void {
  if ((heap.flagsOf(ref) & RecFlag.Frozen) !== 0) {
    throw new ShmError('ERR_SHM_READONLY', 'this shared array was stored frozen (read-only); put a non-frozen copy to change it')
  }
}

/** Makes room for `capacity` slots; returns the items block to write into (old one freed on commit). */
function reserve(heap: Heap, ref: number, capacity: number): number {
  const current = heap.u32[(ref + Arr.Capacity) >>> 2]!
  const items = itemsOf(heap, ref)
  if (capacity <= current) {
    // Writes go up to `capacity` slots into this block: it must hold them (an empty
    // array may have no block at all, and push() with no values writes nothing).
    if (capacity > 0) checkFits(heap, items, 0, capacity, SLOT_SIZE, 'array', ref, 'Capacity')
    return items
  }
  const newCapacity = Math.max(capacity, current * 2, 4)
  const newItems = heap.alloc(newCapacity * SLOT_SIZE)
  const length = arrayLength(heap, ref)
  if (length > 0) heap.u8.copyWithin(newItems, items, items + length * SLOT_SIZE)
  return newItems
}

function commitItems(heap: Heap, ref: number, items: number, length: number): void {
  const old = itemsOf(heap, ref)
  if (items !== old) {
    if (old !== 0) heap.free(old)
    heap.u32[(ref + Arr.Items) >>> 2] = items
    heap.u32[(ref + Arr.Capacity) >>> 2] = heap.allocator.usableSize(items) / SLOT_SIZE >>> 0
  }
  heap.u32[(ref + Arr.Length) >>> 2] = length
}

export function arraySet(heap: Heap, ref: number, index: number, value: unknown): void {
  assertWritable(heap, ref)
  if (index < storedLength(heap, ref)) {
    // A number over a number (the common update) needs no allocation and no undo.
    const at = itemsOf(heap, ref) + index * SLOT_SIZE
    if (heap.i32[at >>> 2]! < FIRST_REF_TAG && writeInlineValue(heap, at, value)) return
  }
  heap.atomically(() => {
    const length = arrayLength(heap, ref)
    if (index < length) {
      const at = itemsOf(heap, ref) + index * SLOT_SIZE
      const ctx = new EncodeContext(heap)
      encodeValue(ctx, value)
      replaceSlot(heap, at, (slot) => ctx.store(slot))
      return
    }
    const items = reserve(heap, ref, index + 1)
    const ctx = new EncodeContext(heap)
    encodeValue(ctx, value)
    for (let i = length; i < index; i++) writeSlot(heap, items + i * SLOT_SIZE, Tag.Hole, 0, 0)
    ctx.store(items + index * SLOT_SIZE)
    commitItems(heap, ref, items, index + 1)
  })
}

export function arrayPush(heap: Heap, ref: number, values: unknown[]): number {
  assertWritable(heap, ref)
  return heap.atomically(() => {
    const length = arrayLength(heap, ref)
    const items = reserve(heap, ref, length + values.length)
    const ctx = new EncodeContext(heap)
    for (let i = 0; i < values.length; i++) ctx.encodeInto(items + (length + i) * SLOT_SIZE, values[i], length + i)
    commitItems(heap, ref, items, length + values.length)
    return length + values.length
  })
}

export function arrayPop(heap: Heap, ref: number): unknown {
  assertWritable(heap, ref)
  const length = arrayLength(heap, ref)
  if (length === 0) return undefined
  const at = itemsOf(heap, ref) + (length - 1) * SLOT_SIZE
  // The element itself, as Array.prototype.pop gives it: a view (the same one a[i]
  // gave) keeps its record until the turn ends even if this was its last reference.
  const value = readSlot(heap, at, true)
  releaseSlot(heap, at)
  heap.u32[(ref + Arr.Length) >>> 2] = length - 1
  return value
}

/** `delete a[i]`: the element becomes a hole (`i in a` is false); the length stays. */
export function arrayDelete(heap: Heap, ref: number, index: number): void {
  if (index >= arrayLength(heap, ref)) return
  assertWritable(heap, ref)
  const at = itemsOf(heap, ref) + index * SLOT_SIZE
  replaceSlot(heap, at, (slot) => writeSlot(heap, slot, Tag.Hole, 0, 0))
}

export function arraySetLength(heap: Heap, ref: number, newLength: number): void {
  assertWritable(heap, ref)
  if (!Number.isInteger(newLength) || newLength < 0 || newLength > 0xffffffff) {
    throw new RangeError(`Invalid array length ${newLength}`)
  }
  const length = arrayLength(heap, ref)
  if (newLength < length) {
    const items = itemsOf(heap, ref)
    for (let i = newLength; i < length; i++) releaseSlot(heap, items + i * SLOT_SIZE)
    heap.u32[(ref + Arr.Length) >>> 2] = newLength
  } else if (newLength > length) {
    heap.atomically(() => {
      const items = reserve(heap, ref, newLength)
      for (let i = length; i < newLength; i++) writeSlot(heap, items + i * SLOT_SIZE, Tag.Hole, 0, 0)
      commitItems(heap, ref, items, newLength)
    })
  }
}

/**
 * An element as the reordering methods see it: the slot it sits in now. Moving a slot
 * moves its reference (nothing is re-encoded, a string stays the same record); a value
 * read only when a comparator needs it.
 */
export class SlotToken {
  constructor(readonly at: number) {}
}

/**
 * The elements as tokens, holes as holes: what Array.prototype methods run on in place
 * of the shared array, so that the shared array changes once, at the end.
 */
export function arrayTokens(heap: Heap, ref: number): SlotToken[] {
  const length = arrayLength(heap, ref)
  const items = itemsOf(heap, ref)
  const out: SlotToken[] = new Array(length)
  for (let i = 0; i < length; i++) {
    const at = items + i * SLOT_SIZE
    if (heap.i32[at >>> 2] !== Tag.Hole) out[i] = new SlotToken(at)
  }
  return out
}

/** The value a token stands for (a view for containers: the one a[i] gives). */
export function tokenValue(heap: Heap, token: SlotToken): unknown {
  return readSlot(heap, token.at, true)
}

/**
 * Makes the shared array hold `next`: tokens (old slots, moved), holes, and new values
 * (encoded; one object given several times, as by fill, is stored once). Either all of
 * it happens or, if a value cannot be stored (ERR_UNSUPPORTED_TYPE, ERR_SHM_FULL),
 * nothing does. Old elements that `next` no longer holds lose their reference last.
 */
export function arrayRewrite(heap: Heap, ref: number, next: unknown[]): void {
  assertWritable(heap, ref)
  const oldItems = itemsOf(heap, ref)
  const oldLength = arrayLength(heap, ref)
  const uses = new Map<number, number>()
  heap.atomically(() => {
    const length = next.length
    const items = length === 0 ? 0 : heap.alloc(Math.max(length, 4) * SLOT_SIZE)
    const ctx = new EncodeContext(heap)
    for (let i = 0; i < length; i++) {
      const at = items + i * SLOT_SIZE
      if (!(i in next)) {
        writeSlot(heap, at, Tag.Hole, 0, 0)
        continue
      }
      const element = next[i]
      if (element instanceof SlotToken) {
        heap.u8.copyWithin(at, element.at, element.at + SLOT_SIZE)
        const n = (uses.get(element.at) ?? 0) + 1
        uses.set(element.at, n)
        // A slot placed twice (copyWithin, fill of an element) is one more reference.
        if (n > 1 && heap.i32[at >>> 2]! >= FIRST_REF_TAG) heap.retain(heap.u32[(at + Slot.Payload) >>> 2]!)
      } else {
        ctx.encodeInto(at, element, i)
      }
    }
    // Commit: nothing below allocates.
    heap.u32[(ref + Arr.Items) >>> 2] = items
    heap.u32[(ref + Arr.Capacity) >>> 2] = items === 0 ? 0 : heap.allocator.usableSize(items) / SLOT_SIZE >>> 0
    heap.u32[(ref + Arr.Length) >>> 2] = length
  })
  // The old slots' references: kept by the slots that moved, dropped for the rest.
  for (let i = 0; i < oldLength; i++) {
    const at = oldItems + i * SLOT_SIZE
    if (!uses.has(at)) releaseSlot(heap, at)
  }
  if (oldItems !== 0) heap.free(oldItems)
}
