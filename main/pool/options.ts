// WorkerPool.start's options: what they mean, and their checks and defaults.
import * as fs from 'node:fs'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SharedMemory, type WaitMode } from '../../core'
import { checkOptions } from '../../core/options'
import { defaultHost, ElectronHost, NodeHost, type WorkerHost } from '../hosts'
import { invalid } from './errors'

export interface WorkerPoolOptions {
  /** The worker script (a path or file: URL); it calls serveTasks(handlers). */
  script: string | URL
  /** Worker processes (default: available cores − 1, at least 1). */
  workers?: number
  /** Use this segment instead of creating one. The pool neither closes nor unlinks it. */
  shm?: SharedMemory
  /** Name of the segment the pool creates (default: a fresh unique name). */
  segmentName?: string
  /** Size of the segment the pool creates (default 64 MiB). */
  segmentSize?: number
  /**
   * How many tasks may wait in the pool for a worker (default 1024). Beyond that,
   * run() waits for room (back-pressure) instead of failing.
   */
  maxQueued?: number
  /** Tasks one worker runs at once (default 1; raise it for async handlers that wait on I/O). */
  concurrency?: number
  /**
   * Tasks sent to a worker ahead of need, so it goes on without a round trip through
   * the pool. Also what a cancelled-but-unaware handler may hold up. Default 'auto':
   * 1 while a worker's tasks take long (or nothing is known yet), up to
   * AUTO_PREFETCH while they run for less than SHORT_TASK_US each — then the round
   * trip, not the work, would bound the rate.
   */
  prefetch?: number | 'auto'
  /** Arguments for the worker script (process.argv.slice(2) there). */
  args?: string[]
  /** Extra environment for the workers. */
  env?: Record<string, string>
  /** Runtime flags for the workers, e.g. ['--import', 'tsx'] to run a .ts script. */
  execArgv?: string[]
  /**
   * Where workers run: a WorkerHost, or 'node' / 'electron'. Default: Electron's
   * utility processes in an Electron main process, Node child processes elsewhere.
   */
  host?: WorkerHost | 'node' | 'electron'
  /** How the pool and its workers wait (default 'cpu-friendly'). */
  wait?: WaitMode
  /** How long start() waits for every worker to connect (default 30 000 ms). */
  startTimeoutMs?: number
  /** How long close() lets workers exit before killing them (default 2000 ms). */
  stopTimeoutMs?: number
  /** How long a task (or a result) waits for room while the segment is full (default 10 000 ms). */
  segmentFullTimeoutMs?: number
  /** Restart a worker that exits (default true). */
  restart?: boolean
}

/** The options after their checks, with defaults filled in. */
/** Tasks a worker may be sent ahead under prefetch 'auto', while its tasks are short. */
export const AUTO_PREFETCH = 32
/** A task that runs for less than this (µs, the worker's running mean) is short. */
export const SHORT_TASK_US = 1000

export interface PoolConfig {
  /** Tasks sent ahead per worker; 'auto' adapts between 1 and AUTO_PREFETCH. */
  prefetch: number | 'auto'
  maxQueued: number; concurrency: number; args: string[]; env: Record<string, string>; execArgv: string[] | undefined
  wait: WaitMode; startTimeoutMs: number; stopTimeoutMs: number; fullTimeoutMs: number; restart: boolean
}

const optionSpec = {
  script: 'object', workers: 'number', shm: 'object', segmentName: 'string', segmentSize: 'number', maxQueued: 'number',
  concurrency: 'number', prefetch: 'number', args: 'object', env: 'object', execArgv: 'object', host: 'object', wait: 'string',
  startTimeoutMs: 'number', stopTimeoutMs: 'number', segmentFullTimeoutMs: 'number', restart: 'boolean',
} as const

/** More workers, or tasks per worker, than this is a mistake, not a configuration (and would size tables by it). */
const MAX_COUNT = 1024

function positiveInt(value: number | undefined, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${name} must be an integer from ${min} to ${max}, got ${value}`)
  return value
}

function resolveScript(script: unknown): string {
  let file: string
  if (script instanceof URL) file = fileURLToPath(script)
  else if (typeof script === 'string') file = script.startsWith('file:') ? fileURLToPath(script) : path.resolve(script)
  else throw invalid(`script must be a path or a file: URL, got ${script === undefined ? 'nothing' : typeof script}`)
  if (!fs.existsSync(file)) throw invalid(`worker script ${file} does not exist`)
  return file
}

function resolveHost(host: WorkerPoolOptions['host']): WorkerHost {
  if (host === undefined) return defaultHost()
  if (host === 'node') return new NodeHost()
  if (host === 'electron') return new ElectronHost()
  if (typeof host === 'object' && host !== null && typeof host.start === 'function') return host
  throw invalid(`host must be 'node', 'electron' or a WorkerHost, got ${String(host)}`)
}

/** Checks WorkerPool.start's options (throwing ERR_INVALID_ARGUMENT) and fills in the defaults. */
export function parseOptions(options: WorkerPoolOptions): { script: string; workers: number; perWorker: number; host: WorkerHost; config: PoolConfig } {
  if (options === null || typeof options !== 'object') throw invalid(`WorkerPool.start expects an options object such as { script: require.resolve('./worker'), workers: 2 }, got ${options === null ? 'null' : typeof options}`)
  const auto = options.prefetch === undefined || options.prefetch === 'auto'
  checkOptions<Record<string, unknown>>({ ...options, host: undefined, script: undefined, shm: undefined, prefetch: auto ? undefined : options.prefetch }, optionSpec as never, 'WorkerPool.start')
  const script = resolveScript(options.script)
  const workers = positiveInt(options.workers, 'workers', Math.max(1, availableParallelism() - 1), 1, MAX_COUNT)
  const concurrency = positiveInt(options.concurrency, 'concurrency', 1, 1, MAX_COUNT)
  const prefetch = auto ? 'auto' : positiveInt(options.prefetch as number, "prefetch (a number, or 'auto')", 1, 0, MAX_COUNT)
  const wait = options.wait ?? 'cpu-friendly'
  if (wait !== 'cpu-friendly' && wait !== 'low-latency') throw invalid(`wait must be 'cpu-friendly' or 'low-latency', got '${String(wait)}'`)
  for (const k of ['args', 'execArgv'] as const) {
    const v = options[k]
    if (v !== undefined && (!Array.isArray(v) || v.some((a) => typeof a !== 'string'))) throw invalid(`${k} must be an array of strings`)
  }
  if (options.shm !== undefined && !(options.shm instanceof SharedMemory)) throw invalid('shm must be a SharedMemory')
  if (options.shm?.closed) throw invalid(`segment "${options.shm.name}" is closed`)
  const config: PoolConfig = {
    prefetch,
    maxQueued: positiveInt(options.maxQueued, 'maxQueued', 1024),
    concurrency,
    args: options.args ?? [],
    env: options.env ?? {},
    execArgv: options.execArgv,
    wait,
    startTimeoutMs: positiveInt(options.startTimeoutMs, 'startTimeoutMs', 30_000),
    stopTimeoutMs: positiveInt(options.stopTimeoutMs, 'stopTimeoutMs', 2000, 0),
    fullTimeoutMs: positiveInt(options.segmentFullTimeoutMs, 'segmentFullTimeoutMs', 10_000, 0),
    restart: options.restart ?? true,
  }
  return { script, workers, perWorker: concurrency + (prefetch === 'auto' ? AUTO_PREFETCH : prefetch), host: resolveHost(options.host), config }
}
