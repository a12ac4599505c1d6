import { ShmError } from './errors'
import { osNameOf } from './names'
import type { WaitMode } from './waiting'

/** 'name' is a segment name: checked by osNameOf, so a bad one is ERR_INVALID_NAME everywhere. */
type Kind = 'string' | 'number' | 'boolean' | 'object' | 'function' | 'name'

/**
 * Rejects unknown or mistyped options before anything touches the OS, naming the
 * option that was probably meant ("prefualt" → "prefault").
 */
export function checkOptions<T extends object>(
  given: unknown,
  spec: { [K in keyof T]-?: Kind },
  call: string,
): T {
  if (given === null || typeof given !== 'object') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call} expects an options object, got ${given === null ? 'null' : typeof given}`)
  }
  // for…in rather than Object.entries: options are checked on every receive, and this
  // allocates nothing. Each value is read first thing in the loop body, and the spec by
  // for…in too: V8 then reads both through their enum caches instead of a megamorphic
  // keyed load (with hasOwnProperty, ~10% of a small message's send + receive).
  for (const key in given) {
    const value = (given as Record<string, unknown>)[key]
    let kind: Kind | undefined
    for (const known in spec) {
      if (known === key) {
        kind = (spec as Record<string, Kind>)[known]
        break
      }
    }
    // (A key the spec only inherits, from a polluted Object.prototype, is no option.)
    if (kind !== undefined && objectPrototypeEnumerates() && !Object.prototype.hasOwnProperty.call(spec, key)) kind = undefined
    if (kind === undefined) {
      // Nor is a key `given` inherits (a known one is checked all the same: it is what the call reads).
      if (!Object.prototype.hasOwnProperty.call(given, key)) continue
      const known = Object.keys(spec)
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2)
      throw new ShmError(
        'ERR_INVALID_ARGUMENT',
        `${call}: unknown option "${key}"${near ? `; did you mean "${near}"?` : ''} (known: ${known.join(', ')})`,
      )
    }
    if (kind === 'name') {
      if (value !== undefined) osNameOf(value)
      continue
    }
    if (value !== undefined && typeof value !== kind) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: option "${key}" must be a ${kind}, got ${typeof value}`)
    }
  }
  return given as T
}

const plain = {}

/** Whether Object.prototype (or a library that polluted it) has enumerable keys: then for…in over a spec yields them too. */
function objectPrototypeEnumerates(): boolean {
  for (const _ in plain) return true
  return false
}

const waitModes: readonly WaitMode[] = ['cpu-friendly', 'low-latency']

/** checkOptions for a call that waits: also its `wait` mode and its `timeoutMs`. */
export function checkWaitOptions<T extends { wait?: WaitMode; timeoutMs?: number }>(
  given: T,
  spec: { [K in keyof T]-?: Kind },
  call: string,
): T {
  const o = checkOptions<T>(given, spec, call)
  // (Compared one by one: Array.prototype.includes is a builtin call, and this runs on every receive.)
  if (o.wait !== undefined && o.wait !== 'cpu-friendly' && o.wait !== 'low-latency') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: wait must be ${waitModes.map((m) => `'${m}'`).join(' or ')}, got '${String(o.wait)}'`)
  }
  checkTimeout(o.timeoutMs, 'timeoutMs', call)
  return o
}

/** A wait limit in ms: 0 or more, Infinity allowed (wait as long as it takes); NaN and negatives refused. */
export function checkTimeout(ms: number | undefined, option: string, call: string): void {
  if (ms !== undefined && !(ms >= 0)) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: option "${option}" must be a number of milliseconds, 0 or more (Infinity waits as long as it takes), got ${String(ms)}`)
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]!
}
