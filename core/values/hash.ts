// A deterministic hash of a key's value: the same in every process and every run
// (unlike Python's seeded hash() that the seed depends on). FNV-1a over a type
// tag and the value's canonical form, then a finalizer. Part of the segment layout:
// changing it changes where keys live, so it bumps LAYOUT_VERSION.
import { ShmError } from '../errors'

export type MapKey = string | number | bigint | boolean | null | undefined

const f64 = new Float64Array(1)
const f64Words = new Int32Array(f64.buffer)

function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 0x01000193)
}

export function hashKey(key: unknown, path: () => string): number {
  let h = 0x811c9dc5
  switch (typeof key) {
    case 'string':
      h = mix(h, 1)
      for (let i = 0; i < key.length; i++) h = mix(h, key.charCodeAt(i))
      break
    case 'number':
      h = mix(h, 2)
      if (key === 0 || Number.isNaN(key)) {
        h = mix(h, key === 0 ? 0 : 0x7ff8) // -0 and 0 are one key, as are all NaNs
      } else {
        f64[0] = key
        h = mix(mix(h, f64Words[0]!), f64Words[1]!)
      }
      break
    case 'bigint': {
      h = mix(h, 3)
      const s = key.toString(16)
      for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i))
      break
    }
    case 'boolean':
      h = mix(h, key ? 5 : 4)
      break
    case 'undefined':
      h = mix(h, 6)
      break
    default:
      if (key === null) {
        h = mix(h, 7)
        break
      }
      throw new ShmError(
        'ERR_UNSUPPORTED_TYPE',
        `${path()}: shared Map and Set keys must be strings, numbers, bigints, booleans, null or undefined, got ${typeof key === 'object' ? (key as object).constructor?.name ?? 'object' : typeof key}; object keys compare by identity, which no other process can share`,
      )
  }
  // FNV-1a's multiply carries a word's bits only upwards, so keys that differ only in high
  // bits (integers as float64 differ in the exponent and top mantissa bits) would share the
  // low bits the bucket mask keeps: 1000 integer keys landed in 2 of 1024 buckets. The
  // MurmurHash3 finalizer spreads every bit over the whole word.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** SameValueZero, the equality Map and Set use. */
export function sameKey(a: unknown, b: unknown): boolean {
  return a === b || (a !== a && b !== b)
}
