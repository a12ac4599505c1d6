// How a mapped view (proxy or class) says which record it stands for, so that
// putting it again shares the record instead of copying it.
import type { Heap } from '../heap'
import { Bin, StructRec, Tag } from '../records'
import { checkFits } from './bounds'

export const MAPPED = Symbol('interprocess-objects.mapped')

export interface MappedHandle {
  readonly heap: Heap
  readonly ref: number
}

export function mappedHandleOf(value: object): MappedHandle | undefined {
  return (value as { [MAPPED]?: MappedHandle })[MAPPED]
}

/**
 * Byte length of a Binary or Struct record's data (which starts at +16 in both),
 * checked against the record's block: ERR_SHM_CORRUPT if it does not fit.
 */
export function dataLength(heap: Heap, ref: number): number {
  const struct = heap.kindOf(ref) === Tag.Struct
  const length = heap.u32[(ref + (struct ? StructRec.ByteLength : Bin.ByteLength)) >>> 2]!
  checkFits(heap, ref, Bin.Data, length, 1, struct ? 'struct' : 'binary', ref, 'ByteLength')
  return length
}

/**
 * The Binary or Struct record whose data `bytes` is exactly (a mapped TypedArray or
 * struct view of this heap), or -1. A subarray of a mapped array is not a record.
 * A record whose stored length does not fit its block is ERR_SHM_CORRUPT.
 */
export function recordOfBytes(heap: Heap, bytes: ArrayBufferView): number {
  if (bytes.buffer !== heap.u8.buffer) return -1
  const ref = bytes.byteOffset - heap.u8.byteOffset - Bin.Data
  if (ref < 0 || ref + Bin.Data > heap.size || (ref & 15) !== 0) return -1
  const kind = heap.kindOf(ref)
  if (kind !== Tag.Binary && kind !== Tag.Struct) return -1
  // Not a record at all (a view that only looks like one): not ours to report.
  if (heap.allocator.blockSize(ref) < Bin.Data) return -1
  return dataLength(heap, ref) === bytes.byteLength ? ref : -1
}
