// Browser entry for test/bridge-electron-stub.test.ts: the renderer client and the demo
// schema, as globalThis.IPO, for the emulated main world.
import * as renderer from 'interprocess-objects/renderer'
import * as schema from '../../demo/electron/schema'

;(globalThis as Record<string, unknown>).IPO = { ...renderer, ...schema }
