// The renderer side of the Electron integration: a typed client of the functions the
// preload exposed (common/bridge_protocol.ts). Browser-only — no Node import — so it bundles
// for the web platform; the schema file (defineStruct…) is the one main and workers use.
//
//   import { connect } from 'interprocess-objects/renderer'
//   import { Stats } from './schema'
//   const shared = connect()                       // window.sharedObjects
//   const stats = shared.region('frames', 'stats').struct(Stats)
//   requestAnimationFrame(function draw() { label.textContent = String(stats.fps); … })
//
// Bridge mode (contextIsolation on): every field access is one contextBridge call and
// every value a copy. Direct mode (contextIsolation off): views are core's, over the
// real shared memory, zero-copy.
import { StructArray, type NumericType, type Schema, type StructType } from '../common/struct_views'
import { ShmError } from '../common/errors'
import { segmentView } from '../common/segment_view'
import { TYPED_ARRAY_CTORS } from '../common/struct_layout'
import {
  BRIDGE_VERSION,
  DEFAULT_BRIDGE_KEY,
  type BridgeApi,
  type BridgeInfo,
  type BridgeScalar,
  type ChannelAccess,
  type DirectBridgeApi,
  type RegionAccess,
  type RegionHandle,
  decodeBridgeError,
} from '../common/bridge_protocol'
import { accessorsOf, bridgeArray, bridgeStruct, bridgeStructArray, isNumericKind, type RendererArray, type RendererStruct, type RendererStructArray } from './views'

// The one error class: what a bridge call threw in the preload arrives here as the same ShmError.
export { ShmError } from '../common/errors'
export type { ShmErrorCode } from '../common/errors'
export { columnLayout } from './views'
export type { RendererArray, RendererStruct, RendererStructArray, RendererFieldValue } from './views'
export type { BridgeApi, BridgeInfo, DirectBridgeApi, RegionAccess, ChannelAccess, BridgeScalar } from '../common/bridge_protocol'
export { BRIDGE_VERSION, DEFAULT_BRIDGE_KEY, parseBridgeError } from '../common/bridge_protocol'
// The schema language, so renderer code can import everything from one place.
export { defineStruct, StructArray, array, utf8 } from '../common/struct_views'
export type { Schema, StructType, StructPlain, StructInit, StructInstance } from '../common/struct_views'

export interface ConnectOptions {
  /** `window` key the preload used (default 'sharedObjects'). */
  key?: string
  /** The bridge itself (default: globalThis[key]). */
  api?: BridgeApi
}

type ScalarValue<K extends BridgeScalar> = K extends 'int64' | 'uint64' ? bigint : K extends 'bool' ? boolean : number

/** A granted byte range of a segment. Offsets are relative to the region. */
export class Region {
  readonly segment: string
  readonly name: string
  readonly byteLength: number
  readonly access: RegionAccess
  /** True in direct mode: views are over shared memory itself. */
  readonly live: boolean
  /** @internal */
  readonly api: BridgeApi
  /** @internal */
  readonly h: RegionHandle
  /** @internal */
  readonly label: string
  private readonly shared: Uint8Array | undefined
  private readonly counterWord: Int32Array | undefined
  private readonly counterFn: (h: RegionHandle) => number

  /** @internal */
  constructor(api: BridgeApi, segment: string, name: string, h: RegionHandle, byteLength: number, access: RegionAccess) {
    this.api = api
    this.segment = segment
    this.name = name
    this.h = h
    this.byteLength = byteLength
    this.access = access
    this.label = `${segment}/${name}`
    this.counterFn = api.counter
    if (api.mode === 'direct') {
      const direct = api as DirectBridgeApi
      this.shared = direct.bytes(h)
      this.counterWord = direct.counterWord(h)
    }
    this.live = this.shared !== undefined
  }

  /**
   * The region's change counter. Writers bump it when they finish an update; read it
   * once per animation frame and redraw only when it moved (one bridge call, no IPC).
   */
  counter(): number {
    if (this.counterWord !== undefined) return Atomics.load(this.counterWord, 0) >>> 0
    try {
      return this.counterFn(this.h)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** Adds 1 to the change counter (needs 'readwrite'). */
  bump(): number {
    if (this.counterWord !== undefined && this.access === 'readwrite') return (Atomics.add(this.counterWord, 0, 1) + 1) >>> 0
    try {
      return this.api.bump(this.h)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** A copy of `length` bytes at `offset` (one bridge call; in direct mode a slice of shared memory). */
  read(offset = 0, length = this.byteLength - offset): Uint8Array {
    if (this.shared !== undefined) {
      if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.byteLength) {
        throw new ShmError('ERR_OUT_OF_RANGE', `${length} byte(s) at offset ${offset} do not fit in region ${this.label} of ${this.byteLength} bytes`)
      }
      return this.shared.slice(offset, offset + length)
    }
    try {
      return this.api.read(this.h, offset, length)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** Copies `bytes` into the region at `offset` (needs 'readwrite'). */
  write(offset: number, bytes: Uint8Array): void {
    try {
      this.api.write(this.h, offset, bytes)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** Direct mode only: the live bytes of the region in shared memory. */
  bytes(): Uint8Array {
    if (this.shared === undefined) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `region ${this.label}: bytes() needs direct mode; with contextIsolation on, use read()/write() or struct/array views`)
    }
    return this.shared
  }

  get<K extends BridgeScalar>(kind: K, offset: number): ScalarValue<K> {
    try {
      return accessorsOf(this.api, kind).get(this.h, offset) as ScalarValue<K>
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  set<K extends BridgeScalar>(kind: K, offset: number, value: ScalarValue<K>): void {
    try {
      accessorsOf(this.api, kind).set(this.h, offset, value as never)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** A view of a struct stored at `offset`: the same properties as core's view, through the bridge. */
  struct<S extends Schema>(type: StructType<S>, offset = 0): RendererStruct<S> {
    if (this.shared !== undefined) return type.view(this.shared, offset) as unknown as RendererStruct<S>
    return bridgeStruct(this, type, offset)
  }

  /** `length` elements of `kind` at `offset` (direct mode: a real TypedArray over shared memory). */
  array<E extends NumericType>(kind: E, offset: number, length: number): RendererArray<E> {
    if (this.shared !== undefined) {
      if (!isNumericKind(kind)) throw new ShmError('ERR_INVALID_ARGUMENT', `array kind must be numeric, got ${String(kind)}`)
      const Ctor = TYPED_ARRAY_CTORS[kind]
      if (!Number.isInteger(offset) || offset < 0 || offset + length * Ctor.BYTES_PER_ELEMENT > this.byteLength) {
        throw new ShmError('ERR_OUT_OF_RANGE', `${length} × ${kind} at offset ${offset} does not fit in region ${this.label} of ${this.byteLength} bytes`)
      }
      // The region's bytes are the "segment" here: offsets count from its first byte.
      return segmentView({ buffer: this.shared.buffer, bytes: this.shared }, Ctor, offset, length) as unknown as RendererArray<E>
    }
    return bridgeArray(this, kind, offset, length)
  }

  /** A struct-of-arrays table at `offset`, laid out as core's StructArray. */
  structArray<S extends Schema>(type: StructType<S>, offset: number, length: number): RendererStructArray<S> {
    if (this.shared !== undefined) return new StructArray(type, this.shared, offset, length) as unknown as RendererStructArray<S>
    return bridgeStructArray(this, type, offset, length)
  }
}

/**
 * A named channel of a segment, typed like the main process's `shm.channel<T>(name)`.
 * Values cross as copies (messages are copies, and contextBridge copies them again).
 */
export class Channel<T = unknown> {
  readonly segment: string
  readonly name: string
  readonly access: ChannelAccess
  private readonly api: BridgeApi

  /** @internal */
  constructor(api: BridgeApi, segment: string, name: string, access: ChannelAccess) {
    this.api = api
    this.segment = segment
    this.name = name
    this.access = access
  }

  /** Sends a copy of `value`; ERR_CHANNEL_FULL when the channel's ring is full. */
  send(value: T): Promise<void> {
    return this.put(value)
  }

  /** Waits for a message and takes it: `shm.channel(name).receive()` seen from the page. */
  receive(options: { timeoutMs?: number } = {}): Promise<T> {
    return this.next<T>(options.timeoutMs)
  }

  /** The same as send. */
  async put(value: T): Promise<void> {
    try {
      await this.api.putMessage(this.segment, this.name, value)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** The oldest message as a plain copy; ERR_NO_MESSAGES when the channel is empty. */
  async take<U = T>(): Promise<U> {
    try {
      return (await this.api.takeMessage(this.segment, this.name)) as U
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** Resolves when a message is there; ERR_TIMEOUT after timeoutMs. */
  async wait(timeoutMs?: number): Promise<void> {
    try {
      await this.api.waitForMessage(this.segment, this.name, timeoutMs)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }

  /** Waits for a message and takes it (retrying if another consumer was faster). */
  async next<U = T>(timeoutMs?: number): Promise<U> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs
    for (;;) {
      await this.wait(deadline === Infinity ? undefined : Math.max(0, deadline - Date.now()))
      try {
        return await this.take<U>()
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_NO_MESSAGES') throw err
      }
    }
  }

  count(): number {
    try {
      return this.api.messageCount(this.segment, this.name)
    } catch (err) {
      throw decodeBridgeError(err)
    }
  }
}

/** What a page may open, wrapped in typed objects. */
export class SharedObjectsClient {
  readonly api: BridgeApi
  readonly info: BridgeInfo
  readonly mode: 'bridge' | 'direct'
  private readonly regions = new Map<string, Region>()

  constructor(api: BridgeApi) {
    if (typeof api !== 'object' || api === null || typeof api.region !== 'function') {
      throw new ShmError('ERR_NO_BRIDGE', 'no shared-objects bridge: call exposeSharedObjects() in the preload (interprocess-objects/preload) and create the window with host.webPreferences(…)')
    }
    if (api.version !== BRIDGE_VERSION) {
      throw new ShmError('ERR_BRIDGE_VERSION', `the preload speaks bridge version ${String(api.version)}, this renderer ${BRIDGE_VERSION}; build both from the same interprocess-objects`)
    }
    this.api = api
    this.info = api.describe()
    this.mode = api.mode
  }

  /** Aliases of the segments this window was granted. */
  get segments(): string[] {
    return Object.keys(this.info.segments)
  }

  /** A granted region; ERR_NOT_GRANTED otherwise (checked by the preload, not here). */
  region(segment: string, name: string): Region {
    const key = `${segment}\u0000${name}`
    let r = this.regions.get(key)
    if (r !== undefined) return r
    let h: RegionHandle
    try {
      h = this.api.region(segment, name)
    } catch (err) {
      throw decodeBridgeError(err)
    }
    const granted = this.info.segments[segment]!.regions[name]!
    r = new Region(this.api, segment, name, h, granted.byteLength, granted.access)
    this.regions.set(key, r)
    return r
  }

  channel<T = unknown>(segment: string, name: string): Channel<T> {
    const access = this.info.segments[segment]?.channels[name]
    if (access === undefined) {
      // Ask the preload anyway, so the error is the authoritative one.
      try {
        this.api.messageCount(segment, name)
      } catch (err) {
        throw decodeBridgeError(err)
      }
      throw new ShmError('ERR_NOT_GRANTED', `channel ${segment}/${name} is not granted to this window`)
    }
    return new Channel<T>(this.api, segment, name, access)
  }
}

/** Connects to the bridge the preload exposed on `window[key]`. */
export function connect(options: ConnectOptions = {}): SharedObjectsClient {
  if (options === null || typeof options !== 'object') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `connect(options) takes an options object such as { key: 'sharedObjects' }, got ${options === null ? 'null' : typeof options}`)
  }
  if (options.key !== undefined && typeof options.key !== 'string') throw new ShmError('ERR_INVALID_ARGUMENT', `connect: key must be a string, got ${typeof options.key}`)
  const key = options.key ?? DEFAULT_BRIDGE_KEY
  const api = options.api ?? ((globalThis as Record<string, unknown>)[key] as BridgeApi | undefined)
  if (api === undefined) {
    throw new ShmError('ERR_NO_BRIDGE', `window.${key} is missing: call exposeSharedObjects(${key === DEFAULT_BRIDGE_KEY ? '' : `{ key: '${key}' }`}) in the preload and create the window with host.webPreferences(…) from interprocess-objects/main`)
  }
  return new SharedObjectsClient(api)
}
