// The one place the compiled addon is loaded. Pure modules (codec, struct views,
// renderer code) never import this file, so they stay usable in a browser.
import * as fs from 'node:fs'
import * as path from 'node:path'
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

function packageRoot(): string {
  // Works from the sources (core/) and from the compiled output (dist/core/).
  let dir = __dirname
  while (!fs.existsSync(path.join(dir, 'binding.gyp'))) {
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`interprocess-objects: binding.gyp not found above ${__dirname}`)
    dir = parent
  }
  return dir
}

function load(): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding
  const binding = nodeGypBuild(packageRoot())
  binding.setErrorClass(ShmError)
  return binding
}

export const native: NativeBinding = load()
