// A named segment mapped into this process: the header, and the futex words in it.
// Higher layers (lock, allocator, channels) work on `bytes`/`words`/`view`.
import { ShmError } from './errors'
import { Header, HeaderFlag, LAYOUT_VERSION, MAGIC, MIN_SEGMENT_SIZE } from './layout'
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
  private readonly id: number
  private isClosed = false
  private nameUnlinked = false

  private constructor(name: string, osName: string, mapping: NativeMapping) {
    this.name = name
    this.osName = osName
    this.id = mapping.id
    this.size = mapping.size
    this.created = mapping.created
    this.mirrored = mapping.mirrored
    this.bytes = new Uint8Array(mapping.buffer, mapping.byteOffset, mapping.size)
    this.words = new Int32Array(mapping.buffer, mapping.byteOffset, mapping.size >>> 2)
    this.view = new DataView(mapping.buffer, mapping.byteOffset, mapping.size)
  }

  static open(params: SegmentOpenParams): Segment {
    const osName = osNameOf(params.name)
    let size = 0
    if (params.mode !== OpenMode.Open) size = roundedSize(params.size)
    const deadline = Date.now() + params.readyTimeoutMs
    for (;;) {
      let mapping: NativeMapping
      try {
        mapping = native.open(osName, size, params.mode, params.prefault)
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
        segment.initHeader(params.unlinkOnCreatorExit)
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
    crypto.getRandomValues(new Uint32Array(this.bytes.buffer, this.bytes.byteOffset + Header.InstanceId, 2))
  }

  /** Marks the header complete; openers wait for this. Called after the upper layers initialized. */
  publish(): void {
    Atomics.store(this.words, Header.Ready >> 2, 1)
    this.syncOut()
  }

  private validateHeader(deadline: number): void {
    for (;;) {
      this.syncIn()
      if (Atomics.load(this.words, Header.Ready >> 2) === 1) break
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
    if (magic !== MAGIC) {
      throw new ShmError('ERR_SHM_CORRUPT', `segment "${this.name}" has magic 0x${magic.toString(16)}, expected 0x${MAGIC.toString(16)}: it was not created by interprocess-objects or was overwritten`)
    }
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

  get buffer(): ArrayBuffer {
    this.assertOpen()
    return this.bytes.buffer as ArrayBuffer
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
      probe = native.open(this.osName, 0, OpenMode.Open, false)
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

  close(): void {
    if (this.isClosed) return
    this.isClosed = true
    if (unlinkAtExit.has(this)) this.unlinkName()
    native.close(this.id)
  }
}

function roundedSize(size: unknown): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < MIN_SEGMENT_SIZE) {
    throw new ShmError('ERR_INVALID_ARGUMENT', `size must be an integer of at least ${MIN_SEGMENT_SIZE} bytes, got ${String(size)}`)
  }
  const page = native.pageSize
  return Math.ceil(size / page) * page
}
