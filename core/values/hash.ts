// A deterministic hash of a key's value: the same in every process and every run
// (unlike Python's seeded hash() that the seed depends on). FNV-1a over a type
// tag and the value's canonical form (a Date: its time value; a tuple: its length,
// then its elements'), then a finalizer. Part of the segment layout: changing it
// changes where keys live, so it bumps LAYOUT_VERSION (test/keys.test.ts pins it).
import { ShmError } from '../errors'
import { fmix32 } from '../fmix'
import { mappedHandleOf } from './mapped_handle'
import { isFrozenRequest } from './registry'

/**
 * What a shared Map or Set accepts as a key: primitives, Dates (compared by time
 * value) and tuples — frozen arrays of keys, compared by value. Only values whose
 * equality every process can decide from the bytes alone: an object key compares by
 * identity, and no other process can hold the same object.
 */
export type MapKey = string | number | bigint | boolean | null | undefined | Date | readonly MapKey[]

/** How deep tuples may nest: a frozen array that contains itself must not recurse forever. */
export const MAX_TUPLE_DEPTH = 32

const f64 = new Float64Array(1)
const f64Words = new Int32Array(f64.buffer)

function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 0x01000193)
}

function mixNumber(h: number, key: number): number {
  if (key === 0 || Number.isNaN(key)) return mix(h, key === 0 ? 0 : 0x7ff8) // -0 and 0 are one key, as are all NaNs
  f64[0] = key
  return mix(mix(h, f64Words[0]!), f64Words[1]!)
}

/**
 * A Date's time value, or undefined for an object that only inherits from
 * Date.prototype (a Proxy of a Date): Date.prototype.getTime rather than the
 * object's own getTime, which a subclass could override.
 */
export function timeOf(date: Date): number | undefined {
  try {
    return Date.prototype.getTime.call(date)
  } catch {
    return undefined
  }
}

/** A frozen Array (Object.freeze or frozen()) that is not a mapped view: a candidate tuple key. */
export function isTuple(value: object): value is readonly unknown[] {
  return Array.isArray(value) && mappedHandleOf(value) === undefined && (Object.isFrozen(value) || isFrozenRequest(value))
}

/** Mixes `key` into `h`, or undefined when `key` cannot be a Map or Set key. */
function mixKey(h: number, key: unknown, depth: number): number | undefined {
  switch (typeof key) {
    case 'string':
      h = mix(h, 1)
      for (let i = 0; i < key.length; i++) h = mix(h, key.charCodeAt(i))
      return h
    case 'number':
      return mixNumber(mix(h, 2), key)
    case 'bigint': {
      h = mix(h, 3)
      const s = key.toString(16)
      for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i))
      return h
    }
    case 'boolean':
      return mix(h, key ? 5 : 4)
    case 'undefined':
      return mix(h, 6)
    case 'object': {
      if (key === null) return mix(h, 7)
      if (key instanceof Date) {
        const time = timeOf(key)
        return time === undefined ? undefined : mixNumber(mix(h, 8), time)
      }
      if (depth >= MAX_TUPLE_DEPTH || !isTuple(key)) return undefined
      // The length first: ['a', 'b'] and [['a'], 'b'] mix different words.
      let t: number | undefined = mix(mix(h, 9), key.length)
      for (let i = 0; i < key.length && t !== undefined; i++) t = mixKey(t, key[i], depth + 1)
      return t
    }
    default:
      return undefined
  }
}

/** Why `key` is no key, for the error of set/add. */
function describeNonKey(key: unknown): string {
  if (typeof key !== 'object' || key === null) return `a ${typeof key}`
  if (mappedHandleOf(key) !== undefined) return 'a mapped view (a live view has no value every process can compare; tx.copy it and build a key from its contents)'
  if (Array.isArray(key)) {
    return isTuple(key)
      ? `a frozen array whose elements are not all primitives, Dates or frozen arrays (nested at most ${MAX_TUPLE_DEPTH} deep)`
      : 'an array that is not frozen (freeze it with Object.freeze([...]) or frozen([...]) to use it as a tuple key)'
  }
  if (key instanceof Date) return 'an object that is not a real Date'
  return `an instance of ${(key as { constructor?: { name?: string } }).constructor?.name ?? 'Object'}`
}

function finalize(h: number): number {
  // FNV-1a's multiply carries a word's bits only upwards, so keys that differ only in high
  // bits (integers as float64 differ in the exponent and top mantissa bits) would share the
  // low bits the bucket mask keeps: 1000 integer keys landed in 2 of 1024 buckets. The
  // MurmurHash3 finalizer spreads every bit over the whole word.
  return fmix32(h)
}

/**
 * The hash of a key, for storing it: throws ERR_UNSUPPORTED_TYPE (naming `path()`)
 * for a value that cannot be a Map or Set key.
 */
export function hashKey(key: unknown, path: () => string): number {
  const h = mixKey(0x811c9dc5, key, 0)
  if (h === undefined) {
    throw new ShmError(
      'ERR_UNSUPPORTED_TYPE',
      `${path()}: shared Map and Set keys must be primitives (strings, numbers, bigints, booleans, null, undefined), Dates (compared by time) or frozen arrays of those (tuple keys, compared by value), got ${describeNonKey(key)}; object keys compare by identity, which no other process can share: use a string key or a tuple key such as Object.freeze(['user', id])`,
    )
  }
  return finalize(h)
}

/**
 * The hash of a key, for looking it up: -1 for a value that cannot be a key, which
 * therefore is in no table (get/has/delete answer "absent" rather than throw).
 */
export function lookupHash(key: unknown): number {
  const h = mixKey(0x811c9dc5, key, 0)
  return h === undefined ? -1 : finalize(h)
}

/**
 * SameValueZero, the equality Map and Set use, extended to the keys that compare by
 * value: Dates by time value, tuples element by element.
 */
export function sameKey(a: unknown, b: unknown): boolean {
  if (a === b || (a !== a && b !== b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (a instanceof Date) {
    const time = timeOf(a)
    return b instanceof Date && time !== undefined && sameKey(time, timeOf(b))
  }
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (!sameKey(a[i], b[i])) return false
  return true
}
