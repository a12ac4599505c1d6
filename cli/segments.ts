// Finding segments and reading their headers without opening them as a peer. The
// CLI lists and removes segments, so it must never touch a name that is not ours
// (the header's magic decides what is a segment), never wait for a turn just to
// look, and never block or crash on whatever else sits under our prefix: /dev/shm is
// world-writable, so anyone can put a FIFO, a socket, a symbolic link or junk there.
// Such objects are reported as leftovers (not a valid segment, with the reason).
//
// Linux: segments are files in /dev/shm named ipo-<name>; each is lstat'ed, and only
// a regular file is opened (O_RDONLY | O_NOFOLLOW | O_NONBLOCK), fstat'ed again and
// its header read with one bounded read; /proc/<pid>/maps tells which processes map
// a segment. Elsewhere (macOS) names cannot be listed: a named segment is mapped
// just long enough to copy its header.
import * as fs from 'node:fs'
import { ShmError } from '../core/errors'
import { Header, HeaderFlag, LAYOUT_VERSION, MAGIC } from '../core/layout'
import { MAX_NAME_LENGTH, OS_NAME_PREFIX, osNameOf } from '../core/names'
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

/** What kind of file system object a name is. */
export type ObjectType = 'file' | 'fifo' | 'socket' | 'symlink' | 'directory' | 'char-device' | 'block-device' | 'unknown'

/** An object with this library's name prefix that is not a valid segment. */
export interface Leftover {
  /** The name after the prefix, as the directory holds it (print it with printable()). */
  name: string
  /** Where it lives, if the OS shows it as a file (Linux). */
  path: string | null
  /** Why it is not a valid segment, in words. */
  reason: string
  type: ObjectType
  /** Bytes, for a regular file; null otherwise or when unknown. */
  size: number | null
  /** Owner, null when unknown. */
  uid: number | null
  /** Whether `rm --force <name>` can remove it (a valid segment name, and not a directory). */
  removable: boolean
  /** Other processes that map it (Linux); null if unknown. */
  attachedPids: number[] | null
  /** Device and inode when seen (Linux): rm checks them again right before unlinking. */
  identity: { dev: number; ino: number } | null
}

export type Lookup = { kind: 'segment'; info: SegmentInfo } | { kind: 'missing' } | { kind: 'invalid'; leftover: Leftover }

/** True where segments are files that can be listed. */
export function canList(): boolean {
  return process.platform === 'linux' && fs.existsSync(SHM_DIR)
}

export interface Listing {
  /** Valid segments, sorted by name. */
  segments: SegmentInfo[]
  /** Names with our prefix that are not valid segments, sorted by name. */
  invalid: Leftover[]
}

/** Every segment of this library (by magic), sorted by name; `prefix` filters names. */
export function listSegments(prefix = ''): SegmentInfo[] {
  return listAll(prefix).segments
}

/**
 * Every object named with this library's prefix, split into valid segments and
 * leftovers. Per name this costs an lstat and, for regular files only, one
 * non-blocking open, an fstat and one read of at most a header: no call waits for
 * another process, whatever a hostile user put in /dev/shm (a FIFO, a socket, a
 * symbolic link, a device, a locked file).
 */
export function listAll(prefix = ''): Listing {
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
  const listing: Listing = { segments: [], invalid: [] }
  for (const file of fs.readdirSync(SHM_DIR).sort()) {
    if (!file.startsWith(FILE_PREFIX)) continue
    const name = file.slice(FILE_PREFIX.length)
    if (!name.startsWith(prefix)) continue
    const lookup = isValidName(name) ? readSegment(name, attached) : invalidName(name, attached)
    if (lookup.kind === 'segment') listing.segments.push(lookup.info)
    else if (lookup.kind === 'invalid') listing.invalid.push(lookup.leftover)
  }
  return listing
}

/** Reads one segment's header; `attached` is a precomputed mappingsByName(). */
export function readSegment(name: string, attached: Map<string, number[]> | null = mappingsByName()): Lookup {
  const osName = osNameOf(name)
  const raw = canList() ? readFile(name, attached) : readMapped(name, osName)
  if (raw.kind !== 'bytes') return raw
  const { bytes, size } = raw
  const invalid = (reason: string): Lookup => ({ kind: 'invalid', leftover: { ...raw.leftover, reason } })
  if (bytes.length < HEADER_BYTES) {
    if (size === 0) return invalid('it is empty (0 bytes): not ours, or its creator is sizing it right now or died doing so')
    return invalid(`it holds ${size} byte(s), ${size < HEADER_BYTES ? 'less than a header' : 'but fewer could be read'} (${HEADER_BYTES})`)
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = v.getUint32(Header.Magic, true)
  if (magic !== MAGIC) {
    return invalid(`wrong magic 0x${magic.toString(16)}, not 0x${MAGIC.toString(16)}${magic === 0 ? ' (all zero: its creator may be writing the header right now)' : ''}`)
  }
  const headerSize = v.getBigUint64(Header.Size, true)
  if (headerSize !== BigInt(size)) {
    return invalid(
      headerSize > BigInt(size)
        ? `truncated: its header says ${headerSize} bytes, the object has ${size}`
        : `its header says ${headerSize} bytes but the object has ${size}`,
    )
  }
  const creatorPid = v.getUint32(Header.CreatorPid, true)
  const createdMs = v.getFloat64(Header.CreatedAt, true)
  return {
    kind: 'segment',
    info: {
      name,
      path: raw.leftover.path,
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

/** What an object is: lstat (Linux), before anything opens it. */
export function lookAt(name: string): { type: ObjectType; uid: number; size: number; dev: number; ino: number } | null {
  try {
    const st = fs.lstatSync(pathOf(name))
    return { type: typeOf(st), uid: st.uid, size: st.size, dev: st.dev, ino: st.ino }
  } catch {
    return null
  }
}

/** The file of a segment name in SHM_DIR (Linux). */
export function pathOf(name: string): string {
  return `${SHM_DIR}/${FILE_PREFIX}${name}`
}

type Raw = { kind: 'bytes'; bytes: Uint8Array; size: number; leftover: Leftover } | { kind: 'missing' } | { kind: 'invalid'; leftover: Leftover }

function typeOf(st: fs.Stats): ObjectType {
  if (st.isFile()) return 'file'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isDirectory()) return 'directory'
  if (st.isCharacterDevice()) return 'char-device'
  if (st.isBlockDevice()) return 'block-device'
  return 'unknown'
}

const TYPE_WORDS: Record<ObjectType, string> = {
  file: 'a regular file',
  fifo: 'a FIFO (named pipe)',
  socket: 'a socket',
  symlink: 'a symbolic link',
  directory: 'a directory',
  'char-device': 'a character device',
  'block-device': 'a block device',
  unknown: 'an object of unknown type',
}

// open(2) flags for reading a header: never follow a symbolic link, never wait (a
// FIFO without a writer, a mandatory lock), never acquire a controlling terminal.
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | (fs.constants.O_NOCTTY ?? 0)

function readFile(name: string, attached: Map<string, number[]> | null): Raw {
  const path = pathOf(name)
  const leftover = (st: fs.Stats | null, reason: string): Leftover => {
    const type = st === null ? 'unknown' : typeOf(st)
    return {
      name,
      path,
      reason,
      type,
      size: st !== null && type === 'file' ? st.size : null,
      uid: st?.uid ?? null,
      removable: type !== 'directory',
      attachedPids: attached === null ? null : (attached.get(name) ?? []),
      identity: st === null ? null : { dev: st.dev, ino: st.ino },
    }
  }
  const notRegular = (st: fs.Stats): Raw => ({ kind: 'invalid', leftover: leftover(st, `it is ${TYPE_WORDS[typeOf(st)]}, not a regular file${st.uid !== process.getuid?.() ? ` (owner uid ${st.uid})` : ''}`) })
  // lstat first: only a regular file is ever opened.
  let st: fs.Stats
  try {
    st = fs.lstatSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { kind: 'missing' }
    return { kind: 'invalid', leftover: leftover(null, `cannot look at it: ${(err as Error).message}`) }
  }
  if (!st.isFile()) return notRegular(st)
  let fd: number
  try {
    fd = fs.openSync(path, OPEN_FLAGS)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { kind: 'missing' }
    if (code === 'ELOOP') return { kind: 'invalid', leftover: leftover(st, 'it is a symbolic link (it replaced a regular file while looking at it)') }
    if (code === 'EACCES' || code === 'EPERM') return { kind: 'invalid', leftover: leftover(st, `it cannot be read: it belongs to uid ${st.uid} (maybe a segment of that user: segments are created with mode 0600)`) }
    return { kind: 'invalid', leftover: leftover(st, `it cannot be opened: ${(err as Error).message}`) }
  }
  try {
    // What was opened decides, not what lstat saw: the name may have been replaced.
    const opened = fs.fstatSync(fd)
    if (!opened.isFile()) return notRegular(opened)
    const bytes = new Uint8Array(HEADER_BYTES)
    let n: number
    try {
      n = fs.readSync(fd, bytes, 0, HEADER_BYTES, 0) // one read, at most a header
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      return { kind: 'invalid', leftover: leftover(opened, code === 'EAGAIN' || code === 'EWOULDBLOCK' ? 'it is locked against reading' : `it cannot be read: ${(err as Error).message}`) }
    }
    return { kind: 'bytes', bytes: bytes.subarray(0, n), size: opened.size, leftover: leftover(opened, '') }
  } finally {
    fs.closeSync(fd)
  }
}

function readMapped(name: string, osName: string): Raw {
  const leftover = (reason: string, size: number | null): Leftover => ({ name, path: null, reason, type: 'unknown', size, uid: null, removable: true, attachedPids: null, identity: null })
  let mapping
  try {
    mapping = native.open(osName, 0, OpenMode.Open, false)
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_SHM_NOT_FOUND') return { kind: 'missing' }
    if (code === 'ERR_SHM_NOT_READY') return { kind: 'invalid', leftover: leftover('it has no size yet, or a size that is not whole pages (not ours, or its creator died creating it)', null) }
    return { kind: 'invalid', leftover: leftover(`it cannot be opened: ${(err as Error).message}`, null) }
  }
  try {
    const n = Math.min(HEADER_BYTES, mapping.size)
    return { kind: 'bytes', bytes: new Uint8Array(mapping.buffer, mapping.byteOffset, n).slice(), size: mapping.size, leftover: leftover('', mapping.size) }
  } finally {
    native.close(mapping.id)
  }
}

/** A name with our prefix that the library cannot have created (Linux listing only). */
function invalidName(name: string, attached: Map<string, number[]> | null): Lookup {
  const seen = lookAt(name)
  if (seen === null) return { kind: 'missing' }
  return {
    kind: 'invalid',
    leftover: {
      name,
      path: pathOf(name),
      reason: `its name is not one this library creates (1 to ${MAX_NAME_LENGTH} of A-Z a-z 0-9 . _ -); rm does not touch it`,
      type: seen.type,
      size: seen.type === 'file' ? seen.size : null,
      uid: seen.uid,
      removable: false,
      attachedPids: attached === null ? null : (attached.get(name) ?? []),
      identity: { dev: seen.dev, ino: seen.ino },
    },
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

/**
 * A name as it may be printed to a terminal: control characters (a hostile name can
 * hold escape sequences) and bidirectional overrides are written as \\xNN / \\u{NNNN}.
 */
export function printable(name: string): string {
  return name.replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0)!
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
  })
}

const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/g

/** JSON for a terminal: also escapes what JSON.stringify leaves raw (C1 controls, bidi overrides). */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** What state a segment is in, in a word or two. */
export function describeState(info: SegmentInfo): string {
  const notes: string[] = [info.creatorAlive ? 'alive' : 'dead']
  if (!info.ready) notes.push('not ready')
  if (info.markedCorrupt) notes.push('corrupt')
  if (info.version !== LAYOUT_VERSION) notes.push(`layout v${info.version}`)
  return notes.join(', ')
}
