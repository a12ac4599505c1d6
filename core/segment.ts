// A named segment mapped into this process: the header, and the futex words in it.
// Higher layers (lock, allocator, channels) work on `bytes`/`words`/`view`.
import { constants as bufferConstants } from 'node:buffer'
import { ShmError } from './errors'
import { Header, HeaderFlag, LAYOUT_VERSION, MAGIC, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE } from './layout'
import { osNameOf } from './names'
import { native, OpenMode, type NativeMapping, type WaitOutcome } from './native'

export interface SegmentOpenParams {
  name: string
  size?: number
  mode: OpenMode
  prefault: boolean
  unlinkOnCreatorExit: boolean
  readyTimeoutMs: number
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))
function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms)
}

/** Segments this process created and must unlink when it exits. */
const unlinkAtExit = new Set<Segment>()
let exitHookInstalled = false
function unlinkLater(segment: Segment): void {
  unlinkAtExit.add(segment)
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const s of unlinkAtExit) s.unlinkName()
  })
}

/** From this size up, copies into and out of the segment go through the addon (measured crossover: 4 KiB). */
const BULK_COPY_BYTES = 4096

export class Segment {
  readonly name: string
  readonly osName: string
  readonly size: number
  readonly created: boolean
  readonly mirrored: boolean
  /** The whole segment; index 0 is segment offset 0. */
  readonly bytes: Uint8Array
  /** The segment as 32-bit words for Atomics; words[i] is at offset 4 * i. */
  readonly words: Int32Array
  readonly view: DataView
  /** This handle's holder token (1..0xfffe), unique among the handles open in this process. */
  readonly token: number
  private readonly id: number
  private isClosed = false
  private nameUnlinked = false
  /** What close() must undo in the shared words first: claims and waiter counts of this handle. */
  private readonly withdrawals = new Set<() => void>()

  private constructor(name: string, osName: string, mapping: NativeMapping) {
    this.name = name
    this.osName = osName
    this.id = mapping.id
    this.size = mapping.size
    this.created = mapping.created
    this.mirrored = mapping.mirrored
    this.token = mapping.token
    this.bytes = new Uint8Array(mapping.buffer, mapping.byteOffset, mapping.size)
    this.words = new Int32Array(mapping.buffer, mapping.byteOffset, mapping.size / 4)
    this.view = new DataView(mapping.buffer, mapping.byteOffset, mapping.size)
  }

  static open(params: SegmentOpenParams): Segment {
    const osName = osNameOf(params.name)
    let size = 0
    // Checked before any OS call: a bad size creates nothing.
    if (params.mode !== OpenMode.Open) size = checkedSize(params.size)
    checkAddon()
    const deadline = Date.now() + params.readyTimeoutMs
    for (;;) {
      let mapping: NativeMapping
      try {
        mapping = native.open(osName, size, params.mode, params.prefault, allocateWindow)
      } catch (err) {
        const code = (err as { code?: string }).code
        // The creator has made the name but not sized it yet, or (openOrCreate) it
        // was unlinked between our create and open attempts: both settle quickly.
        const transient = code === 'ERR_SHM_NOT_READY' || (code === 'ERR_SHM_NOT_FOUND' && params.mode === OpenMode.OpenOrCreate)
        if (transient && Date.now() < deadline) {
          sleepMs(1)
          continue
        }
        if (code === 'ERR_SHM_NOT_READY') throw new ShmError('ERR_SHM_CORRUPT', `${(err as Error).message}; it is not a segment of this library, or its creator died while creating it: remove it with SharedMemory.unlink("${params.name}")`)
        throw err
      }
      const segment = new Segment(params.name, osName, mapping)
      if (mapping.created) {
        try {
          segment.initHeader(params.unlinkOnCreatorExit)
        } catch (err) {
          // Never leave a name behind for a segment nobody will finish.
          segment.unlinkName()
          segment.close()
          throw err
        }
        if (params.unlinkOnCreatorExit) unlinkLater(segment)
        return segment
      }
      try {
        segment.validateHeader(deadline)
      } catch (err) {
        segment.close()
        throw err
      }
      return segment
    }
  }

  private initHeader(unlinkOnCreatorExit: boolean): void {
    const v = this.view
    v.setUint32(Header.Magic, MAGIC, true)
    v.setUint32(Header.Version, LAYOUT_VERSION, true)
    v.setBigUint64(Header.Size, BigInt(this.size), true)
    v.setUint32(Header.CreatorPid, process.pid, true)
    v.setFloat64(Header.CreatedAt, Date.now(), true)
    v.setUint32(Header.Flags, unlinkOnCreatorExit ? HeaderFlag.UnlinkOnCreatorExit : 0, true)
    // Drawn into a private array: getRandomValues refuses views of a SharedArrayBuffer (Node 26 does).
    const id = crypto.getRandomValues(new Uint32Array(2))
    v.setUint32(Header.InstanceId, id[0]!, true)
    v.setUint32(Header.InstanceId + 4, id[1]!, true)
  }

  /** Marks the header complete; openers wait for this. Called after the upper layers initialized. */
  publish(): void {
    Atomics.store(this.words, Header.Ready >> 2, 1)
    this.syncOut()
  }

  private validateHeader(deadline: number): void {
    if (this.size < MIN_SEGMENT_SIZE) {
      throw new ShmError('ERR_SHM_CORRUPT', `segment "${this.name}" has ${this.size} bytes, less than any segment of interprocess-objects (${MIN_SEGMENT_SIZE}): it was not created by this library; remove it with SharedMemory.unlink("${this.name}") if it is stale`)
    }
    for (;;) {
      this.syncIn()
      if (Atomics.load(this.words, Header.Ready >> 2) === 1) break
      // A creator writes the magic first: anything else there now is not one of ours,
      // and waiting for it to become ready would only delay the same answer.
      const early = this.view.getUint32(Header.Magic, true)
      if (early !== 0 && early !== MAGIC) throw foreignMagic(this.name, early)
      if (Date.now() >= deadline) {
        const pid = this.view.getUint32(Header.CreatorPid, true)
        throw new ShmError(
          'ERR_SHM_CORRUPT',
          `segment "${this.name}" was never marked ready by its creator (pid ${pid}, ${pid && native.processAlive(pid) ? 'alive' : 'not running'}); if that process died, remove it with SharedMemory.unlink("${this.name}") and create it again`,
        )
      }
      sleepMs(1)
    }
    const v = this.view
    const magic = v.getUint32(Header.Magic, true)
    if (magic !== MAGIC) throw foreignMagic(this.name, magic)
    const version = v.getUint32(Header.Version, true)
    if (version !== LAYOUT_VERSION) {
      throw new ShmError('ERR_SHM_VERSION', `segment "${this.name}" has layout version ${version}, this library reads version ${LAYOUT_VERSION}: open it with the interprocess-objects version that created it, or recreate it`)
    }
    const size = Number(v.getBigUint64(Header.Size, true))
    if (size !== this.size) {
      throw new ShmError('ERR_SHM_CORRUPT', `segment "${this.name}" header says ${size} bytes but the OS object has ${this.size}: the header was overwritten; recreate the segment`)
    }
  }

  get closed(): boolean {
    return this.isClosed
  }

  get creatorPid(): number {
    this.assertOpen()
    return this.view.getUint32(Header.CreatorPid, true)
  }

  get createdAt(): Date {
    this.assertOpen()
    return new Date(this.view.getFloat64(Header.CreatedAt, true))
  }

  /** The SharedArrayBuffer the segment lies in, at `bytes.byteOffset`. */
  get buffer(): SharedArrayBuffer {
    this.assertOpen()
    return this.bytes.buffer as SharedArrayBuffer
  }

  /**
   * ERR_SHM_CORRUPT if the OS object is now smaller than the mapping: some process
   * truncated it, and touching the lost pages would kill this one with SIGBUS. One
   * fstat; reads nothing from the segment.
   */
  assertBacked(): void {
    this.assertOpen()
    const backed = native.backedSize(this.id)
    if (backed < this.size) {
      throw new ShmError(
        'ERR_SHM_CORRUPT',
        `segment "${this.name}" was truncated to ${backed} bytes while mapped (${this.size} bytes mapped): a process outside this library resized its OS object, and reading or writing the lost pages would kill this process with SIGBUS. Close every handle without touching its memory, then unlink and recreate it`,
      )
    }
  }

  assertOpen(): void {
    if (this.isClosed) {
      throw new ShmError('ERR_SHM_CLOSED', `segment "${this.name}" is closed: open it again with SharedMemory.open({ name: "${this.name}" })`)
    }
  }

  /** Sleeps while the word at `offset` equals `expected`. */
  wait(offset: number, expected: number, timeoutMs: number): WaitOutcome {
    this.assertOpen()
    return native.wait(this.id, offset, expected, timeoutMs)
  }

  /** Waits on a waiter thread; `callback` gets the native outcome on the JS thread. */
  waitAsync(offset: number, expected: number, timeoutMs: number, spins: number, keepAlive: boolean, callback: (outcome: number) => void): number {
    this.assertOpen()
    return native.waitAsync(this.id, offset, expected, timeoutMs, spins, keepAlive, callback)
  }

  wake(offset: number, count: number): number {
    this.assertOpen()
    return native.wake(this.id, offset, count)
  }

  /**
   * Copies `src` into the segment at `offset`. V8 copies into a SharedArrayBuffer element
   * by element (relaxed atomics), at about half of memcpy's speed from 4 KiB up, so bulk
   * payloads go through the addon's memmove; small ones stay in JS (a call costs more).
   */
  /** memmove between the segment at `offset` and `view` (into the segment when `into`), through the addon. */
  copy(offset: number, view: ArrayBufferView, into: boolean): void {
    native.copy(this.id, offset, view, into)
  }

  copyIn(src: Uint8Array, offset: number): void {
    if (src.byteLength >= BULK_COPY_BYTES) this.copy(offset, src, true)
    else this.bytes.set(src, offset)
  }

  /** A fresh (unshared) copy of `length` bytes at `offset`; the bulk path as in copyIn. */
  copyOut(offset: number, length: number): Uint8Array {
    if (length < BULK_COPY_BYTES) return this.bytes.slice(offset, offset + length)
    const out = new Uint8Array(length)
    this.copy(offset, out, false)
    return out
  }

  /** The addon releases the turn word at `offset` if this handle closes, or its thread ends, holding it. */
  guardTurn(offset: number): void {
    this.assertOpen()
    native.guardTurn(this.id, offset)
  }

  /** The addon clears the 8-byte word at `offset` if it still holds high << 32 | low when this handle closes, or its thread ends. */
  guardListing(offset: number, low: number, high: number): void {
    this.assertOpen()
    native.guardListing(this.id, offset, low, high)
  }

  /**
   * Registers `withdraw` (it undoes a registration this handle made in the shared words: a
   * waiter count, an heir claim) to run at close(), while the segment is still mapped.
   * Returns a function that runs it now instead; either way it runs once.
   */
  onClose(withdraw: () => void): () => void {
    let pending = true
    const once = (): void => {
      if (!pending) return
      pending = false
      this.withdrawals.delete(once)
      withdraw()
    }
    this.withdrawals.add(once)
    return once
  }

  /** Mirrored mode (Windows) only: refresh this process's copy from the real segment. */
  syncIn(): void {
    if (this.mirrored) native.syncIn(this.id)
  }

  /** Mirrored mode (Windows) only: publish this process's copy to the real segment. */
  syncOut(): void {
    if (this.mirrored) native.syncOut(this.id)
  }

  /**
   * Removes the name if it still refers to this segment. If it was unlinked and
   * created again meanwhile, the name belongs to the new segment and stays.
   */
  unlinkName(): void {
    if (this.nameUnlinked) return
    this.nameUnlinked = true
    unlinkAtExit.delete(this)
    let probe: NativeMapping
    try {
      probe = native.open(this.osName, 0, OpenMode.Open, false, allocateWindow)
    } catch {
      return // gone already (or not ours to judge): nothing to remove
    }
    try {
      const theirs = new Uint32Array(probe.buffer, probe.byteOffset + Header.InstanceId, 2)
      const mine = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset + Header.InstanceId, 2)
      if (theirs[0] === mine[0] && theirs[1] === mine[1]) native.unlink(this.osName)
    } catch {
      // Someone else removed it in between; the goal is reached.
    } finally {
      native.close(probe.id)
    }
  }

  /**
   * Runs the withdrawals registered so far (see onClose), while the segment is mapped.
   * shm.close() calls it before it drops the references its handle holds: a withdrawal
   * writes into records (a channel's waiter counts) that the drop may free.
   */
  withdrawAll(): void {
    for (const withdraw of [...this.withdrawals]) {
      try {
        withdraw()
      } catch {
        // A withdrawal only writes words of this mapping; nothing to report.
      }
    }
  }

  close(): void {
    if (this.isClosed) return
    // First withdraw what this handle registered, so no other process waits on it.
    this.withdrawAll()
    this.isClosed = true
    if (unlinkAtExit.has(this)) this.unlinkName()
    native.close(this.id)
  }
}

function foreignMagic(name: string, magic: number): ShmError {
  return new ShmError('ERR_SHM_CORRUPT', `segment "${name}" has magic 0x${magic.toString(16)}, expected 0x${MAGIC.toString(16)}: it was not created by interprocess-objects or was overwritten`)
}

/**
 * The largest segment this process can map: the layout's limit, or less where the
 * longest Uint8Array cannot hold a segment plus the page of slack around it.
 */
export function maxSegmentSize(): number {
  const page = native.pageSize
  return Math.min(MAX_SEGMENT_SIZE, Math.floor((bufferConstants.MAX_LENGTH - page) / page) * page)
}

function describeBytes(n: number): string {
  for (const [unit, scale] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (Math.abs(n) >= scale) return `${n} (${+(n / scale).toFixed(3)} ${unit})`
  }
  return String(n)
}

/** A create size, rounded up to whole pages; ERR_INVALID_ARGUMENT naming the limits otherwise. */
function checkedSize(size: unknown): number {
  const max = maxSegmentSize()
  if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_SEGMENT_SIZE || size > max) {
    const given = typeof size === 'number' ? describeBytes(size) : String(size)
    throw new ShmError(
      'ERR_INVALID_ARGUMENT',
      `size must be an integer of at least ${MIN_SEGMENT_SIZE} bytes (16 KiB) and at most ${max} bytes (${max === MAX_SEGMENT_SIZE ? '4 GiB − 64 KiB: offsets inside a segment are 32-bit' : 'the most this runtime can map'}); got ${given}`,
    )
  }
  const page = native.pageSize
  return Math.ceil(size / page) * page
}

/** The compiled addon and these sources must agree on the limits (a stale build/ does not). */
function checkAddon(): void {
  if (native.maxSegmentSize !== MAX_SEGMENT_SIZE) {
    throw new ShmError('ERR_SHM_OS', `the compiled addon (maxSegmentSize ${String(native.maxSegmentSize)}) does not match these sources (${MAX_SEGMENT_SIZE}): rebuild it (npx node-gyp rebuild)`)
  }
}

/**
 * Where the addon asks for memory to map a segment into: a SharedArrayBuffer, which no
 * transfer list can detach (an ArrayBuffer could be transferred away and freed while
 * it still is the mapping) and worker_threads share by postMessage without a copy.
 */
function allocateWindow(byteLength: number): Uint8Array {
  const Shared = sharedArrayBufferConstructor()
  if (Shared === undefined) {
    throw new ShmError('ERR_SHM_OS', 'SharedArrayBuffer is not available here: in an Electron renderer or preload enable cross-origin isolation (COOP/COEP) or the SharedArrayBuffer feature switch')
  }
  try {
    return new Uint8Array(new Shared(byteLength))
  } catch (err) {
    if (!(err instanceof RangeError)) throw err
    throw new ShmError('ERR_SHM_OS', `could not allocate a SharedArrayBuffer of ${describeBytes(byteLength)} for the segment (${err.message}): this process is short of memory or address space; close segments it no longer uses, or create a smaller one`)
  }
}

function sharedArrayBufferConstructor(): SharedArrayBufferConstructor | undefined {
  if (typeof globalThis.SharedArrayBuffer === 'function') return globalThis.SharedArrayBuffer
  // Chromium removes the global where a page is not cross-origin isolated; a shared
  // WebAssembly memory still hands out a SharedArrayBuffer where that is allowed.
  try {
    const memory = new WebAssembly.Memory({ initial: 0, maximum: 0, shared: true })
    return (memory.buffer as unknown as SharedArrayBuffer).constructor as SharedArrayBufferConstructor
  } catch {
    return undefined
  }
}
