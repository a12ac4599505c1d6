// The loan pool: the byte arrays Channel.loan lends, kept for the next loan once
// released, so that the bulk path — loan → fill → send → receive → release — takes no
// turn and allocates nothing once the pool holds an array of the size asked for.
//
// The pool is one table of the segment (Header.LoanPool, records.ts LoanPoolRec),
// made in a turn at the first loan. Each entry holds one LoanBlock record (a record of
// its own kind, so no value code ever takes it for a Binary) and changes hands by
// compare-and-swap on its State word:
//   free (0) → held by a handle (its pid; Identity names the handle): a loan
//   held → LOAN_IN_FLIGHT: sent (the frame names the entry and the loan's generation)
//   in flight → held by the receiving handle: received
//   held → free: released, by channel.release, by garbage collection of the view, by
//     shm.close of the handle, or by another process once the holder is dead
//   in flight → free: the message was dropped (its receiver or sender died, core/messages.ts)
// Block and Capacity change only in a turn, by the handle that holds the entry: a
// new array when the entry's is too small (or far too large), and the blocks of free
// entries go back to the allocator whenever an allocation finds the heap full
// (Heap.whenFull), so pooled arrays never make the segment fuller than it looks.
//
// A loan's view is a plain Uint8Array over the block. After release its bytes are the
// next loan's: the API refuses a released view (ERR_SHM_STALE, from its generation),
// but element reads cannot be checked (a TypedArray has no hook) — read a received
// loan before releasing it. A holder is gone when its process is, or its handle is no
// longer listed (closed, or its worker thread ended: core/handles.ts).
// A send marks its loans (and its frame's array) in flight only once it has claimed
// ring slots and written them, just before it publishes (core/messages.ts launch): a
// sender killed while it waits for room still holds them, and they come back like any
// dead holder's. One killed between that mark and publishing leaves a finished frame in
// claimed slots: the receiver that skips the dead sender's position reads it first and
// gives its loans back (core/messages.ts carriedInFlight, dropInFlight).
import { corrupt, ShmError } from './errors'
import type { Heap } from './heap'
import { Header } from './layout'
import { handleRuns } from './handles'
import { identityOf } from './lock'
import { EndOfTask } from './end_of_task'
import { privateSlot } from './private_slot'
import { InternalKind, LOAN_ENTRIES, LOAN_ENTRY_SIZE, LOAN_IN_FLIGHT, LoanBlockRec, LoanEntry, LoanPoolRec, Rec } from './records'

/** Runs `fn` in a turn of the segment (at once when the caller is in one already). */
type InTurn = <T>(fn: () => T) => T

/** Which loan a view is: the handle's pool that made it, its entry and the generation it was lent in. */
interface Ticket {
  readonly pool: LoanPool
  readonly entry: number
  readonly generation: number
}

/**
 * Where a loan view keeps its ticket: a private slot of the view itself (kept after
 * release: a later use is ERR_SHM_STALE). A WeakMap entry, a WeakRef and a
 * FinalizationRegistry cell per loan cost ~2 µs between them; a symbol property set by
 * defineProperty ~0.4 µs; the slot about as much as a property store.
 */
const loanTicket = privateSlot<Ticket>()

function ticketOfView(value: object): Ticket | undefined {
  return loanTicket.get(value)
}

/** Blocks are rounded up to this, so that loans of nearby sizes share them. */
const BLOCK_GRAIN = 4096

/**
 * A loan takes a pooled array of at least its size and at most this much larger
 * (×, and at least one grain), so that small loans do not pin large arrays.
 */
const FIT_FACTOR = 2

/** Loan views registerPending handles at once rather than waiting for the end of the task. */
const MAX_PENDING_VIEWS = 64

/** Entries the pool adds before it resizes the arrays of free ones instead. */
const SMALL_POOL = 32
/** How many of its last lent entries a handle tries before it scans the pool. */
const RECENT_LENDS = 4

/** The pool table record's size: its header words, then the entries. */
const TABLE_BYTES = LoanPoolRec.Entries + LOAN_ENTRIES * LOAN_ENTRY_SIZE

/** Where entry `entry` of the pool table at `table` starts. */
function entryOffset(table: number, entry: number): number {
  return table + LoanPoolRec.Entries + entry * LOAN_ENTRY_SIZE
}

export class LoanPool {
  private readonly heap: Heap
  private readonly inTurn: InTurn
  private readonly pid = process.pid
  private readonly identity: number
  /**
   * The view each entry's loan was last sent from by this handle, so that a loan received
   * by the handle that sent it is the same object (at most one per entry, overwritten).
   */
  private readonly sentViews: Array<Uint8Array | undefined> = []
  /** The entries this handle lent last, newest first (at most RECENT_LENDS): claimFitting tries them first. */
  private readonly recentLends: number[] = []
  /** Where claimFitting's scan starts when none of those is free: after the entry it found last. */
  private nextScan = 0
  /** Loans garbage collection gives back when their holder dropped the view without releasing it. */
  private readonly collected = new FinalizationRegistry<Ticket>((t) => this.freeIfMine(t))
  /**
   * Loan views made since the current task began, not yet registered with `collected`:
   * registering costs ~0.6 µs a view (V8's FinalizationRegistry.register), and most
   * loans are sent or released before their task ends, when they no longer need it. The
   * list holds them until then (so none can be collected unregistered); registerPending
   * registers those this handle still holds.
   */
  private readonly pendingViews: Uint8Array[] = []
  private readonly registerPending = new EndOfTask((): void => {
    const views = this.pendingViews
    if (!this.heap.segment.closed) {
      for (const view of views) {
        const ticket = ticketOfView(view)!
        if (this.holds(ticket)) this.collected.register(view, ticket)
      }
    }
    views.length = 0
  }, MAX_PENDING_VIEWS)

  constructor(heap: Heap, inTurn: InTurn) {
    this.heap = heap
    this.inTurn = inTurn
    this.identity = identityOf(heap.segment)
  }

  /**
   * A Uint8Array of `byteLength` bytes in the segment, held by this handle. No turn
   * when a free pooled array fits; a turn to make the pool or a new array otherwise.
   * ERR_SHM_FULL when the heap has no room for it, or every pool entry is held.
   */
  lend(byteLength: number): Uint8Array {
    const entry = this.claimLoan(byteLength)
    const at = entryOffset(this.tableRef(), entry)
    return this.viewOf(at, entry, this.heap.u32[(at + LoanEntry.Generation) >>> 2]!, byteLength)
  }

  /**
   * An array for a message frame of `byteLength` bytes (too long for the ring's slots),
   * held by this handle: its entry, the loan's generation and where its bytes start.
   * The receiver takes it with takeFrame and frees it with freeFrame. ERR_SHM_FULL as lend.
   */
  lendFrame(byteLength: number): { entry: number; generation: number; data: number } {
    const entry = this.claimLoan(byteLength)
    const at = entryOffset(this.tableRef(), entry)
    const u32 = this.heap.u32
    return { entry, generation: u32[(at + LoanEntry.Generation) >>> 2]!, data: u32[(at + LoanEntry.Block) >>> 2]! + LoanBlockRec.Data }
  }

  /**
   * Receiving a frame lent by lendFrame: the entry becomes this handle's, and the
   * offset of the frame's `length` bytes is returned. ERR_SHM_CORRUPT as receive, or
   * when the array does not hold `length` bytes (it is then freed).
   */
  takeFrame(entry: number, generation: number, length: number): number {
    return this.takeInFlight(entry, generation, length).block + LoanBlockRec.Data
  }

  /**
   * Where the frame of `length` bytes lent in `entry` lies while it is still in flight
   * in `generation` (nobody took it); -1 otherwise. For whoever drops its message.
   */
  inFlightFrame(entry: number, generation: number, length: number): number {
    const table = this.tableRef()
    if (table === 0 || entry >= this.capacityOf(table)) return -1
    const at = entryOffset(table, entry)
    const u32 = this.heap.u32
    if (Atomics.load(this.heap.i32, (at + LoanEntry.State) >>> 2) !== LOAN_IN_FLIGHT || u32[(at + LoanEntry.Generation) >>> 2] !== generation) return -1
    if (length > u32[(at + LoanEntry.Length) >>> 2]! || u32[(at + LoanEntry.Length) >>> 2]! > u32[(at + LoanEntry.Capacity) >>> 2]!) return -1
    return u32[(at + LoanEntry.Block) >>> 2]! + LoanBlockRec.Data
  }

  /** Frees the entry of a frame this handle took (takeFrame): read, or not deliverable. */
  freeFrame(entry: number): void {
    this.free(entryOffset(this.tableRef(), entry))
  }

  /** Claims an entry whose array holds `byteLength` bytes (a turn only when the array is made), as a new loan. */
  private claimLoan(byteLength: number): number {
    const table = this.table(byteLength)
    let entry = this.claimFitting(table, byteLength)
    if (entry < 0) entry = this.claimAny(table)
    if (entry < 0 && this.reclaimDead(table) > 0) entry = this.claimFitting(table, byteLength)
    if (entry < 0) entry = this.claimAny(table)
    if (entry < 0) {
      throw new ShmError(
        'ERR_SHM_FULL',
        `all ${LOAN_ENTRIES} loans of segment "${this.heap.segment.name}" are held (lent and not sent, in messages not yet received, or received and not released): release received loans with channel.release(view) once read`,
      )
    }
    const at = entryOffset(table, entry)
    const u32 = this.heap.u32
    try {
      if (!fits(u32[(at + LoanEntry.Capacity) >>> 2]!, byteLength) || u32[(at + LoanEntry.Block) >>> 2] === 0) this.inTurn(() => this.resize(at, byteLength))
      // Nothing is written through an array the table only says is there.
      this.arrayOf(at, byteLength)
    } catch (err) {
      this.free(at)
      throw err
    }
    u32[(at + LoanEntry.Generation) >>> 2] = (u32[(at + LoanEntry.Generation) >>> 2]! + 1) >>> 0 || 1
    u32[(at + LoanEntry.Length) >>> 2] = byteLength
    this.lentLast(entry)
    return entry
  }

  /**
   * The loan `value` is, when it is one of this handle's loan views: for a frame's
   * ref hook. ERR_SHM_STALE when this handle no longer holds it (released, or sent).
   */
  ticketOf(value: Uint8Array): Ticket | undefined {
    const ticket = ticketOfView(value)
    if (ticket === undefined || ticket.pool !== this) return undefined
    if (!this.holds(ticket)) throw staleLoan()
    this.sentViews[ticket.entry] = value
    return ticket
  }

  /** Sending: the loans a frame carries (entry, generation pairs) leave this handle. Call once nothing can fail any more. */
  sendAll(loans: readonly number[]): void {
    const table = this.tableRef()
    for (let i = 0; i < loans.length; i += 2) {
      const at = entryOffset(table, loans[i]!)
      Atomics.store(this.heap.i32, (at + LoanEntry.Identity) >>> 2, 0)
      Atomics.compareExchange(this.heap.i32, (at + LoanEntry.State) >>> 2, this.pid, LOAN_IN_FLIGHT)
    }
  }

  /** A send that did not happen after all (a full ring, a timeout): the loans are this handle's again. */
  unsendAll(loans: readonly number[]): void {
    const table = this.tableRef()
    for (let i = 0; i < loans.length; i += 2) {
      const at = entryOffset(table, loans[i]!)
      if (Atomics.compareExchange(this.heap.i32, (at + LoanEntry.State) >>> 2, LOAN_IN_FLIGHT, this.pid) === LOAN_IN_FLIGHT) {
        Atomics.store(this.heap.i32, (at + LoanEntry.Identity) >>> 2, this.identity)
      }
    }
  }

  /**
   * Receiving: the loan `entry` a frame names (in flight in `generation`) becomes this
   * handle's. ERR_SHM_CORRUPT when it is not in flight in that generation (a damaged
   * frame, or a loan given up on as lost).
   */
  receive(entry: number, generation: number): Uint8Array {
    const { at, length } = this.takeInFlight(entry, generation)
    const sent = this.sentViews[entry]
    if (sent !== undefined) {
      this.sentViews[entry] = undefined
      if (ticketOfView(sent)!.generation === generation) {
        // Not registered when it was lent if it was sent before that task ended.
        this.registerSoon(sent)
        return sent
      }
    }
    return this.viewOf(at, entry, generation, length)
  }

  /**
   * The in-flight loan `entry` of `generation` becomes this handle's, its array checked to
   * be a live loan block that holds the loan (and, given `frameLength`, a frame of that
   * many bytes within the loan). ERR_SHM_CORRUPT otherwise, the entry freed once taken.
   */
  private takeInFlight(entry: number, generation: number, frameLength?: number): { at: number; length: number; block: number } {
    const at = this.claimInFlight(entry, generation)
    const length = this.heap.u32[(at + LoanEntry.Length) >>> 2]!
    try {
      if (frameLength !== undefined && frameLength > length) throw corrupt(`a message frame of ${frameLength} bytes in loan ${entry} is longer than the loan (${length} bytes)`)
      return { at, length, block: this.arrayOf(at, length) }
    } catch (err) {
      this.free(at)
      throw err
    }
  }

  /** The in-flight loan `entry` of `generation` becomes this handle's: its offset. ERR_SHM_CORRUPT when it is not in flight in that generation. */
  private claimInFlight(entry: number, generation: number): number {
    const table = this.tableRef()
    if (table === 0 || entry >= this.capacityOf(table)) throw corrupt(`a message carries loan ${entry}, which the loan pool does not have`)
    const at = entryOffset(table, entry)
    const i32 = this.heap.i32
    if (this.heap.u32[(at + LoanEntry.Generation) >>> 2] !== generation || Atomics.compareExchange(i32, (at + LoanEntry.State) >>> 2, LOAN_IN_FLIGHT, this.pid) !== LOAN_IN_FLIGHT) {
      throw corrupt(`a message carries loan ${entry} of generation ${generation >>> 0}, which is not in flight in it (it was given up on as lost)`)
    }
    Atomics.store(i32, (at + LoanEntry.Identity) >>> 2, this.identity)
    return at
  }

  /** A received message was dropped before its loans were handed out: they go back to the pool. */
  dropInFlight(loans: readonly number[]): void {
    const table = this.tableRef()
    if (table === 0) return
    const capacity = this.capacityOf(table)
    for (let i = 0; i < loans.length; i += 2) {
      if (loans[i]! >= capacity) continue
      const at = entryOffset(table, loans[i]!)
      if (this.heap.u32[(at + LoanEntry.Generation) >>> 2] !== loans[i + 1]) continue
      Atomics.compareExchange(this.heap.i32, (at + LoanEntry.State) >>> 2, LOAN_IN_FLIGHT, 0)
    }
  }

  /** Whether every (entry, generation) pair of `loans` is still in flight in that generation. */
  allInFlight(loans: readonly number[]): boolean {
    const table = this.tableRef()
    for (let i = 0; i < loans.length; i += 2) {
      const at = entryOffset(table, loans[i]!)
      if (Atomics.load(this.heap.i32, (at + LoanEntry.State) >>> 2) !== LOAN_IN_FLIGHT || this.heap.u32[(at + LoanEntry.Generation) >>> 2] !== loans[i + 1]) return false
    }
    return true
  }

  /** Frame arrays this handle lent itself (lendFrame) and did not send after all: (entry, generation) pairs, back to the pool. */
  giveBack(frames: readonly number[]): void {
    const table = this.tableRef()
    for (let i = 0; i < frames.length; i += 2) {
      const at = entryOffset(table, frames[i]!)
      if (this.holds({ pool: this, entry: frames[i]!, generation: frames[i + 1]! })) this.free(at)
    }
  }

  /** Gives back a loan this handle holds through `view`: true, or false when `view` is no loan view. ERR_SHM_STALE when released (or sent) already. */
  release(view: object): boolean {
    const ticket = ticketOfView(view)
    if (ticket === undefined || ticket.pool !== this) return false
    if (!this.holds(ticket)) throw staleLoan()
    // (Its FinalizationRegistry cell stays: when it runs, the loan is no longer this handle's and it does nothing.)
    this.free(entryOffset(this.tableRef(), ticket.entry))
    return true
  }

  /** shm.close(): what this handle holds goes back to the pool. */
  releaseAll(): void {
    const table = this.tableRef()
    if (table === 0) return
    const used = this.usedOf(table)
    for (let entry = 0; entry < used; entry++) {
      const at = entryOffset(table, entry)
      if (Atomics.load(this.heap.i32, (at + LoanEntry.State) >>> 2) === this.pid && (Atomics.load(this.heap.i32, (at + LoanEntry.Identity) >>> 2) >>> 0) === this.identity) this.free(at)
    }
  }

  /**
   * In a turn, the heap full: the arrays of free entries go back to the allocator.
   * Returns the bytes given back (0: none).
   */
  drain(): number {
    const table = this.tableRef()
    if (table === 0) return 0
    const heap = this.heap
    const used = this.usedOf(table)
    let freed = 0
    for (let entry = 0; entry < used; entry++) {
      const at = entryOffset(table, entry)
      if (heap.u32[(at + LoanEntry.Block) >>> 2] === 0 || !this.claim(at)) continue
      const block = heap.u32[(at + LoanEntry.Block) >>> 2]!
      if (block !== 0) {
        freed += heap.u32[(at + LoanEntry.Capacity) >>> 2]!
        this.dropBlock(at)
      }
      this.free(at)
    }
    return freed
  }

  // ---------------------------------------------------------------------------

  private viewOf(at: number, entry: number, generation: number, byteLength: number): Uint8Array {
    const heap = this.heap
    const block = heap.u32[(at + LoanEntry.Block) >>> 2]!
    const view = new Uint8Array(heap.buffer, heap.byteOffset + block + LoanBlockRec.Data, byteLength)
    const ticket: Ticket = { pool: this, entry, generation }
    loanTicket.set(view, ticket)
    this.registerSoon(view)
    return view
  }

  /**
   * Registers `view` with `collected` at the end of this task (a microtask) if this handle
   * holds its loan then, or at once once many wait: a loop that never yields must not
   * pile views up. (A view registered twice is harmless: freeIfMine frees only a loan held.)
   */
  private registerSoon(view: Uint8Array): void {
    this.pendingViews.push(view)
    this.registerPending.added(this.pendingViews.length)
  }

  /**
   * The array of the entry at `at` (held by this handle), checked to be a live loan block
   * holding `bytes` (ERR_SHM_CORRUPT otherwise). Outside a turn: only the block's own
   * header is read (Allocator.heldBlockSize); nobody else frees or resizes a held entry's array.
   */
  private arrayOf(at: number, bytes: number): number {
    const heap = this.heap
    const block = heap.record(heap.u32[(at + LoanEntry.Block) >>> 2]!, InternalKind.LoanBlock)
    if (heap.allocator.heldBlockSize(block) < LoanBlockRec.Data + bytes) throw corrupt(`loan array ${block} is not a live block of at least ${LoanBlockRec.Data + bytes} bytes`)
    return block
  }

  /** Whether this handle holds the loan `ticket` names (lent or received, not released or sent). */
  private holds(ticket: Ticket): boolean {
    const table = this.tableRef()
    const at = entryOffset(table, ticket.entry)
    const i32 = this.heap.i32
    return (
      Atomics.load(i32, (at + LoanEntry.State) >>> 2) === this.pid &&
      (Atomics.load(this.heap.i32, (at + LoanEntry.Identity) >>> 2) >>> 0) === this.identity &&
      (Atomics.load(this.heap.i32, (at + LoanEntry.Generation) >>> 2) >>> 0) === ticket.generation
    )
  }

  private freeIfMine(ticket: Ticket): void {
    if (this.heap.segment.closed) return
    if (this.holds(ticket)) this.free(entryOffset(this.tableRef(), ticket.entry))
  }

  /** Claims a free entry: its State becomes this handle's. */
  private claim(at: number): boolean {
    const i32 = this.heap.i32
    if (Atomics.compareExchange(i32, (at + LoanEntry.State) >>> 2, 0, this.pid) !== 0) return false
    Atomics.store(i32, (at + LoanEntry.Identity) >>> 2, this.identity)
    return true
  }

  /** An entry this handle holds becomes free (Identity first: a claimer writes its own after its State). */
  private free(at: number): void {
    Atomics.store(this.heap.i32, (at + LoanEntry.Identity) >>> 2, 0)
    Atomics.store(this.heap.i32, (at + LoanEntry.State) >>> 2, 0)
  }

  /**
   * A free entry whose array fits `byteLength`, claimed; -1 when there is none. The
   * entries this handle lent last come first, newest first: the array filled last is the
   * one still in this core's cache. A stream of 400 KB loans that cycled through the whole
   * pool (8+ arrays, more than a core's L2) filled each from memory: ~1.5× slower per
   * message than reusing the two or three hot ones (measured on the throughput bench,
   * 2-core VM). When those are all held, a scan from after the entry it found last (the
   * oldest given back is the likeliest free; a scan from entry 0 would read every held
   * entry's cache line first while a receiver keeps many loans).
   */
  private claimFitting(table: number, byteLength: number): number {
    const used = this.usedOf(table)
    const recent = this.recentLends
    for (let i = 0; i < recent.length; i++) {
      const entry = recent[i]!
      if (entry < used && this.claimIfFits(entryOffset(table, entry), byteLength)) return entry
    }
    const start = this.nextScan < used ? this.nextScan : 0
    for (let n = 0, entry = start; n < used; n++, entry = entry + 1 === used ? 0 : entry + 1) {
      if (this.claimIfFits(entryOffset(table, entry), byteLength)) {
        this.nextScan = entry + 1
        return entry
      }
    }
    return -1
  }

  /** `entry` becomes the newest of recentLends (moved up if it is there, else pushed in, the oldest dropped). */
  private lentLast(entry: number): void {
    const recent = this.recentLends
    let i = recent.indexOf(entry)
    if (i < 0) {
      if (recent.length < RECENT_LENDS) recent.push(entry)
      i = recent.length - 1
    }
    recent.copyWithin(1, 0, i)
    recent[0] = entry
  }

  /** Claims the entry at `at` when it is free and its array fits `byteLength`. */
  private claimIfFits(at: number, byteLength: number): boolean {
    const heap = this.heap
    if (Atomics.load(heap.i32, (at + LoanEntry.State) >>> 2) !== 0) return false
    if (heap.u32[(at + LoanEntry.Block) >>> 2] === 0 || !fits(heap.u32[(at + LoanEntry.Capacity) >>> 2]!, byteLength)) return false
    // (Its array may have gone back to the allocator meanwhile: lend looks again once it holds it.)
    return this.claim(at)
  }

  /**
   * Any free entry, claimed (lend gives it an array of the right size): one without an
   * array, else a new one while the pool is small, else one whose array is resized,
   * else a new one. -1 when every entry is held.
   */
  private claimAny(table: number): number {
    const used = this.usedOf(table)
    for (let entry = 0; entry < used; entry++) {
      const at = entryOffset(table, entry)
      if (this.heap.u32[(at + LoanEntry.Block) >>> 2] === 0 && this.claim(at)) return entry
    }
    if (used < SMALL_POOL) {
      const entry = this.claimNew(table)
      if (entry >= 0) return entry
    }
    for (let entry = 0; entry < this.usedOf(table); entry++) if (this.claim(entryOffset(table, entry))) return entry
    return this.claimNew(table)
  }

  /** An entry never used before, claimed; -1 when the table has none left. */
  private claimNew(table: number): number {
    const capacity = this.capacityOf(table)
    for (;;) {
      const used = this.usedOf(table)
      if (used >= capacity) return -1
      if (Atomics.compareExchange(this.heap.i32, (table + LoanPoolRec.Used) >>> 2, used, used + 1) !== used) continue
      if (this.claim(entryOffset(table, used))) return used
    }
  }

  /** Frees the entries held by handles of processes that are gone. Returns how many. */
  private reclaimDead(table: number): number {
    const heap = this.heap
    const used = this.usedOf(table)
    let reclaimed = 0
    for (let entry = 0; entry < used; entry++) {
      const at = entryOffset(table, entry)
      const holder = Atomics.load(heap.i32, (at + LoanEntry.State) >>> 2)
      const identity = Atomics.load(heap.i32, (at + LoanEntry.Identity) >>> 2) >>> 0
      if (holder <= 0 || (holder === this.pid && identity === this.identity)) continue
      // Gone: its process, or its handle (closed, or its thread ended: core/handles.ts).
      if (handleRuns(heap.segment, holder, identity)) continue
      if (holder !== this.pid) {
        if (Atomics.compareExchange(heap.i32, (at + LoanEntry.State) >>> 2, holder, this.pid) !== holder) continue
        Atomics.store(heap.i32, (at + LoanEntry.Identity) >>> 2, this.identity)
      } else if (Atomics.compareExchange(heap.i32, (at + LoanEntry.Identity) >>> 2, identity | 0, this.identity | 0) !== (identity | 0)) {
        // A thread of this process: the State already says this pid, so the handle is claimed by its identity.
        continue
      }
      this.free(at)
      reclaimed++
    }
    return reclaimed
  }

  /** In a turn, the entry held: a new array of at least `byteLength` bytes in place of its old one. */
  private resize(at: number, byteLength: number): void {
    const heap = this.heap
    if (heap.u32[(at + LoanEntry.Block) >>> 2] !== 0) this.dropBlock(at)
    const capacity = blockBytes(byteLength)
    const block = heap.allocRecord(InternalKind.LoanBlock, LoanBlockRec.Data + capacity)
    heap.u32[(at + LoanEntry.Capacity) >>> 2] = capacity
    heap.u32[(at + LoanEntry.Block) >>> 2] = block
  }

  /** In a turn, the entry held: its array goes back to the allocator. */
  private dropBlock(at: number): void {
    const heap = this.heap
    const block = heap.u32[(at + LoanEntry.Block) >>> 2]!
    heap.u32[(at + LoanEntry.Block) >>> 2] = 0
    heap.u32[(at + LoanEntry.Capacity) >>> 2] = 0
    heap.freeRecord(heap.block(heap.record(block, InternalKind.LoanBlock), LoanBlockRec.Data, 'loan array'))
  }

  /**
   * The pool table, made (in a turn) at the first loan, of `byteLength` bytes: only when
   * the heap has room for the table and that loan's array, so that a first loan that does
   * not fit changes nothing (ERR_SHM_FULL).
   */
  private table(byteLength: number): number {
    const table = this.tableRef()
    if (table !== 0) return table
    return this.inTurn(() => {
      const heap = this.heap
      const made = heap.u32[Header.LoanPool >>> 2]!
      if (made !== 0) return made
      // Both from the largest free block, each with its block header and rounding (16 bytes at most).
      const { largestFree } = heap.allocator.stats()
      if (largestFree < TABLE_BYTES + 32 + LoanBlockRec.Data + blockBytes(byteLength)) {
        throw new ShmError(
          'ERR_SHM_FULL',
          `cannot lend ${byteLength} bytes: the first loan of segment "${heap.segment.name}" needs ${TABLE_BYTES} bytes for the loan pool and its array, and the largest free block holds ${largestFree}; nothing was changed: create a bigger segment or free what you no longer need`,
        )
      }
      const at = heap.allocRecord(InternalKind.LoanPool, TABLE_BYTES)
      heap.u8.fill(0, at + Rec.Body, at + TABLE_BYTES)
      heap.u32[(at + LoanPoolRec.Capacity) >>> 2] = LOAN_ENTRIES
      Atomics.store(heap.i32, Header.LoanPool >>> 2, at)
      return at
    })
  }

  private tableRef(): number {
    return (Atomics.load(this.heap.i32, Header.LoanPool >>> 2) >>> 0)
  }

  private capacityOf(table: number): number {
    const capacity = this.heap.u32[(table + LoanPoolRec.Capacity) >>> 2]!
    if (capacity > LOAN_ENTRIES) throw corrupt(`the loan pool says it has ${capacity} entries, more than ${LOAN_ENTRIES}`)
    return capacity
  }

  private usedOf(table: number): number {
    return Math.min((Atomics.load(this.heap.i32, (table + LoanPoolRec.Used) >>> 2) >>> 0), this.capacityOf(table))
  }

}

/** The bytes of the array made for a loan of `byteLength`. */
function blockBytes(byteLength: number): number {
  return Math.max(BLOCK_GRAIN, Math.ceil(byteLength / BLOCK_GRAIN) * BLOCK_GRAIN)
}

/** Whether an array of `capacity` bytes serves a loan of `byteLength`. */
function fits(capacity: number, byteLength: number): boolean {
  return capacity >= byteLength && capacity <= Math.max(BLOCK_GRAIN, byteLength * FIT_FACTOR)
}

function staleLoan(): ShmError {
  return new ShmError(
    'ERR_SHM_STALE',
    'this loan was released or sent already, so its bytes may belong to another loan now: use a loan until you send or release it, and a received one until you release it',
  )
}

/**
 * The free entries' arrays: kept for the next loans, given back when the heap fills up.
 * Their bytes (allocator footprint: shm.stats().pooled) and how many they are.
 */
export function pooledArrays(heap: Heap): { bytes: number; arrays: number } {
  const table = (Atomics.load(heap.i32, Header.LoanPool >>> 2) >>> 0)
  let bytes = 0
  let arrays = 0
  if (table === 0) return { bytes, arrays }
  const used = Math.min((Atomics.load(heap.i32, (table + LoanPoolRec.Used) >>> 2) >>> 0), LOAN_ENTRIES)
  for (let entry = 0; entry < used; entry++) {
    const at = entryOffset(table, entry)
    const block = heap.u32[(at + LoanEntry.Block) >>> 2]!
    if (block === 0 || Atomics.load(heap.i32, (at + LoanEntry.State) >>> 2) !== 0) continue
    bytes += heap.allocator.blockFootprint(block)
    arrays++
  }
  return { bytes, arrays }
}

/**
 * check(): the loan pool's table and arrays are sound. Needs the turn (Block and
 * Capacity are only written in one); States change meanwhile and are read once.
 */
export function checkLoanPool(heap: Heap): LoanPoolReport {
  const report: LoanPoolReport = { entries: 0, held: 0, inFlight: 0, pooled: 0 }
  const table = heap.u32[Header.LoanPool >>> 2]!
  if (table === 0) return report
  if (heap.allocator.blockSize(table) < TABLE_BYTES || heap.kindOf(table) !== InternalKind.LoanPool) {
    throw corrupt(`the loan pool ${table} is not a live loan pool record`)
  }
  const capacity = heap.u32[(table + LoanPoolRec.Capacity) >>> 2]!
  const used = heap.u32[(table + LoanPoolRec.Used) >>> 2]!
  if (capacity !== LOAN_ENTRIES || used > capacity) throw corrupt(`the loan pool says ${capacity} entries, ${used} used`)
  for (let entry = 0; entry < capacity; entry++) {
    const at = entryOffset(table, entry)
    const state = heap.i32[(at + LoanEntry.State) >>> 2]!
    const block = heap.u32[(at + LoanEntry.Block) >>> 2]!
    const bytes = heap.u32[(at + LoanEntry.Capacity) >>> 2]!
    if (state < LOAN_IN_FLIGHT) throw corrupt(`loan pool entry ${entry} has state ${state}`)
    if (entry >= used && (state !== 0 || block !== 0)) throw corrupt(`loan pool entry ${entry} is in use past the ${used} entries used`)
    if (state === LOAN_IN_FLIGHT) report.inFlight++
    else if (state !== 0) report.held++
    if (block === 0) {
      if (bytes !== 0) throw corrupt(`loan pool entry ${entry} has no array but says ${bytes} bytes`)
      continue
    }
    if (heap.allocator.blockSize(block) < LoanBlockRec.Data + bytes || heap.kindOf(block) !== InternalKind.LoanBlock) {
      throw corrupt(`loan pool entry ${entry}: its array ${block} is not a live loan block of ${bytes} bytes`)
    }
    if (state === 0) report.pooled += heap.allocator.blockFootprint(block)
  }
  report.entries = used
  return report
}

/** check()'s account of the loan pool (core/loan_pool.ts). */
export interface LoanPoolReport {
  /** Entries ever used (of 256). */
  entries: number
  /** Loans held by a process: lent and not sent, or received and not released (a dead process's until taken back). */
  held: number
  /** Loans (and long frames) in messages not yet received. */
  inFlight: number
  /** Bytes of the free entries' arrays, kept for the next loans (shm.stats().pooled). */
  pooled: number
}

/** Where the bytes of loan pool `entry`'s array start (-1: no such entry, or no array). */
export function loanDataAt(heap: Heap, entry: number): number {
  const table = (Atomics.load(heap.i32, Header.LoanPool >>> 2) >>> 0)
  if (table === 0 || entry < 0 || entry >= LOAN_ENTRIES) return -1
  const block = heap.u32[(entryOffset(table, entry) + LoanEntry.Block) >>> 2]!
  return block === 0 ? -1 : block + LoanBlockRec.Data
}

/**
 * check(): the message frame a ring slot says is in loan pool `entry` (lent in
 * `generation`, `length` bytes). A problem, or null. A frame no longer in flight is being
 * received right now (rings run outside turns): nothing to check then.
 */
export function checkPooledFrame(heap: Heap, entry: number, generation: number, length: number): string | null {
  const table = heap.u32[Header.LoanPool >>> 2]!
  if (table === 0 || entry >= LOAN_ENTRIES) return `its frame is in loan pool entry ${entry}, which does not exist`
  const at = entryOffset(table, entry)
  if (Atomics.load(heap.i32, (at + LoanEntry.State) >>> 2) !== LOAN_IN_FLIGHT || heap.u32[(at + LoanEntry.Generation) >>> 2] !== generation) return null
  const lent = heap.u32[(at + LoanEntry.Length) >>> 2]!
  if (length > lent || lent > heap.u32[(at + LoanEntry.Capacity) >>> 2]!) return `its frame of ${length} bytes does not fit loan pool entry ${entry} (${lent} bytes lent)`
  return null
}

