// Views over a mapped segment, by segment offset. The segment's bytes are a window of a
// larger (Shared)ArrayBuffer that starts at shm.bytes.byteOffset, so a view built by hand
// as `new X(shm.buffer, shm.bytes.byteOffset + offset, n)` is easy to get subtly wrong
// (forgetting the window, or reaching past the segment into the padding around it and
// reading bytes no other process sees). Every such view goes through segmentView.
import { ShmError } from './errors'

/** What a view needs of an open segment (SharedMemory has both). */
export interface MappedSegmentLike {
  readonly buffer: ArrayBufferLike
  /** Exactly the segment: byte 0 is segment offset 0. */
  readonly bytes: Uint8Array
}

/** A TypedArray or DataView constructor (DataView counts in bytes). */
export type SegmentViewCtor<V extends ArrayBufferView> = (new (buffer: ArrayBufferLike, byteOffset: number, length: number) => V) & {
  readonly BYTES_PER_ELEMENT?: number
}

/**
 * `length` elements of `Ctor` at segment offset `offset` (bytes, for a DataView), over the
 * segment's own memory: no copy. Throws ERR_OUT_OF_RANGE unless the range is whole
 * integers, aligned to the element size and inside the segment.
 */
export function segmentView<V extends ArrayBufferView>(shm: MappedSegmentLike, Ctor: SegmentViewCtor<V>, offset: number, length: number): V {
  const width = Ctor.BYTES_PER_ELEMENT ?? 1
  const size = shm.bytes.length
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length * width > size) {
    throw new ShmError('ERR_OUT_OF_RANGE', `${String(length)} × ${Ctor.name} at segment offset ${String(offset)} does not lie inside the segment of ${size} bytes`)
  }
  const at = shm.bytes.byteOffset + offset
  if (at % width !== 0) {
    throw new ShmError('ERR_OUT_OF_RANGE', `a ${Ctor.name} at segment offset ${offset} would not be aligned to its ${width}-byte elements`)
  }
  return new Ctor(shm.buffer, at, length)
}
