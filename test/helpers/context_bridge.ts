// An emulation of Electron's contextBridge on Node `vm` contexts, so the real preload
// code (exposeSharedObjects) and the real renderer code can be tested without Electron.
//
//   isolated world = this Node realm, where the preload module runs (as in Electron with
//                    sandbox: false, the preload has Node);
//   main world     = a separate vm context with browser-like globals, where the page's
//                    code (the renderer bundle) runs.
//
// Copy rules follow Electron's documentation and source:
//   - docs/api/context-bridge.md, "Parameter / Error / Return Type support"
//     (https://www.electronjs.org/docs/latest/api/context-bridge): functions are
//     proxied, everything else is copied; prototypes of objects are dropped; Promises
//     are proxied; errors are copied; cloneable types follow the structured clone
//     algorithm; Symbols cannot be copied and are dropped; the exposed API is deep-frozen.
//   - shell/renderer/api/electron_api_context_bridge.cc (PassValueToOtherContext,
//     ProxyFunctionWrapper, CreateProxyForAPI, ExposeAPIInWorld), which shows the details
//     the table leaves out: primitives (string, number, boolean, bigint, null,
//     undefined) pass as they are; a native Error is rebuilt as `new Error(message)` in
//     the other world (name, stack and any `code` are lost); an exception thrown by a
//     proxied function reaches the caller as `new Error(exception.message)`; plain
//     arrays and plain objects (own enumerable keys, getters evaluated) are copied member
//     by member, so functions inside them are proxied too; everything else goes through
//     the V8 serializer, which copies an ArrayBuffer or a TypedArray's *whole* buffer,
//     throws DataCloneError for a SharedArrayBuffer, a Proxy, a function inside a
//     cloned value, a WeakMap…; a function sent back to the world it came from is
//     unwrapped to the original; nesting deeper than 1000 throws.
// Where the two disagree (the source passes Symbols through, the table says dropped),
// the documented behaviour is emulated.
import * as vm from 'node:vm'
import { types } from 'node:util'

/** The intrinsics of one realm that copies are built from. */
interface Realm {
  readonly name: 'isolated' | 'main'
  readonly global: Record<string, unknown> & typeof globalThis
  /** Wraps a host function `call(args)` in a function that belongs to this realm. */
  readonly makeFunction: (call: (args: ArrayLike<unknown>) => unknown) => (...args: unknown[]) => unknown
}

export interface ContextBridgeEmulation {
  /** The page's context: run renderer code here. */
  readonly mainWorld: vm.Context
  /** The page's global object (`window`). */
  readonly window: Record<string, unknown>
  /** What exposeSharedObjects({ contextBridge }) takes. */
  readonly contextBridge: { exposeInMainWorld(apiKey: string, api: unknown): void }
  /** Runs code in the main world and returns its completion value. */
  run<T = unknown>(code: string, filename?: string): T
  /** Copies a value from the preload to the page, as contextBridge does for return values. */
  toMainWorld<T = unknown>(value: T): unknown
  /** Copies a value from the page to the preload, as contextBridge does for arguments. */
  toIsolatedWorld<T = unknown>(value: T): unknown
  /** Proxied function calls made so far (either direction). */
  readonly calls: number
}

const MAX_RECURSION = 1000
const UNKNOWN_EXCEPTION = 'An unknown exception occurred in the isolated context, an error occurred but a valid exception was not thrown.'

function dataCloneError(realm: Realm, what: string): Error {
  const err = new realm.global.Error(`${what} could not be cloned.`)
  err.name = 'DataCloneError'
  return err
}

/** V8's IsPlainObject in the bridge: an object none of whose special kinds apply. */
function isPlainObject(v: object): boolean {
  return !(
    types.isDate(v) || types.isArgumentsObject(v) || types.isBoxedPrimitive(v) || types.isNativeError(v) || types.isRegExp(v) ||
    types.isPromise(v) || types.isMap(v) || types.isSet(v) || types.isMapIterator(v) || types.isSetIterator(v) ||
    types.isWeakMap(v) || types.isWeakSet(v) || types.isArrayBuffer(v) || types.isArrayBufferView(v) || Array.isArray(v) ||
    types.isSharedArrayBuffer(v) || types.isProxy(v) || types.isModuleNamespaceObject(v)
  )
}

export function createContextBridgeEmulation(): ContextBridgeEmulation {
  const sandbox: Record<string, unknown> = {
    // Web APIs a page has (the renderer bundle uses TextEncoder/TextDecoder and timers).
    console,
    TextEncoder,
    TextDecoder,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    queueMicrotask,
    performance,
  }
  const mainWorld = vm.createContext(sandbox, { name: 'main world' })
  vm.runInContext('globalThis.window = globalThis; globalThis.self = globalThis', mainWorld)

  const isolated: Realm = {
    name: 'isolated',
    global: globalThis as Realm['global'],
    makeFunction: (call) => function (...args: unknown[]) { return call(args) },
  }
  const main: Realm = {
    name: 'main',
    global: vm.runInContext('globalThis', mainWorld) as Realm['global'],
    makeFunction: vm.runInContext('(call) => function () { return call(arguments) }', mainWorld) as Realm['makeFunction'],
  }

  let calls = 0
  /** Proxy function → the function it stands for and the realm that function belongs to. */
  const originals = new WeakMap<object, { fn: (...a: unknown[]) => unknown; realm: Realm }>()

  function proxyFunction(fn: (...a: unknown[]) => unknown, owner: Realm, caller: Realm): (...a: unknown[]) => unknown {
    const proxy = caller.makeFunction((args) => {
      calls++
      const cache = new Map<unknown, unknown>()
      const passed: unknown[] = []
      for (let i = 0; i < args.length; i++) passed.push(pass(args[i], caller, owner, cache, 0, caller))
      let result: unknown
      try {
        // Electron calls the original with the function itself as `this`.
        result = fn.apply(fn, passed)
      } catch (err) {
        const message = err !== null && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string' ? (err as { message: string }).message : UNKNOWN_EXCEPTION
        throw new caller.global.Error(message)
      }
      return pass(result, owner, caller, cache, 0, caller)
    })
    originals.set(proxy, { fn, realm: owner })
    return proxy
  }

  /** PassValueToOtherContext. `errorRealm` is where copy failures are thrown. */
  function pass(value: unknown, from: Realm, to: Realm, cache: Map<unknown, unknown>, depth: number, errorRealm: Realm): unknown {
    if (depth >= MAX_RECURSION) {
      throw new errorRealm.global.TypeError('Electron contextBridge recursion depth exceeded.  Nested objects deeper than 1000 are not supported.')
    }
    const t = typeof value
    if (value === null || t === 'undefined' || t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint') return value
    if (t === 'symbol') return undefined // documented: "Symbols cannot be copied across contexts so they are dropped"
    if (cache.has(value)) return cache.get(value)

    if (t === 'function') {
      const original = originals.get(value as object)
      if (original !== undefined && original.realm === to) return original.fn
      const proxy = proxyFunction(value as (...a: unknown[]) => unknown, from, to)
      cache.set(value, proxy)
      return proxy
    }
    const obj = value as object
    if (types.isPromise(obj)) {
      const proxied = new to.global.Promise((resolve, reject) => {
        ;(obj as Promise<unknown>).then(
          (v) => resolve(pass(v, from, to, new Map(), 0, to)),
          (e) => reject(pass(e, from, to, new Map(), 0, to)),
        )
      })
      cache.set(value, proxied)
      return proxied
    }
    if (types.isNativeError(obj)) {
      const message = (obj as Error).message
      return new to.global.Error(typeof message === 'string' ? message : String(obj))
    }
    if (Array.isArray(obj) && !types.isProxy(obj)) {
      const out = new to.global.Array(obj.length)
      cache.set(value, out)
      for (let i = 0; i < obj.length; i++) out[i] = pass(obj[i], from, to, cache, depth + 1, errorRealm)
      return out
    }
    if (isPlainObject(obj)) {
      // CreateProxyForAPI: a new object of the destination realm (the prototype is
      // dropped), own enumerable properties copied one by one (getters are called).
      const out = new to.global.Object() as Record<string, unknown>
      cache.set(value, out)
      for (const key of Object.keys(obj)) out[key] = pass((obj as Record<string, unknown>)[key], from, to, cache, depth + 1, errorRealm)
      return out
    }
    const cloned = structuredCopy(obj, to, new Map(), errorRealm)
    cache.set(value, cloned)
    return cloned
  }

  /** The V8 serializer's round trip, building the copy in `to`. */
  function structuredCopy(value: unknown, to: Realm, memo: Map<unknown, unknown>, errorRealm: Realm): unknown {
    const t = typeof value
    if (value === null || t === 'undefined' || t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint') return value
    if (t === 'symbol') throw dataCloneError(errorRealm, 'Symbol()')
    if (t === 'function') throw dataCloneError(errorRealm, String(value).slice(0, 40))
    if (memo.has(value)) return memo.get(value)
    const obj = value as object
    const G = to.global
    if (types.isProxy(obj)) throw dataCloneError(errorRealm, '#<Object>')
    if (types.isSharedArrayBuffer(obj)) throw dataCloneError(errorRealm, '#<SharedArrayBuffer>')
    if (types.isArrayBuffer(obj)) {
      const copy = new G.ArrayBuffer(obj.byteLength)
      new G.Uint8Array(copy).set(new Uint8Array(obj))
      memo.set(value, copy)
      return copy
    }
    if (types.isArrayBufferView(obj)) {
      const view = obj as ArrayBufferView
      if (types.isSharedArrayBuffer(view.buffer)) throw dataCloneError(errorRealm, '#<SharedArrayBuffer>')
      // The serializer writes the view's whole backing buffer, then the view over it.
      const buffer = structuredCopy(view.buffer, to, memo, errorRealm) as ArrayBuffer
      // "Uint8Array", "Float64Array"… (a Node Buffer reports Uint8Array, as the serializer sees it).
      const name = types.isDataView(view) ? 'DataView' : Object.prototype.toString.call(view).slice(8, -1)
      const Ctor = G[name as 'Uint8Array'] as unknown as new (b: ArrayBuffer, o: number, l: number) => ArrayBufferView
      const length = types.isDataView(view) ? view.byteLength : (view as Uint8Array).length
      const copy = new Ctor(buffer, view.byteOffset, length)
      memo.set(value, copy)
      return copy
    }
    if (types.isDate(obj)) return new G.Date((obj as Date).getTime())
    if (types.isRegExp(obj)) return new G.RegExp((obj as RegExp).source, (obj as RegExp).flags)
    if (types.isBoxedPrimitive(obj)) return G.Object((obj as { valueOf(): unknown }).valueOf())
    if (types.isNativeError(obj)) {
      const e = new G.Error((obj as Error).message)
      e.name = (obj as Error).name
      return e
    }
    if (types.isMap(obj)) {
      const out = new G.Map()
      memo.set(value, out)
      for (const [k, v] of obj as Map<unknown, unknown>) out.set(structuredCopy(k, to, memo, errorRealm), structuredCopy(v, to, memo, errorRealm))
      return out
    }
    if (types.isSet(obj)) {
      const out = new G.Set()
      memo.set(value, out)
      for (const v of obj as Set<unknown>) out.add(structuredCopy(v, to, memo, errorRealm))
      return out
    }
    if (Array.isArray(obj)) {
      const out = new G.Array(obj.length)
      memo.set(value, out)
      for (let i = 0; i < obj.length; i++) if (i in obj) out[i] = structuredCopy(obj[i], to, memo, errorRealm)
      return out
    }
    if (types.isPromise(obj) || types.isWeakMap(obj) || types.isWeakSet(obj) || types.isMapIterator(obj) || types.isSetIterator(obj) || types.isModuleNamespaceObject(obj)) {
      throw dataCloneError(errorRealm, `#<${Object.prototype.toString.call(obj).slice(8, -1)}>`)
    }
    const out = new G.Object() as Record<string, unknown>
    memo.set(value, out)
    for (const key of Object.keys(obj)) out[key] = structuredCopy((obj as Record<string, unknown>)[key], to, memo, errorRealm)
    return out
  }

  function deepFreeze(obj: object, seen = new Set<object>()): void {
    if (seen.has(obj)) return
    seen.add(obj)
    for (const key of Object.getOwnPropertyNames(obj)) {
      const child = (obj as Record<string, unknown>)[key]
      if (child !== null && (typeof child === 'object' || typeof child === 'function') && !types.isTypedArray(child)) deepFreeze(child, seen)
    }
    Object.freeze(obj)
  }

  const contextBridge = {
    exposeInMainWorld(apiKey: string, api: unknown): void {
      if (Object.prototype.hasOwnProperty.call(main.global, apiKey) || apiKey in main.global) {
        throw new Error('Cannot bind an API on top of an existing property on the window object')
      }
      const proxy = pass(api, isolated, main, new Map(), 0, isolated)
      if (proxy !== null && typeof proxy === 'object' && !types.isTypedArray(proxy)) deepFreeze(proxy)
      Object.defineProperty(main.global, apiKey, { value: proxy, writable: false, configurable: false, enumerable: true })
    },
  }

  return {
    mainWorld,
    window: main.global,
    contextBridge,
    run: <T>(code: string, filename?: string) => vm.runInContext(code, mainWorld, filename === undefined ? undefined : { filename }) as T,
    toMainWorld: (value) => pass(value, isolated, main, new Map(), 0, isolated),
    toIsolatedWorld: (value) => pass(value, main, isolated, new Map(), 0, main),
    get calls() {
      return calls
    },
  }
}
