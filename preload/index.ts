// The preload side of the Electron integration. In your preload script:
//
//   import { exposeSharedObjects } from 'interprocess-objects/preload'
//   exposeSharedObjects()            // window.sharedObjects in the page
//
// The window must be created with host.webPreferences(…) from interprocess-objects/main:
// it sets sandbox: false (the preload loads the native addon), contextIsolation: true,
// nodeIntegration: false, and passes the grants on the command line.
import { encodeBridgeError } from '../common/bridge_protocol'
import { createBridge, type Bridge, type BridgeOptions } from './bridge'
import { grantsFromArgv, checkGrants } from './grants'
import { DEFAULT_BRIDGE_KEY, type BridgeApi, type DirectBridgeApi, type Grants } from '../common/bridge_protocol'

// Every name here is documented in docs/electron.md; nothing is re-exported wholesale
// (grant parsing and the command-line switch are the host's business, not the app's).
export { createBridge } from './bridge'
// The one error class: every failure here (and in the page) is a ShmError with a code.
export { ShmError } from '../common/errors'
export type { ShmErrorCode } from '../common/errors'
export type { Bridge, BridgeOptions } from './bridge'
export { BRIDGE_VERSION, DEFAULT_BRIDGE_KEY, parseBridgeError, regionBytes, regionCounter } from '../common/bridge_protocol'
export type {
  BridgeApi, BridgeErrorCode, BridgeInfo, BridgeScalar, ChannelAccess, DirectBridgeApi, Grants, MappedSegmentLike, RegionAccess, RegionGrant, RegionHandle, SegmentGrant,
} from '../common/bridge_protocol'

/** The part of Electron's contextBridge this module uses (inject a stand-in in tests). */
export interface ContextBridgeLike {
  exposeInMainWorld(apiKey: string, api: unknown): void
}

export interface ExposeOptions extends BridgeOptions {
  /** `window` key of the API (default 'sharedObjects'). */
  key?: string
  /** The grants; default: read from `argv` (the --ipo-grants= switch main added). */
  grants?: Grants
  /** Command line to read the grants from (default process.argv). */
  argv?: readonly string[]
  /** Electron's contextBridge (default require('electron').contextBridge). */
  contextBridge?: ContextBridgeLike
  /**
   * Direct mode only: the page's global object (default globalThis, which is the page's
   * window when contextIsolation is false).
   */
  global?: object
  /** Whether this preload runs with context isolation (default process.contextIsolated, Electron's flag). */
  contextIsolated?: boolean
}

export interface Exposed {
  readonly key: string
  readonly mode: 'bridge' | 'direct'
  /** The functions exposed (what the page sees, before contextBridge copies them). */
  readonly api: BridgeApi | DirectBridgeApi
  /** Unmaps the segments (also done when the page is hidden for good). */
  close(): void
}

/**
 * Opens the segments main granted this window (lazily, on first use) and exposes the
 * bridge functions to the page.
 *
 * - mode 'bridge' (default; contextIsolation: true): functions only, through
 *   contextBridge. Every value that crosses is a copy; shared memory never reaches the
 *   page. Struct and array accessors of interprocess-objects/renderer are built on
 *   these functions.
 * - mode 'direct' (main created the window with `direct: true`, contextIsolation:
 *   false): the page gets the real shared bytes (zero-copy). Any script in the page —
 *   including injected or third-party code — can then read and write the granted
 *   regions without checks, at any time, and sees Node's preload globals; use it only
 *   for trusted, local content.
 */
export function exposeSharedObjects(options: ExposeOptions = {}): Exposed {
  if (options === null || typeof options !== 'object') {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', `exposeSharedObjects(options) takes an options object such as { key: 'sharedObjects' }, got ${options === null ? 'null' : typeof options}`)
  }
  const key = options.key ?? DEFAULT_BRIDGE_KEY
  const grants = options.grants !== undefined ? checkGrants(options.grants) : grantsFromArgv(options.argv ?? process.argv)
  if (grants === undefined) {
    throw encodeBridgeError(
      'ERR_NOT_GRANTED',
      'exposeSharedObjects found no --ipo-grants= on the command line; create the BrowserWindow with webPreferences: host.webPreferences({ … }) from interprocess-objects/main (or pass { grants })',
    )
  }
  const mode = grants.mode ?? 'bridge'
  const isolated = options.contextIsolated ?? (process as { contextIsolated?: boolean }).contextIsolated
  if (mode === 'bridge' && isolated === false) {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', 'the window runs with contextIsolation: false; keep it on (the default) or grant direct mode in main with host.webPreferences(spec, { direct: true })')
  }
  if (mode === 'direct' && isolated === true) {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', 'direct mode hands the page real shared memory and needs contextIsolation: false, but this window is isolated; create it with host.webPreferences(spec, { direct: true })')
  }

  const bridge: Bridge = createBridge(grants, options)
  if (mode === 'bridge') {
    const cb = options.contextBridge ?? electronContextBridge()
    cb.exposeInMainWorld(key, bridge.api)
  } else {
    const target = (options.global ?? globalThis) as Record<string, unknown>
    if (key in target) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `window.${key} already exists; pick another key`)
    Object.defineProperty(target, key, { value: Object.freeze(bridge.api), enumerable: false, writable: false, configurable: false })
  }

  const g = (options.global ?? globalThis) as { addEventListener?: (type: string, fn: (e: { persisted?: boolean }) => void) => void }
  // pagehide with persisted=false: the page is going away for good (reload, navigation, close).
  g.addEventListener?.('pagehide', (e) => {
    if (e.persisted !== true) bridge.close()
  })
  return { key, mode, api: bridge.api, close: () => bridge.close() }
}

function electronContextBridge(): ContextBridgeLike {
  // Loaded lazily so this module imports (and is testable) without Electron.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const electron = require('electron') as typeof import('electron')
  if (typeof electron !== 'object' || electron.contextBridge === undefined) {
    throw encodeBridgeError('ERR_NO_BRIDGE', 'require("electron").contextBridge is unavailable: exposeSharedObjects must run in an Electron preload script (or pass { contextBridge })')
  }
  return electron.contextBridge
}
