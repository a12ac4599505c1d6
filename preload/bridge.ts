// The bridge functions themselves: a BridgeApi over the segments a window was granted.
// Runs in the preload (Node available, sandbox: false). The renderer reaches these
// functions only through contextBridge proxies, so everything here assumes hostile
// arguments: handles, offsets and lengths are checked on every call, and a renderer
// can name a segment only by the alias main granted, never by its real name.
import { SharedMemory } from '../core/shared_memory'
import type { Turn } from '../core/turn'
import type { ShmError } from '../common/errors'
import { checkGrants } from './grants'
import { segmentView } from '../common/segment_view'
import {
  BRIDGE_VERSION,
  encodeBridgeError,
  toBridgeError,
  type BridgeApi,
  type BridgeInfo,
  type ChannelAccess,
  type DirectBridgeApi,
  type Grants,
  type RegionGrant,
  type RegionHandle,
} from '../common/bridge_protocol'

interface OpenRegion {
  readonly label: string
  readonly byteLength: number
  readonly writable: boolean
  readonly dv: DataView
  readonly u8: Uint8Array
  /** One Int32 over the region's change counter. */
  readonly counter: Int32Array
}

interface OpenSegment {
  readonly shm: SharedMemory
  readonly alias: string
}

export interface BridgeOptions {
  /** How to open a granted segment (default SharedMemory.open). */
  open?: (name: string) => SharedMemory
}

export interface Bridge {
  readonly api: BridgeApi | DirectBridgeApi
  /** Unmaps every segment this bridge opened. Calls afterwards fail with ERR_SHM_CLOSED. */
  close(): void
}

/**
 * Builds the bridge functions for `grants`. Segments are opened on first use, so a page
 * that never touches a grant never maps it.
 */
export function createBridge(grants: Grants, options: BridgeOptions = {}): Bridge {
  checkGrants(grants)
  if (options === null || typeof options !== 'object') throw encodeBridgeError('ERR_INVALID_ARGUMENT', `createBridge(grants, options): options must be an object, got ${options === null ? 'null' : typeof options}`)
  const open = options.open ?? ((name: string) => SharedMemory.open({ name }))
  const mode = grants.mode ?? 'bridge'
  const segments = new Map<string, OpenSegment>()
  const regions: OpenRegion[] = []
  const handles = new Map<string, RegionHandle>()
  let closed = false

  const info: BridgeInfo = {
    version: BRIDGE_VERSION,
    mode,
    segments: Object.fromEntries(
      Object.entries(grants.segments).map(([alias, g]) => [
        alias,
        {
          regions: Object.fromEntries(Object.entries(g.regions).map(([name, r]) => [name, { byteLength: r.byteLength, access: r.access }])),
          channels: { ...g.channels },
        },
      ]),
    ),
  }

  function grantOf(alias: unknown): Grants['segments'][string] {
    if (typeof alias !== 'string' || !Object.prototype.hasOwnProperty.call(grants.segments, alias)) {
      const granted = Object.keys(grants.segments)
      throw encodeBridgeError('ERR_NOT_GRANTED', `this window was not granted a segment "${String(alias)}"; it may open ${granted.length === 0 ? 'none' : granted.map((a) => `"${a}"`).join(', ')} (grant more in main with host.webPreferences)`)
    }
    return grants.segments[alias]!
  }

  function segmentOf(alias: string): OpenSegment {
    if (closed) throw encodeBridgeError('ERR_SHM_CLOSED', 'the bridge was closed (the page is unloading)')
    let seg = segments.get(alias)
    if (seg === undefined) {
      const shm = open(grantOf(alias).name)
      seg = { shm, alias }
      segments.set(alias, seg)
    }
    return seg
  }

  function openRegion(alias: string, name: string, g: RegionGrant): OpenRegion {
    const { shm } = segmentOf(alias)
    const end = g.offset + g.byteLength
    if (end > shm.size || g.counterOffset + 4 > shm.size) {
      throw encodeBridgeError('ERR_OUT_OF_RANGE', `granted region ${alias}/${name} (bytes ${g.offset}–${end}) lies outside segment "${shm.name}" of ${shm.size} bytes; main and the segment disagree`)
    }
    return {
      label: `${alias}/${name}`,
      byteLength: g.byteLength,
      writable: g.access === 'readwrite',
      dv: segmentView(shm, DataView, g.offset, g.byteLength),
      u8: segmentView(shm, Uint8Array, g.offset, g.byteLength),
      counter: segmentView(shm, Int32Array, g.counterOffset, 1),
    }
  }

  function region(alias: string, name: string): RegionHandle {
    const g = grantOf(alias)
    const key = `${alias}\u0000${String(name)}`
    const known = handles.get(key)
    if (known !== undefined) return known
    if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(g.regions, name)) {
      const granted = Object.keys(g.regions)
      throw encodeBridgeError('ERR_NOT_GRANTED', `segment "${alias}" has no region "${String(name)}" granted to this window; granted: ${granted.length === 0 ? 'none' : granted.map((r) => `"${r}"`).join(', ')}`)
    }
    const h = regions.length
    regions.push(openRegion(alias, name, g.regions[name]!))
    handles.set(key, h)
    return h
  }

  // Hot path: one lookup, one range check, one DataView access. `(offset >>> 0) === offset`
  // accepts exactly the integers 0 … 2^32-1 (NaN, fractions, negatives and strings fail).
  function at(h: RegionHandle, offset: number, size: number): OpenRegion {
    const r = regions[h]
    if (r === undefined || (offset >>> 0) !== offset || offset + size > r.byteLength) throw outOfRange(h, offset, size)
    return r
  }

  function writableAt(h: RegionHandle, offset: number, size: number): OpenRegion {
    const r = at(h, offset, size)
    if (!r.writable) throw encodeBridgeError('ERR_SHM_READONLY', `region ${r.label} is granted read-only to this window`)
    return r
  }

  function outOfRange(h: unknown, offset: unknown, size: number): ShmError {
    if (closed) return encodeBridgeError('ERR_SHM_CLOSED', 'the bridge was closed (the page is unloading)')
    const r = typeof h === 'number' ? regions[h] : undefined
    if (r === undefined) return encodeBridgeError('ERR_INVALID_ARGUMENT', `${String(h)} is not a region handle; get one from region(segment, name)`)
    return encodeBridgeError('ERR_OUT_OF_RANGE', `${size} byte(s) at offset ${String(offset)} do not fit in region ${r.label} of ${r.byteLength} bytes`)
  }

  function channelOf(alias: string, channel: string, need: 'put' | 'take'): SharedMemory {
    const g = grantOf(alias)
    const access: ChannelAccess | undefined = typeof channel === 'string' && Object.prototype.hasOwnProperty.call(g.channels, channel) ? g.channels[channel] : undefined
    if (access === undefined) {
      throw encodeBridgeError('ERR_NOT_GRANTED', `segment "${alias}" has no channel "${String(channel)}" granted to this window`)
    }
    if (access !== 'both' && access !== need) {
      throw encodeBridgeError('ERR_NOT_GRANTED', `channel ${alias}/${channel} is granted for '${access}' only, not '${need}'`)
    }
    return segmentOf(alias).shm
  }

  const api: BridgeApi = {
    version: BRIDGE_VERSION,
    mode,
    describe: () => info,
    region,

    getInt8: (h, o) => at(h, o, 1).dv.getInt8(o),
    getUint8: (h, o) => at(h, o, 1).dv.getUint8(o),
    getInt16: (h, o) => at(h, o, 2).dv.getInt16(o, true),
    getUint16: (h, o) => at(h, o, 2).dv.getUint16(o, true),
    getInt32: (h, o) => at(h, o, 4).dv.getInt32(o, true),
    getUint32: (h, o) => at(h, o, 4).dv.getUint32(o, true),
    getFloat32: (h, o) => at(h, o, 4).dv.getFloat32(o, true),
    getFloat64: (h, o) => at(h, o, 8).dv.getFloat64(o, true),
    getBigInt64: (h, o) => at(h, o, 8).dv.getBigInt64(o, true),
    getBigUint64: (h, o) => at(h, o, 8).dv.getBigUint64(o, true),
    getBool: (h, o) => at(h, o, 1).dv.getUint8(o) !== 0,

    setInt8: (h, o, v) => writableAt(h, o, 1).dv.setInt8(o, v),
    setUint8: (h, o, v) => writableAt(h, o, 1).dv.setUint8(o, v),
    setInt16: (h, o, v) => writableAt(h, o, 2).dv.setInt16(o, v, true),
    setUint16: (h, o, v) => writableAt(h, o, 2).dv.setUint16(o, v, true),
    setInt32: (h, o, v) => writableAt(h, o, 4).dv.setInt32(o, v, true),
    setUint32: (h, o, v) => writableAt(h, o, 4).dv.setUint32(o, v, true),
    setFloat32: (h, o, v) => writableAt(h, o, 4).dv.setFloat32(o, v, true),
    setFloat64: (h, o, v) => writableAt(h, o, 8).dv.setFloat64(o, v, true),
    setBigInt64: (h, o, v) => writableAt(h, o, 8).dv.setBigInt64(o, v, true),
    setBigUint64: (h, o, v) => writableAt(h, o, 8).dv.setBigUint64(o, v, true),
    setBool: (h, o, v) => writableAt(h, o, 1).dv.setUint8(o, v ? 1 : 0),

    read(h, offset, length) {
      if ((length >>> 0) !== length) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `read length must be a non-negative integer, got ${String(length)}`)
      const r = at(h, offset, length)
      return r.u8.slice(offset, offset + length)
    },
    write(h, offset, bytes) {
      if (!(bytes instanceof Uint8Array)) {
        // Another realm's Uint8Array (contextBridge hands us one from the isolated world's realm) still passes this.
        if (!ArrayBuffer.isView(bytes)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', 'write takes a Uint8Array')
      }
      const src = bytes as ArrayBufferView
      const r = writableAt(h, offset, src.byteLength)
      r.u8.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), offset)
    },
    counter(h) {
      return Atomics.load(at(h, 0, 0).counter, 0) >>> 0
    },
    bump(h) {
      return (Atomics.add(writableAt(h, 0, 0).counter, 0, 1) + 1) >>> 0
    },

    async putMessage(alias, channel, value) {
      try {
        const shm = channelOf(alias, channel, 'put')
        await shm.accessAsync((tx) => {
          tx.putMessage(value, { channel })
        })
      } catch (err) {
        throw toBridgeError(err)
      }
    },
    async takeMessage(alias, channel) {
      try {
        const shm = channelOf(alias, channel, 'take')
        return await shm.accessAsync((tx) => {
          if (!tx.hasMessages({ channel })) throw encodeBridgeError('ERR_NO_MESSAGES', `channel ${alias}/${channel} is empty; await waitForMessage first`)
          return plainCopy(tx, tx.takeMessage({ channel }))
        })
      } catch (err) {
        throw toBridgeError(err)
      }
    },
    async waitForMessage(alias, channel, timeoutMs) {
      try {
        const shm = channelOf(alias, channel, 'take')
        await shm.waitForMessage(timeoutMs === undefined ? { channel } : { channel, timeoutMs })
      } catch (err) {
        throw toBridgeError(err)
      }
    },
    messageCount(alias, channel) {
      try {
        const shm = channelOf(alias, channel, 'take')
        return shm.access((tx) => tx.messageCount({ channel }))
      } catch (err) {
        throw toBridgeError(err)
      }
    },
  }

  const result: BridgeApi | DirectBridgeApi =
    mode === 'direct'
      ? {
          ...api,
          mode: 'direct',
          bytes: (h: RegionHandle) => at(h, 0, 0).u8,
          counterWord: (h: RegionHandle) => at(h, 0, 0).counter,
        }
      : api

  return {
    api: result,
    close() {
      if (closed) return
      closed = true
      regions.length = 0
      for (const seg of segments.values()) seg.shm.close()
      segments.clear()
    },
  }
}

/** A message taken from a channel as a plain value that owns nothing in the segment. */
function plainCopy(tx: Turn, taken: unknown): unknown {
  if (typeof taken !== 'object' || taken === null) return taken
  // Messages are copies; a value sent by reference comes as a view this process owns:
  // the page gets a copy of it, and the reference is dropped.
  const copy = tx.copy(taken)
  if (copy !== taken) tx.destroy(taken)
  return copy
}
