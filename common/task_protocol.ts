// The offload wire protocol: everything a WorkerPool (main/worker_pool.ts, main/pool/) and a
// worker (utility/serve_tasks.ts) agree on, in one file. No Node, no Electron, no core
// (tsconfig.common.json checks it).
//
//   pool ── "<prefix>:w<i>" ──▶ worker i      task | cancel | stop   (one inbox per worker)
//   pool ◀── "<prefix>:out" ─── every worker  ready | done          (one results channel)
//
// Both are channels of the segment (shm.channel: bounded rings of copied frames),
// opened once by the pool and once by each worker. Each side waits with
// `await channel.receive()`. The pool sizes the rings from its limits
// (inboxCapacity, resultsCapacity), so a send finds room in normal operation; a full
// ring is waited out (local queue and retry), never blocked on. The process channel
// (fork IPC / parentPort) carries nothing in normal operation; it is only a fallback
// path for `stop`.
//
// Beside the channels the pool puts one Int32Array, the *slot table*, in the segment.
// A dispatched task holds one slot (2 words) until its result is taken:
//   word 0  task id          written by the pool before it sends the task
//   word 1  flags            STARTED (worker, when the handler is called)
//                            CANCEL  (pool, when the caller aborts)
// Both sides touch these words with Atomics, without a turn. They let the worker see
// a cancellation inside a synchronous handler (ctx.cancelled), and let the pool tell,
// after a worker crash, which of its tasks never started (re-queued) from those that
// did (rejected).
//
// Values in the segment travel as the frame codec carries them (core/values/frame.ts):
// a view of the segment's bytes that is no record (a subarray of shm.bytes) as its
// place in the segment, so the receiver maps the same bytes (zero-copy, owned by
// nobody); a value of the segment (a tx.put result, a mapped view) by reference, which
// the receiver owns. The pool lends such references to a handler for its task only:
// the worker drops those of a task's input when the task is over, and the caller
// keeps its own. A value of the segment in a result is handed to the caller (who owns
// it, as tx.put's caller does), except one the caller passed in (it owns that one).
import { ShmError } from './errors'

/** The environment variable that carries a worker's WorkerConfig (JSON). */
export const CONFIG_ENV = 'INTERPROCESS_OBJECTS_WORKER'

export interface WorkerConfig {
  /** Segment name to open. */
  segment: string
  /** Channel-name prefix of this pool (several pools may share a segment). */
  prefix: string
  worker: number
  /** Incremented at each restart of this worker index. */
  generation: number
  /** Segment offset of the slot table (an Int32Array of slotCount × SLOT_WORDS). */
  slotTable: number
  slotCount: number
  /** Tasks this worker runs at once. */
  concurrency: number
  /** core's WaitMode. */
  wait: 'cpu-friendly' | 'low-latency'
  /** How long to retry putting a result while the segment is full. */
  fullTimeoutMs: number
}

export function inboxChannel(prefix: string, worker: number): string {
  return `${prefix}:w${worker}`
}

export function resultsChannel(prefix: string): string {
  return `${prefix}:out`
}

/** The largest ring a channel has (core's MAX_CAPACITY). */
const MAX_RING = 1 << 16

function ringFor(messages: number): number {
  let n = 2
  while (n < messages && n < MAX_RING) n *= 2
  return n
}

/**
 * Slots of a worker's inbox: at most `perWorker` tasks are sent to a worker before
 * their results come back, each followed by at most one cancel, then one stop.
 */
export function inboxCapacity(perWorker: number): number {
  return ringFor(2 * perWorker + 1)
}

/** Slots of the results channel: one result per slot of the slot table, and one "ready" per worker. */
export function resultsCapacity(workers: number, perWorker: number): number {
  return ringFor(workers * (perWorker + 1))
}

export const SLOT_WORDS = 2
export const enum SlotWord {
  TaskId = 0,
  Flags = 1,
}
export const enum SlotFlag {
  Started = 1,
  Cancel = 2,
}

// ── messages ─────────────────────────────────────────────────────────────────

export interface TaskMessage {
  t: 'task'
  id: number
  slot: number
  name: string
  input: unknown
}
export interface CancelMessage {
  t: 'cancel'
  id: number
}
export interface StopMessage {
  t: 'stop'
}
export type ToWorker = TaskMessage | CancelMessage | StopMessage

export interface ReadyMessage {
  t: 'ready'
  worker: number
  generation: number
  pid: number
  /** The handler names this worker serves. */
  names: string[]
}
export interface DoneMessage {
  t: 'done'
  id: number
  /** 'ok': value holds the result; 'error': error holds an Error; 'thrown': value holds a non-Error that was thrown; 'skipped': cancelled before it started. */
  outcome: 'ok' | 'error' | 'thrown' | 'skipped'
  value?: unknown
  error?: Error
  /** How long the handler ran, in µs (the pool sends short tasks ahead: prefetch 'auto'). */
  runUs?: number
}
export type ToPool = ReadyMessage | DoneMessage

// ── errors across the boundary ───────────────────────────────────────────────

const builtinErrors: Record<string, { prototype: Error }> = {
  Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, ShmError,
}

/**
 * The copy of an Error that came out of the segment is a plain Error whose name,
 * message, stack and own fields (`code`…) are the thrower's. Give it back its
 * class when this process knows it (TypeError, ShmError…), so `instanceof` works.
 */
export function reviveError(err: Error): Error {
  const proto = builtinErrors[err.name]?.prototype
  if (proto !== undefined && Object.getPrototypeOf(err) !== proto) Object.setPrototypeOf(err, proto)
  return err
}

/** The same error reduced to what always encodes: name, message, stack, and a string `code`. */
export function plainError(err: unknown): Error {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown }
  const out = new Error(typeof e?.message === 'string' ? e.message : String(err))
  Object.defineProperty(out, 'name', { value: typeof e?.name === 'string' ? e.name : 'Error', writable: true, configurable: true })
  Object.defineProperty(out, 'stack', { value: typeof e?.stack === 'string' ? e.stack : undefined, writable: true, configurable: true })
  if (typeof e?.code === 'string') (out as Error & { code: string }).code = e.code
  return out
}


// ── references that travel with tasks ───────────────────────────────────────

/**
 * The distinct values of the segment (for which `isShared` is true) that `value`
 * holds, looked for through arrays, objects, Maps, Sets and Errors, not inside the
 * shared values themselves: what a frame carried by reference. Empty for primitives.
 */
export function sharedValuesIn(value: unknown, isShared: (v: object) => boolean): object[] {
  if (typeof value !== 'object' || value === null) return []
  const found: object[] = []
  const seen = new Set<object>()
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return
    seen.add(v)
    if (isShared(v)) {
      found.push(v)
      return
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Date || v instanceof RegExp) return
    if (Array.isArray(v)) {
      for (const x of v) walk(x)
    } else if (v instanceof Map) {
      for (const [k, x] of v) {
        walk(k)
        walk(x)
      }
    } else if (v instanceof Set) {
      for (const x of v) walk(x)
    } else {
      for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k])
      if (v instanceof Error && 'cause' in v) walk(v.cause)
    }
  }
  walk(value)
  return found
}
