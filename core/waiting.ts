// Promise-returning waits on a shared word, served by the addon's waiter threads:
// the JS thread never blocks, and a sleeping wait costs no CPU.
// The module's binding, not the global: Node 20 defines globalThis.performance as a lazy getter, ~15 ns more per call in the spin loops.
import { performance } from 'node:perf_hooks'
import { availableParallelism } from 'node:os'
import { ShmError } from './errors'
import { AsyncOutcome, native } from './native'
import type { Segment } from './segment'

/** How to wait for a word (the turn, a channel): spin briefly then sleep, or spin. */
export type WaitMode = 'cpu-friendly' | 'low-latency'

export interface WordWaitOptions {
  timeoutMs: number
  mode: WaitMode
  signal?: AbortSignal
  keepAlive: boolean
}

/** Spins on the waiter thread before it sleeps: covers a writer on another core. */
const SPINS: Record<WaitMode, number> = { 'cpu-friendly': 2000, 'low-latency': 1e9 }

export type AsyncWaitResult = 'ok' | 'timed-out' | 'not-equal'

export function waitWord(segment: Segment, offset: number, expected: number, o: WordWaitOptions): Promise<AsyncWaitResult> {
  segment.assertOpen()
  if (o.signal?.aborted) return Promise.reject(aborted(o.signal))
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      native.cancelWait(id)
    }
    const id = segment.waitAsync(offset, expected, o.timeoutMs, SPINS[o.mode], o.keepAlive, (outcome) => {
      o.signal?.removeEventListener('abort', onAbort)
      switch (outcome) {
        case AsyncOutcome.Woken:
          return resolve('ok')
        case AsyncOutcome.TimedOut:
          return resolve('timed-out')
        case AsyncOutcome.NotEqual:
          return resolve('not-equal')
        case AsyncOutcome.Cancelled:
          return reject(aborted(o.signal))
        default:
          return reject(new ShmError('ERR_SHM_CLOSED', `segment "${segment.name}" was closed while waiting`))
      }
    })
    o.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** ERR_ABORTED for a wait that `signal` ended, with its reason's message. */
export function aborted(signal: AbortSignal | undefined): ShmError {
  const reason = signal?.reason as unknown
  return new ShmError('ERR_ABORTED', `the wait was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`)
}

/**
 * Spinning in the receiving thread before it sleeps, when that pays: a wake-up of a
 * sleeping thread costs 5–20 µs (a futex or a datagram, and on a VM the hypervisor) on
 * each side, while a peer that answers quickly answers within a few. So a receive that
 * finds nothing polls the ring for up to WINDOW_US before it sleeps, but only when its
 * last wait was short (≤ SHORT_WAIT_US) and never on a single core. A ping-pong whose
 * two sides both sleep waits longer than the window, yet collapses to a few µs once
 * both spin; a wait that ran long (a miss) makes the next receive sleep at once, and
 * messages that come rarely never spin. The price: a stream of messages between
 * WINDOW_US and SHORT_WAIT_US apart spins a window per message. (Backing off further
 * after misses was tried: in a ping-pong one side's hiccup made the other miss too, and
 * both ended up sleeping for good.) 'low-latency' always spins, for longer, and then
 * sleeps as well (an event loop cannot spin for ever).
 */
export class SpinBeforeSleep {
  /** How long a cpu-friendly receive spins. */
  static readonly WINDOW_US = 50
  /** The longest last wait after which the next receive spins. */
  static readonly SHORT_WAIT_US = 100
  /** How long a low-latency async receive spins before it sleeps. */
  static readonly LOW_LATENCY_US = 1000
  private static readonly cores = availableParallelism()
  private lastWaitUs = Infinity

  /** Microseconds to spin before sleeping in `mode` (0: sleep at once). */
  budgetUs(mode: WaitMode | undefined): number {
    if (SpinBeforeSleep.cores < 2) return 0
    if (mode === 'low-latency') return SpinBeforeSleep.LOW_LATENCY_US
    return this.lastWaitUs <= SpinBeforeSleep.SHORT_WAIT_US ? SpinBeforeSleep.WINDOW_US : 0
  }

  /** How long the last wait took, from the receive to its message (spinning, sleeping, or both). */
  waited(us: number): void {
    this.lastWaitUs = us
  }

  /**
   * Calls `look` until it returns something other than `nothing` or `us` microseconds
   * passed (the blocking receives' spin). A catch is a short wait; a miss is learnt
   * when the message comes (waited).
   */
  spin<N>(us: number, look: () => unknown, nothing: N): unknown {
    if (us <= 0) return nothing
    const start = performance.now()
    const until = start + us / 1000
    for (let looks = 1; ; looks++) {
      const value = look()
      if (value !== nothing) {
        this.lastWaitUs = (performance.now() - start) * 1000
        return value
      }
      // The clock every 8th look: a clock read costs about as much as a look.
      if ((looks & 7) === 0 && performance.now() >= until) return nothing
    }
  }
}
