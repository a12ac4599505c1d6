// Main-process helpers for the Electron integration: create the app's segments, carve
// named regions out of them, tell each window's preload what it may open, and unlink
// everything on quit.
//
// How a window learns its grants: main appends `--ipo-grants=<JSON>` to the window's
// `webPreferences.additionalArguments`, which Electron appends to `process.argv` of the
// renderer process, where the preload reads it synchronously before the page runs. No
// IPC round trip, nothing to await before contextBridge.exposeInMainWorld, and a page
// cannot change it. The JSON names segments and byte ranges, no secrets: segment names
// only keep renderers honest, they are not OS-level access control (any process of the
// same user can open a POSIX shared-memory name).
//
// Electron is imported for its types only: the logic works on plain objects and is
// unit-tested under Node (test/bridge.test.ts).
import { SharedMemory } from '../core/shared_memory'
import { ShmError } from '../common/errors'
import { segmentView } from '../common/segment_view'
import {
  BRIDGE_VERSION,
  GRANTS_SWITCH,
  REGION_HEADER_BYTES,
  type ChannelAccess,
  type Grants,
  type RegionAccess,
  type RegionGrant,
  type SegmentGrant,
} from '../common/bridge_protocol'

export interface SegmentLayout {
  /** Segment size in bytes (rounded up to pages). Leave room for the regions, channels and messages. */
  size: number
  /** A fixed SharedMemory name; default: prefix + process id + random, so app instances never collide. */
  name?: string
  prefault?: boolean
  /** Regions to allocate from the segment's heap: name → byte length. */
  regions?: { readonly [region: string]: number }
  /** Channel names windows may be granted (channels are created on first use). */
  channels?: readonly string[]
}

export interface SharedObjectsHostOptions {
  segments: { readonly [alias: string]: SegmentLayout }
  /** Prefix of generated segment names (default 'ipo'). */
  prefix?: string
  /** Creates a segment (default SharedMemory.create); inject for tests. */
  create?: (options: { name: string; size: number; prefault?: boolean }) => SharedMemory
}

/** What one window may open: per segment alias, regions and channels with their access. */
export interface GrantSpec {
  readonly [alias: string]: {
    readonly regions?: { readonly [region: string]: RegionAccess }
    readonly channels?: { readonly [channel: string]: ChannelAccess }
  }
}

export interface WindowOptions {
  /**
   * Direct mode: the page gets the real shared TypedArrays (zero-copy) and runs with
   * contextIsolation: false. Any script in the page can then read and write the granted
   * regions and reach the preload's Node globals. For trusted local content only.
   */
  direct?: boolean
}

/** A region as main sees it: live views over the segment. */
export interface HostRegion {
  readonly segment: string
  readonly name: string
  /** Segment offset of the first data byte (16-byte aligned). */
  readonly offset: number
  readonly byteLength: number
  /** The data, in shared memory. */
  readonly bytes: Uint8Array
  /** One Int32 over the region's change counter. */
  readonly counterWord: Int32Array
  /** Adds 1 to the change counter; returns the new value. Renderers compare it each frame. */
  bump(): number
  counter(): number
}

/**
 * The webPreferences fields the host reads from your base settings (pass Electron's
 * `WebPreferences`; the published types need no `electron` package).
 */
export interface BaseWebPreferences {
  nodeIntegration?: boolean
  additionalArguments?: string[]
}

/** What `webPreferences()` sets on top of your base settings. */
export interface BridgeWebPreferences {
  sandbox: false
  nodeIntegration: false
  contextIsolation: boolean
  additionalArguments: string[]
}

/** Your base settings with the bridge's on top: pass it to `new BrowserWindow({ webPreferences })`. */
export type WindowWebPreferences<P extends object> = Omit<P, keyof BridgeWebPreferences> & BridgeWebPreferences

/** The part of Electron's `app` used for cleanup. */
export interface QuitEvents {
  on(event: 'will-quit', listener: () => void): unknown
}

/** Grants JSON larger than this is refused: command lines are limited (32 767 characters on Windows). */
const MAX_GRANTS_CHARS = 16 * 1024

let generated = 0

function generatedName(prefix: string): string {
  const rand = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0')
  return `${prefix}-${process.pid.toString(36)}-${rand}${(generated++).toString(36)}`.slice(0, 26)
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k)
}

/**
 * Owns the app's segments in the main process.
 *
 * ```ts
 * const host = SharedObjectsHost.create({ segments: { frames: { size: 64 << 20, regions: { pixels: W * H * 4 }, channels: ['input'] } } })
 * host.closeOnQuit(app)
 * new BrowserWindow({ webPreferences: host.webPreferences({ frames: { regions: { pixels: 'read' }, channels: { input: 'put' } } }, { preload }) })
 * ```
 */
export class SharedObjectsHost {
  private readonly segmentsByAlias = new Map<string, SharedMemory>()
  private readonly layouts: { readonly [alias: string]: SegmentLayout }
  private readonly regionGrants = new Map<string, Map<string, RegionGrant>>()
  private readonly hostRegions = new Map<string, HostRegion>()
  private isClosed = false

  private constructor(layouts: { readonly [alias: string]: SegmentLayout }) {
    this.layouts = layouts
  }

  static create(options: SharedObjectsHostOptions): SharedObjectsHost {
    if (typeof options !== 'object' || options === null || typeof options.segments !== 'object' || options.segments === null) {
      throw new ShmError('ERR_INVALID_ARGUMENT', 'SharedObjectsHost.create({ segments: { alias: { size, regions?, channels? } } }): segments is required')
    }
    const prefix = options.prefix ?? 'ipo'
    const create = options.create ?? ((o) => SharedMemory.create(o))
    const host = new SharedObjectsHost(options.segments)
    try {
      for (const [alias, layout] of Object.entries(options.segments)) host.createSegment(alias, layout, prefix, create)
    } catch (err) {
      host.close()
      throw err
    }
    return host
  }

  private createSegment(alias: string, layout: SegmentLayout, prefix: string, create: NonNullable<SharedObjectsHostOptions['create']>): void {
    if (typeof layout?.size !== 'number') throw new ShmError('ERR_INVALID_ARGUMENT', `segment "${alias}": size (bytes) is required`)
    const shm = create({ name: layout.name ?? generatedName(prefix), size: layout.size, prefault: layout.prefault })
    this.segmentsByAlias.set(alias, shm)
    const grants = new Map<string, RegionGrant>()
    this.regionGrants.set(alias, grants)
    for (const [name, byteLength] of Object.entries(layout.regions ?? {})) {
      if (!Number.isInteger(byteLength) || byteLength <= 0) {
        throw new ShmError('ERR_INVALID_ARGUMENT', `region ${alias}/${name}: byte length must be a positive integer, got ${String(byteLength)}`)
      }
      // Allocated from the segment's heap, so regions never overlap the allocator's own
      // records or channel messages. The block lives as long as the segment.
      const block = shm.access((tx) => tx.put(new Uint8Array(REGION_HEADER_BYTES + byteLength)))
      const counterOffset = block.byteOffset - shm.bytes.byteOffset
      const offset = counterOffset + REGION_HEADER_BYTES
      const g: RegionGrant = { offset, byteLength, counterOffset, access: 'readwrite' }
      grants.set(name, g)
      const counterWord = segmentView(shm, Int32Array, counterOffset, 1)
      this.hostRegions.set(`${alias}\u0000${name}`, {
        segment: alias,
        name,
        offset,
        byteLength,
        bytes: segmentView(shm, Uint8Array, offset, byteLength),
        counterWord,
        bump: () => (Atomics.add(counterWord, 0, 1) + 1) >>> 0,
        counter: () => Atomics.load(counterWord, 0) >>> 0,
      })
    }
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** Segment aliases, in declaration order. */
  get aliases(): string[] {
    return [...this.segmentsByAlias.keys()]
  }

  segment(alias: string): SharedMemory {
    const shm = this.segmentsByAlias.get(alias)
    if (shm === undefined) throw new ShmError('ERR_INVALID_ARGUMENT', `no segment "${alias}"; this host has ${this.aliases.map((a) => `"${a}"`).join(', ')}`)
    return shm
  }

  region(alias: string, name: string): HostRegion {
    this.segment(alias)
    const r = this.hostRegions.get(`${alias}\u0000${name}`)
    if (r === undefined) throw new ShmError('ERR_INVALID_ARGUMENT', `segment "${alias}" has no region "${name}"; declare it in segments.${alias}.regions`)
    return r
  }

  /**
   * Grants for one window: only what `spec` names, checked against the layout (a
   * misspelt region or channel throws here, in main, not later in the page).
   */
  grants(spec: GrantSpec, options: WindowOptions = {}): Grants {
    if (this.isClosed) throw new ShmError('ERR_SHM_CLOSED', 'the host was closed')
    const segments: { [alias: string]: SegmentGrant } = {}
    for (const [alias, want] of Object.entries(spec)) {
      const shm = this.segment(alias)
      const layout = this.layouts[alias]!
      const regions: { [name: string]: RegionGrant } = {}
      for (const [name, access] of Object.entries(want.regions ?? {})) {
        const g = this.regionGrants.get(alias)!.get(name)
        if (g === undefined) throw new ShmError('ERR_INVALID_ARGUMENT', `grant ${alias}/${name}: segment "${alias}" has no region "${name}"`)
        if (access !== 'read' && access !== 'readwrite') throw new ShmError('ERR_INVALID_ARGUMENT', `grant ${alias}/${name}: access must be 'read' or 'readwrite', got ${JSON.stringify(access)}`)
        regions[name] = { ...g, access }
      }
      const channels: { [name: string]: ChannelAccess } = {}
      for (const [name, access] of Object.entries(want.channels ?? {})) {
        if (!(layout.channels ?? []).includes(name)) throw new ShmError('ERR_INVALID_ARGUMENT', `grant ${alias}:${name}: channel "${name}" is not declared in segments.${alias}.channels`)
        if (access !== 'put' && access !== 'take' && access !== 'both') throw new ShmError('ERR_INVALID_ARGUMENT', `grant ${alias}:${name}: access must be 'put', 'take' or 'both', got ${JSON.stringify(access)}`)
        channels[name] = access
      }
      segments[alias] = { name: shm.name, regions, channels }
    }
    const grants: Grants = { v: BRIDGE_VERSION, segments }
    if (options.direct === true) grants.mode = 'direct'
    return grants
  }

  /** Everything, read-write: for utility processes and workers that main trusts. */
  manifest(): Grants {
    const spec: { [alias: string]: { regions: { [r: string]: RegionAccess }; channels: { [c: string]: ChannelAccess } } } = {}
    for (const alias of this.aliases) {
      spec[alias] = {
        regions: Object.fromEntries([...this.regionGrants.get(alias)!.keys()].map((r) => [r, 'readwrite' as const])),
        channels: Object.fromEntries((this.layouts[alias]!.channels ?? []).map((c) => [c, 'both' as const])),
      }
    }
    return this.grants(spec)
  }

  /** The command-line switch carrying `grants` (appended to additionalArguments by webPreferences). */
  static grantsArgument(grants: Grants): string {
    const arg = GRANTS_SWITCH + JSON.stringify(grants)
    if (arg.length > MAX_GRANTS_CHARS) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `the grants for this window take ${arg.length} characters of command line (limit ${MAX_GRANTS_CHARS}); grant fewer regions or channels, or use shorter names`)
    }
    return arg
  }

  /**
   * webPreferences for a window that may open what `spec` grants: merges `base` (keep
   * your `preload` there) with the settings the bridge needs — sandbox: false (the
   * preload loads the addon), nodeIntegration: false, contextIsolation: true (false in
   * direct mode) — and the grants switch.
   */
  webPreferences<P extends object = BaseWebPreferences>(spec: GrantSpec, base?: P, options: WindowOptions = {}): WindowWebPreferences<P> {
    const grants = this.grants(spec, options)
    const direct = options.direct === true
    const read = base as BaseWebPreferences | undefined
    if (read?.nodeIntegration === true) {
      throw new ShmError('ERR_INVALID_ARGUMENT', 'webPreferences: nodeIntegration: true would give the page Node itself; leave it off, the preload exposes what the page needs')
    }
    const inherited = (read?.additionalArguments ?? []).filter((a) => !a.startsWith(GRANTS_SWITCH))
    const bridge: BridgeWebPreferences = {
      sandbox: false,
      nodeIntegration: false,
      contextIsolation: !direct,
      additionalArguments: [...inherited, SharedObjectsHost.grantsArgument(grants)],
    }
    return { ...base, ...bridge } as WindowWebPreferences<P>
  }

  /** Closes (and unlinks) every segment when Electron's app emits 'will-quit'. */
  closeOnQuit(app: QuitEvents): void {
    app.on('will-quit', () => this.close())
  }

  /**
   * Closes every segment; the host created them, so their names are removed too. Windows
   * and workers that still have them mapped keep working on their mapping; nobody can
   * open the names again. Idempotent.
   */
  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    for (const shm of this.segmentsByAlias.values()) {
      const name = shm.name
      if (!shm.closed) shm.close()
      try {
        SharedMemory.unlink(name)
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_SHM_NOT_FOUND') throw err
      }
    }
  }
}
