// The operations of test/model.test.ts, shared by the test and its child process
// (test/children/model-peer.ts): one function applies an operation to a root value,
// whether that is the plain JavaScript model or the mapped view of it, and encodes
// what came out as plain JSON, so that the results of both (and of both processes)
// can be compared with toStrictEqual and sent over the fork IPC channel.
//
// Values in operations are *descriptions* in the same encoding (see `build`), so
// that -0, NaN, undefined and bigints survive JSON, and each side builds its own
// fresh plain value from them (nothing is shared between the model and the view).
import { MappedMap, MappedSet, registerClass } from 'interprocess-objects'

/** A registered class: fields, and methods that mutate `this`. */
export class ModelCounter {
  count: unknown = 0
  label: unknown = 'c'
  items: unknown = [] as unknown[]
  increment(by: number): unknown {
    ;(this.count as number) += by
    return this.count
  }
  pushItem(value: unknown): number {
    return (this.items as unknown[]).push(value)
  }
  rename(label: string): unknown {
    const old = this.label
    this.label = label
    return old
  }
  takeFirst(): unknown {
    return (this.items as unknown[]).shift()
  }
}
registerClass(ModelCounter)

export type Kind = 'arr' | 'obj' | 'map' | 'set' | 'ctr'
export const kinds: readonly Kind[] = ['arr', 'obj', 'map', 'set', 'ctr']

/** One operation: on root[t], named op, with JSON arguments; `by` says which process runs it on the mapped value. */
export interface Op {
  t: Kind
  op: string
  a: unknown[]
  by: 'parent' | 'child'
}

export interface Root {
  arr: unknown[]
  obj: Record<string, unknown>
  map: Map<unknown, unknown>
  set: Set<unknown>
  ctr: ModelCounter
}

/** A description of a value (the encoding below, without holes inside objects, refs or functions). */
export type Desc = unknown

export interface RootInit {
  arr: Desc[]
  obj: Array<[string, Desc]>
  map: Array<[Desc, Desc]>
  set: Desc[]
  ctr: { count: number; label: string; items: Desc[] }
}

// ---------------------------------------------------------------------------------
// Encoding: JSON-safe, key order and aliasing explicit.
//
//   numbers (finite, not -0), strings, booleans, null  as themselves
//   undefined, NaN, -0, ±Infinity, bigints, holes      '‹undefined›', '‹NaN›', '‹-0›', '‹Infinity›', '‹7n›', '‹hole›'
//   functions                                          '‹fn name›'
//   arrays                                             arrays of encodings
//   Map / Set (plain or mapped)                        { '‹Map›': [[k, v], …] } / { '‹Set›': [k, …] }
//   other objects                                      { '‹Object›' | '‹ModelCounter›' | …: [[key, value], …] } in Object.keys order
//   an object met a second time                        { '‹ref›': path where it was first met }
//   the receiver itself (a method returning `this`)    '‹this›'
//
// Generated strings never contain '‹'.

/** A result that is already encoded (observations, iteration logs). */
class Encoded {
  constructor(readonly value: unknown) {}
}

function protoName(proto: object | null): string {
  if (proto === null) return 'null'
  if (proto === Object.prototype) return 'Object'
  if (proto === Array.prototype) return 'Array'
  if (proto === ModelCounter.prototype) return 'ModelCounter'
  const ctor = (proto as { constructor?: { name?: unknown } }).constructor
  return `other ${typeof ctor?.name === 'string' ? ctor.name : '?'}`
}

export function enc(v: unknown, self?: unknown, path = '$', seen = new Map<object, string>()): unknown {
  if (v instanceof Encoded) return v.value
  switch (typeof v) {
    case 'undefined':
      return '‹undefined›'
    case 'number':
      if (Number.isNaN(v)) return '‹NaN›'
      if (Object.is(v, -0)) return '‹-0›'
      if (!Number.isFinite(v)) return `‹${v}›`
      return v
    case 'bigint':
      return `‹${v}n›`
    case 'string':
    case 'boolean':
      return v
    case 'function':
      return `‹fn ${v.name}›`
    case 'symbol':
      return `‹${String(v)}›`
  }
  if (v === null) return null
  const o = v as object
  if (self !== undefined && o === self) return '‹this›'
  const first = seen.get(o)
  if (first !== undefined) return { '‹ref›': first }
  seen.set(o, path)
  if (Array.isArray(o)) {
    const out: unknown[] = []
    const length = o.length
    if (length > 100_000) throw new Error(`runaway array length ${length}`)
    for (let i = 0; i < length; i++) out.push(i in o ? enc(o[i], self, `${path}[${i}]`, seen) : '‹hole›')
    return out
  }
  if (o instanceof Map || o instanceof MappedMap) {
    const out: unknown[] = []
    let i = 0
    for (const [k, x] of o as Map<unknown, unknown>) {
      out.push([enc(k, self, `${path}.key${i}`, seen), enc(x, self, `${path}.get(${i})`, seen)])
      i++
    }
    return { '‹Map›': out }
  }
  if (o instanceof Set || o instanceof MappedSet) {
    const out: unknown[] = []
    let i = 0
    for (const k of o as Set<unknown>) out.push(enc(k, self, `${path}.elem${i++}`, seen))
    return { '‹Set›': out }
  }
  const rec = o as Record<string, unknown>
  return { [`‹${protoName(Object.getPrototypeOf(o) as object | null)}›`]: Object.keys(o).map((k) => [k, enc(rec[k], self, `${path}.${k}`, seen)]) }
}

/** The plain value a description stands for (a new one on each call). */
export function build(d: Desc): unknown {
  if (typeof d === 'string') {
    if (!d.startsWith('‹')) return d
    const inner = d.slice(1, -1)
    if (inner === 'undefined') return undefined
    if (inner === 'NaN') return NaN
    if (inner === '-0') return -0
    if (inner === 'Infinity') return Infinity
    if (inner === '-Infinity') return -Infinity
    if (inner.endsWith('n')) return BigInt(inner.slice(0, -1))
    throw new Error(`cannot build ${d}`)
  }
  if (Array.isArray(d)) {
    const out: unknown[] = []
    d.forEach((x, i) => {
      if (x !== '‹hole›') out[i] = build(x)
    })
    out.length = d.length
    return out
  }
  if (d !== null && typeof d === 'object') {
    const entries = (d as Record<string, unknown>)['‹Object›']
    if (!Array.isArray(entries)) throw new Error(`cannot build ${JSON.stringify(d)}`)
    const out: Record<string, unknown> = {}
    // defineProperty: a '__proto__' key would stay an ordinary key (none is generated).
    for (const [k, x] of entries as Array<[string, Desc]>) Object.defineProperty(out, k, { value: build(x), writable: true, enumerable: true, configurable: true })
    return out
  }
  return d
}

export function buildRoot(init: RootInit): Root {
  const ctr = new ModelCounter()
  ctr.count = init.ctr.count
  ctr.label = init.ctr.label
  ctr.items = init.ctr.items.map(build)
  return {
    arr: init.arr.map(build),
    obj: build({ '‹Object›': init.obj }) as Record<string, unknown>,
    map: new Map(init.map.map(([k, v]) => [build(k), build(v)])),
    set: new Set(init.set.map(build)),
    ctr,
  }
}

// ---------------------------------------------------------------------------------
// Outcomes

/** What an operation gave: its encoded value, or the kind of error it threw (`msg` is not compared). */
export type Outcome = { v: unknown } | { err: string; msg: string }

export function outcome(fn: () => unknown): Outcome {
  try {
    return { v: fn() }
  } catch (err) {
    const e = err as { name?: unknown; code?: unknown; message?: unknown; constructor?: { name?: string } }
    const name = typeof e?.code === 'string' ? `${e.constructor?.name ?? 'Error'} ${e.code}` : (e?.constructor?.name ?? typeof err)
    return { err: name, msg: String(e?.message ?? err).slice(0, 300) }
  }
}

/** The comparable part of an outcome (error messages differ between a Proxy and a plain value). */
export function comparable(o: Outcome): unknown {
  return 'err' in o ? { err: o.err } : o
}

// ---------------------------------------------------------------------------------
// The operations. Every function here runs unchanged on the plain model and on the
// mapped view; the generators in test/model.test.ts only produce arguments whose
// result JavaScript defines and the SDK promises to match (see the exclusions there).

type Fn = (t: any, ...args: any[]) => unknown

/** A total order over every element a generated array can hold (sort needs a consistent comparator). */
function rank(x: unknown): [number, number | string] {
  switch (typeof x) {
    case 'number':
      return Number.isNaN(x) ? [1, 0] : [0, x]
    case 'string':
      return [2, x]
    case 'boolean':
      return [3, x ? 1 : 0]
    case 'bigint':
      return [5, String(x)]
    case 'undefined':
      return [9, 0] // never compared: sort puts undefined last itself
  }
  if (x === null) return [4, 0]
  if (Array.isArray(x)) return [6, x.length]
  return [7, Object.keys(x as object).join(',')]
}

export function compareTotal(p: unknown, q: unknown): number {
  const [a, b] = [rank(p), rank(q)]
  if (a[0] !== b[0]) return a[0] - b[0]
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0
}

const mapFn = (x: unknown): unknown => (typeof x === 'number' ? x * 2 : x === null || typeof x !== 'object' ? typeof x : Array.isArray(x) ? 'array' : 'object')
const filterFn = (x: unknown): boolean => typeof x !== 'number'

/** Writes into a nested container (an element that is an array or object); primitives only, so no cycle can form. */
function mutateNested(e: unknown, d: Desc): unknown {
  if (e === null || typeof e !== 'object') return '‹leaf›'
  if (Array.isArray(e)) return e.push(build(d))
  ;(e as Record<string, unknown>).x = build(d)
  return Object.keys(e).join()
}

/** Observations of the whole value: each one's own outcome. */
function observe(t: any, kind: Kind): Encoded {
  const o: Record<string, Outcome> = {
    json: outcome(() => JSON.stringify(t)),
    keys: outcome(() => Object.keys(t)),
    str: outcome(() => String(t)),
    isArray: outcome(() => Array.isArray(t)),
    spread: outcome(() => enc(kind === 'arr' || kind === 'map' || kind === 'set' ? [...t] : { ...t })),
  }
  if (kind === 'arr' || kind === 'obj' || kind === 'ctr') {
    // Map and Set views are MappedMap / MappedSet, documented not to be instanceof Map / Set.
    o.proto = outcome(() => protoName(Object.getPrototypeOf(t) as object | null))
    o.ownKeys = outcome(() => Reflect.ownKeys(t).map(String))
    o.entries = outcome(() => enc(Object.entries(t)))
    o.values = outcome(() => enc(Object.values(t)))
  }
  if (kind === 'arr') {
    o.length = outcome(() => t.length)
    o.join = outcome(() => t.join('|'))
    o.forIn = outcome(() => {
      const keys: string[] = []
      for (const k in t) keys.push(k)
      return keys
    })
  }
  if (kind === 'map' || kind === 'set') o.size = outcome(() => t.size)
  if (kind === 'ctr') o.instanceOf = outcome(() => t instanceof ModelCounter)
  return new Encoded(o)
}

/**
 * Iterates a Map or Set, running `actions` ([visit number, 'del' | 'add', key, value])
 * at the given visit: what is visited is JavaScript's (entries deleted before their
 * visit are skipped, entries added during the walk are visited).
 */
function iterate(t: any, kind: 'map' | 'set', mode: string, actions: Array<[number, 'del' | 'add', Desc, Desc]>): Encoded {
  const visited: unknown[] = []
  let n = 0
  const visit = (k: unknown, v: unknown): void => {
    visited.push(enc([k, v])) // encoded now: a later action may remove it
    for (const [at, what, key, value] of actions) {
      if (at !== n) continue
      if (what === 'del') visited.push(['‹del›', enc(t.delete(build(key)))])
      else if (kind === 'map') t.set(build(key), build(value))
      else t.add(build(key))
    }
    if (++n > 200) throw new Error('runaway iteration')
  }
  switch (mode) {
    case 'forOf':
      for (const e of t) kind === 'map' ? visit(e[0], e[1]) : visit(e, '')
      break
    case 'forEach':
      t.forEach((v: unknown, k: unknown) => visit(k, v))
      break
    case 'keys':
      for (const k of t.keys()) visit(k, '')
      break
    case 'values':
      for (const v of t.values()) visit('', v)
      break
    case 'entries':
      for (const [k, v] of t.entries()) visit(k, v)
      break
  }
  return new Encoded(visited)
}

const own = (t: object, k: string): boolean => Object.prototype.hasOwnProperty.call(t, k)

export const operations: Record<Kind, Record<string, Fn>> = {
  arr: {
    get: (t, i: number) => t[i],
    set: (t, i: number, d: Desc) => {
      t[i] = build(d)
      return t.length
    },
    alias: (t, i: number, j: number) => {
      t[i] = t[j]
      return t.length
    },
    delete: (t, i: number) => delete t[i],
    has: (t, i: number) => i in t,
    own: (t, i: number) => own(t, String(i)),
    setLength: (t, n: unknown) => {
      t.length = n
      return t.length
    },
    push: (t, ds: Desc[]) => t.push(...ds.map(build)),
    pop: (t) => t.pop(),
    shift: (t) => t.shift(),
    unshift: (t, ds: Desc[]) => t.unshift(...ds.map(build)),
    splice: (t, start: number, count: number, ds: Desc[]) => t.splice(start, count, ...ds.map(build)),
    reverse: (t) => t.reverse(),
    sort: (t) => t.sort(compareTotal),
    sortDefault: (t) => t.sort(),
    fill: (t, d: Desc, start: number, end: number) => t.fill(build(d), start, end),
    copyWithin: (t, target: number, start: number, end: number) => t.copyWithin(target, start, end),
    indexOfOwn: (t, i: number) => t.indexOf(t[i]),
    lastIndexOfOwn: (t, i: number) => t.lastIndexOf(t[i]),
    includesOwn: (t, i: number) => t.includes(t[i]),
    indexOf: (t, d: Desc) => t.indexOf(build(d)),
    includes: (t, d: Desc) => t.includes(build(d)),
    same: (t, i: number) => t[i] === t[i],
    at: (t, i: number) => t.at(i),
    concat: (t, ds: Desc[]) => t.concat(ds.map(build)),
    slice: (t, start: number, end: number) => t.slice(start, end),
    join: (t, sep: string) => t.join(sep),
    map: (t) => t.map(mapFn),
    filter: (t) => t.filter(filterFn),
    find: (t) => t.find((x: unknown) => x !== null && typeof x === 'object'),
    nested: (t, i: number, d: Desc) => mutateNested(t[i], d),
    observe: (t) => observe(t, 'arr'),
  },
  obj: {
    get: (t, k: string) => t[k],
    set: (t, k: string, d: Desc) => {
      t[k] = build(d)
      return Object.keys(t).length
    },
    // Only an own value: an inherited one (toString) is a function, which cannot be stored.
    alias: (t, k: string, from: string) => {
      if (!own(t, from)) return '‹absent›'
      t[k] = t[from]
      return Object.keys(t).length
    },
    delete: (t, k: string) => delete t[k],
    has: (t, k: string) => k in t,
    own: (t, k: string) => own(t, k),
    same: (t, k: string) => t[k] === t[k],
    nested: (t, k: string, d: Desc) => mutateNested(own(t, k) ? t[k] : undefined, d),
    observe: (t) => observe(t, 'obj'),
  },
  map: {
    set: (t, k: Desc, d: Desc) => t.set(build(k), build(d)),
    get: (t, k: Desc) => t.get(build(k)),
    has: (t, k: Desc) => t.has(build(k)),
    delete: (t, k: Desc) => t.delete(build(k)),
    clear: (t) => t.clear(),
    size: (t) => t.size,
    same: (t, k: Desc) => t.get(build(k)) === t.get(build(k)),
    nested: (t, k: Desc, d: Desc) => mutateNested(t.get(build(k)), d),
    alias: (t, k: Desc, from: Desc) => (t.has(build(from)) ? t.set(build(k), t.get(build(from))) : '‹absent›'),
    iterate: (t, mode: string, actions: Array<[number, 'del' | 'add', Desc, Desc]>) => iterate(t, 'map', mode, actions),
    observe: (t) => observe(t, 'map'),
  },
  set: {
    add: (t, k: Desc) => t.add(build(k)),
    has: (t, k: Desc) => t.has(build(k)),
    delete: (t, k: Desc) => t.delete(build(k)),
    clear: (t) => t.clear(),
    size: (t) => t.size,
    iterate: (t, mode: string, actions: Array<[number, 'del' | 'add', Desc, Desc]>) => iterate(t, 'set', mode, actions),
    observe: (t) => observe(t, 'set'),
  },
  ctr: {
    get: (t, f: string) => t[f],
    set: (t, f: string, d: Desc) => {
      t[f] = build(d)
      return Object.keys(t).length
    },
    delete: (t, f: string) => delete t[f],
    increment: (t, by: number) => t.increment(by),
    pushItem: (t, d: Desc) => t.pushItem(build(d)),
    rename: (t, label: string) => t.rename(label),
    takeFirst: (t) => t.takeFirst(),
    item: (t, i: number) => t.items[i],
    same: (t) => t.items === t.items,
    observe: (t) => observe(t, 'ctr'),
  },
}

/** What one operation gave, and the whole root after it: as copied out (`snap`) and as read through the value itself (`live`). */
export interface StepResult {
  out: Outcome
  snap: Outcome
  live: Outcome
}

/**
 * Applies `op` to `root` and encodes what it returned and the whole root afterwards.
 * `copy` is tx.copy for the mapped value, the identity for the model.
 */
export function runStep(root: Root, op: Op, copy: (r: Root) => unknown): StepResult {
  const fn = operations[op.t]?.[op.op]
  if (fn === undefined) throw new Error(`unknown operation ${op.t}.${op.op}`)
  const out = outcome(() => {
    const target = root[op.t]
    return enc(fn(target, ...op.a), target)
  })
  const snap = outcome(() => enc(copy(root)))
  const live = copy === identity ? snap : outcome(() => enc(root))
  return { out, snap, live }
}

export const identity = <T>(r: T): T => r
