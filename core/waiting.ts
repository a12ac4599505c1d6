// Promise-returning waits on a shared word, served by the addon's waiter threads:
// the JS thread never blocks, and a sleeping wait costs no CPU.
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
 * sleeping thread costs 5–20 µs (a futex or a datagram, and on a VM the hypervisor),
 * while a peer that answers quickly answers within a few. So a receive that finds
 * nothing polls the ring for a while before it sleeps — but only when the waits of
 * this handle have been short lately (the peer is busy with us), and never on a single
 * core. A channel whose messages come rarely never spins; a spin that catches nothing
 * costs one window, after which spinning stops until a wait is short again.
 * 'low-latency' always spins, for longer, and then sleeps as well (an event loop
 * cannot spin for ever).
 */
export class SpinBeforeSleep {
  /**
   * How long a cpu-friendly receive spins, and the longest wait that makes the next
   * receive spin: only a wait the window would have caught. A stream of messages 100 µs
   * apart never spins (each spin would fail and burn its window); a ping-pong whose
   * answers come within the window keeps spinning and never pays a wake-up.
   */
  static readonly WINDOW_US = 50
  /** How long a low-latency async receive spins before it sleeps. */
  static readonly LOW_LATENCY_US = 1000
  private static readonly cores = availableParallelism()
  private lastWaitUs = Infinity

  /** Microseconds to spin before sleeping in `mode` (0: sleep at once). */
  budgetUs(mode: WaitMode | undefined): number {
    if (SpinBeforeSleep.cores < 2) return 0
    if (mode === 'low-latency') return SpinBeforeSleep.LOW_LATENCY_US
    return this.lastWaitUs <= SpinBeforeSleep.WINDOW_US ? SpinBeforeSleep.WINDOW_US : 0
  }

  /** How long the last wait of this handle took, spinning and sleeping together. */
  waited(us: number): void {
    this.lastWaitUs = us
  }

  /**
   * Calls `look` until it returns something other than `nothing` or `us` microseconds
   * passed; records the wait when it caught something.
   */
  spin<N>(us: number, look: () => unknown, nothing: N): unknown {
    if (us <= 0) return nothing
    const start = performance.now()
    const until = start + us / 1000
    for (;;) {
      const value = look()
      const now = performance.now()
      if (value !== nothing) {
        this.lastWaitUs = (now - start) * 1000
        return value
      }
      if (now >= until) return nothing
    }
  }
}
