// Finding segments and reading their headers without opening them as a peer. The
// CLI lists and removes segments, so it must never touch a name that is not ours
// (the header's magic decides) and never wait for a turn just to look.
//
// Linux: segments are files in /dev/shm named ipo-<name>; the header is read with
// plain file I/O, and /proc/<pid>/maps tells which processes map a segment.
// Elsewhere (macOS) names cannot be listed: a named segment is mapped just long
// enough to copy its header.
import * as fs from 'node:fs'
import { ShmError } from '../core/errors'
import { Header, HeaderFlag, LAYOUT_VERSION, MAGIC } from '../core/layout'
import { OS_NAME_PREFIX, osNameOf } from '../core/names'
import { native, OpenMode } from '../core/native'

export const SHM_DIR = '/dev/shm'
/** File name prefix in SHM_DIR: the OS name without its leading '/'. */
const FILE_PREFIX = OS_NAME_PREFIX.slice(1)
/** Everything the CLI reads from a header. */
const HEADER_BYTES = Header.LockHeir + 4

export interface SegmentInfo {
  /** The name given to SharedMemory.create (without the OS prefix). */
  name: string
  /** Where it lives, if the OS shows it as a file (Linux). */
  path: string | null
  /** Bytes of the OS object. */
  size: number
  /** Layout version in the header. */
  version: number
  creatorPid: number
  /** Whether a process with the creator's pid exists (a zombie counts as running). */
  creatorAlive: boolean
  createdAt: Date | null
  /** False while the creator initializes, or forever if it died doing so. */
  ready: boolean
  /** A turn recovery found the heap beyond repair (HeaderFlag.Corrupt). */
  markedCorrupt: boolean
  /** Turns taken over from dead owners. */
  recoveries: number
  /** Pid holding the turn, 0 if free (negative: reserved for a waiting heir). */
  turnOwner: number
  /** Random id set at create: tells this segment from a later one of the same name. */
  instanceId: string
  /** Other processes that map it (Linux, processes this user may inspect); null if unknown. */
  attachedPids: number[] | null
}

export type Lookup =
  | { kind: 'segment'; info: SegmentInfo }
  | { kind: 'missing' }
  | { kind: 'foreign'; reason: string }

/** True where segments are files that can be listed. */
export function canList(): boolean {
  return process.platform === 'linux' && fs.existsSync(SHM_DIR)
}

/** Every segment of this library (by magic), sorted by name; `prefix` filters names. */
export function listSegments(prefix = ''): SegmentInfo[] {
  if (!canList()) {
    throw new ShmError(
      'ERR_SHM_OS',
      process.platform === 'darwin'
        ? 'macOS cannot list POSIX shared-memory names; pass the segment name to rm or check'
        : process.platform === 'win32'
          ? 'Windows removes a segment with its last handle: there is nothing stale to list'
          : `listing segments needs ${SHM_DIR}, which does not exist here`,
    )
  }
  const attached = mappingsByName()
  const found: SegmentInfo[] = []
  for (const file of fs.readdirSync(SHM_DIR).sort()) {
    if (!file.startsWith(FILE_PREFIX)) continue
    const name = file.slice(FILE_PREFIX.length)
    if (!name.startsWith(prefix) || !isValidName(name)) continue
    const lookup = readSegment(name, attached)
    if (lookup.kind === 'segment') found.push(lookup.info)
  }
  return found
}

/** Reads one segment's header; `attached` is a precomputed mappingsByName(). */
export function readSegment(name: string, attached: Map<string, number[]> | null = mappingsByName()): Lookup {
  const osName = osNameOf(name)
  const raw = canList() ? readFile(name) : readMapped(osName)
  if (raw.kind !== 'bytes') return raw
  const { bytes, size } = raw
  if (bytes.length < HEADER_BYTES) return { kind: 'foreign', reason: `it holds ${bytes.length} bytes, less than a header` }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = v.getUint32(Header.Magic, true)
  if (magic !== MAGIC) return { kind: 'foreign', reason: `its magic is 0x${magic.toString(16)}, not 0x${MAGIC.toString(16)}` }
  const creatorPid = v.getUint32(Header.CreatorPid, true)
  const createdMs = v.getFloat64(Header.CreatedAt, true)
  return {
    kind: 'segment',
    info: {
      name,
      path: canList() ? `${SHM_DIR}/${FILE_PREFIX}${name}` : null,
      size,
      version: v.getUint32(Header.Version, true),
      creatorPid,
      creatorAlive: native.processAlive(creatorPid),
      createdAt: Number.isFinite(createdMs) && createdMs > 0 ? new Date(createdMs) : null,
      ready: v.getUint32(Header.Ready, true) === 1,
      markedCorrupt: (v.getUint32(Header.Flags, true) & HeaderFlag.Corrupt) !== 0,
      recoveries: v.getUint32(Header.Recoveries, true),
      turnOwner: v.getInt32(Header.LockOwner, true),
      instanceId: `${v.getUint32(Header.InstanceId, true).toString(16).padStart(8, '0')}${v.getUint32(Header.InstanceId + 4, true).toString(16).padStart(8, '0')}`,
      attachedPids: attached === null ? null : (attached.get(name) ?? []),
    },
  }
}

type Raw = { kind: 'bytes'; bytes: Uint8Array; size: number } | { kind: 'missing' } | { kind: 'foreign'; reason: string }

function readFile(name: string): Raw {
  const path = `${SHM_DIR}/${FILE_PREFIX}${name}`
  let fd: number
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { kind: 'missing' }
    if (code === 'ELOOP') return { kind: 'foreign', reason: 'it is a symbolic link' }
    if (code === 'EACCES' || code === 'EPERM') return { kind: 'foreign', reason: 'it belongs to another user (segments are created with mode 0600)' }
    throw new ShmError('ERR_SHM_OS', `cannot read ${path}: ${(err as Error).message}`)
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) return { kind: 'foreign', reason: 'it is not a regular file' }
    const bytes = new Uint8Array(HEADER_BYTES)
    const n = fs.readSync(fd, bytes, 0, HEADER_BYTES, 0)
    return { kind: 'bytes', bytes: bytes.subarray(0, n), size: st.size }
  } finally {
    fs.closeSync(fd)
  }
}

function readMapped(osName: string): Raw {
  let mapping
  try {
    mapping = native.open(osName, 0, OpenMode.Open, false)
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_SHM_NOT_FOUND') return { kind: 'missing' }
    if (code === 'ERR_SHM_NOT_READY') return { kind: 'foreign', reason: 'it has no size yet (not ours, or its creator died creating it)' }
    throw err
  }
  try {
    const n = Math.min(HEADER_BYTES, mapping.size)
    return { kind: 'bytes', bytes: new Uint8Array(mapping.buffer, mapping.byteOffset, n).slice(), size: mapping.size }
  } finally {
    native.close(mapping.id)
  }
}

function isValidName(name: string): boolean {
  try {
    osNameOf(name)
    return true
  } catch {
    return false
  }
}

/**
 * Segment name → pids (other than this one) that map it, from /proc/<pid>/maps.
 * Only processes this user may inspect are seen, which covers every process that
 * can open a segment of mode 0600 (root aside). Null where /proc is not available.
 */
export function mappingsByName(): Map<string, number[]> | null {
  if (process.platform !== 'linux') return null
  let entries: string[]
  try {
    entries = fs.readdirSync('/proc')
  } catch {
    return null
  }
  const marker = `${SHM_DIR}/${FILE_PREFIX}`
  const result = new Map<string, number[]>()
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    if (pid === process.pid) continue
    let maps: string
    try {
      maps = fs.readFileSync(`/proc/${entry}/maps`, 'latin1')
    } catch {
      continue // gone, or not ours to read
    }
    for (let at = maps.indexOf(marker); at >= 0; at = maps.indexOf(marker, at + 1)) {
      const end = maps.indexOf('\n', at)
      const rest = maps.slice(at + marker.length, end < 0 ? undefined : end)
      if (rest.endsWith(' (deleted)')) continue // an unlinked segment, not the one under this name now
      const pids = result.get(rest)
      if (pids === undefined) result.set(rest, [pid])
      else if (!pids.includes(pid)) pids.push(pid)
    }
  }
  return result
}

/** Sizes for people: 64 KiB, 4 MiB, 1.5 GiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let u = 0
  let v = n
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`
}

/** What state a segment is in, in a word or two. */
export function describeState(info: SegmentInfo): string {
  const notes: string[] = [info.creatorAlive ? 'alive' : 'dead']
  if (!info.ready) notes.push('not ready')
  if (info.markedCorrupt) notes.push('corrupt')
  if (info.version !== LAYOUT_VERSION) notes.push(`layout v${info.version}`)
  return notes.join(', ')
}
