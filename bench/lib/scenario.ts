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

/**
 * A scenario file exports `run` and, optionally, `title` (one line) and `notes`
 * (printed under its table). Rows of one scenario share their column labels.
 */
export interface ScenarioModule {
  title?: string
  notes?: string[]
  run(opts: RunOptions): Promise<BenchRow[]>
}
