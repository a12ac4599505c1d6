// The bare futex floor under every wait: the segment's words and the addon's wait/wake.
// These are internal to the package (users wait through channels and turns), so the
// roundtrip bench reaches them through this one declared shape rather than a public name.
import type { SharedMemory } from 'interprocess-objects'

export interface RawSegment {
  /** The segment as 32-bit words; words[i] is at offset 4 * i. */
  readonly words: Int32Array
  wait(offset: number, expected: number, timeoutMs: number): 'ok' | 'timed-out' | 'not-equal'
  wake(offset: number, count: number): number
}

export function rawSegment(shm: SharedMemory): RawSegment {
  return (shm as unknown as { segment: RawSegment }).segment
}
