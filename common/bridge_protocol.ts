// The bridge protocol: everything main, preload and renderer agree on, in one file.
// No Node, no Electron (tsconfig.common.json checks it): the renderer bundle includes it.
//
//   main ── webPreferences.additionalArguments: "--ipo-grants=<Grants JSON>" ──▶ preload
//   preload ── contextBridge.exposeInMainWorld(key, BridgeApi) ──▶ renderer (main world)
//
// Grants name *aliases* ("frames"), never raw offsets the renderer could choose: the
// renderer passes an alias and a region name, the preload maps them to a segment it
// opened itself and checks every offset against the region's bounds.
//
// contextBridge copies every argument and return value (functions are proxied, errors
// lose everything but their message), so:
//   - scalars travel as numbers / bigints / booleans; byte ranges as one Uint8Array copy;
//   - errors carry their code in the message, "ERR_X: what happened" (encodeBridgeError),
//     and the renderer client turns them back into the same ShmError (decodeBridgeError).
import { SHM_ERROR_CODES, ShmError, type ShmErrorCode } from './errors'
import { segmentView, type MappedSegmentLike } from './segment_view'

export type { MappedSegmentLike } from './segment_view'

/** The command-line switch main appends for each window (see main/electron_app.ts). */
export const GRANTS_SWITCH = '--ipo-grants='

/** Default `window` key the preload exposes the bridge under. */
export const DEFAULT_BRIDGE_KEY = 'sharedObjects'

export const BRIDGE_VERSION = 1

/** Bytes in front of every region's data: the change counter (u32) and a reserved word. */
export const REGION_HEADER_BYTES = 16

export type RegionAccess = 'read' | 'readwrite'
export type ChannelAccess = 'put' | 'take' | 'both'

/** Where a region lies in its segment. Produced by main, never by a renderer. */
export interface RegionGrant {
  /** Segment offset of the region's first data byte (16-byte aligned). */
  offset: number
  byteLength: number
  /** Segment offset of the region's change counter (a u32 used with Atomics). */
  counterOffset: number
  access: RegionAccess
}

export interface SegmentGrant {
  /** The SharedMemory name to open. */
  name: string
  regions: { [region: string]: RegionGrant }
  channels: { [channel: string]: ChannelAccess }
}

/** What one window may open: the JSON behind GRANTS_SWITCH. */
export interface Grants {
  v: typeof BRIDGE_VERSION
  /** How the preload exposes the segments (default 'bridge'); 'direct' needs contextIsolation: false. */
  mode?: 'bridge' | 'direct'
  segments: { [alias: string]: SegmentGrant }
}

/** What the renderer learns about its grants: no segment names, no offsets. */
export interface BridgeInfo {
  version: typeof BRIDGE_VERSION
  /** 'bridge': function accessors through contextBridge; 'direct': real shared TypedArrays (contextIsolation off). */
  mode: 'bridge' | 'direct'
  segments: {
    [alias: string]: {
      regions: { [region: string]: { byteLength: number; access: RegionAccess } }
      channels: { [channel: string]: ChannelAccess }
    }
  }
}

/** Scalar kinds the bridge reads and writes, named as in common/struct_layout.ts. */
export type BridgeScalar = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'int64' | 'uint64' | 'bool'

/** Region handle: a small integer from `region()`, valid for the life of the page. */
export type RegionHandle = number

/**
 * The functions the preload exposes. Offsets are byte offsets inside the region; every
 * call checks them. Scalars are little-endian, like every struct layout.
 */
export interface BridgeApi {
  readonly version: typeof BRIDGE_VERSION
  readonly mode: 'bridge' | 'direct'
  describe(): BridgeInfo
  /** ERR_NOT_GRANTED unless this window was granted the region. */
  region(segment: string, region: string): RegionHandle

  getInt8(h: RegionHandle, offset: number): number
  getUint8(h: RegionHandle, offset: number): number
  getInt16(h: RegionHandle, offset: number): number
  getUint16(h: RegionHandle, offset: number): number
  getInt32(h: RegionHandle, offset: number): number
  getUint32(h: RegionHandle, offset: number): number
  getFloat32(h: RegionHandle, offset: number): number
  getFloat64(h: RegionHandle, offset: number): number
  getBigInt64(h: RegionHandle, offset: number): bigint
  getBigUint64(h: RegionHandle, offset: number): bigint
  getBool(h: RegionHandle, offset: number): boolean

  setInt8(h: RegionHandle, offset: number, value: number): void
  setUint8(h: RegionHandle, offset: number, value: number): void
  setInt16(h: RegionHandle, offset: number, value: number): void
  setUint16(h: RegionHandle, offset: number, value: number): void
  setInt32(h: RegionHandle, offset: number, value: number): void
  setUint32(h: RegionHandle, offset: number, value: number): void
  setFloat32(h: RegionHandle, offset: number, value: number): void
  setFloat64(h: RegionHandle, offset: number, value: number): void
  setBigInt64(h: RegionHandle, offset: number, value: bigint): void
  setBigUint64(h: RegionHandle, offset: number, value: bigint): void
  setBool(h: RegionHandle, offset: number, value: boolean): void

  /** A copy of `length` bytes: one allocation, one memcpy, then contextBridge copies it again. */
  read(h: RegionHandle, offset: number, length: number): Uint8Array
  /** Copies `bytes` into the region at `offset`. */
  write(h: RegionHandle, offset: number, bytes: Uint8Array): void
  /** The region's change counter (u32, Atomics.load): compare it each animation frame. */
  counter(h: RegionHandle): number
  /** Adds 1 to the change counter (Atomics.add), returns the new value. Needs 'readwrite'. */
  bump(h: RegionHandle): number

  /** Appends a copy of `value` to a channel (needs 'put' or 'both'). */
  putMessage(segment: string, channel: string, value: unknown): Promise<void>
  /** Removes the oldest message and resolves with a plain copy; rejects ERR_NO_MESSAGES when empty. */
  takeMessage(segment: string, channel: string): Promise<unknown>
  /** Resolves when the channel has a message; rejects ERR_TIMEOUT after timeoutMs. */
  waitForMessage(segment: string, channel: string, timeoutMs?: number): Promise<void>
  messageCount(segment: string, channel: string): number
}

/** Extra surface of direct mode (contextIsolation: false): the real shared bytes. */
export interface DirectBridgeApi extends BridgeApi {
  readonly mode: 'direct'
  /** The region's bytes in shared memory: writes are visible to every process at once. */
  bytes(h: RegionHandle): Uint8Array
  /** The region's change counter word, for Atomics.load/add. */
  counterWord(h: RegionHandle): Int32Array
}

/** The codes only the bridge throws (all of them are ShmErrorCodes). */
export type BridgeErrorCode = Extract<ShmErrorCode, 'ERR_NOT_GRANTED' | 'ERR_OUT_OF_RANGE' | 'ERR_SHM_READONLY' | 'ERR_BRIDGE_VERSION' | 'ERR_NO_BRIDGE'>

// contextBridge keeps only an error's message, so the code rides in front of it.
// encodeBridgeError and decodeBridgeError are the two ends of that wire format.

/**
 * A ShmError whose message starts with its code ("ERR_X: what happened"), so the code
 * survives contextBridge. The preload throws these; the page decodes them.
 */
export function encodeBridgeError(code: ShmErrorCode, message: string): ShmError {
  return new ShmError(code, `${code}: ${message}`)
}

/** Any error the bridge is about to throw, in wire form (a code of its own, or ERR_BRIDGE). */
export function toBridgeError(err: unknown): ShmError {
  if (err instanceof ShmError && CODE_PREFIX.test(err.message)) return err
  const code = (err as { code?: unknown } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  if (typeof code === 'string' && SHM_ERROR_CODES.has(code)) return encodeBridgeError(code as ShmErrorCode, message)
  // A code from elsewhere (Node's ERR_INVALID_ARG_TYPE…) is kept in the message, not the list.
  return encodeBridgeError('ERR_BRIDGE', typeof code === 'string' ? `${message} (${code})` : message)
}

const CODE_PREFIX = /^(?:Error: )?(ERR_[A-Z0-9_]+): /

/** The code and message of an error that crossed the bridge ("ERR_X: …"), if it has one. */
export function parseBridgeError(err: unknown): { code: string; message: string } | undefined {
  const message = typeof (err as { message?: unknown } | null)?.message === 'string' ? (err as { message: string }).message : undefined
  if (message === undefined) return undefined
  const m = CODE_PREFIX.exec(message)
  return m === null ? undefined : { code: m[1]!, message: message.slice(m[0].length) }
}

/**
 * What the page throws for an error a bridge call threw: a ShmError with the code and
 * message the preload gave it (ERR_BRIDGE, with the whole message, for a code this
 * version does not know, or for no code at all).
 */
export function decodeBridgeError(err: unknown): ShmError {
  // A ShmError thrown in this realm (by the page's own checks) is already decoded; one in
  // wire form (a bridge called without contextBridge, as in tests) loses its prefix too.
  if (err instanceof ShmError && !err.message.startsWith(`${err.code}: `)) return err
  const parsed = parseBridgeError(err)
  if (parsed !== undefined && SHM_ERROR_CODES.has(parsed.code)) return new ShmError(parsed.code as ShmErrorCode, parsed.message)
  return new ShmError('ERR_BRIDGE', err instanceof Error ? err.message : String(err))
}

/** The region's data bytes in shared memory (no copy). */
export function regionBytes(shm: MappedSegmentLike, g: RegionGrant): Uint8Array {
  checkRegionArgs(shm, g, 'regionBytes', g?.offset, g?.byteLength)
  return segmentView(shm, Uint8Array, g.offset, g.byteLength)
}

/** One Int32 over the region's change counter: Atomics.add(word, 0, 1) after an update, Atomics.load to poll. */
export function regionCounter(shm: MappedSegmentLike, g: RegionGrant): Int32Array {
  checkRegionArgs(shm, g, 'regionCounter', g?.counterOffset, 4)
  if (g.counterOffset % 4 !== 0) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `regionCounter: counterOffset ${g.counterOffset} is not 4-byte aligned; pass a grant from host.manifest()`)
  return segmentView(shm, Int32Array, g.counterOffset, 1)
}

/** A segment with `bytes`, and a grant whose byte range lies inside it. */
function checkRegionArgs(shm: MappedSegmentLike, g: RegionGrant, call: string, offset: unknown, length: unknown): void {
  if (typeof shm !== 'object' || shm === null || !(shm.bytes instanceof Uint8Array)) {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${call}(shm, grant): shm must be an open SharedMemory (something with bytes and buffer), got ${shm === null ? 'null' : typeof shm}`)
  }
  if (typeof g !== 'object' || g === null) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${call}(shm, grant): grant must be a region grant from host.manifest() or host.grants(), got ${g === null ? 'null' : typeof g}`)
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || (offset as number) < 0 || (length as number) < 0 || (offset as number) + (length as number) > shm.bytes.length) {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${call}: the grant's range (offset ${String(offset)}, ${String(length)} bytes) does not lie inside the segment of ${shm.bytes.length} bytes; pass a grant of this segment from host.manifest()`)
  }
}
