// The contract between bench/run.ts and each bench/<scenario>.ts file.
import type { Figure } from './stats'

export interface RunOptions {
  /** A short run (seconds in all) for CI and smoke checks; numbers are noisier. */
  quick: boolean
}

/** One measured variant: its figures in display order (column label → figure). */
export interface BenchRow {
  case: string
  figures: Record<string, Figure>
  note?: string
}

/** A stated target, held against this run's numbers. */
export interface Check {
  /** What we promise, e.g. "bulk ≥ 0.8× memcpy". */
  target: string
  /** What this run measured, e.g. "0.63× (9.1 GiB/s vs 14.4 GiB/s)". */
  measured: string
  met: boolean
  /** The target could not be measured in this run (a peer package was not available): shown as n/a, neither met nor short. */
  na?: boolean
  /** Why we fall short (shown only when `met` is false): the cause, from the numbers and profiles. */
  why?: string
}

/**
 * A scenario file exports `run` and, optionally, `title` (one line), `notes`
 * (printed under its table), `about` (a paragraph for docs/benchmarks.md: what
 * is measured and how) and `checks` (targets held against the rows). Rows of one
 * scenario share their column labels.
 */
export interface ScenarioModule {
  title?: string
  /** Lines printed under the table (a function when they depend on the run's options). */
  notes?: string[] | ((opts: RunOptions) => string[])
  about?: string
  run(opts: RunOptions): Promise<BenchRow[]>
  checks?(rows: BenchRow[]): Check[]
}

/** The row named `name`; throws if the scenario did not produce it. */
export function rowOf(rows: BenchRow[], name: string): BenchRow {
  const row = rows.find((r) => r.case === name)
  if (row === undefined) throw new Error(`bench: no row "${name}" (rows: ${rows.map((r) => r.case).join(', ')})`)
  return row
}

/** A figure's value, or NaN when the row lacks it (a peer that could not run). */
export function valueOf(rows: BenchRow[], name: string, column: string): number {
  return rows.find((r) => r.case === name)?.figures[column]?.value ?? NaN
}
