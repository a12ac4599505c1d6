// The Electron demo's own main and preload bundles (demo/electron/.build/, what
// `npm start` runs), executed under Node with a stand-in `electron` module: a fake
// app / BrowserWindow / ipcMain for main, the contextBridge emulation and an
// ipcRenderer.invoke wired to ipcMain's handlers for the preload. Everything else is
// real: the segment, the WorkerPool's two worker processes, the grants on the command
// line, the renderer client in the emulated page. What only a real Electron can show
// (utilityProcess, the real contextBridge, a window) is e2e/electron.spec.ts's job.
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs'
import Module from 'node:module'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { SharedMemory } from 'interprocess-objects'
import { buildDemo } from '../demo/electron/build'
import { bundleForBrowser } from '../e2e/bundle'
import { createContextBridgeEmulation, type ContextBridgeEmulation } from './helpers/context_bridge'

interface FakeWindow {
  options: { webPreferences: { preload: string; sandbox: boolean; contextIsolation: boolean; nodeIntegration: boolean; additionalArguments: string[] } }
  file?: string
}

class FakeApp extends EventEmitter {
  quitCalls = 0
  whenReady(): Promise<void> {
    return Promise.resolve()
  }
  quit(): void {
    this.quitCalls++
    this.emit('before-quit', { preventDefault() {} })
    this.emit('will-quit', { preventDefault() {} })
    this.emit('quit')
  }
  exit(code: number): void {
    throw new Error(`app.exit(${code})`)
  }
}

const loader = Module as unknown as { _load(request: string, parent: unknown, isMain: boolean): unknown }

describe('demo app bundles under a stand-in electron module', () => {
  const app = new FakeApp()
  const windows: FakeWindow[] = []
  const handlers = new Map<string, (...args: unknown[]) => unknown>()
  let electron: Record<string, unknown> = {}
  let em: ContextBridgeEmulation
  const originalLoad = loader._load
  let buildDir = ''

  beforeAll(async () => {
    buildDir = await buildDemo()
    loader._load = function (request: string, parent: unknown, isMain: boolean) {
      if (request === 'electron') return electron
      return originalLoad.call(this, request, parent, isMain)
    }
    electron = {
      app,
      BrowserWindow: class {
        options: FakeWindow['options']
        file?: string
        constructor(options: FakeWindow['options']) {
          this.options = options
          windows.push(this)
        }
        loadFile(file: string): Promise<void> {
          this.file = file
          return Promise.resolve()
        }
      },
      ipcMain: { handle: (channel: string, fn: (...a: unknown[]) => unknown) => handlers.set(channel, fn) },
    }
    require(path.join(buildDir, 'main.js'))
    await vi.waitFor(() => expect(windows.length === 1 && windows[0]!.file !== undefined, 'the demo window').toBe(true), { timeout: 20_000, interval: 20 })
  }, 60_000)

  afterAll(() => {
    loader._load = originalLoad
    if (app.quitCalls === 0) app.emit('window-all-closed')
  })

  it('main creates the window with the bridge settings and grants only what the page needs', () => {
    const prefs = windows[0]!.options.webPreferences
    expect(prefs).toMatchObject({ sandbox: false, contextIsolation: true, nodeIntegration: false })
    expect(prefs.preload).toBe(path.join(buildDir, 'preload.js'))
    expect(fs.existsSync(prefs.preload)).toBe(true)
    expect(windows[0]!.file).toBe(path.join(buildDir, 'index.html'))
    const grants = JSON.parse(prefs.additionalArguments.find((a) => a.startsWith('--ipo-grants='))!.slice('--ipo-grants='.length)) as {
      segments: Record<string, { regions: Record<string, { access: string }>; channels: Record<string, string> }>
    }
    expect(Object.keys(grants.segments)).toEqual(['frames'])
    expect(grants.segments.frames!.regions.pixels!.access).toBe('read')
    expect(grants.segments.frames!.regions.control!.access).toBe('readwrite')
    expect(grants.segments.frames!.channels).toEqual({ input: 'put' })
  })

  it('the preload exposes the bridge and demoIpc; the page sees frames the workers render', async () => {
    em = createContextBridgeEmulation()
    electron = {
      contextBridge: em.contextBridge,
      ipcRenderer: { invoke: async (channel: string, ...args: unknown[]) => handlers.get(channel)!({}, ...args) },
    }
    const argv = process.argv
    const proc = process as { contextIsolated?: boolean }
    process.argv = [...argv, ...windows[0]!.options.webPreferences.additionalArguments]
    proc.contextIsolated = true
    try {
      require(path.join(buildDir, 'preload.js'))
    } finally {
      process.argv = argv
      delete proc.contextIsolated
    }
    em.run(await bundleForBrowser(path.join(__dirname, 'children', 'bridge-demo-renderer.ts')))
    const read = () =>
      em.run<{ counter: number; frame: number; workers: number; lit: number }>(`{
        const c = IPO.connect()
        const pixels = c.region('frames', 'pixels')
        const control = c.region('frames', 'control').struct(IPO.Control)
        const frame = pixels.read(control.latest * IPO.FRAME_BYTES, IPO.FRAME_BYTES)
        let lit = 0
        for (let i = 0; i < frame.length; i += 4) if (frame[i] + frame[i + 1] + frame[i + 2] > 0) lit++
        ;({ counter: pixels.counter(), frame: control.frame, workers: control.workers, lit })
      }`)
    await vi.waitFor(() => expect(read().frame > 3, 'frames from the workers').toBe(true), { timeout: 20_000, interval: 20 })
    const a = read()
    await new Promise((r) => setTimeout(r, 300))
    const b = read()
    expect(b.counter).toBeGreaterThan(a.counter)
    expect(b.frame).toBeGreaterThan(a.frame)
    expect(b.workers).toBe(2)
    expect(b.lit).toBeGreaterThan(1000)
    const viaIpc = await em.run<Promise<Uint8Array>>(`window.demoIpc.fetchFrame()`)
    expect(viaIpc).toBeInstanceOf(em.run<Uint8ArrayConstructor>('Uint8Array'))
    expect(viaIpc.length).toBe(em.run<number>('IPO.FRAME_BYTES'))
    expect(em.run('window.demoIpc.label')).toBe('ipcRenderer.invoke')
  })

  it('closing the last window stops the workers, quits, and the segment name is gone', async () => {
    const name = (globalThis as Record<string, unknown>).__demoSegmentName as string
    expect(() => SharedMemory.open({ name }).close()).not.toThrow()
    app.emit('window-all-closed')
    await vi.waitFor(() => expect(app.quitCalls === 1, 'app.quit()').toBe(true), { timeout: 20_000, interval: 20 })
    expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
  })
})
