// How a mapped view says which record it stands for (and in which generation), so
// that putting it again shares the record instead of copying it, and so that a view
// of a freed record is refused instead of read.
import { stale, type Heap } from '../heap'
import { privateSlot } from '../private_slot'
import { Bin, StructRec, Tag } from '../records'
import { checkFits } from './bounds'
import { structOf } from './registry'

export const MAPPED = Symbol('interprocess-objects.mapped')

export interface MappedHandle {
  readonly heap: Heap
  readonly ref: number
  /** The record's generation when the view was made (heap.generationOf). */
  readonly generation: number
}

/**
 * TypedArray, DataView, Buffer and struct views are the platform's objects (or the
 * struct's own class). A TypedArray's handle is a private slot attached when it is made
 * (a WeakMap entry per view cost more than the rest of a put; a symbol property set by
 * defineProperty, ~0.4 µs, about as much); a struct view's is a symbol-keyed property.
 * Container views (proxies) answer MAPPED themselves. Only ArrayBuffer views are asked
 * for the slot: the check on every plain object of a copied message cost ~8% of a
 * 3 KB document's send.
 */
const byteViewHandle = privateSlot<MappedHandle>()

export function registerByteView<T extends object>(view: T, heap: Heap, ref: number): T {
  const handle: MappedHandle = { heap, ref, generation: heap.generationOf(ref) }
  if (ArrayBuffer.isView(view)) byteViewHandle.set(view, handle)
  else Object.defineProperty(view, MAPPED, { value: handle })
  return view
}

export function mappedHandleOf(value: object): MappedHandle | undefined {
  return ArrayBuffer.isView(value) ? byteViewHandle.get(value) : (value as { [MAPPED]?: MappedHandle })[MAPPED]
}

/**
 * The record of `heap` that `value` is a view of, or -1 when it is not a view of
 * this segment (another segment's, or a plain value). ERR_SHM_STALE when it is a
 * view whose record was freed. A TypedArray or struct over the segment that this
 * process did not get from the library (a subarray, a hand-made view) is -1 unless
 * its bytes are exactly a record's data.
 */
export function sharedRecordOf(heap: Heap, value: object): number {
  const handle = mappedHandleOf(value)
  if (handle !== undefined) {
    if (handle.heap !== heap) return -1
    if (heap.generationOf(handle.ref) !== handle.generation) throw stale(handle.ref)
    return handle.ref
  }
  if (ArrayBuffer.isView(value)) return recordOfBytes(heap, value, Tag.Binary)
  const struct = structOf(value)
  return struct === undefined ? -1 : recordOfBytes(heap, struct.bytes, Tag.Struct)
}

/**
 * sharedRecordOf for a value about to be stored or sent by reference: from then on other
 * reads reach its record, so a view of it becomes the cached one (Heap.adoptView: a
 * tx.put result is not cached until then).
 */
export function shareRecordOf(heap: Heap, value: object): number {
  const ref = sharedRecordOf(heap, value)
  if (ref >= 0 && mappedHandleOf(value) !== undefined) heap.adoptView(ref, value)
  return ref
}

/** Where a Binary or Struct record's data starts. */
export function dataOffset(heap: Heap, ref: number): number {
  return heap.kindOf(ref) === Tag.Struct ? StructRec.Data : Bin.Data
}

/**
 * Byte length of a Binary or Struct record's data, checked against the record's
 * block: ERR_SHM_CORRUPT if it does not fit. (ByteLength is at the same offset in both.)
 */
export function dataLength(heap: Heap, ref: number): number {
  const struct = heap.kindOf(ref) === Tag.Struct
  const length = heap.u32[(ref + Bin.ByteLength) >>> 2]!
  checkFits(heap, ref, struct ? StructRec.Data : Bin.Data, length, 1, struct ? 'struct' : 'binary', ref, 'ByteLength')
  return length
}

/**
 * The record of `kind` (Binary or Struct) whose data `bytes` is exactly, or -1: for
 * a view over the segment this process did not get from the library. A subarray of
 * a mapped array is not a record. A record whose stored length does not fit its
 * block is ERR_SHM_CORRUPT.
 */
export function recordOfBytes(heap: Heap, bytes: ArrayBufferView, kind: Tag.Binary | Tag.Struct): number {
  const data = kind === Tag.Struct ? StructRec.Data : Bin.Data
  const ref = bytes.byteOffset - heap.byteOffset - data
  if (ref < 0 || ref + data > heap.size || (ref & 15) !== 0) return -1
  // Only now the buffer: reading `buffer` of a small TypedArray that V8 keeps on its own
  // heap (a fresh new Uint8Array(64): byteOffset 0, so it never gets here) makes V8 move
  // it into an ArrayBuffer of its own — a third of a put's time.
  if (bytes.buffer !== heap.buffer) return -1
  if (heap.kindOf(ref) !== kind) return -1
  // Not a record at all (a view that only looks like one): not ours to report.
  if (heap.allocator.blockSize(ref) < data) return -1
  return dataLength(heap, ref) === bytes.byteLength ? ref : -1
}
