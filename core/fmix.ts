// MurmurHash3's 32-bit finalizer: a bijection on u32 that spreads every input bit
// over the whole word. The key hash (values/hash.ts) ends with it, and record
// generations (heap.ts) come from it; both are part of the segment layout.
export function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
