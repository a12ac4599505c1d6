// The offload wire protocol: everything a WorkerPool (main/worker_pool.ts, main/pool/) and a
// worker (utility/serve_tasks.ts) agree on, in one file. No Node, no Electron
// (tsconfig.common.json checks it): the segment and turn are described by the few
// members used here, which core's SharedMemory and Turn have.
//
//   pool ── "<prefix>:w<i>" ──▶ worker i      task | cancel | stop   (one inbox per worker)
//   pool ◀── "<prefix>:out" ─── every worker  ready | done          (one results channel)
//
// Both channels live in the shared segment (tx.putMessage / tx.takeMessage, woken by
// shm.waitForMessage). The process channel (fork IPC / parentPort) carries nothing in
// normal operation; it is only a fallback path for `stop`.
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
// TypedArrays that already lie in the segment travel as SharedViewRef descriptors
// (offset + length), so the receiver builds a view over the same bytes: zero-copy.
import { ShmError } from './errors'
import { segmentView, type MappedSegmentLike } from './segment_view'

/** The segment the protocol maps views over (core's SharedMemory). */
export interface TaskSegment extends MappedSegmentLike {
  readonly name: string
  readonly size: number
}

/** A turn on the segment, as far as taking messages goes (core's Turn). */
export interface MessageTurn {
  hasMessages(options: { channel: string }): boolean
  takeMessage<T>(options: { channel: string; copy: true }): T
}

// Node's Buffer, where there is one: a Buffer over the segment travels as a Buffer.
// Looked up on globalThis so this file imports nothing of Node.
interface BufferClass {
  isBuffer(v: unknown): boolean
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): Uint8Array
}
const NodeBuffer = (globalThis as { Buffer?: BufferClass }).Buffer

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
}
export type ToPool = ReadyMessage | DoneMessage

/** In a turn: every message waiting on `channel`, oldest first, as plain copies (their records freed). */
export function takeAll<T>(tx: MessageTurn, channel: string): T[] {
  const out: T[] = []
  const take = { channel, copy: true } as const
  while (tx.hasMessages({ channel })) out.push(tx.takeMessage<T>(take))
  return out
}

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

// ── zero-copy TypedArrays ────────────────────────────────────────────────────

const VIEW_KEY = '__interprocessSharedView'

/** Stands for a TypedArray/DataView/Buffer over the segment: the receiver maps the same bytes. */
export interface SharedViewRef {
  [VIEW_KEY]: string
  /** Segment offset of the first byte. */
  offset: number
  /** Element count (bytes for DataView and Buffer). */
  length: number
}

type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView
const viewCtors: Record<string, [ViewCtor, number]> = {
  Int8Array: [Int8Array, 1],
  Uint8Array: [Uint8Array, 1],
  Uint8ClampedArray: [Uint8ClampedArray, 1],
  Int16Array: [Int16Array, 2],
  Uint16Array: [Uint16Array, 2],
  Int32Array: [Int32Array, 4],
  Uint32Array: [Uint32Array, 4],
  Float32Array: [Float32Array, 4],
  Float64Array: [Float64Array, 8],
  BigInt64Array: [BigInt64Array as unknown as ViewCtor, 8],
  BigUint64Array: [BigUint64Array as unknown as ViewCtor, 8],
  DataView: [DataView as unknown as ViewCtor, 1],
}

function viewKind(view: ArrayBufferView): string | undefined {
  if (NodeBuffer?.isBuffer(view) === true) return 'Buffer'
  let ctor = view.constructor as { name: string } | undefined
  while (ctor !== undefined && ctor !== Object && ctor !== null) {
    if (viewCtors[ctor.name] !== undefined) return ctor.name
    ctor = Object.getPrototypeOf(ctor) as { name: string } | undefined
  }
  return undefined
}

function isContainer(v: unknown): v is object {
  if (typeof v !== 'object' || v === null) return false
  if (Array.isArray(v) || v instanceof Map || v instanceof Set) return true
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

function onSegment(v: unknown, buffer: ArrayBufferLike): v is ArrayBufferView {
  return ArrayBuffer.isView(v) && v.buffer === buffer
}

function hasSharedView(v: unknown, buffer: ArrayBufferLike, seen: Set<object>): boolean {
  if (onSegment(v, buffer)) return true
  if (!isContainer(v) || seen.has(v)) return false
  seen.add(v)
  if (Array.isArray(v)) return v.some((x) => hasSharedView(x, buffer, seen))
  if (v instanceof Map) {
    for (const [k, x] of v) if (hasSharedView(k, buffer, seen) || hasSharedView(x, buffer, seen)) return true
    return false
  }
  if (v instanceof Set) {
    for (const x of v) if (hasSharedView(x, buffer, seen)) return true
    return false
  }
  for (const k of Object.keys(v)) if (hasSharedView((v as Record<string, unknown>)[k], buffer, seen)) return true
  return false
}

/**
 * Replaces every TypedArray, DataView or Buffer that lies inside `shm` (found in
 * arrays, plain objects, Maps and Sets) by a SharedViewRef. The value itself is not
 * modified: containers on the way to a replaced view are copied. Values without such
 * views come back as they are.
 */
export function shareViews(value: unknown, shm: TaskSegment): unknown {
  const buffer = shm.buffer
  if (!hasSharedView(value, buffer, new Set())) return value
  const base = shm.bytes.byteOffset
  const memo = new Map<object, unknown>()
  const walk = (v: unknown): unknown => {
    if (onSegment(v, buffer)) {
      const kind = viewKind(v)
      if (kind === undefined) return v
      const width = kind === 'Buffer' ? 1 : viewCtors[kind]![1]
      const ref: SharedViewRef = { [VIEW_KEY]: kind, offset: v.byteOffset - base, length: v.byteLength / width }
      return ref
    }
    if (!isContainer(v)) return v
    const known = memo.get(v)
    if (known !== undefined) return known
    if (Array.isArray(v)) {
      const out: unknown[] = new Array(v.length)
      memo.set(v, out)
      for (let i = 0; i < v.length; i++) if (i in v) out[i] = walk(v[i])
      return out
    }
    if (v instanceof Map) {
      const out = new Map<unknown, unknown>()
      memo.set(v, out)
      for (const [k, x] of v) out.set(walk(k), walk(x))
      return out
    }
    if (v instanceof Set) {
      const out = new Set<unknown>()
      memo.set(v, out)
      for (const x of v) out.add(walk(x))
      return out
    }
    const out = Object.create(Object.getPrototypeOf(v) as object | null) as Record<string, unknown>
    memo.set(v, out)
    for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: walk((v as Record<string, unknown>)[k]), writable: true, enumerable: true, configurable: true })
    return out
  }
  return walk(value)
}

function isViewRef(v: unknown): v is SharedViewRef {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[VIEW_KEY] === 'string' && Object.getPrototypeOf(v) === Object.prototype
}

function mapView(ref: SharedViewRef, shm: TaskSegment): ArrayBufferView {
  const kind = ref[VIEW_KEY]
  const entry = kind === 'Buffer' ? ([Uint8Array, 1] as [ViewCtor, number]) : viewCtors[kind]
  const { offset, length } = ref
  if (entry === undefined || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ShmError('ERR_SHM_CORRUPT', `a shared ${kind} reference (offset ${offset}, length ${length}) is malformed`)
  }
  const [Ctor, width] = entry
  if (offset % width !== 0 || offset + length * width > shm.size) {
    throw new ShmError('ERR_SHM_CORRUPT', `a shared ${kind} reference (offset ${offset}, length ${length}) does not fit segment "${shm.name}" (${shm.size} bytes)`)
  }
  if (kind === 'Buffer') {
    const bytes = segmentView(shm, Uint8Array, offset, length)
    return NodeBuffer !== undefined ? NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.length) : bytes
  }
  return segmentView(shm, Ctor, offset, length)
}

/**
 * Turns the SharedViewRefs in a freshly decoded value back into views over `shm`.
 * The value must be this process's own copy (it is modified in place).
 */
export function restoreViews(value: unknown, shm: TaskSegment): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (isViewRef(value)) return mapView(value, shm)
  const seen = new Set<object>()
  const walk = (v: unknown): unknown => {
    if (isViewRef(v)) return mapView(v, shm)
    if (!isContainer(v) || seen.has(v)) return v
    seen.add(v)
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x = v[i] as unknown
        if (typeof x === 'object' && x !== null) v[i] = walk(x)
      }
    } else if (v instanceof Map) {
      for (const [k, x] of v) if (typeof x === 'object' && x !== null) v.set(k, walk(x))
    } else if (v instanceof Set) {
      const items = [...v]
      if (items.some(isViewRef)) {
        v.clear()
        for (const x of items) v.add(walk(x))
      } else for (const x of items) walk(x)
    } else {
      const o = v as Record<string, unknown>
      for (const k of Object.keys(o)) {
        const x = o[k]
        if (typeof x === 'object' && x !== null) o[k] = walk(x)
      }
    }
    return v
  }
  return walk(value)
}
