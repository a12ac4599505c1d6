// What the codec may recognize beyond plain data: registered classes, struct
// types, values marked frozen, and the optional v8.serialize fallback.
import { ShmError } from '../errors'
import { STRUCT_SOURCE, structTypeByFingerprint, type StructSource } from '../../common/struct_views'

type Constructor = abstract new (...args: never[]) => object

const nameByClass = new Map<Constructor, string>()
const classByName = new Map<string, Constructor>()

/**
 * Lets instances of `ctor` be shared: their own enumerable fields are stored and
 * the prototype is restored on read, in every process that registered the class
 * under the same name (default: `ctor.name`; pass a name when code is minified).
 */
export function registerClass(ctor: Constructor, name: string = ctor.name): void {
  if (typeof ctor !== 'function' || typeof ctor.prototype !== 'object') {
    throw new ShmError('ERR_INVALID_ARGUMENT', 'registerClass expects a class (a constructor function)')
  }
  if (!name) throw new ShmError('ERR_INVALID_ARGUMENT', 'registerClass: anonymous classes need an explicit name')
  const other = classByName.get(name)
  if (other !== undefined && other !== ctor) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `registerClass: another class is already registered as "${name}"; pass a distinct name`)
  }
  nameByClass.set(ctor, name)
  classByName.set(name, ctor)
}

export function classNameOf(value: object): string | undefined {
  return nameByClass.get(value.constructor as Constructor)
}

export function prototypeOfClass(name: string): object | undefined {
  return classByName.get(name)?.prototype as object | undefined
}

const frozenRequests = new WeakSet<object>()

/**
 * Marks an Array, Map, Set or plain object to be stored read-only: mutation through
 * its mapped view throws, and readers can treat it as a snapshot (the seed's
 * FastLimitedDict / FastLimitedSet).
 */
export function frozen<T extends object>(value: T): T {
  frozenRequests.add(value)
  return value
}

export function isFrozenRequest(value: object): boolean {
  return frozenRequests.has(value)
}

/** The struct view's schema fingerprint and bytes, when `value` is a struct view. */
export function structOf(value: object): StructSource | undefined {
  return (value as { [STRUCT_SOURCE]?: () => StructSource })[STRUCT_SOURCE]?.()
}

export { structTypeByFingerprint as structTypeOf }

let v8Enabled = false

/** Stores values the codec does not know with v8.serialize (Node processes only; off by default). */
export function enableV8Fallback(enabled = true): void {
  if (enabled && v8Module() === undefined) {
    throw new ShmError('ERR_UNSUPPORTED_TYPE', 'the v8.serialize fallback needs Node (process.getBuiltinModule); it is not available here')
  }
  v8Enabled = enabled
}

interface V8Module {
  serialize(value: unknown): Uint8Array
  deserialize(bytes: Uint8Array): unknown
}

function v8Module(): V8Module | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process
  return proc?.getBuiltinModule?.('node:v8') as V8Module | undefined
}

export function v8Serialize(value: object): Uint8Array | undefined {
  return v8Enabled ? v8Module()!.serialize(value) : undefined
}

export function v8Deserialize(bytes: Uint8Array): unknown {
  const v8 = v8Module()
  if (v8 === undefined) throw new ShmError('ERR_UNSUPPORTED_TYPE', 'this value was stored with v8.serialize and can only be read in a Node process')
  return v8.deserialize(bytes)
}
