// How a mapped view (proxy or class) says which record it stands for, so that
// putting it again shares the record instead of copying it.
import type { Heap } from '../heap'
import { Bin, StructRec, Tag } from '../records'

export const MAPPED = Symbol('interprocess-objects.mapped')

export interface MappedHandle {
  readonly heap: Heap
  readonly ref: number
}

export function mappedHandleOf(value: object): MappedHandle | undefined {
  return (value as { [MAPPED]?: MappedHandle })[MAPPED]
}

/** Byte length of a Binary or Struct record's data (which starts at +16 in both). */
export function dataLength(heap: Heap, ref: number): number {
  return heap.u32[(ref + (heap.kindOf(ref) === Tag.Struct ? StructRec.ByteLength : Bin.ByteLength)) >>> 2]!
}

/**
 * The Binary or Struct record whose data `bytes` is exactly (a mapped TypedArray or
 * struct view of this heap), or -1. A subarray of a mapped array is not a record.
 */
export function recordOfBytes(heap: Heap, bytes: ArrayBufferView): number {
  if (bytes.buffer !== heap.u8.buffer) return -1
  const ref = bytes.byteOffset - heap.u8.byteOffset - Bin.Data
  if (ref < 0 || ref + Bin.Data > heap.size || (ref & 15) !== 0) return -1
  const kind = heap.kindOf(ref)
  if (kind !== Tag.Binary && kind !== Tag.Struct) return -1
  return dataLength(heap, ref) === bytes.byteLength ? ref : -1
}
