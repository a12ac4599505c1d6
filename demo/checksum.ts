/** FNV-1a over the 32-bit words of a Float64Array: equal only if every bit is equal. */
export function checksum(values: Float64Array): string {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length * 2)
  let h = 0x811c9dc5
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193) >>> 0
  return h.toString(16).padStart(8, '0')
}

/** The function the child tabulates: a damped wave. */
export function wave(i: number): number {
  return Math.sin(i / 1000) * Math.exp(-i / 500_000)
}
