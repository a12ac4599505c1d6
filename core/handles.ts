// Which handles of a segment are open, so that a stalled operation of a worker thread
// that was terminated is told from a slow one even though its process lives on. A fixed
// table in the header (Header.Handles): one 8-byte entry per open handle, its pid in the
// low half and its identity (core/lock.ts identityOf: start stamp and handle token) in
// the high half. A handle lists itself when it opens and takes itself out when it
// closes; the addon takes it out when its thread ends (guardListing, at the
// environment's teardown). Entries of dead processes are reused.
//
// A ring slot (RingSlot.WriterId, ReaderId) and a loan (LoanEntry.Identity) name the
// handle that holds them: it runs while its process does and its entry is listed. More
// handles than the table holds: those not listed are judged by their process alone,
// once Header.HandlesOverflow says that some were not listed.
import { Header } from './layout'
import { identityOf, processStillRuns } from './lock'
import type { Segment } from './segment'

export const HANDLE_SLOTS = 120

/** This handle's entry in the table: listed at open (list), taken out at close (unlist). */
export class HandleListing {
  private readonly table: BigUint64Array
  private readonly overflow: Int32Array
  readonly identity: number
  private readonly mine: bigint
  private slot = -1

  constructor(private readonly segment: Segment) {
    this.table = handleTable(segment)
    this.overflow = segment.words
    this.identity = identityOf(segment)
    this.mine = entryOf(process.pid, this.identity)
  }

  /** Lists this handle: in a free entry, or one a dead process left. */
  list(): void {
    const table = this.table
    for (let i = 0; i < HANDLE_SLOTS; i++) {
      const seen = Atomics.load(table, i)
      if (seen !== 0n && processStillRuns(Number(seen & 0xffffffffn), Number(seen >> 32n))) continue
      if (Atomics.compareExchange(table, i, seen, this.mine) !== seen) continue
      this.slot = i
      this.segment.guardListing(Header.Handles + i * 8, process.pid >>> 0, this.identity)
      return
    }
    Atomics.store(this.overflow, Header.HandlesOverflow >>> 2, 1)
  }

  /** Takes this handle out (close; the addon does it too, at close and at thread teardown). */
  unlist(): void {
    if (this.slot < 0) return
    Atomics.compareExchange(this.table, this.slot, this.mine, 0n)
    this.slot = -1
  }
}

/**
 * Whether the handle `identity` of process `pid` still runs: its process does, and it is
 * listed (not closed, its thread not ended). Identity 0 (not known): its process alone.
 */
export function handleRuns(segment: Segment, pid: number, identity: number): boolean {
  if (!processStillRuns(pid, identity)) return false
  if (identity === 0) return true
  const table = handleTable(segment)
  const wanted = entryOf(pid, identity)
  for (let i = 0; i < HANDLE_SLOTS; i++) if (Atomics.load(table, i) === wanted) return true
  // Not listed: gone, unless some handles could not be listed (then it may be one of them).
  return Atomics.load(segment.words, Header.HandlesOverflow >>> 2) !== 0
}

/** Whether any handle but `mine` (pid | identity << 32, as listed) may be open: one is listed, or some could not be. */
export function othersOpen(segment: Segment, pid: number, identity: number): boolean {
  const table = handleTable(segment)
  const mine = entryOf(pid, identity)
  for (let i = 0; i < HANDLE_SLOTS; i++) {
    const seen = Atomics.load(table, i)
    if (seen !== 0n && seen !== mine) return true
  }
  return Atomics.load(segment.words, Header.HandlesOverflow >>> 2) !== 0
}

/** The table entry of handle `identity` of process `pid`: pid in the low half, identity in the high half. */
function entryOf(pid: number, identity: number): bigint {
  return (BigInt(identity >>> 0) << 32n) | BigInt(pid >>> 0)
}

/** The table's entries, over the segment's bytes. */
function handleTable(segment: Segment): BigUint64Array {
  return new BigUint64Array(segment.bytes.buffer, segment.bytes.byteOffset + Header.Handles, HANDLE_SLOTS)
}
