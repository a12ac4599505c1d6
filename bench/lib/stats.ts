// Percentiles and the formatting every scenario shares, so numbers from different
// scenarios read the same way in one report.

import { formatBytes as formatBytesAs } from '../../cli/format'

export interface Summary {
  n: number
  min: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

/** Linear-interpolated percentile (0–100) of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length
  if (n === 0) return NaN
  if (n === 1) return sorted[0]!
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (n - 1)
  const lo = Math.floor(rank)
  const hi = Math.min(n - 1, lo + 1)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo)
}

/** min/mean/p50/p90/p99/max of some samples (in whatever unit they were taken). */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!
  return {
    n: sorted.length,
    min: sorted[0] ?? NaN,
    mean: sorted.length > 0 ? sum / sorted.length : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
  }
}

/** A value with the unit it is shown in; `text` overrides the number. */
export type Unit = 'µs' | 'ms' | 's' | '×' | 'B' | 'B/s' | 'ops/s' | '%' | 'count'
export interface Figure {
  value: number
  unit: Unit
  text?: string
}

export const us = (value: number): Figure => ({ value, unit: 'µs' })
export const ratio = (value: number): Figure => ({ value, unit: '×' })
export const count = (value: number): Figure => ({ value, unit: 'count' })
export const opsPerSec = (value: number): Figure => ({ value, unit: 'ops/s' })
export const bytesPerSec = (value: number): Figure => ({ value, unit: 'B/s' })
export const percent = (value: number): Figure => ({ value, unit: '%' })
export const bytes = (value: number): Figure => ({ value, unit: 'B' })
/** A figure shown as `text` (e.g. "n/a"); its value is NaN so no ratio uses it. */
export const textFigure = (text: string): Figure => ({ value: NaN, unit: 'count', text })

/** Three significant digits, no exponent for the ranges benches produce. */
export function sig3(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 1) return x.toFixed(2)
  if (a >= 0.01) return x.toFixed(3)
  return x.toPrecision(2)
}

/** Microseconds as "0.412 µs", "38.5 µs", "1.25 ms", "2.31 s". */
export function formatDuration(micros: number): string {
  if (!Number.isFinite(micros)) return String(micros)
  if (micros >= 1e6) return `${sig3(micros / 1e6)} s`
  if (micros >= 1e3) return `${sig3(micros / 1e3)} ms`
  return `${sig3(micros)} µs`
}

/** Bytes with three significant digits: "38.5 MiB" (the CLI's formatBytes, bench precision). */
export function formatBytes(bytes: number): string {
  return formatBytesAs(bytes, sig3)
}

export function formatCount(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : sig3(n)
}

export function formatFigure(f: Figure): string {
  if (f.text !== undefined) return f.text
  switch (f.unit) {
    case 'µs':
      return formatDuration(f.value)
    case 'ms':
      return formatDuration(f.value * 1e3)
    case 's':
      return formatDuration(f.value * 1e6)
    case '×':
      return `${sig3(f.value)}×`
    case 'B':
      return formatBytes(f.value)
    case 'B/s':
      return `${formatBytes(f.value)}/s`
    case 'ops/s':
      return `${formatCount(Math.round(f.value))}/s`
    case '%':
      return `${sig3(f.value)} %`
    case 'count':
      return formatCount(f.value)
  }
}

/** A plain-text table; the first column left-aligned, the others right-aligned. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(header.map((_, c) => r[c] ?? '')))].join('\n')
}

/**
 * Decides how long a latency loop runs: `warmup` unmeasured rounds, then up to
 * `rounds` measured ones, within a time budget (whichever ends first, but at least
 * 100 measured rounds). On a quiet machine the round counts end the loop; on a busy
 * one, where a spinning peer can lose its core for milliseconds at a time, the
 * budget keeps the run short. The rounds actually measured are reported.
 */
export class LatencyLoop {
  private readonly start = performance.now()
  private warmed = 0
  private n = 0
  private readonly samples: Float64Array

  constructor(
    private readonly warmup: number,
    rounds: number,
    private readonly budgetMs: number,
  ) {
    this.samples = new Float64Array(rounds)
  }

  /** Takes one round's time in µs; false when the loop should stop. */
  add(micros: number): boolean {
    const elapsed = performance.now() - this.start
    if (this.warmed < this.warmup && elapsed < this.budgetMs * 0.2) {
      this.warmed++
      return true
    }
    this.samples[this.n++] = micros
    return this.n < this.samples.length && (elapsed < this.budgetMs || this.n < 100)
  }

  /** The measured rounds. */
  result(): Float64Array {
    return this.samples.subarray(0, this.n)
  }
}

/** CPU time (user + system, every thread of this process) since `start` (since the process started, without one), in µs. */
export function cpuMicrosSince(start?: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start)
  return d.user + d.system
}

/**
 * Operations per second of `op`, run in batches of 20 until `ms` have passed, after a
 * warm-up of a quarter of that (200 ms at most) so the JIT has settled.
 */
export function rate(ms: number, op: () => void): number {
  const warm = performance.now()
  while (performance.now() - warm < Math.min(200, ms / 4)) for (let i = 0; i < 20; i++) op()
  const t0 = performance.now()
  let n = 0
  let now = t0
  do {
    for (let i = 0; i < 20; i++) op()
    n += 20
    now = performance.now()
  } while (now - t0 < ms)
  return n / ((now - t0) / 1e3)
}
