// Reading and checking the grants main handed this window. Pure: no Node, no Electron.
import { BRIDGE_VERSION, encodeBridgeError, GRANTS_SWITCH, type ChannelAccess, type Grants, type RegionAccess } from '../common/bridge_protocol'

const REGION_ACCESS: readonly RegionAccess[] = ['read', 'readwrite']
const CHANNEL_ACCESS: readonly ChannelAccess[] = ['put', 'take', 'both']

/**
 * The grants in a command line (process.argv of the preload), or undefined when main
 * passed none. The last --ipo-grants= wins, like any repeated switch.
 */
export function grantsFromArgv(argv: readonly string[]): Grants | undefined {
  let json: string | undefined
  for (const arg of argv) if (arg.startsWith(GRANTS_SWITCH)) json = arg.slice(GRANTS_SWITCH.length)
  if (json === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch (err) {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${GRANTS_SWITCH} holds no valid JSON (${(err as Error).message}); create the window with host.webPreferences(…) from interprocess-objects/main`)
  }
  return checkGrants(parsed)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isOffset(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER
}

/** Checks the shape of grants (from main or a test) and returns them; throws ERR_INVALID_ARGUMENT saying what is wrong. */
export function checkGrants(value: unknown): Grants {
  if (!isRecord(value)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', 'grants must be an object { v, segments }')
  if (value.v !== BRIDGE_VERSION) {
    throw encodeBridgeError('ERR_INVALID_ARGUMENT', `grants are version ${String(value.v)}, this preload reads version ${BRIDGE_VERSION}; main and preload must come from the same interprocess-objects`)
  }
  if (value.mode !== undefined && value.mode !== 'bridge' && value.mode !== 'direct') throw encodeBridgeError('ERR_INVALID_ARGUMENT', `grants.mode must be 'bridge' or 'direct', got ${JSON.stringify(value.mode)}`)
  if (!isRecord(value.segments)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', 'grants.segments must be an object of segment aliases')
  for (const [alias, seg] of Object.entries(value.segments)) {
    const at = `grants.segments.${alias}`
    if (!isRecord(seg)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${at} must be an object { name, regions, channels }`)
    if (typeof seg.name !== 'string' || seg.name === '') throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${at}.name must be the segment's name`)
    if (!isRecord(seg.regions)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${at}.regions must be an object`)
    if (!isRecord(seg.channels)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${at}.channels must be an object`)
    for (const [name, r] of Object.entries(seg.regions)) {
      const rat = `${at}.regions.${name}`
      if (!isRecord(r)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${rat} must be an object`)
      if (!isOffset(r.offset) || !isOffset(r.byteLength) || !isOffset(r.counterOffset)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${rat}: offset, byteLength and counterOffset must be non-negative integers`)
      if (r.counterOffset % 4 !== 0) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${rat}.counterOffset must be a multiple of 4 (it is an Atomics word)`)
      if (!REGION_ACCESS.includes(r.access as RegionAccess)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${rat}.access must be 'read' or 'readwrite'`)
    }
    for (const [name, a] of Object.entries(seg.channels)) {
      if (!CHANNEL_ACCESS.includes(a as ChannelAccess)) throw encodeBridgeError('ERR_INVALID_ARGUMENT', `${at}.channels.${name} must be 'put', 'take' or 'both'`)
    }
  }
  return value as unknown as Grants
}
