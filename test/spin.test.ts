// The spin-before-sleep policy of receives (core/waiting.ts): when a receive that finds
// nothing polls the ring before it sleeps. White-box: the policy is not exported.
import { availableParallelism } from 'node:os'
import { describe, expect, it } from 'vitest'
import { SpinBeforeSleep } from '../core/waiting'

const { WINDOW_US, SHORT_WAIT_US, LOW_LATENCY_US } = SpinBeforeSleep

describe.runIf(availableParallelism() >= 2)('SpinBeforeSleep', () => {
  it('spins only after a short wait: not at first, not after a long one', () => {
    const p = new SpinBeforeSleep()
    expect(p.budgetUs('cpu-friendly')).toBe(0)
    expect(p.budgetUs(undefined)).toBe(0)
    p.waited(SHORT_WAIT_US)
    expect(p.budgetUs('cpu-friendly')).toBe(WINDOW_US)
    expect(p.budgetUs(undefined)).toBe(WINDOW_US)
    p.waited(SHORT_WAIT_US + 1)
    expect(p.budgetUs('cpu-friendly')).toBe(0)
  })

  it('low-latency always spins, for longer', () => {
    const p = new SpinBeforeSleep()
    expect(p.budgetUs('low-latency')).toBe(LOW_LATENCY_US)
    p.waited(1e9)
    expect(p.budgetUs('low-latency')).toBe(LOW_LATENCY_US)
  })

  it('spin() returns what the look found, or `nothing` once the window is over; a catch counts as a short wait', () => {
    const p = new SpinBeforeSleep()
    let calls = 0
    expect(p.spin(WINDOW_US, () => (++calls === 3 ? 'message' : null), null)).toBe('message')
    expect(calls).toBe(3)
    expect(p.budgetUs('cpu-friendly')).toBe(WINDOW_US)
    const t0 = performance.now()
    expect(p.spin(200, () => null, null)).toBe(null)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(0.2)
    expect(p.spin(0, () => 'never looked', null)).toBe(null)
  })
})
