// The one place the compiled addon is loaded. Pure modules (codec, struct views,
// renderer code) never import this file, so they stay usable in a browser.
import { createRequire } from 'node:module'
import { currentSearch, findAddon } from './addon_path'
import { ShmError } from './errors'

export interface NativeMapping {
  id: number
  buffer: ArrayBuffer
  byteOffset: number
  size: number
  created: boolean
  mirrored: boolean
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
  setErrorClass(ctor: typeof ShmError): void
  open(osName: string, size: number, mode: OpenMode, prefault: boolean): NativeMapping
  close(id: number): void
  unlink(osName: string): void
  wait(id: number, offset: number, expected: number, timeoutMs: number): WaitOutcome
  wake(id: number, offset: number, count: number): number
  waitAsync(id: number, offset: number, expected: number, timeoutMs: number, spins: number, keepAlive: boolean, callback: (outcome: AsyncOutcome) => void): number
  cancelWait(waitId: number): boolean
  syncIn(id: number): void
  syncOut(id: number): void
  processAlive(pid: number): boolean
  yieldCpu(): void
}

function load(): NativeBinding {
  // The search order and the error when nothing is found: core/addon_path.ts. A plain
  // `require(file)` would be rewritten by bundlers; createRequire's is Node's own.
  const { value: binding } = findAddon(currentSearch(), (file) => createRequire(file)(file) as NativeBinding)
  binding.setErrorClass(ShmError)
  return binding
}

export const native: NativeBinding = load()
