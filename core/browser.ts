// What a web page gets from `import … from 'interprocess-objects'`: the package's
// "browser" export condition points here (esbuild, Vite and webpack pick it when they
// bundle for the web). The schema language and the error class work — no Node import,
// no addon — so the one schema file that main, workers and the preload import can be
// imported by renderer code too. Segments themselves are reached through
// interprocess-objects/renderer.
//
// The Node-only names exist here too, as stand-ins that throw on use: a bundler that
// picks this entry for Node code by mistake (Vite without resolve.conditions ['node'])
// then fails with a message that says so, instead of an `undefined` far from the cause.
import { ShmError } from './errors'

export { ShmError }
export type { ShmErrorCode } from './errors'
export { defineStruct, StructArray, utf8, array } from '../common/struct_views'
export type { StructType, StructInstance, StructPlain, StructInit, Schema, TurnGuard } from '../common/struct_views'

function nodeOnly(name: string): unknown {
  const fail = (): never => {
    throw new ShmError(
      'ERR_ADDON_NOT_FOUND',
      `${name} needs Node and the native addon, but this bundle resolved 'interprocess-objects' through its "browser" export condition. ` +
        "Bundle main, preload and worker code for Node (esbuild: platform 'node'; Vite: resolve.conditions ['node'], as Electron Forge sets; webpack: target 'node' or 'electron-main'); in a page, use interprocess-objects/renderer.",
    )
  }
  return new Proxy(function nodeOnlyStandIn() {}, {
    // Symbols (inspection, interop checks) and `name` answer quietly; anything else is a use.
    get: (target, key) => (typeof key === 'symbol' || key === 'name' ? (key === 'name' ? name : Reflect.get(target, key)) : fail()),
    apply: fail,
    construct: fail,
  })
}

export const SharedMemory = nodeOnly('SharedMemory')
export const Turn = nodeOnly('Turn')
export const MappedMap = nodeOnly('MappedMap')
export const MappedSet = nodeOnly('MappedSet')
export const registerClass = nodeOnly('registerClass')
export const frozen = nodeOnly('frozen')
export const enableV8Fallback = nodeOnly('enableV8Fallback')
