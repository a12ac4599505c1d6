// The turn: one 64-bit turn word in the header naming its holder, for any number of
// processes and threads. The low half (LockOwner) is the owner's pid (0 = free; -pid = a
// turn reserved for that process's heir) and is the futex word waiters sleep on; the high
// half (LockOwnerId) says who in that process: a stamp of the process's start time and the
// holding handle's token. Both halves are written by one compare-and-swap, so the turn
// never names a pid without its holder. Contenders spin briefly, then sleep on the futex;
// the releaser wakes one sleeper only if the waiter count says there is one, so an
// uncontended turn makes no system call.
//
// Recovery. A waiter that sees the same turn word for LIVENESS_CHECK_MS judges its holder
// and takes the turn over (the caller then checks the heap) when the holder
//   - is dead (no process with that pid),
//   - is a later process that reused the pid (its start time differs from the stamp),
//   - never registered (the high half is 0: the word was written by something else);
// at once when the holder's thread was torn down inside the turn (worker.terminate()):
// the addon's env cleanup hook marks the word abandoned (token bits 0xffff) and wakes the
// waiters. A reservation for an heir that has not picked it up within LIVENESS_CHECK_MS
// (its handle closed, its thread ended, its event loop busy) is voided: nobody was inside
// that turn, so no check is needed. close() withdraws this handle's heir claim and waiter
// counts (Segment.onClose) and is refused inside a turn.
//
// Fairness: a sleeping waiter that has waited STARVING_MS registers as heir; the
// next release then reserves the turn for it (owner = -heir pid) instead of
// freeing it, so a steady stream of spinning re-acquirers cannot starve a sleeper.
// Spinners also yield the CPU regularly, so a woken heir gets to run.
import { ShmError } from './errors'
import { Header } from './layout'
import { native } from './native'
import type { Segment } from './segment'
import { waitWord, type WaitMode } from './waiting'

const OWNER = Header.LockOwner >> 2
const WAITERS = Header.LockWaiters >> 2
const RECOVERIES = Header.Recoveries >> 2
const HEIR = Header.LockHeir >> 2


/** Tries before waiting: long enough to cover a short turn on another core. */
const SPINS = 200
/** How long a sleeper trusts the owner before checking that it is still alive. */
export const LIVENESS_CHECK_MS = 100
/** After this long a waiter asks for the turn to be handed to it. */
const STARVING_MS = 2
/** Token bits the addon writes into a turn word whose holder's thread was torn down. */
export const ABANDONED_TOKEN = 0xffff

/** Segments (by OS name) whose turn this thread holds, to refuse re-entry. */
const heldHere = new Set<string>()

/** The low 16 bits of a start time (native.processStartTime); 0 = unknown. */
export function startStamp(startTime: number): number {
  return startTime % 0x10000
}

/** The turn word's high half (Header.LockOwnerId): the holder's start stamp and token. */
export function ownerIdentity(stamp: number, token: number): number {
  return (((stamp & 0xffff) << 16) | (token & 0xffff)) >>> 0
}

let ownStamp: number | undefined
function myStamp(): number {
  return (ownStamp ??= startStamp(native.processStartTime(process.pid)))
}

/** Who this process's handle of `segment` is, in the form the turn word and the holder table store. */
export function identityOf(segment: Segment): number {
  return ownerIdentity(myStamp(), segment.token)
}

/** Whether `pid` is still the process that wrote `identity` (not dead, not a later process with its pid). */
export function processStillRuns(pid: number, identity: number): boolean {
  if (!native.processAlive(pid)) return false
  const stamp = identity >>> 16
  if (stamp === 0) return true
  const now = startStamp(native.processStartTime(pid))
  return now === 0 || now === stamp
}

export interface AcquireResult {
  /** True if the turn was taken from a holder that died inside it: the heap may be mid-update. */
  recovered: boolean
}

export class TurnLock {
  private readonly segment: Segment
  private readonly words: Int32Array
  /** The turn word: [LockOwner, LockOwnerId] as one u64 (little-endian: the pid is the low half). */
  readonly word: BigUint64Array
  private readonly me = process.pid
  /** The turn word while this handle holds the turn. */
  private readonly mine: bigint
  /** The turn word while the turn is reserved for this process's heir. */
  private readonly reservedForMe: bigint
  private holding = false

  constructor(segment: Segment) {
    this.segment = segment
    this.words = segment.words
    this.word = new BigUint64Array(segment.bytes.buffer, segment.bytes.byteOffset + Header.LockOwner, 1)
    this.mine = (BigInt(identityOf(segment)) << 32n) | BigInt(this.me)
    this.reservedForMe = BigInt(-this.me >>> 0)
    // If this thread ends inside a turn (worker.terminate()), the addon releases it.
    segment.guardTurn(Header.LockOwner)
  }

  /** True while this thread holds the turn of this segment (through any handle). */
  get held(): boolean {
    return heldHere.has(this.segment.osName)
  }

  /** True while this handle holds the turn. */
  get holdsTurn(): boolean {
    return this.holding
  }

  /** Takes the turn if it is free or reserved for this process. */
  private tryTake(): boolean {
    const owner = Atomics.load(this.words, OWNER)
    if (owner === 0) return Atomics.compareExchange(this.word, 0, 0n, this.mine) === 0n
    if (owner === -this.me) return Atomics.compareExchange(this.word, 0, this.reservedForMe, this.mine) === this.reservedForMe
    return false
  }

  acquire(mode: WaitMode = 'cpu-friendly', timeoutMs = Infinity): AcquireResult {
    this.refuseReentry()
    for (let i = 0; i < SPINS; i++) {
      if (this.tryTake()) return this.took(false)
    }
    return this.waitUntilFree(mode, timeoutMs)
  }

  /** Spins (low-latency) or sleeps on the futex (cpu-friendly) until the turn is ours. */
  private waitUntilFree(mode: WaitMode, timeoutMs: number): AcquireResult {
    const words = this.words
    const sleeping = mode === 'cpu-friendly'
    const watch = new OwnerWatch(this, timeoutMs, sleeping)
    if (sleeping) Atomics.add(words, WAITERS, 1)
    try {
      for (let round = 0; ; round++) {
        if (this.tryTake()) return this.took(false, watch)
        if (!sleeping) {
          if ((round & 63) === 63) native.yieldCpu()
          if ((round & 1023) !== 1023) continue
        }
        const owner = Atomics.load(words, OWNER)
        if (owner === 0) continue
        const next = watch.observe()
        if (next === TAKEN_OVER) return this.took(watch.recovered, watch)
        if (sleeping) this.segment.wait(Header.LockOwner, owner, next)
      }
    } catch (err) {
      watch.giveUp()
      throw err
    } finally {
      if (sleeping) Atomics.sub(words, WAITERS, 1)
    }
  }

  /**
   * Like acquire, but the waiting happens on a waiter thread: the event loop keeps
   * running. `inTurn` runs in the same microtask that took the turn: any await
   * between taking the turn and using it would let unrelated code of this thread
   * run meanwhile and trip over the held turn (ERR_SHM_REENTRANT). A close() of this
   * handle meanwhile withdraws the heir claim and the waiter count at once, and the
   * wait rejects with ERR_SHM_CLOSED.
   */
  async acquireAsync<T>(mode: WaitMode, timeoutMs: number, signal: AbortSignal | undefined, keepAlive: boolean, inTurn: (recovered: boolean) => T): Promise<T> {
    const words = this.words
    const segment = this.segment
    const watch = new OwnerWatch(this, timeoutMs, mode === 'cpu-friendly')
    const withdrawClaim = segment.onClose(() => watch.giveUp())
    let taken: AcquireResult
    try {
      for (;;) {
        segment.assertOpen()
        if (this.held) {
          // This thread holds the turn in a synchronous callback: it is released
          // before any promise callback runs, so try again on the next tick.
          await Promise.resolve()
          continue
        }
        if (this.tryTake()) {
          taken = this.took(false, watch)
          break
        }
        const owner = Atomics.load(words, OWNER)
        if (owner === 0) continue
        const next = watch.observe()
        if (next === TAKEN_OVER) {
          taken = this.took(watch.recovered, watch)
          break
        }
        Atomics.add(words, WAITERS, 1)
        const withdrawWaiter = segment.onClose(() => Atomics.sub(words, WAITERS, 1))
        try {
          await waitWord(segment, Header.LockOwner, owner, { timeoutMs: next, mode, signal, keepAlive })
        } finally {
          withdrawWaiter()
        }
      }
    } finally {
      withdrawClaim() // drops an heir claim still standing (after took(), there is none)
    }
    return inTurn(taken.recovered)
  }

  /** Pid of the holder this handle last took the turn over from (0: never). */
  tookOverFrom = 0

  /**
   * Takes the turn if the turn word still is `seen`. `recovered`: its holder died inside
   * the turn (counted in the header; the caller checks the heap); else it was a stale
   * reservation, with nobody inside.
   */
  takeOver(seen: bigint, recovered: boolean): boolean {
    if (Atomics.compareExchange(this.word, 0, seen, this.mine) !== seen) return false
    if (recovered) {
      Atomics.add(this.words, RECOVERIES, 1)
      this.tookOverFrom = Number(seen & 0xffffffffn) | 0
    }
    return true
  }

  /** Asks the next releaser to hand the turn to this process. */
  claimHeir(): boolean {
    return Atomics.compareExchange(this.words, HEIR, 0, this.me) === 0
  }

  /** Withdraws a claim; if the turn was already handed over, passes it on. */
  dropHeir(): void {
    Atomics.compareExchange(this.words, HEIR, this.me, 0)
    if (Atomics.compareExchange(this.word, 0, this.reservedForMe, 0n) === this.reservedForMe) this.segment.wake(Header.LockOwner, 0x7fffffff)
  }

  private took(recovered: boolean, watch?: OwnerWatch): AcquireResult {
    if (watch?.heir) {
      Atomics.compareExchange(this.words, HEIR, this.me, 0)
      watch.heir = false
    }
    heldHere.add(this.segment.osName)
    this.holding = true
    this.segment.syncIn()
    return { recovered }
  }

  release(): void {
    const words = this.words
    heldHere.delete(this.segment.osName)
    this.holding = false
    this.segment.syncOut()
    const heir = Atomics.exchange(words, HEIR, 0)
    const next = heir === 0 ? 0n : BigInt(-heir >>> 0)
    if (Atomics.compareExchange(this.word, 0, this.mine, next) !== this.mine) {
      // The word no longer names this handle: only a write from outside the library
      // does that. It is not ours to release; put the claim back.
      if (heir !== 0) Atomics.compareExchange(words, HEIR, 0, heir)
      return
    }
    if (heir !== 0) this.segment.wake(Header.LockOwner, 0x7fffffff) // the heir is one of the sleepers
    else if (Atomics.load(words, WAITERS) > 0) this.segment.wake(Header.LockOwner, 1)
  }

  private refuseReentry(): void {
    if (heldHere.has(this.segment.osName)) {
      throw new ShmError('ERR_SHM_REENTRANT', `this thread already holds the turn on segment "${this.segment.name}": shm.access() cannot be nested; use the tx you already have`)
    }
  }
}

const TAKEN_OVER = -1

/** What a waiter makes of a turn word that has not changed for LIVENESS_CHECK_MS. */
const enum Verdict {
  /** Held by a live, registered holder: keep waiting. */
  Alive,
  /** Its holder died (or was torn down) inside the turn: take over and check the heap. */
  Dead,
  /** Reserved for an heir that never came: take it, nobody was inside. */
  StaleReservation,
}

/** Judges the holder the turn word names. */
function judge(seen: bigint): Verdict {
  const owner = Number(seen & 0xffffffffn) | 0
  const identity = Number(seen >> 32n)
  if (owner < 0) return Verdict.StaleReservation
  if (owner === 0) return Verdict.Alive // free: the next try takes it
  if ((identity & 0xffff) === ABANDONED_TOKEN) return Verdict.Dead
  if (identity === 0) return Verdict.Dead // never registered: not a holder of this library
  // Dead, or the pid now names a later process.
  return processStillRuns(owner, identity) ? Verdict.Alive : Verdict.Dead
}

/**
 * Watches the turn word while we wait: claims the heir slot once we have waited
 * STARVING_MS; once the same word stood for LIVENESS_CHECK_MS it judges the holder (at
 * most every LIVENESS_CHECK_MS) and takes the turn over from a dead one; an abandoned
 * turn at once. observe() returns how long to sleep next, or TAKEN_OVER.
 */
class OwnerWatch {
  private readonly lock: TurnLock
  private readonly timeoutMs: number
  /** Only sleepers claim: spinners already win most races, sleepers are who starve. */
  private readonly mayClaimHeir: boolean
  private readonly start = performance.now()
  private lastSeen = 0n
  private since = this.start
  private judgedAt = -Infinity
  heir = false
  /** After TAKEN_OVER: whether the heap must be checked. */
  recovered = false

  constructor(lock: TurnLock, timeoutMs: number, mayClaimHeir: boolean) {
    this.lock = lock
    this.timeoutMs = timeoutMs
    this.mayClaimHeir = mayClaimHeir
  }

  observe(): number {
    const now = performance.now()
    if (this.mayClaimHeir && !this.heir && now - this.start >= STARVING_MS) this.heir = this.lock.claimHeir()
    const seen = Atomics.load(this.lock.word, 0)
    if (seen !== this.lastSeen) {
      this.lastSeen = seen
      this.since = now
      if ((Number(seen >> 32n) & 0xffff) === ABANDONED_TOKEN && Number(seen & 0xffffffffn) > 0 && this.lock.takeOver(seen, true)) return this.tookOver(true)
    } else if (now - this.since >= LIVENESS_CHECK_MS && now - this.judgedAt >= LIVENESS_CHECK_MS) {
      this.judgedAt = now
      const verdict = judge(seen)
      if (verdict !== Verdict.Alive && this.lock.takeOver(seen, verdict === Verdict.Dead)) return this.tookOver(verdict === Verdict.Dead)
    }
    const left = this.timeoutMs - (now - this.start)
    if (left <= 0) {
      const pid = Math.abs(Number(seen & 0xffffffffn) | 0)
      throw new ShmError('ERR_TIMEOUT', `waited ${Math.round(now - this.start)} ms for the turn (held by pid ${pid}); raise timeoutMs or find what holds the turn so long`)
    }
    return Math.min(left, this.heir ? LIVENESS_CHECK_MS : STARVING_MS)
  }

  private tookOver(recovered: boolean): number {
    this.recovered = recovered
    return TAKEN_OVER
  }

  giveUp(): void {
    if (!this.heir) return
    this.heir = false
    this.lock.dropHeir()
  }
}
