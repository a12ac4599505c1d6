// Browser entry for test/bridge.test.ts: bundled with esbuild for the browser platform
// (so a Node import anywhere in renderer/ fails the build) and run in the emulated main
// world. Exposes the renderer client and the shared schema as globalThis.IPO.
import * as renderer from 'interprocess-objects/renderer'
import * as schema from './bridge-schema'

;(globalThis as Record<string, unknown>).IPO = { ...renderer, ...schema }
