// Promise-returning waits on a shared word, served by the addon's waiter threads:
// the JS thread never blocks, and a sleeping wait costs no CPU.
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
