// Typed access to records in a segment, shared by the codec, containers and
// channels. Every reference read from the segment is checked here before use:
// another process (or a crash) may have left anything in those bytes.
import { Allocator } from './allocator'
import { corrupt, ShmError } from './errors'
import { Header } from './layout'
import { Rec, type Tag } from './records'
import type { Segment } from './segment'
import type { TurnGuard } from './struct'

export class Heap {
  readonly segment: Segment
  readonly allocator: Allocator
  readonly size: number
  readonly u8: Uint8Array
  readonly i32: Int32Array
  readonly u32: Uint32Array
  readonly f64: Float64Array
  readonly view: DataView
  /** True while this process holds the turn; mapped views refuse to work otherwise. */
  inTurn = false
  /** Handed to struct views so they check the turn too. */
  readonly guard: TurnGuard = { check: () => this.checkTurn() }
  /**
   * Blocks allocated (and references retained) by the operation under way, so a
   * failure can undo them and leave the segment exactly as it was.
   */
  private journalAllocs: number[] | null = null
  private journalRetains: number[] | null = null
  private readonly spareAllocs: number[] = []
  private readonly spareRetains: number[] = []

  constructor(segment: Segment) {
    this.segment = segment
    this.allocator = new Allocator(segment)
    this.size = segment.size
    this.u8 = segment.bytes
    this.i32 = segment.words
    this.u32 = new Uint32Array(segment.bytes.buffer, segment.bytes.byteOffset, segment.size >>> 2)
    this.f64 = new Float64Array(segment.bytes.buffer, segment.bytes.byteOffset, segment.size >>> 3)
    this.view = segment.view
  }

  checkTurn(): void {
    if (!this.inTurn) throw noTurn(this.segment.name)
  }

  /**
   * Runs `op` so that it either completes or leaves the heap as it found it: every
   * block it allocated is freed and every reference it retained is dropped again.
   * Operations must allocate everything before they link anything into existing
   * structures, so undoing the allocations is enough.
   */
  atomically<T>(op: () => T): T {
    if (this.journalAllocs !== null) return op()
    const allocs = (this.journalAllocs = this.spareAllocs)
    const retains = (this.journalRetains = this.spareRetains)
    try {
      return op()
    } catch (err) {
      for (let i = retains.length - 1; i >= 0; i--) this.unretain(retains[i]!)
      for (let i = allocs.length - 1; i >= 0; i--) this.allocator.free(allocs[i]!)
      throw err
    } finally {
      allocs.length = 0
      retains.length = 0
      this.journalAllocs = null
      this.journalRetains = null
    }
  }

  alloc(size: number): number {
    const at = this.allocator.alloc(size)
    this.journalAllocs?.push(at)
    return at
  }

  /** A zeroed block; ERR_SHM_FULL leaves the heap untouched. */
  allocZeroed(size: number): number {
    const at = this.alloc(size)
    this.u8.fill(0, at, at + size)
    return at
  }

  /** A record with its header written and refcount 1. */
  allocRecord(kind: Tag | number, bodySize: number, flags = 0): number {
    const at = this.alloc(Rec.Body + bodySize)
    this.u32[at >>> 2] = kind | (flags << 8)
    this.u32[(at + Rec.RefCount) >>> 2] = 1
    return at
  }

  free(at: number): void {
    this.allocator.free(at)
  }

  /** Checks that `ref` can be a record of `kind` before anything reads it. */
  record(ref: number, kind: number): number {
    if (ref < Header.HeapStart || ref + Rec.Body > this.size || (ref & 15) !== 0 || this.u8[ref] !== kind) {
      throw corrupt(`reference ${ref} does not point at a record of kind ${kind} (found ${ref < this.size && ref >= 0 ? this.u8[ref] : 'out of range'})`)
    }
    return ref
  }

  /**
   * Checks that `ref` is the start of a live allocation with at least `bytes`
   * usable bytes (queue nodes, directories: blocks that are freed by offset).
   */
  block(ref: number, bytes: number, what: string): number {
    if (this.allocator.blockSize(ref) < bytes) throw corrupt(`${what} ${ref} is not a live block of at least ${bytes} bytes`)
    return ref
  }

  /** Checks that [at, at + length) lies inside the segment. */
  range(at: number, length: number): void {
    if (at < Header.HeapStart || length < 0 || at + length > this.size) {
      throw corrupt(`range ${at}+${length} is outside the heap (segment size ${this.size})`)
    }
  }

  kindOf(ref: number): number {
    return this.u8[ref]!
  }

  flagsOf(ref: number): number {
    return this.u8[ref + Rec.Flags]!
  }

  retain(ref: number): void {
    this.u32[(ref + Rec.RefCount) >>> 2]! += 1
    this.journalRetains?.push(ref)
  }

  /** Drops one reference and returns how many are left. */
  unretain(ref: number): number {
    const i = (ref + Rec.RefCount) >>> 2
    const left = this.u32[i]! - 1
    this.u32[i] = left < 0 ? 0 : left
    return left
  }
}

export function noTurn(name: string): ShmError {
  return new ShmError('ERR_SHM_NO_TURN', `a value mapped from segment "${name}" was used outside shm.access(): use it inside a turn, or copy it out with tx.copy()`)
}
