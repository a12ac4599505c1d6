// The one place the compiled addon is loaded. Pure modules (codec, struct views,
// renderer code) never import this file, so they stay usable in a browser.
import { createRequire } from 'node:module'
import { currentSearch, findAddon } from './addon_path'
import { ShmError } from './errors'

export interface NativeMapping {
  id: number
  /** The SharedArrayBuffer the segment is mapped into; it cannot be detached. */
  buffer: SharedArrayBuffer
  /** Where the segment starts in `buffer`: the first page boundary, less than a page in. */
  byteOffset: number
  size: number
  created: boolean
  mirrored: boolean
  /** This handle's holder token, 1..0xfffe, unique among the handles open in this process. */
  token: number
}

export const enum OpenMode {
  Create = 0,
  Open = 1,
  OpenOrCreate = 2,
}

export type WaitOutcome = 'ok' | 'timed-out' | 'not-equal'

export const enum AsyncOutcome {
  Woken = 0,
  TimedOut = 1,
  NotEqual = 2,
  Cancelled = 3,
  Closed = 4,
}

export interface NativeBinding {
  readonly pageSize: number
  /** The largest segment the addon maps (core/layout.ts MAX_SEGMENT_SIZE). */
  readonly maxSegmentSize: number
  setErrorClass(ctor: typeof ShmError): void
  /**
   * Opens/creates the OS object and maps it into a new SharedArrayBuffer of size + one
   * page, made by `allocate(byteLength)` (a Uint8Array over it; without it the addon
   * uses the global constructors). A create that fails removes what it made.
   */
  open(osName: string, size: number, mode: OpenMode, prefault: boolean, allocate?: (byteLength: number) => Uint8Array): NativeMapping
  /** Restores private memory under the window; views then read zeros. */
  close(id: number): void
  /** Bytes the OS object has now; less than the mapped size means it was truncated. */
  backedSize(id: number): number
  unlink(osName: string): void
  wait(id: number, offset: number, expected: number, timeoutMs: number): WaitOutcome
  wake(id: number, offset: number, count: number): number
  waitAsync(id: number, offset: number, expected: number, timeoutMs: number, spins: number, keepAlive: boolean, callback: (outcome: AsyncOutcome) => void): number
  cancelWait(waitId: number): boolean
  syncIn(id: number): void
  /** memmove between the segment at `offset` and `view`'s bytes (into the segment when `intoSegment`). */
  copy(id: number, offset: number, view: ArrayBufferView, intoSegment: boolean): void
  syncOut(id: number): void
  processAlive(pid: number): boolean
  /** When that process started (an opaque number, the same for the same process); 0 when unknown. */
  processStartTime(pid: number): number
  /**
   * The 8-byte turn word at `offset` (low half: owner pid; high half ends in the holder
   * token): if this handle is closed, or its thread torn down, while the word names this
   * process and the handle's token, the addon marks it abandoned and wakes its waiters.
   */
  guardTurn(id: number, offset: number): void
  guardListing(id: number, offset: number, low: number, high: number): void
  yieldCpu(): void
  /** Tells V8 that this thread's objects keep `delta` more (or fewer) bytes alive outside its heap; returns the new total. */
  adjustExternalMemory(delta: number): number
  /**
   * Opens this thread's notifier (one per thread: main or worker): a datagram socket bound
   * at (process.pid, nonce) that another process wakes with `notify`. After each batch of
   * wakes, `onWake()` runs once on this thread's event loop (a throw is reported as an
   * uncaught exception). Returns the nonce (1..2^32-1), or 0 where the platform has no
   * notifier (Windows). Unreferenced until `notifierRef(true)`. Throws if already open.
   * Internal: core/notifier.ts is its one user.
   */
  notifierOpen(onWake: () => void): number
  /** Whether the open notifier keeps the event loop alive; nothing when none is open. */
  notifierRef(keepAlive: boolean): void
  /** Closes this thread's notifier: its address reads as gone from now on. Idempotent. */
  notifierClose(): void
  /**
   * Wakes the notifier at (pid, nonce), both integers 1..2^32-1 (else RangeError); never
   * blocks. 0: sent, or that notifier's queue is full (a wake is pending there anyway);
   * 1: nobody is at that address (the process or its notifier is gone; always on Windows);
   * 2: it failed otherwise.
   */
  notify(pid: number, nonce: number): 0 | 1 | 2
}

function load(): NativeBinding {
  // The search order and the error when nothing is found: core/addon_path.ts. A plain
  // `require(file)` would be rewritten by bundlers; createRequire's is Node's own.
  const { value: binding } = findAddon(currentSearch(), (file) => createRequire(file)(file) as NativeBinding)
  binding.setErrorClass(ShmError)
  return binding
}

export const native: NativeBinding = load()
