// Numbers for people. No imports: the benches (bench/lib/stats.ts) use these too.

const oneDecimal = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1))

/**
 * Sizes for people: 64 KiB, 4 MiB, 1.5 GiB. `digits` writes the scaled number (default:
 * whole numbers as they are, others with one decimal); bytes below 1 KiB are written as they are.
 */
export function formatBytes(n: number, digits: (scaled: number) => string = oneDecimal): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let u = 0
  let v = n
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? String(v) : digits(v)} ${units[u]}`
}
