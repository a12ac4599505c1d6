// The turn: one lock word in the header holding the owner's pid (0 = free), for
// any number of processes. Contenders spin briefly, then sleep on the word with
// the futex; the releaser wakes one sleeper only if the waiter count says there is
// one, so an uncontended turn makes no system call. A sleeper that finds the owner
// dead takes the turn over (and the caller checks the heap).
//
// Fairness: a sleeping waiter that has waited STARVING_MS registers as heir; the
// next release then reserves the turn for it (owner = -heir pid) instead of
// freeing it, so a steady stream of spinning re-acquirers cannot starve a sleeper.
// Spinners also yield the CPU regularly, so a woken heir gets to run.
import { ShmError } from './errors'
import { Header } from './layout'
import { native } from './native'
import type { Segment } from './segment'
import { waitWord } from './waiting'

const OWNER = Header.LockOwner >> 2
const WAITERS = Header.LockWaiters >> 2
const RECOVERIES = Header.Recoveries >> 2
const HEIR = Header.LockHeir >> 2

export type WaitMode = 'cpu-friendly' | 'low-latency'

/** Tries before waiting: long enough to cover a short turn on another core. */
const SPINS = 200
/** How long a sleeper trusts the owner before checking that it is still alive. */
export const LIVENESS_CHECK_MS = 100
/** After this long a waiter asks for the turn to be handed to it. */
const STARVING_MS = 2

/** Segments (by OS name) whose turn this thread holds, to refuse re-entry. */
const heldHere = new Set<string>()

export interface AcquireResult {
  /** True if the turn was taken from a dead owner: the heap may be mid-update. */
  recovered: boolean
}

export class TurnLock {
  private readonly segment: Segment
  private readonly words: Int32Array
  private readonly me = process.pid

  constructor(segment: Segment) {
    this.segment = segment
    this.words = segment.words
  }

  get held(): boolean {
    return heldHere.has(this.segment.osName)
  }

  /** Takes the turn if it is free or reserved for this process; else returns the owner word. */
  private tryTake(): number {
    const words = this.words
    const me = this.me
    const seen = Atomics.compareExchange(words, OWNER, 0, me)
    if (seen === 0) return 0
    if (seen === -me && Atomics.compareExchange(words, OWNER, -me, me) === -me) return 0
    return seen
  }

  acquire(mode: WaitMode = 'cpu-friendly', timeoutMs = Infinity): AcquireResult {
    this.refuseReentry()
    for (let i = 0; i < SPINS; i++) {
      if (this.tryTake() === 0) return this.took(false)
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
        const owner = this.tryTake()
        if (owner === 0) return this.took(false, watch)
        if (!sleeping) {
          if ((round & 63) === 63) native.yieldCpu()
          if ((round & 1023) !== 1023) continue
        }
        const next = watch.observe(owner)
        if (next === TAKEN_OVER) return this.took(true, watch)
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
   * run meanwhile and trip over the held turn (ERR_SHM_REENTRANT).
   */
  async acquireAsync<T>(mode: WaitMode, timeoutMs: number, signal: AbortSignal | undefined, keepAlive: boolean, inTurn: (recovered: boolean) => T): Promise<T> {
    const words = this.words
    const watch = new OwnerWatch(this, timeoutMs, mode === 'cpu-friendly')
    let taken: AcquireResult
    try {
      for (;;) {
        if (this.held) {
          // This thread holds the turn in a synchronous callback: it is released
          // before any promise callback runs, so try again on the next tick.
          await Promise.resolve()
          continue
        }
        const owner = this.tryTake()
        if (owner === 0) {
          taken = this.took(false, watch)
          break
        }
        const next = watch.observe(owner)
        if (next === TAKEN_OVER) {
          taken = this.took(true, watch)
          break
        }
        Atomics.add(words, WAITERS, 1)
        try {
          await waitWord(this.segment, Header.LockOwner, owner, { timeoutMs: next, mode, signal, keepAlive })
        } finally {
          if (!this.segment.closed) Atomics.sub(words, WAITERS, 1)
        }
      }
    } catch (err) {
      if (!this.segment.closed) watch.giveUp()
      throw err
    }
    return inTurn(taken.recovered)
  }

  /** Pid of the dead owner this process last took the turn over from (0: never). */
  tookOverFrom = 0

  /** Takes the turn from `owner` if it still holds it; counts the recovery. */
  takeOverFrom(owner: number): boolean {
    if (Atomics.compareExchange(this.words, OWNER, owner, this.me) !== owner) return false
    Atomics.add(this.words, RECOVERIES, 1)
    this.tookOverFrom = Math.abs(owner)
    return true
  }

  /** Asks the next releaser to hand the turn to this process. */
  claimHeir(): boolean {
    return Atomics.compareExchange(this.words, HEIR, 0, this.me) === 0
  }

  /** Withdraws a claim; if the turn was already handed over, passes it on. */
  dropHeir(): void {
    Atomics.compareExchange(this.words, HEIR, this.me, 0)
    if (Atomics.compareExchange(this.words, OWNER, -this.me, 0) === -this.me) this.segment.wake(Header.LockOwner, 0x7fffffff)
  }

  private took(recovered: boolean, watch?: OwnerWatch): AcquireResult {
    if (watch?.heir) Atomics.compareExchange(this.words, HEIR, this.me, 0)
    heldHere.add(this.segment.osName)
    this.segment.syncIn()
    return { recovered }
  }

  release(): void {
    const words = this.words
    heldHere.delete(this.segment.osName)
    this.segment.syncOut()
    const heir = Atomics.exchange(words, HEIR, 0)
    if (heir !== 0) {
      Atomics.store(words, OWNER, -heir)
      this.segment.wake(Header.LockOwner, 0x7fffffff) // the heir is one of the sleepers
      return
    }
    Atomics.store(words, OWNER, 0)
    if (Atomics.load(words, WAITERS) > 0) this.segment.wake(Header.LockOwner, 1)
  }

  private refuseReentry(): void {
    if (heldHere.has(this.segment.osName)) {
      throw new ShmError('ERR_SHM_REENTRANT', `this thread already holds the turn on segment "${this.segment.name}": shm.access() cannot be nested; use the tx you already have`)
    }
  }
}

const TAKEN_OVER = -1

/**
 * Watches the owner while we wait: claims the heir slot once we have waited
 * STARVING_MS; after the same owner held (or was handed) the turn for
 * LIVENESS_CHECK_MS it checks that the process still exists and takes the turn
 * over from a dead one. observe() returns how long to sleep next, or TAKEN_OVER.
 */
class OwnerWatch {
  private readonly lock: TurnLock
  private readonly timeoutMs: number
  /** Only sleepers claim: spinners already win most races, sleepers are who starve. */
  private readonly mayClaimHeir: boolean
  private readonly start = performance.now()
  private lastOwner = 0
  private since = this.start
  heir = false

  constructor(lock: TurnLock, timeoutMs: number, mayClaimHeir: boolean) {
    this.lock = lock
    this.timeoutMs = timeoutMs
    this.mayClaimHeir = mayClaimHeir
  }

  observe(owner: number): number {
    const now = performance.now()
    if (this.mayClaimHeir && !this.heir && now - this.start >= STARVING_MS) this.heir = this.lock.claimHeir()
    const pid = Math.abs(owner) // a negative owner is a turn reserved for that pid
    if (owner !== this.lastOwner) {
      this.lastOwner = owner
      this.since = now
    } else if (now - this.since >= LIVENESS_CHECK_MS && pid !== process.pid && !native.processAlive(pid)) {
      if (this.lock.takeOverFrom(owner)) return TAKEN_OVER
    }
    const left = this.timeoutMs - (now - this.start)
    if (left <= 0) {
      throw new ShmError('ERR_TIMEOUT', `waited ${Math.round(now - this.start)} ms for the turn (held by pid ${pid}); raise timeoutMs or find what holds the turn so long`)
    }
    return Math.min(left, this.heir ? LIVENESS_CHECK_MS : STARVING_MS)
  }

  giveUp(): void {
    if (this.heir) this.lock.dropHeir()
  }
}
