// Live views over shared containers. Arrays and objects are Proxies (so `a[3]`,
// `o.x`, spread, JSON.stringify and Array.prototype methods work); Map and Set are
// classes with the Map/Set surface. Every access checks the turn first.
import type { Heap } from '../heap'
import { MAPPED, type MappedHandle } from '../codec/mapped_handle'
import { forEachEntry, readSlot } from '../codec/decode'
import { Tag } from '../records'
import { arrayGet, arrayHasIndex, arrayLength, arrayPop, arrayPush, arraySet, arraySetLength } from './array'
import { assertWritable, entryValue, tableClear, tableCount, tableDelete, tableEntry, tableGet, tableHas, tableSet } from './hash_table'

interface Target extends MappedHandle {
  /** For registered-class instances: the Instance record (what `put` shares). */
  readonly shareRef: number
}

/** The array index a property key names, or -1 ('01', '1.0', '-1' are not indices). */
function indexOf(prop: string | symbol): number {
  if (typeof prop !== 'string' || prop.length === 0 || prop.length > 10) return -1
  const first = prop.charCodeAt(0)
  if (first < 48 || first > 57 || (first === 48 && prop.length > 1)) return -1
  let n = 0
  for (let i = 0; i < prop.length; i++) {
    const c = prop.charCodeAt(i) - 48
    if (c < 0 || c > 9) return -1
    n = n * 10 + c
  }
  return n < 0xffffffff ? n : -1
}

const handles = new WeakMap<object, Target>()

function handleOf(target: object): Target {
  return handles.get(target)!
}

const arrayMethods: Record<string, (h: Target, ...args: unknown[]) => unknown> = {
  push: (h, ...values) => arrayPush(h.heap, h.ref, values),
  pop: (h) => arrayPop(h.heap, h.ref),
}

const arrayHandler: ProxyHandler<unknown[]> = {
  get(target, prop, receiver) {
    const h = handleOf(target)
    if (prop === MAPPED) return h
    h.heap.checkTurn()
    const i = indexOf(prop)
    if (i >= 0) return arrayGet(h.heap, h.ref, i, true)
    if (prop === 'length') return arrayLength(h.heap, h.ref)
    const own = typeof prop === 'string' ? arrayMethods[prop] : undefined
    if (own !== undefined) return (...args: unknown[]) => own(h, ...args)
    return Reflect.get(target, prop, receiver)
  },
  set(target, prop, value) {
    const h = handleOf(target)
    h.heap.checkTurn()
    const i = indexOf(prop)
    if (i >= 0) arraySet(h.heap, h.ref, i, value)
    else if (prop === 'length') arraySetLength(h.heap, h.ref, value as number)
    else return false
    return true
  },
  has(target, prop) {
    const h = handleOf(target)
    h.heap.checkTurn()
    const i = indexOf(prop)
    if (i >= 0) return arrayHasIndex(h.heap, h.ref, i)
    return Reflect.has(target, prop)
  },
  deleteProperty(target, prop) {
    const h = handleOf(target)
    h.heap.checkTurn()
    const i = indexOf(prop)
    if (i < 0) return false
    if (i < arrayLength(h.heap, h.ref)) arraySet(h.heap, h.ref, i, undefined)
    return true
  },
  ownKeys(target) {
    const h = handleOf(target)
    h.heap.checkTurn()
    const keys: string[] = []
    const length = arrayLength(h.heap, h.ref)
    for (let i = 0; i < length; i++) if (arrayHasIndex(h.heap, h.ref, i)) keys.push(String(i))
    keys.push('length')
    return keys
  },
  getOwnPropertyDescriptor(target, prop) {
    const h = handleOf(target)
    h.heap.checkTurn()
    if (prop === 'length') return { value: arrayLength(h.heap, h.ref), writable: true, enumerable: false, configurable: false }
    const i = indexOf(prop)
    if (i >= 0 && arrayHasIndex(h.heap, h.ref, i)) return { value: arrayGet(h.heap, h.ref, i, true), writable: true, enumerable: true, configurable: true }
    return undefined
  },
  defineProperty() {
    return false
  },
}

export function mapArray(heap: Heap, ref: number): unknown[] {
  const target: unknown[] = []
  handles.set(target, { heap, ref, shareRef: ref })
  return new Proxy(target, arrayHandler)
}

const objectHandler: ProxyHandler<object> = {
  get(target, prop, receiver) {
    const h = handleOf(target)
    if (prop === MAPPED) return { heap: h.heap, ref: h.shareRef }
    if (typeof prop === 'string') {
      h.heap.checkTurn()
      const e = tableEntry(h.heap, h.ref, prop)
      if (e !== 0) return entryValue(h.heap, e, true)
    }
    return Reflect.get(target, prop, receiver)
  },
  set(target, prop, value) {
    const h = handleOf(target)
    if (typeof prop !== 'string') return false
    h.heap.checkTurn()
    assertWritable(h.heap, h.ref, 'object')
    tableSet(h.heap, h.ref, prop, value, Tag.Object)
    return true
  },
  has(target, prop) {
    const h = handleOf(target)
    h.heap.checkTurn()
    return (typeof prop === 'string' && tableHas(h.heap, h.ref, prop)) || Reflect.has(target, prop)
  },
  deleteProperty(target, prop) {
    const h = handleOf(target)
    if (typeof prop !== 'string') return true
    h.heap.checkTurn()
    assertWritable(h.heap, h.ref, 'object')
    tableDelete(h.heap, h.ref, prop)
    return true
  },
  ownKeys(target) {
    const h = handleOf(target)
    h.heap.checkTurn()
    const keys: string[] = []
    forEachEntry(h.heap, h.ref, (k) => keys.push(String(readSlot(h.heap, k, false))))
    return keys
  },
  getOwnPropertyDescriptor(target, prop) {
    const h = handleOf(target)
    if (typeof prop !== 'string') return undefined
    h.heap.checkTurn()
    const e = tableEntry(h.heap, h.ref, prop)
    if (e === 0) return undefined
    return { value: entryValue(h.heap, e, true), writable: true, enumerable: true, configurable: true }
  },
  defineProperty(target, prop, descriptor) {
    if (typeof prop !== 'string' || !('value' in descriptor)) return false
    const h = handleOf(target)
    h.heap.checkTurn()
    assertWritable(h.heap, h.ref, 'object')
    tableSet(h.heap, h.ref, prop, descriptor.value, Tag.Object)
    return true
  },
}

/**
 * A plain object (`proto` Object.prototype or null), or a registered class instance
 * whose methods run against the shared fields: `this.x = 1` inside a method writes
 * to the segment.
 */
export function mapObject(heap: Heap, ref: number, proto: object | null, instanceRef = ref): object {
  const target = Object.create(proto) as object
  handles.set(target, { heap, ref, shareRef: instanceRef })
  return new Proxy(target, objectHandler)
}

abstract class MappedTable<K> {
  readonly [MAPPED]: MappedHandle
  protected readonly heap: Heap
  protected readonly ref: number

  constructor(heap: Heap, ref: number) {
    this.heap = heap
    this.ref = ref
    this[MAPPED] = { heap, ref }
  }

  get size(): number {
    this.heap.checkTurn()
    return tableCount(this.heap, this.ref)
  }

  has(key: K): boolean {
    this.heap.checkTurn()
    return tableHas(this.heap, this.ref, key)
  }

  delete(key: K): boolean {
    this.heap.checkTurn()
    assertWritable(this.heap, this.ref, this.what)
    return tableDelete(this.heap, this.ref, key)
  }

  clear(): void {
    this.heap.checkTurn()
    assertWritable(this.heap, this.ref, this.what)
    tableClear(this.heap, this.ref)
  }

  protected abstract readonly what: string

  /** Entries read now (keys copied, values mapped): later mutation does not disturb the loop. */
  protected snapshot(): Array<[K, unknown]> {
    this.heap.checkTurn()
    const out: Array<[K, unknown]> = []
    forEachEntry(this.heap, this.ref, (k, v) => out.push([readSlot(this.heap, k, false) as K, readSlot(this.heap, v, true)]))
    return out
  }
}

export class MappedMap<K = unknown, V = unknown> extends MappedTable<K> implements Iterable<[K, V]> {
  protected readonly what = 'Map'
  readonly [Symbol.toStringTag] = 'Map'

  get(key: K): V | undefined {
    this.heap.checkTurn()
    return tableGet(this.heap, this.ref, key, true) as V | undefined
  }

  set(key: K, value: V): this {
    this.heap.checkTurn()
    assertWritable(this.heap, this.ref, this.what)
    tableSet(this.heap, this.ref, key, value, Tag.Map)
    return this
  }

  entries(): IterableIterator<[K, V]> {
    return (this.snapshot() as Array<[K, V]>)[Symbol.iterator]()
  }

  keys(): IterableIterator<K> {
    return this.snapshot().map(([k]) => k)[Symbol.iterator]()
  }

  values(): IterableIterator<V> {
    return this.snapshot().map(([, v]) => v as V)[Symbol.iterator]()
  }

  forEach(fn: (value: V, key: K, map: this) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this)
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()
  }
}

export class MappedSet<T = unknown> extends MappedTable<T> implements Iterable<T> {
  protected readonly what = 'Set'
  readonly [Symbol.toStringTag] = 'Set'

  add(value: T): this {
    this.heap.checkTurn()
    assertWritable(this.heap, this.ref, this.what)
    tableSet(this.heap, this.ref, value, undefined, Tag.Set)
    return this
  }

  values(): IterableIterator<T> {
    return this.snapshot().map(([k]) => k)[Symbol.iterator]()
  }

  keys(): IterableIterator<T> {
    return this.values()
  }

  entries(): IterableIterator<[T, T]> {
    return this.snapshot().map(([k]): [T, T] => [k, k])[Symbol.iterator]()
  }

  forEach(fn: (value: T, key: T, set: this) => void): void {
    for (const v of this.values()) fn(v, v, this)
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.values()
  }
}

export function mapTable(heap: Heap, ref: number, tag: Tag.Map | Tag.Set): MappedMap | MappedSet {
  return tag === Tag.Map ? new MappedMap(heap, ref) : new MappedSet(heap, ref)
}
