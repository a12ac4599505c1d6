// Live views over shared containers. Arrays and objects are Proxies (so `a[3]`,
// `o.x`, spread, JSON.stringify and Array.prototype methods work); Map and Set are
// classes with the Map/Set surface. Every access checks the turn first.
//
// What makes them behave like the plain value:
// - an array view's prototype is Array.prototype (its target's own prototype only adds
//   push/pop fast paths and the inspect hook), so String(a), `${a}`, a == '1,2', join,
//   valueOf, toLocaleString and hasOwnProperty are Array's and Object's own methods;
// - an object view lists its keys in JavaScript's order (array-index keys ascending,
//   then the others in insertion order), whatever order the table holds them in;
// - a write whose receiver is not the view (an object that inherits from it) goes to
//   that object, as it would with a plain prototype;
// - Map and Set views keep their handle in a private field: JSON.stringify gives {} and
//   Object.keys [] as for a plain Map or Set;
// - util.inspect (console.log) shows the contents, marked as mapped, through
//   Symbol.for('nodejs.util.inspect.custom'): nothing here imports Node.
import type { Heap } from '../heap'
import { ShmError } from '../errors'
import { MAPPED, type MappedHandle } from './mapped_handle'
import { forEachEntry, readKey, readSlot, registerViewFactories } from './decode'
import { Arr, Entry, ENTRY_SIZE, EntryFlag, Hash, Tag } from '../records'
import { arrayDelete, arrayGet, arrayHasIndex, arrayLength, arrayPop, arrayPush, arrayRewrite, arraySet, arraySetLength, arrayTokens, SlotToken, tokenValue } from './array'
import { assertWritable, entryValue, tableClear, tableCount, tableDelete, tableEntry, tableEpoch, tableGet, tableHas, tableSet } from './hash_table'
import { checkedTableUsed } from './bounds'

interface Target extends MappedHandle {
  /** For registered-class instances: the Instance record (what `put` shares), and its generation. */
  readonly shareRef: number
  readonly shareGeneration: number
  /** Array views answer MAPPED with their Target itself; this tells them apart. */
  readonly kind: 'array' | 'object'
  /** What Object.getPrototypeOf reports (objects: Object.prototype, null or a registered class's). */
  readonly proto: object | null
  /** The Proxy over the target: a write with another receiver goes to that receiver. */
  proxy: object
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

/**
 * Where a Proxy target keeps its Target: an own property, not a WeakMap (a WeakMap
 * entry whose value reaches its key through `proxy` costs the GC an ephemeron pass).
 * Configurable, so the views need not report it.
 */
const HANDLE = Symbol('interprocess-objects.handle')

/** Asked of a view, answers its Target (undefined for any other receiver): for the methods on the targets' prototypes. */
const TARGET = Symbol('interprocess-objects.target')

function targetOf(view: unknown): Target | undefined {
  if (view === null || (typeof view !== 'object' && typeof view !== 'function')) return undefined
  return (view as { [TARGET]?: Target })[TARGET]
}

function handleOf(target: object): Target {
  return (target as { [HANDLE]: Target })[HANDLE]
}

const keyName = (prop: string | symbol): string => (typeof prop === 'symbol' ? prop.toString() : JSON.stringify(prop))

/** What `a.length = value` does to a plain array: ToUint32, RangeError unless it equals ToNumber. */
function toArrayLength(value: unknown): number {
  // Unary plus is ToNumber: a BigInt or Symbol throws a TypeError (Number() would convert a BigInt).
  const number = +(value as number)
  const length = number >>> 0
  if (length !== number) throw new RangeError('Invalid array length')
  return length
}

function isAccessor(d: PropertyDescriptor): boolean {
  return 'get' in d || 'set' in d
}

/**
 * Only plain data properties (writable, enumerable, configurable) can be stored: the
 * records hold no attributes. A descriptor may leave out what the property has already.
 */
function assertPlainData(d: PropertyDescriptor, exists: boolean, what: string, prop: string | symbol): void {
  if (isAccessor(d) || (d.writable ?? exists) !== true || (d.enumerable ?? exists) !== true || (d.configurable ?? exists) !== true) {
    throw new ShmError(
      'ERR_UNSUPPORTED_TYPE',
      `Object.defineProperty(${what}, ${keyName(prop)}, …): a shared ${what} stores plain data properties only (writable, enumerable, configurable, no getter or setter); assign the value instead, or keep accessors on a registered class's prototype`,
    )
  }
}

/**
 * OrdinarySet's last step, for a write that reached a view through the prototype
 * chain of `receiver`: the property is made (or changed) on the receiver itself.
 */
function setOnReceiver(receiver: unknown, prop: string | symbol, value: unknown): boolean {
  if ((typeof receiver !== 'object' && typeof receiver !== 'function') || receiver === null) return false
  const existing = Reflect.getOwnPropertyDescriptor(receiver, prop)
  if (existing !== undefined) {
    if (isAccessor(existing) || existing.writable !== true) return false
    return Reflect.defineProperty(receiver, prop, { value })
  }
  return Reflect.defineProperty(receiver, prop, { value, writable: true, enumerable: true, configurable: true })
}

function fixedPrototype(what: string): ShmError {
  return new ShmError('ERR_UNSUPPORTED_TYPE', `Object.setPrototypeOf on a mapped ${what}: its prototype is part of what was stored and cannot change; put a plain copy (tx.copy) with the prototype you want`)
}

function notExtensible(what: string): ShmError {
  return new ShmError('ERR_UNSUPPORTED_TYPE', `Object.freeze / Object.seal / Object.preventExtensions on a mapped ${what}: a view cannot be frozen locally; store it read-only with tx.put(frozen(value))`)
}

// ---------------------------------------------------------------------------------
// util.inspect (console.log)

const INSPECT = Symbol.for('nodejs.util.inspect.custom')

interface InspectOptions {
  stylize?: (text: string, style: string) => string
  depth?: number | null
  maxArrayLength?: number | null
  [option: string]: unknown
}
type InspectFn = (value: unknown, options: InspectOptions) => string

/** Views being inspected now (one inspect call is synchronous): a cycle prints as [Circular]. */
const inspecting: MappedHandle[] = []

/** A class of that name, so that Node prints `MappedArray(3) [ … ]` for a plain stand-in. */
function displayClass<T extends new (...args: any[]) => object>(base: T, name: string): T {
  const cls = class extends base {}
  Object.defineProperty(cls, 'name', { value: name })
  return cls
}

const DisplayArray = displayClass(Array, 'MappedArray')
const DisplayMap = displayClass(Map, 'MappedMap')
const DisplaySet = displayClass(Set, 'MappedSet')
// The [Map] / [Set] that Node adds when the class name differs from the tag.
Object.defineProperty(DisplayMap.prototype, Symbol.toStringTag, { value: 'MappedMap', configurable: true })
Object.defineProperty(DisplaySet.prototype, Symbol.toStringTag, { value: 'MappedSet', configurable: true })
const displayObjects = new Map<string, new () => object>()

function displayObject(name: string): object {
  let cls = displayObjects.get(name)
  if (cls === undefined) displayObjects.set(name, (cls = displayClass(Object, name)))
  return Object.create(cls.prototype) as object
}

/**
 * Formats a view through a plain stand-in built by `build` (children stay views, so
 * they format themselves one level deeper). Outside a turn, past the depth limit, for
 * a cycle or a record that cannot be read, a short placeholder instead.
 */
function inspectView(handle: MappedHandle, label: string, depth: number | null, options: InspectOptions | undefined, inspect: InspectFn | undefined, build: (o: InspectOptions) => object): string {
  const o = options ?? {}
  const stylize = typeof o.stylize === 'function' ? o.stylize : (text: string) => text
  if (!handle.heap.inTurn) return stylize(`${label} <outside a turn>`, 'special')
  if (typeof inspect !== 'function') return stylize(`[${label}]`, 'special')
  if (typeof depth === 'number' && depth < 0) return stylize(`[${label}]`, 'special')
  if (inspecting.some((h) => h.heap === handle.heap && h.ref === handle.ref)) return stylize(`[Circular ${label}]`, 'special')
  inspecting.push(handle)
  try {
    return inspect(build(o), { ...o, depth })
  } catch (err) {
    if (err instanceof ShmError) return stylize(`${label} <${err.code}>`, 'special')
    throw err
  } finally {
    inspecting.pop()
  }
}

// ---------------------------------------------------------------------------------
// Arrays

/**
 * The target of an array view: a real Array (so Array.isArray is true) whose own
 * prototype adds push/pop fast paths and the inspect hook under Array.prototype.
 * The view reports Array.prototype as its prototype and Array as its constructor.
 */
class ArrayTarget extends Array<unknown> {}
Object.defineProperty(ArrayTarget.prototype, 'constructor', { value: Array, writable: true, configurable: true })

function arrayHandleOf(value: unknown): Target | undefined {
  const h = targetOf(value)
  return h !== undefined && h.kind === 'array' ? h : undefined
}

Object.defineProperties(ArrayTarget.prototype, {
  // One allocation and one undo scope for all the values (Array.prototype.push would
  // set them one by one, then the length).
  push: {
    value: function push(this: unknown[], ...values: unknown[]): number {
      const h = arrayHandleOf(this)
      if (h === undefined) return Array.prototype.push.apply(this, values)
      h.heap.checkView(h.ref, h.generation)
      return arrayPush(h.heap, h.ref, values)
    },
    writable: true,
    configurable: true,
  },
  pop: {
    value: function pop(this: unknown[]): unknown {
      const h = arrayHandleOf(this)
      if (h === undefined) return Array.prototype.pop.call(this)
      h.heap.checkView(h.ref, h.generation)
      return arrayPop(h.heap, h.ref)
    },
    writable: true,
    configurable: true,
  },
  // The reordering methods run on a plain array of slot tokens and change the shared
  // array once, at the end (arrayRewrite): a value that cannot be stored leaves it as it
  // was, moved elements keep their records, and fill(obj) stores obj once.
  shift: rewriting('shift', 'element', (items) => items.shift()),
  unshift: rewriting('unshift', 'result', (items, args) => items.unshift(...args)),
  splice: rewriting('splice', 'elements', (items, args) => (items.splice as (...a: unknown[]) => unknown[])(...args)),
  reverse: rewriting('reverse', 'this', (items) => items.reverse()),
  fill: rewriting('fill', 'this', (items, args) => (items.fill as (...a: unknown[]) => unknown[])(...args)),
  copyWithin: rewriting('copyWithin', 'this', (items, args) => (items.copyWithin as (...a: unknown[]) => unknown[])(...args)),
  sort: {
    value: function sort(this: unknown[], compare?: (a: unknown, b: unknown) => number): unknown[] {
      const h = arrayHandleOf(this)
      if (h === undefined) return Array.prototype.sort.call(this, compare)
      if (compare !== undefined && typeof compare !== 'function') throw new TypeError('The comparison function must be either a function or undefined')
      rewrite(h, (items) => void sortTokens(h.heap, items, compare))
      return this
    },
    writable: true,
    configurable: true,
  },
  [INSPECT]: {
    value: function inspectArray(this: unknown, depth: number | null, options?: InspectOptions, inspect?: InspectFn): string {
      const h = arrayHandleOf(this)
      if (h === undefined) return '[MappedArray]'
      return inspectView(h, 'MappedArray', depth, options, inspect, (o) => {
        const length = arrayLength(h.heap, h.ref)
        const out = new DisplayArray(length)
        // Node prints maxArrayLength elements (100 by default): read no more than that.
        const shown = Math.min(length, typeof o.maxArrayLength === 'number' ? Math.max(0, o.maxArrayLength) : length)
        for (let i = 0; i < shown; i++) if (arrayHasIndex(h.heap, h.ref, i)) out[i] = arrayGet(h.heap, h.ref, i, true)
        return out
      })
    },
    configurable: true,
  },
})

/**
 * Runs `fn` on the array's elements as slot tokens, then stores the result in one step.
 * Refused (nothing changed) if `fn` called back into the shared array and resized it.
 */
function rewrite<R>(h: Target, fn: (items: unknown[]) => R): R {
  h.heap.checkView(h.ref, h.generation)
  const heap = h.heap
  const items: unknown[] = arrayTokens(heap, h.ref)
  const before = arrayIdentity(heap, h.ref)
  const result = fn(items)
  if (arrayIdentity(heap, h.ref) !== before) {
    throw new ShmError('ERR_INVALID_ARGUMENT', 'a mapped array was resized by a callback of its own sort (or other reordering method) while that ran: nothing was changed; do not change the array inside the comparator')
  }
  arrayRewrite(heap, h.ref, items)
  return result
}

/** The array's items block and length: what a callback must not change under rewrite. */
function arrayIdentity(heap: Heap, ref: number): string {
  return `${heap.u32[(ref + Arr.Items) >>> 2]!}:${heap.u32[(ref + Arr.Length) >>> 2]!}`
}

/**
 * A reordering Array.prototype method for the array target: `run` applies the native
 * method to the token array; the caller gets what the native method returns — the
 * removed element(s) as values (read before their slots are released), the array
 * itself, or the result as it is (a length).
 */
function rewriting(name: string, returns: 'element' | 'elements' | 'this' | 'result', run: (items: unknown[], args: unknown[]) => unknown): PropertyDescriptor {
  const native = (Array.prototype as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!
  const method = function (this: unknown[], ...args: unknown[]): unknown {
    const h = arrayHandleOf(this)
    if (h === undefined) return native.apply(this, args)
    const heap = h.heap
    const valueOf = (t: unknown): unknown => (t instanceof SlotToken ? tokenValue(heap, t) : t)
    const result = rewrite(h, (items) => {
      const out = run(items, args)
      return returns === 'element' ? valueOf(out) : returns === 'elements' ? (out as unknown[]).map(valueOf) : out
    })
    return returns === 'this' ? this : result
  }
  Object.defineProperty(method, 'name', { value: name })
  return { value: method, writable: true, configurable: true }
}

/**
 * Array.prototype.sort's order on tokens: defined values by `compare` (or by their
 * strings), then undefined values, then holes (sort drops holes to the end).
 */
function sortTokens(heap: Heap, items: unknown[], compare: ((a: unknown, b: unknown) => number) | undefined): void {
  const defined: Array<{ token: SlotToken; value: unknown; text?: string }> = []
  const undefinedValues: SlotToken[] = []
  for (let i = 0; i < items.length; i++) {
    if (!(i in items)) continue
    const token = items[i] as SlotToken
    const value = tokenValue(heap, token)
    if (value === undefined) undefinedValues.push(token)
    else defined.push({ token, value })
  }
  if (compare === undefined) {
    for (const d of defined) d.text = String(d.value)
    defined.sort((a, b) => (a.text! < b.text! ? -1 : a.text! > b.text! ? 1 : 0))
  } else {
    defined.sort((a, b) => {
      const v = +compare(a.value, b.value)
      return v !== v ? 0 : v
    })
  }
  const length = items.length
  items.length = 0
  for (const d of defined) items.push(d.token)
  for (const t of undefinedValues) items.push(t)
  items.length = length
}

function namedArrayProperty(prop: string | symbol): ShmError {
  return new ShmError(
    'ERR_UNSUPPORTED_TYPE',
    `a mapped array stores its elements (indices 0 to 2^32 - 2) and its length only, not property ${keyName(prop)}: keep other data next to it, e.g. tx.put({ items: [...], ${typeof prop === 'string' && /^[A-Za-z_$][\w$]*$/.test(prop) ? prop : 'extra'}: … })`,
  )
}

const arrayHandler: ProxyHandler<unknown[]> = {
  get(target, prop, receiver) {
    const h = handleOf(target)
    if (prop === MAPPED || prop === TARGET) return receiver === h.proxy ? h : undefined
    if (prop === 'then' && !h.heap.inTurn) return undefined // never a thenable: see notThenable
    h.heap.checkView(h.ref, h.generation)
    const i = indexOf(prop)
    if (i >= 0) return arrayGet(h.heap, h.ref, i, true)
    if (prop === 'length') return arrayLength(h.heap, h.ref)
    return Reflect.get(target, prop, receiver)
  },
  set(target, prop, value, receiver) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    const i = indexOf(prop)
    if (receiver !== h.proxy) {
      // Reached through the prototype chain of another object: that object gets the property.
      if (prop === 'length' || (i >= 0 && arrayHasIndex(h.heap, h.ref, i))) return setOnReceiver(receiver, prop, value)
      return Reflect.set(Array.prototype, prop, value, receiver)
    }
    if (i >= 0) arraySet(h.heap, h.ref, i, value)
    else if (prop === 'length') arraySetLength(h.heap, h.ref, toArrayLength(value))
    else throw namedArrayProperty(prop)
    return true
  },
  has(target, prop) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    const i = indexOf(prop)
    if (i >= 0) return arrayHasIndex(h.heap, h.ref, i)
    return Reflect.has(target, prop)
  },
  deleteProperty(target, prop) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    const i = indexOf(prop)
    if (i >= 0) arrayDelete(h.heap, h.ref, i)
    // length cannot be deleted (as on a plain array); no other own property exists.
    return prop !== 'length'
  },
  ownKeys(target) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    const keys: string[] = []
    const length = arrayLength(h.heap, h.ref)
    for (let i = 0; i < length; i++) if (arrayHasIndex(h.heap, h.ref, i)) keys.push(String(i))
    keys.push('length')
    return keys
  },
  getOwnPropertyDescriptor(target, prop) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    if (prop === 'length') return { value: arrayLength(h.heap, h.ref), writable: true, enumerable: false, configurable: false }
    const i = indexOf(prop)
    if (i >= 0 && arrayHasIndex(h.heap, h.ref, i)) return { value: arrayGet(h.heap, h.ref, i, true), writable: true, enumerable: true, configurable: true }
    return undefined
  },
  defineProperty(target, prop, d) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    if (prop === 'length') {
      if (isAccessor(d) || d.writable === false || d.enumerable === true || d.configurable === true) {
        throw new ShmError('ERR_UNSUPPORTED_TYPE', 'Object.defineProperty(array, "length", …): the length of a mapped array stays writable; set a new length only')
      }
      if ('value' in d) arraySetLength(h.heap, h.ref, toArrayLength(d.value))
      return true
    }
    const i = indexOf(prop)
    if (i < 0) throw namedArrayProperty(prop)
    const exists = arrayHasIndex(h.heap, h.ref, i)
    assertPlainData(d, exists, 'array', prop)
    if ('value' in d || !exists) arraySet(h.heap, h.ref, i, d.value)
    return true
  },
  getPrototypeOf() {
    return Array.prototype
  },
  setPrototypeOf() {
    throw fixedPrototype('array')
  },
  preventExtensions() {
    throw notExtensible('array')
  },
}

export function mapArray(heap: Heap, ref: number): unknown[] {
  const target = new ArrayTarget() as ArrayTarget & { [HANDLE]: Target }
  const generation = heap.generationOf(ref)
  const h: Target = { heap, ref, generation, shareRef: ref, shareGeneration: generation, kind: 'array', proto: Array.prototype, proxy: target }
  target[HANDLE] = h
  return (h.proxy = new Proxy(target, arrayHandler)) as unknown[]
}

// ---------------------------------------------------------------------------------
// Objects

/** Keys in JavaScript's order: array indices ascending, then the rest as inserted. */
function orderedKeys(heap: Heap, ref: number): string[] {
  const keys: string[] = []
  let indices: string[] | undefined
  forEachEntry(heap, ref, (k) => {
    const key = String(readSlot(heap, k, false))
    if (indexOf(key) >= 0) (indices ??= []).push(key)
    else keys.push(key)
  })
  if (indices === undefined) return keys
  indices.sort((a, b) => indexOf(a) - indexOf(b))
  return indices.concat(keys)
}

/** The target of an object view: no prototype chain of its own (the view reports `proto`), only the inspect hook. */
const objectTargetProto = Object.create(null, {
  [INSPECT]: {
    value: function inspectObject(this: object, depth: number | null, options?: InspectOptions, inspect?: InspectFn): string {
      const target = targetOf(this)
      if (target === undefined || target.kind !== 'object') return '[MappedObject]'
      const ctor = target.proto === null || target.proto === Object.prototype ? undefined : (target.proto as { constructor?: { name?: unknown } }).constructor?.name
      const label = typeof ctor === 'string' && ctor !== '' ? `Mapped<${ctor}>` : 'MappedObject'
      return inspectView(target, label, depth, options, inspect, () => {
        const out = displayObject(label) as Record<string, unknown>
        for (const key of orderedKeys(target.heap, target.ref)) {
          const e = tableEntry(target.heap, target.ref, key)
          Object.defineProperty(out, key, { value: e === 0 ? undefined : entryValue(target.heap, e, true), writable: true, enumerable: true, configurable: true })
        }
        return out
      })
    },
    configurable: true,
  },
}) as object

/** A getter or setter of a registered class's prototype chain (what `this.x = v` must run). */
function accessorOf(proto: object | null, prop: string): PropertyDescriptor | undefined {
  for (let p = proto; p !== null && p !== Object.prototype; p = Reflect.getPrototypeOf(p)) {
    const d = Reflect.getOwnPropertyDescriptor(p, prop)
    if (d !== undefined) return isAccessor(d) ? d : undefined
  }
  return undefined
}

/**
 * "then" asked outside a turn: every promise resolution asks for it (await, a resolve
 * function, yield in an async generator), so a mapped value handed out by a promise,
 * say a message received by reference, is asked while no turn is held. A segment holds
 * no functions, so a mapped object or array is never a thenable: no record is read and
 * nothing is thrown (a registered class's own prototype still answers for an Instance).
 */
function notThenable(proto: object | null, receiver: unknown): unknown {
  return proto === null ? undefined : Reflect.get(proto, 'then', receiver)
}

const objectHandler: ProxyHandler<object> = {
  get(target, prop, receiver) {
    const h = handleOf(target)
    if (prop === MAPPED || prop === TARGET) {
      if (receiver !== h.proxy) return undefined
      // A registered-class instance shares its Instance record, not the fields table.
      return prop === TARGET || h.shareRef === h.ref ? h : { heap: h.heap, ref: h.shareRef, generation: h.shareGeneration }
    }
    if (typeof prop === 'string') {
      if (prop === 'then' && !h.heap.inTurn) return notThenable(h.proto, receiver)
      h.heap.checkView(h.ref, h.generation)
      const e = tableEntry(h.heap, h.ref, prop)
      if (e !== 0) return entryValue(h.heap, e, true)
    }
    return h.proto === null ? undefined : Reflect.get(h.proto, prop, receiver)
  },
  set(target, prop, value, receiver) {
    const h = handleOf(target)
    if (receiver !== h.proxy) {
      // Reached through the prototype chain of another object: that object gets the property.
      if (typeof prop === 'string') {
        h.heap.checkView(h.ref, h.generation)
        if (tableHas(h.heap, h.ref, prop)) return setOnReceiver(receiver, prop, value)
      }
      return h.proto === null ? setOnReceiver(receiver, prop, value) : Reflect.set(h.proto, prop, value, receiver)
    }
    if (typeof prop !== 'string') {
      throw new ShmError('ERR_UNSUPPORTED_TYPE', `a mapped object stores string keys only, not ${keyName(prop)}: symbol-keyed properties cannot be shared`)
    }
    h.heap.checkView(h.ref, h.generation)
    assertWritable(h.heap, h.ref, 'object')
    if (h.proto !== null && h.proto !== Object.prototype && tableEntry(h.heap, h.ref, prop) === 0) {
      // A registered class's accessor runs, with the view as `this`, as on a plain instance.
      const accessor = accessorOf(h.proto, prop)
      if (accessor !== undefined) {
        if (accessor.set === undefined) return false
        Reflect.apply(accessor.set, receiver, [value])
        return true
      }
    }
    tableSet(h.heap, h.ref, prop, value, Tag.Object)
    return true
  },
  has(target, prop) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    return (typeof prop === 'string' && tableHas(h.heap, h.ref, prop)) || (h.proto !== null && Reflect.has(h.proto, prop))
  },
  deleteProperty(target, prop) {
    const h = handleOf(target)
    if (typeof prop !== 'string') return true
    h.heap.checkView(h.ref, h.generation)
    if (!tableHas(h.heap, h.ref, prop)) return true
    assertWritable(h.heap, h.ref, 'object')
    tableDelete(h.heap, h.ref, prop)
    return true
  },
  ownKeys(target) {
    const h = handleOf(target)
    h.heap.checkView(h.ref, h.generation)
    return orderedKeys(h.heap, h.ref)
  },
  getOwnPropertyDescriptor(target, prop) {
    const h = handleOf(target)
    if (typeof prop !== 'string') return undefined
    h.heap.checkView(h.ref, h.generation)
    const e = tableEntry(h.heap, h.ref, prop)
    if (e === 0) return undefined
    return { value: entryValue(h.heap, e, true), writable: true, enumerable: true, configurable: true }
  },
  defineProperty(target, prop, d) {
    const h = handleOf(target)
    if (typeof prop !== 'string') {
      throw new ShmError('ERR_UNSUPPORTED_TYPE', `a mapped object stores string keys only, not ${keyName(prop)}: symbol-keyed properties cannot be shared`)
    }
    h.heap.checkView(h.ref, h.generation)
    const exists = tableHas(h.heap, h.ref, prop)
    assertPlainData(d, exists, 'object', prop)
    if ('value' in d || !exists) {
      assertWritable(h.heap, h.ref, 'object')
      tableSet(h.heap, h.ref, prop, d.value, Tag.Object)
    }
    return true
  },
  getPrototypeOf(target) {
    return handleOf(target).proto
  },
  setPrototypeOf() {
    throw fixedPrototype('object')
  },
  preventExtensions() {
    throw notExtensible('object')
  },
}

/**
 * A plain object (`proto` Object.prototype or null), or a registered class instance
 * whose methods run against the shared fields: `this.x = 1` inside a method writes
 * to the segment.
 */
export function mapObject(heap: Heap, ref: number, proto: object | null, instanceRef = ref): object {
  const target = Object.create(objectTargetProto) as { [HANDLE]: Target }
  const h: Target = { heap, ref, generation: heap.generationOf(ref), shareRef: instanceRef, shareGeneration: heap.generationOf(instanceRef), kind: 'object', proto, proxy: target }
  target[HANDLE] = h
  return (h.proxy = new Proxy(target, objectHandler))
}

// ---------------------------------------------------------------------------------
// Map and Set

/** The handle of a Map/Set view (a private field: nothing of it is enumerable or serialized). */
const TABLE: unique symbol = Symbol('interprocess-objects.table')

abstract class MappedTable<K> {
  readonly #handle: MappedHandle

  constructor(heap: Heap, ref: number) {
    this.#handle = { heap, ref, generation: heap.generationOf(ref) }
  }

  /** @internal The record behind the view (what `put` of the view shares). */
  get [MAPPED](): MappedHandle | undefined {
    return #handle in this ? this.#handle : undefined
  }

  /** @internal Throws a TypeError for another receiver, as Map.prototype methods do. */
  protected get [TABLE](): MappedHandle {
    return this.#handle
  }

  get size(): number {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    return tableCount(heap, ref)
  }

  has(key: K): boolean {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    return tableHas(heap, ref, key)
  }

  delete(key: K): boolean {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    assertWritable(heap, ref, this.what)
    return tableDelete(heap, ref, key)
  }

  clear(): void {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    assertWritable(heap, ref, this.what)
    tableClear(heap, ref)
  }

  protected abstract get what(): 'Map' | 'Set'

  /**
   * The live entries, as JavaScript walks a Map: an entry added during the walk is
   * visited (a key deleted and added again too, as a new entry), one deleted before its
   * turn is not, and nothing is read before its step (so a value deleted meanwhile is
   * never read). The position is an entry index; when the entries move (a compacting
   * resize or a reset: Hash.Epoch changes), the walk resumes at the first entry whose
   * insertion number (Entry.Seq) is past the last one it visited. Keys are copied,
   * values mapped.
   */
  protected *walk(): Generator<[K, unknown], undefined, undefined> {
    const { heap, ref, generation } = this[TABLE]
    let position = 0
    let lastSeq = 0
    let epoch = tableEpoch(heap, ref)
    for (;;) {
      heap.checkView(ref, generation)
      const used = checkedTableUsed(heap, ref)
      const entries = heap.u32[(ref + Hash.Entries) >>> 2]!
      if (epoch !== tableEpoch(heap, ref)) {
        epoch = tableEpoch(heap, ref)
        position = 0
        while (position < used && heap.u32[(entries + position * ENTRY_SIZE + Entry.Seq) >>> 2]! <= lastSeq) position++
      }
      while (position < used && (heap.u32[(entries + position * ENTRY_SIZE + Entry.Flags) >>> 2]! & EntryFlag.Deleted) !== 0) position++
      if (position >= used) return undefined
      const e = entries + position * ENTRY_SIZE
      position++
      lastSeq = heap.u32[(e + Entry.Seq) >>> 2]!
      yield [readKey(heap, e + Entry.Key) as K, readSlot(heap, e + Entry.Value, true)]
    }
  }
}

/** Each step of `from`, through `fn`, one step at a time (the walk stays live). */
function* mapIterator<A, B>(from: Iterator<A>, fn: (a: A) => B): Generator<B, undefined, undefined> {
  for (let step = from.next(); step.done !== true; step = from.next()) yield fn(step.value)
  return undefined
}

/** Map and Set treat -0 and +0 as one key and keep +0. */
const normalizeKey = <K>(key: K): K => (key === 0 ? (0 as K) : key)

export class MappedMap<K = unknown, V = unknown> extends MappedTable<K> implements Iterable<[K, V]> {
  protected get what(): 'Map' {
    return 'Map'
  }

  get [Symbol.toStringTag](): string {
    return 'Map'
  }

  get(key: K): V | undefined {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    return tableGet(heap, ref, key, true) as V | undefined
  }

  set(key: K, value: V): this {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    assertWritable(heap, ref, 'Map')
    tableSet(heap, ref, normalizeKey(key), value, Tag.Map)
    return this
  }

  entries(): IterableIterator<[K, V]> {
    return this.walk() as IterableIterator<[K, V]>
  }

  keys(): IterableIterator<K> {
    return mapIterator(this.walk(), ([k]) => k)
  }

  values(): IterableIterator<V> {
    return mapIterator(this.walk(), ([, v]) => v as V)
  }

  forEach(fn: (value: V, key: K, map: this) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this)
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()
  }
}

export class MappedSet<T = unknown> extends MappedTable<T> implements Iterable<T> {
  protected get what(): 'Set' {
    return 'Set'
  }

  get [Symbol.toStringTag](): string {
    return 'Set'
  }

  add(value: T): this {
    const { heap, ref, generation } = this[TABLE]
    heap.checkView(ref, generation)
    assertWritable(heap, ref, 'Set')
    tableSet(heap, ref, normalizeKey(value), undefined, Tag.Set)
    return this
  }

  values(): IterableIterator<T> {
    return mapIterator(this.walk(), ([k]) => k)
  }

  keys(): IterableIterator<T> {
    return this.values()
  }

  entries(): IterableIterator<[T, T]> {
    return mapIterator(this.walk(), ([k]): [T, T] => [k, k])
  }

  forEach(fn: (value: T, key: T, set: this) => void, thisArg?: unknown): void {
    for (const v of this.values()) fn.call(thisArg, v, v, this)
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.values()
  }
}

/** The inspect hook of Map and Set views: the entries through a plain stand-in built by `fill`. */
function defineTableInspect(cls: typeof MappedMap | typeof MappedSet, label: string, fill: (h: MappedHandle) => object): void {
  Object.defineProperty(cls.prototype, INSPECT, {
    value: function inspectTable(this: unknown, depth: number | null, options?: InspectOptions, inspect?: InspectFn): string {
      const h = this instanceof cls ? this[MAPPED] : undefined
      if (h === undefined) return `[${label}]`
      return inspectView(h, label, depth, options, inspect, () => fill(h))
    },
    configurable: true,
  })
}

defineTableInspect(MappedMap, 'MappedMap', (h) => {
  const out = new DisplayMap()
  forEachEntry(h.heap, h.ref, (k, v) => out.set(readKey(h.heap, k), readSlot(h.heap, v, true)))
  return out
})

defineTableInspect(MappedSet, 'MappedSet', (h) => {
  const out = new DisplaySet()
  forEachEntry(h.heap, h.ref, (k) => out.add(readKey(h.heap, k)))
  return out
})

export function mapTable(heap: Heap, ref: number, tag: Tag.Map | Tag.Set): MappedMap | MappedSet {
  return tag === Tag.Map ? new MappedMap(heap, ref) : new MappedSet(heap, ref)
}

registerViewFactories({ mapArray, mapObject, mapTable })
