// Typed access to records in a segment, shared by the codec, containers and
// channels. Every reference read from the segment is checked here before use:
// another process (or a crash) may have left anything in those bytes.
import { Allocator } from './allocator'
import { corrupt, ShmError } from './errors'
import { fmix32 } from './fmix'
import { Header } from './layout'
import { Rec, type Tag } from './records'
import type { Segment } from './segment'

export class Heap {
  readonly segment: Segment
  readonly allocator: Allocator
  readonly size: number
  readonly u8: Uint8Array
  /** The SharedArrayBuffer the segment is mapped into, and where in it the segment starts (a view's `buffer` is compared with it). */
  readonly buffer: ArrayBufferLike
  readonly byteOffset: number
  readonly i32: Int32Array
  readonly u32: Uint32Array
  readonly f64: Float64Array
  readonly view: DataView
  /** True while this process holds the turn; mapped views refuse to work otherwise. */
  inTurn = false
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
    this.buffer = segment.bytes.buffer
    this.byteOffset = segment.bytes.byteOffset
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

  /** A record of `size` bytes (header included) with its header written: refcount 1, a new generation. */
  allocRecord(kind: Tag | number, size: number, flags = 0): number {
    const at = this.alloc(size)
    this.u32[at >>> 2] = kind | (flags << 8)
    this.u32[(at + Rec.RefCount) >>> 2] = 1
    this.u32[(at + Rec.Generation) >>> 2] = this.nextGeneration()
    return at
  }

  /**
   * A generation no live record has: the allocation counter through a bijective
   * mixer, so that a stale view's generation does not look like the small integers
   * that fill the data of whatever reuses its memory. Never 0 (a freed record's).
   */
  private nextGeneration(): number {
    const i = Header.NextGeneration >>> 2
    const count = (this.u32[i]! + 1) >>> 0
    this.u32[i] = count
    return fmix32(count) || 1
  }

  generationOf(ref: number): number {
    return this.u32[(ref + Rec.Generation) >>> 2]!
  }

  free(at: number): void {
    this.allocator.free(at)
  }

  /** Frees a record: its generation is cleared first, so every view of it turns stale. */
  freeRecord(ref: number): void {
    this.u32[(ref + Rec.Generation) >>> 2] = 0
    this.views.delete(ref)
    // Nobody owns what is freed (a close, or a sweep, gave the references back): a later record at this offset starts at none.
    this.owned.delete(ref)
    this.allocator.free(ref)
  }

  // ---------------------------------------------------------------------------
  // Views: one per record per process (identity), checked against the generation.

  /**
   * The views this process made, by record offset, with the generation they were made
   * for. Weak: a view nobody holds is collected. Entries go when their record is freed
   * here, when a read finds another generation, and in a sweep every SWEEP_EVERY new
   * views (a FinalizationRegistry per view cost more than the whole put).
   */
  private readonly views = new Map<number, CachedView>()
  private viewsUntilSweep = SWEEP_EVERY

  /** The view this process holds of record `ref` in its current generation, if any. */
  cachedView(ref: number): object | undefined {
    const entry = this.views.get(ref)
    if (entry === undefined) return undefined
    if (entry.generation !== this.u32[(ref + Rec.Generation) >>> 2]) {
      this.views.delete(ref)
      return undefined
    }
    return entry.deref()
  }

  /** Remembers `view` as the one view of record `ref`; returns it. */
  cacheView<T extends object>(ref: number, view: T): T {
    if (ref === this.uncachedRoot) return view
    if (--this.viewsUntilSweep === 0) this.sweepViews()
    this.views.set(ref, new CachedView(view, this.u32[(ref + Rec.Generation) >>> 2]!))
    return view
  }

  /**
   * The fresh record tx.put is making its view of, while nothing else refers to it: that
   * view is cached only once it is shared (adoptView), since until then no other read
   * can reach the record. Most put results are never shared, and a WeakRef per view
   * kept every one of them alive through young-generation collections (a third of a
   * put + destroy of a small object went to the cache and the GC).
   */
  private uncachedRoot = -1

  /** Makes the view of `ref` that `make` returns without caching it (tx.put of a fresh record only referred to by its caller). */
  viewUncached<T>(ref: number, make: () => T): T {
    this.uncachedRoot = ref
    try {
      return make()
    } finally {
      this.uncachedRoot = -1
    }
  }

  /**
   * `view`, a view of record `ref` in its current generation, is being stored or sent:
   * from now on other reads can reach the record, so it becomes the cached one (a
   * tx.put result that was not cached yet).
   */
  adoptView(ref: number, view: object): void {
    const entry = this.views.get(ref)
    if (entry !== undefined && entry.generation === this.u32[(ref + Rec.Generation) >>> 2] && entry.deref() !== undefined) return
    this.cacheView(ref, view)
  }

  /**
   * References this process owns through its views (put and take results not destroyed
   * yet), by record. Views are one per record per process, so counting by record is
   * counting by view; and a process can never drop more references than it owns.
   */
  private readonly owned = new Map<number, number>()

  /** One more reference this process owns through its view of `ref` (tx.put, tx.takeMessage). */
  addOwned(ref: number): void {
    this.owned.set(ref, (this.owned.get(ref) ?? 0) + 1)
  }

  /**
   * Set by the handle (core/view_holds.ts): what gives a byte view read out of a
   * container its own reference. Null in a heap without a handle (nothing holds then).
   */
  viewHolds: { hold(ref: number, view: object): void } | null = null

  /**
   * `view`, the cached view of Binary record `ref`, was just read out of a container:
   * it holds the record from now on (once per view), so that no free — here or in
   * another process — can reuse the bytes its unchecked element reads see.
   */
  holdByteView(ref: number, view: unknown): void {
    const entry = this.views.get(ref)
    if (entry === undefined || entry.held || this.viewHolds === null || entry.deref() !== view) return
    this.viewHolds.hold(ref, view as object)
    entry.held = true
  }

  /** Takes back one reference this process owns through its view of `ref`; false if it owns none (tx.destroy). */
  takeOwned(ref: number): boolean {
    const n = this.owned.get(ref)
    if (n === undefined) return false
    if (n === 1) this.owned.delete(ref)
    else this.owned.set(ref, n - 1)
    return true
  }

  /** Drops the entries of collected views and of records freed meanwhile (by any process). */
  private sweepViews(): void {
    for (const [ref, entry] of this.views) {
      if (entry.generation !== this.u32[(ref + Rec.Generation) >>> 2] || entry.deref() === undefined) this.views.delete(ref)
    }
    this.viewsUntilSweep = Math.max(SWEEP_EVERY, this.views.size)
  }

  /**
   * Records whose last reference went while this process still had a view of them:
   * (ref, generation) pairs, freed when the turn ends. Until then the view keeps
   * working and storing it again revives the record, so moving a value within one
   * turn (sort, reverse, splice, a swap through a local) never loses it.
   */
  private deferred: number[] = []
  private endingTurn = false

  /** True when the record must outlive its last reference until the turn ends. */
  deferFree(ref: number): boolean {
    if (!this.inTurn || this.endingTurn || this.cachedView(ref) === undefined) return false
    this.deferred.push(ref, this.u32[(ref + Rec.Generation) >>> 2]!)
    return true
  }

  /**
   * At the end of a turn: frees the deferred records that nothing stored again
   * (`release` frees one record and what only it refers to; nothing is deferred
   * while it runs). Their views turn stale.
   */
  endTurn(release: (ref: number) => void): void {
    if (this.deferred.length === 0) return
    const pending = this.deferred
    this.deferred = []
    this.endingTurn = true
    try {
      for (let i = 0; i < pending.length; i += 2) {
        const ref = pending[i]!
        if (this.u32[(ref + Rec.Generation) >>> 2] !== pending[i + 1] || this.u32[(ref + Rec.RefCount) >>> 2] !== 0) continue
        // Back to one reference, which release drops: the walk then frees it as usual.
        this.u32[(ref + Rec.RefCount) >>> 2] = 1
        release(ref)
      }
    } finally {
      this.endingTurn = false
    }
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

  /** Throws unless this process holds the turn and record `ref` still has `generation`. */
  checkView(ref: number, generation: number): void {
    if (!this.inTurn) throw noTurn(this.segment.name)
    if (this.u32[(ref + Rec.Generation) >>> 2] !== generation) throw stale(ref)
  }

  // Reference counts change outside turns too (a message sent or released by reference:
  // retainHeld, dropShared), so every change is atomic. Outside a turn a count only
  // goes up by a reference its process already holds, and down while it stays above
  // 1: whoever holds the turn and sees 1 holds the last reference, and may free.

  retain(ref: number): void {
    this.retainHeld(ref)
    this.journalRetains?.push(ref)
  }

  /**
   * One more reference to `ref`, not undone by an atomically() around it, in a turn or
   * not: the caller makes sure the record lives meanwhile (this process owns a reference
   * to it, see owns(), which nothing else can drop; or holds the turn).
   */
  retainHeld(ref: number): void {
    Atomics.add(this.i32, (ref + Rec.RefCount) >>> 2, 1)
  }

  /** True when this process owns a reference to `ref` through a view (a put or take result, a view received by reference). */
  owns(ref: number): boolean {
    return this.owned.has(ref)
  }

  /**
   * Drops one reference to `ref` when it is not the last, in a turn or not: true when it
   * did, false when the count is 1 (the caller then drops it in a turn, and frees).
   * A compare-and-swap, so that two processes dropping at once cannot both see 2.
   */
  dropShared(ref: number): boolean {
    const i = (ref + Rec.RefCount) >>> 2
    for (;;) {
      const count = Atomics.load(this.i32, i)
      if (count <= 1) return false
      if (Atomics.compareExchange(this.i32, i, count, count - 1) === count) return true
    }
  }

  /** Drops one reference and returns how many are left. */
  unretain(ref: number): number {
    const left = Atomics.sub(this.i32, (ref + Rec.RefCount) >>> 2, 1) - 1
    // (Below 0 only in a corrupt heap: kept at 0.)
    if (left < 0) Atomics.store(this.i32, (ref + Rec.RefCount) >>> 2, 0)
    return left
  }
}

/** A weak reference to a view, with what the cache knows about it (one allocation per view). */
class CachedView extends WeakRef<object> {
  /** The generation of the record when the view was made. */
  readonly generation: number
  /** The view holds a reference of its own until it is collected (a byte view read out of a container: holdByteView). */
  held = false

  constructor(view: object, generation: number) {
    super(view)
    this.generation = generation
  }
}

/** New views between two sweeps of the view cache (at least as many as it holds, so sweeping stays O(1) a view). */
const SWEEP_EVERY = 4096

export function stale(ref: number): ShmError {
  return new ShmError(
    'ERR_SHM_STALE',
    `the record behind this mapped view (offset ${ref}) was freed — destroyed, or removed from every container and message that held it — so its memory may hold another value now: read values while something still refers to them, or keep a copy (tx.copy)`,
  )
}

export function noTurn(name: string): ShmError {
  return new ShmError('ERR_SHM_NO_TURN', `a value mapped from segment "${name}" was used outside shm.access(): use it inside a turn, or copy it out with tx.copy()`)
}
