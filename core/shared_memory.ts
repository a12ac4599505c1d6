import { osNameOf } from './names'
import { native, OpenMode } from './native'
import { checkOptions } from './options'
import { Segment } from './segment'

export interface CreateOptions {
  /** 1–26 characters of [A-Za-z0-9._-]. */
  name: string
  /** Bytes; rounded up to whole pages. */
  size: number
  /** Touch every page now (MAP_POPULATE) so the first writes are not slowed by page faults. */
  prefault?: boolean
  /** Remove the name when the creator closes the segment or exits (default true). */
  unlinkOnExit?: boolean
}

export interface OpenOptions {
  name: string
  /** How long to wait for a creator that is still initializing (default 2000 ms). */
  readyTimeoutMs?: number
}

export interface OpenOrCreateOptions extends CreateOptions {
  readyTimeoutMs?: number
}

const createSpec = { name: 'string', size: 'number', prefault: 'boolean', unlinkOnExit: 'boolean' } as const
const openSpec = { name: 'string', readyTimeoutMs: 'number' } as const
const openOrCreateSpec = { ...createSpec, ...openSpec } as const

/**
 * A named shared-memory segment. One process creates it, any number open it.
 * `bytes` and `buffer` are the segment itself: a write is visible to every other
 * process that has it open, without a copy.
 */
export class SharedMemory {
  /** @internal */
  readonly segment: Segment

  private constructor(segment: Segment) {
    this.segment = segment
  }

  /** Creates a new segment; ERR_SHM_EXISTS if the name is taken. */
  static create(options: CreateOptions): SharedMemory {
    const o = checkOptions<CreateOptions>(options, createSpec, 'SharedMemory.create')
    return SharedMemory.start({ ...o, mode: OpenMode.Create })
  }

  /** Opens an existing segment; ERR_SHM_NOT_FOUND, ERR_SHM_CORRUPT or ERR_SHM_VERSION otherwise. */
  static open(options: OpenOptions): SharedMemory {
    const o = checkOptions<OpenOptions>(options, openSpec, 'SharedMemory.open')
    return SharedMemory.start({ ...o, mode: OpenMode.Open })
  }

  /** Opens the segment if it exists, else creates it. `created` tells which happened. */
  static openOrCreate(options: OpenOrCreateOptions): SharedMemory {
    const o = checkOptions<OpenOrCreateOptions>(options, openOrCreateSpec, 'SharedMemory.openOrCreate')
    return SharedMemory.start({ ...o, mode: OpenMode.OpenOrCreate })
  }

  private static start(o: OpenOptions & Partial<CreateOptions> & { mode: OpenMode }): SharedMemory {
    const segment = Segment.open({
      name: o.name,
      size: o.size,
      mode: o.mode,
      prefault: o.prefault ?? false,
      unlinkOnCreatorExit: o.unlinkOnExit ?? true,
      readyTimeoutMs: o.readyTimeoutMs ?? 2000,
    })
    if (segment.created) segment.publish()
    return new SharedMemory(segment)
  }

  /** Removes a segment's name. Processes that have it open keep using it. */
  static unlink(name: string): void {
    native.unlink(osNameOf(name))
  }

  get name(): string {
    return this.segment.name
  }

  /** Total bytes, a whole number of pages. */
  get size(): number {
    return this.segment.size
  }

  /** True in the process that created the segment. */
  get created(): boolean {
    return this.segment.created
  }

  get closed(): boolean {
    return this.segment.closed
  }

  get creatorPid(): number {
    return this.segment.creatorPid
  }

  /** Exactly the segment: `bytes[0]` is segment offset 0. */
  get bytes(): Uint8Array {
    this.segment.assertOpen()
    return this.segment.bytes
  }

  /**
   * The ArrayBuffer that holds the segment. V8 never hands out page-aligned memory,
   * so the segment starts `bytes.byteOffset` bytes in (less than one page): build
   * views at `shm.bytes.byteOffset + offset`.
   */
  get buffer(): ArrayBuffer {
    return this.segment.buffer
  }

  /**
   * Unmaps the segment. Views over it read as empty afterwards (the buffer is
   * detached); the creator also removes the name unless `unlinkOnExit: false`.
   */
  close(): void {
    this.segment.close()
  }
}

