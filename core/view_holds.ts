// References that views themselves hold, given back when garbage collection takes the
// view (references a process owns through put and take results are given back by
// destroy, release or close instead):
// - A TypedArray, DataView or Buffer read out of a container holds its record for as
//   long as this process can reach the view. Its element reads (`v[0]`, `getInt32`)
//   have no hook where a generation could be checked, so its bytes must never be
//   freed under it: removing it from its container, here or in another process, only
//   drops the container's reference. (Container and struct views need no hold: every
//   use checks the record's generation and throws ERR_SHM_STALE once it is freed.)
// - A view received by reference owns its reference like a take result, and is also
//   released when collected if its receiver neither releases nor destroys it.
// Each hold is listed in the handle's holder slot (core/holders.ts), so a process that
// dies or closes gives its holds back like everything else it held. A held record is
// freed only after V8 collects the view, which V8 does not hurry for memory outside its
// heap: each hold is reported to it as external memory (the record's bytes), and an
// allocation of this handle that finds the heap full first collects garbage at once and
// gives back what the collected views held (reclaim). If that frees nothing, it counts
// a request in the header (Header.CollectRequests) and every other handle holding views
// does the same at the start of its next turn, so the retried allocation finds the
// room. Views made in the current task cannot be collected before it ends (a WeakRef
// keeps its target until then).
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import type { Heap } from './heap'
import type { Holders } from './holders'
import { Header } from './layout'
import { othersOpen } from './handles'
import { identityOf } from './lock'
import { native } from './native'
import { Bin } from './records'
import { releaseRecord } from './values/release'
import { EndOfTask } from './end_of_task'

/** How many views received by reference may wait for the end of their task (ViewHolds.watch) before they are watched at once. */
const MAX_PENDING_WATCHES = 64

/** The least time between two collections that other handles' requests cause in this one. */
const ANSWER_EVERY_MS = 20

/** Runs `fn` in a turn of the segment (at once when the caller is in one already). */
type InTurn = <T>(fn: () => T) => T

/** A reference a view holds until it is collected (or, watched, until its owner releases it). */
class Held {
  readonly ref: number
  readonly generation: number
  /** Bytes reported to V8 as kept alive by the view (a hold's record); 0 for a watched view. */
  readonly bytes: number
  /** The view, for reclaim (holds only). */
  readonly view: WeakRef<object> | null
  /** Given back already (by reclaim, or by the turn after the view was collected): never twice. */
  done = false
  /** A watched view: the references received through it and not released yet (one view per record per handle). */
  count = 1

  constructor(ref: number, generation: number, bytes: number, view: WeakRef<object> | null) {
    this.ref = ref
    this.generation = generation
    this.bytes = bytes
    this.view = view
  }
}

export class ViewHolds {
  private readonly heap: Heap
  private readonly holders: Holders
  private readonly inTurn: InTurn
  private readonly collected = new FinalizationRegistry<Held>((held) => this.schedule(held))
  /** Holds whose views may still be alive (reclaim looks for the collected ones). */
  private readonly live = new Set<Held>()
  /** Collected views' references, released together in one turn soon after (not a turn per view). */
  private pending: Held[] = []
  /** Header.CollectRequests as this handle last answered it. */
  private answered = 0
  /** This handle asked the others to collect (for the ERR_SHM_FULL message). */
  private asked = false

  /** This handle's identity (core/lock.ts identityOf), as the handle table lists it. */
  private readonly identity: number

  constructor(heap: Heap, holders: Holders, inTurn: InTurn) {
    this.heap = heap
    this.holders = holders
    this.inTurn = inTurn
    this.identity = identityOf(heap.segment)
  }

  /**
   * In a turn: `view`, a byte view just read out of a container, takes a reference to
   * its record `ref` until it is collected. ERR_SHM_FULL (nothing changed) when the
   * handle's list of references has no room to grow.
   */
  hold(ref: number, view: object): void {
    const heap = this.heap
    this.holders.hold(ref)
    // Not through heap.retain: an operation undone around this read must not take the
    // view's own reference with it.
    heap.retainHeld(ref)
    const held = new Held(ref, heap.generationOf(ref), Bin.Data + heap.u32[(ref + Bin.ByteLength) >>> 2]!, new WeakRef(view))
    native.adjustExternalMemory(held.bytes)
    this.live.add(held)
    this.collected.register(view, held)
  }

  /**
   * `view` owns one more reference, received with a message: released when the view is
   * collected, unless forget(view) comes first. Watched at the end of the task that
   * received it, for as many references as it received then and did not release:
   * registering costs ~0.6 µs a view (V8's FinalizationRegistry.register), and most
   * views are released in the task that received them. The pending map holds the views
   * until then, so none can be collected unwatched; a loop that never yields watches
   * them at once once MAX_PENDING_WATCHES wait. A view is registered once: its Held
   * counts its references.
   */
  watch(ref: number, view: object): void {
    const pending = this.pendingWatches.get(view)
    if (pending !== undefined) pending.count++
    else {
      this.pendingWatches.set(view, new Held(ref, this.heap.generationOf(ref), 0, null))
      this.watchPending.added(this.pendingWatches.size)
    }
  }

  /** Views received in this task, with the references received through them not released yet. */
  private readonly pendingWatches = new Map<object, Held>()
  /** Watched views: their Held, registered with `collected`. */
  private readonly watched = new WeakMap<object, Held>()
  private readonly watchPending = new EndOfTask((): void => {
    if (!this.heap.segment.closed) {
      for (const [view, held] of this.pendingWatches) {
        if (held.count === 0) continue
        const known = this.watched.get(view)
        if (known !== undefined && !known.done && known.generation === held.generation) known.count += held.count
        else {
          this.watched.set(view, held)
          this.collected.register(view, held, view)
        }
      }
    }
    this.pendingWatches.clear()
  }, MAX_PENDING_WATCHES)

  /** One reference received through `view` was released by its owner (release, not collection). */
  forget(view: object): void {
    const pending = this.pendingWatches.get(view)
    if (pending !== undefined && pending.count > 0) {
      pending.count--
      return
    }
    const held = this.watched.get(view)
    if (held === undefined || --held.count > 0) return
    this.watched.delete(view)
    this.collected.unregister(view)
  }

  /**
   * In a turn, the heap full: collects garbage now and gives back what the collected
   * views held. Returns the bytes given back (0: none, or nothing held).
   */
  reclaim(): number {
    const freed = this.collect()
    if (freed === 0 && othersOpen(this.heap.segment, process.pid, this.identity)) {
      // Perhaps other handles' views hold the room: they collect at their next turn.
      this.answered = (Atomics.add(this.heap.i32, Header.CollectRequests >>> 2, 1) + 1) | 0
      this.asked = true
    }
    return freed
  }

  /**
   * At the start of each turn: another handle found the heap full since the last one,
   * so this one gives back what its collected views held — at most once per
   * ANSWER_EVERY_MS (a process filling the heap in a loop must not make every turn of
   * the others a full collection).
   */
  onTurn(): void {
    const requests = Atomics.load(this.heap.i32, Header.CollectRequests >>> 2)
    if (requests === this.answered || (this.live.size !== 0 && performance.now() - this.collectedAt < ANSWER_EVERY_MS)) return
    this.answered = requests
    this.collect()
  }

  /** When collect last ran a collection (performance.now()). */
  private collectedAt = -Infinity

  /** Collects garbage now and gives back what the collected views held: the bytes. */
  private collect(): number {
    // Inside the holder list's own growth, its entries must stay as they are.
    if (this.live.size === 0 || this.holders.growing) return 0
    this.collectedAt = performance.now()
    collectGarbage()
    let freed = 0
    for (const held of this.live) {
      if (held.view!.deref() !== undefined) continue
      freed += held.bytes
      this.release(held)
    }
    return freed
  }

  /** For ERR_SHM_FULL after reclaim: what views of this handle still pin, if anything. */
  pinnedHint(): string | undefined {
    let bytes = 0
    for (const held of this.live) bytes += held.bytes
    const others = this.asked ? 'Other processes that read TypedArrays out of containers keep them until garbage collection too; they were asked to give back those they no longer reach at their next turn: retry then.' : ''
    if (bytes === 0) return others || undefined
    return `Of the heap, ${bytes} bytes are TypedArrays this process read out of containers and can still reach (each keeps its bytes alive until garbage collection; those read in the current task are kept at least until it ends): yield to the event loop between turns, or keep copies (tx.copy, slice()) instead of views. ${others}`.trim()
  }

  private schedule(held: Held): void {
    if (held.done) return
    if (this.heap.segment.closed) return this.settle(held)
    this.pending.push(held)
    if (this.pending.length === 1) setImmediate(() => this.releaseCollected())
  }

  private releaseCollected(): void {
    const pending = this.pending
    this.pending = []
    if (this.heap.segment.closed) {
      // close() gave every reference back already: only this side's books are left.
      for (const held of pending) this.settle(held)
      return
    }
    try {
      this.inTurn(() => {
        for (const held of pending) this.release(held)
      })
    } catch {
      // No turn now (a damaged heap, a closing handle): the references go with the handle.
    }
  }

  /** `held` is done with: out of the live set, and what it reported to V8 taken back (the view is gone). */
  private settle(held: Held): void {
    held.done = true
    this.live.delete(held)
    if (held.bytes !== 0) native.adjustExternalMemory(-held.bytes)
  }

  /** In a turn: gives back the reference `held` stands for, once. */
  private release(held: Held): void {
    if (held.done) return
    this.settle(held)
    const heap = this.heap
    // Only a reference this handle still holds (not destroyed, released or swept meanwhile).
    // A watched view gives back every reference received through it and not released.
    for (let i = held.view === null ? held.count : 1; i > 0; i--) {
      if (heap.generationOf(held.ref) !== held.generation || !this.holders.unhold(held.ref)) return
      // A watched view's reference was owned through it: owned no more (a later view of the
      // record, read out of a container, must not look owned, or it would be sent without a turn).
      if (held.view === null) heap.takeOwned(held.ref)
      releaseRecord(heap, held.ref, heap.kindOf(held.ref))
    }
  }
}

/**
 * A full collection, now. V8 offers it only behind --expose-gc; the flag is set for
 * the first call and the function taken from a fresh context (the way Node's own
 * docs show to reach it from a running process). Only a full heap gets here. Where a
 * runtime refuses (no such flag, no gc in the context), nothing is collected here:
 * views V8 collected on its own are still given back.
 */
let gcNow: (() => void) | null | undefined
function collectGarbage(): void {
  if (gcNow === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc')
      const gc: unknown = vm.runInNewContext('typeof gc === "function" ? gc : null')
      gcNow = typeof gc === 'function' ? (gc as () => void) : null
    } catch {
      gcNow = null
    }
  }
  gcNow?.()
}
