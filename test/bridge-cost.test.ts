// What a bridge accessor costs, measured in one run beside the alternatives. Numbers go
// to stdout (docs/electron.md quotes a run); the assertions only check the ordering that
// the design relies on, with wide margins.
//
// Honest labels: Electron is not available here. "contextBridge (vm emulation)" is
// test/helpers/context_bridge.ts — JavaScript doing what Electron's C++ does per call
// (copy arguments, call, copy the result); the real bridge is native and not measured.
// "ipcRenderer.invoke" is not measured either: a MessageChannel round trip (in-process,
// a lower bound) and a child_process IPC round trip (another process, the same kind of
// hop invoke makes to the main process) stand in for it.
import { fork } from 'node:child_process'
import * as path from 'node:path'
import { MessageChannel } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SharedObjectsHost } from 'interprocess-objects/main'
import { exposeSharedObjects, type Exposed } from 'interprocess-objects/preload'
import { bundleForBrowser } from '../e2e/bundle'
import { createContextBridgeEmulation, type ContextBridgeEmulation } from './helpers/context_bridge'
import { Stats, regions } from './children/bridge-schema'

function perOp(n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(n, 2000); i++) fn() // warm up
  const t0 = performance.now()
  fn()
  for (let i = 1; i < n; i++) fn()
  return ((performance.now() - t0) * 1e6) / n // ns
}

async function perOpAsync(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 50; i++) await fn()
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn()
    samples.push((performance.now() - t0) * 1e6)
  }
  return samples.sort((a, b) => a - b)
}

const fmt = (ns: number) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`)

describe('bridge accessor cost (vm emulation) vs IPC stand-ins', () => {
  let host: SharedObjectsHost
  let em: ContextBridgeEmulation
  let exposed: Exposed
  const rows: Array<[string, string]> = []

  beforeAll(async () => {
    host = SharedObjectsHost.create({ prefix: 'cost', segments: { data: { size: 4 << 20, regions: { ...regions, frame: 256_000 } } } })
    em = createContextBridgeEmulation()
    const prefs = host.webPreferences({ data: { regions: { stats: 'readwrite', frame: 'read' } } })
    exposed = exposeSharedObjects({ argv: prefs.additionalArguments!, contextBridge: em.contextBridge, contextIsolated: true, global: {} })
    em.run(await bundleForBrowser(path.join(__dirname, 'children', 'bridge-renderer.ts')))
    em.run(`{ const c = IPO.connect(); globalThis.stats = c.region('data', 'stats').struct(IPO.Stats); globalThis.frameRegion = c.region('data', 'frame') }`)
  })

  afterAll(() => {
    exposed?.close()
    host?.close()
    console.log(['bridge cost (this machine, one run):', ...rows.map(([k, v]) => `  ${k.padEnd(62)} ${v}`)].join('\n'))
  })

  it('field reads: core view < preload function < through the bridge', () => {
    const n = 200_000
    const view = Stats.view(host.region('data', 'stats').bytes)
    view.fps = 1.5
    let sink = 0
    const core = perOp(n, () => {
      sink += view.fps
    })
    const h = exposed.api.region('data', 'stats')
    const preload = perOp(n, () => {
      sink += exposed.api.getFloat64(h, 8)
    })
    const run = em.run<(n: number) => number>(`(n) => { let s = 0; const t0 = performance.now(); for (let i = 0; i < n; i++) s += stats.fps; return ((performance.now() - t0) * 1e6) / n }`)
    run(20_000)
    const bridged = run(n)
    const raw = em.run<(n: number) => number>(`(n) => { const api = window.sharedObjects, h = api.region('data', 'stats'); let s = 0; const t0 = performance.now(); for (let i = 0; i < n; i++) s += api.getFloat64(h, 8); return ((performance.now() - t0) * 1e6) / n }`)
    raw(20_000)
    const rawBridged = raw(n)
    const write = em.run<(n: number) => number>(`(n) => { const t0 = performance.now(); for (let i = 0; i < n; i++) stats.fps = i; return ((performance.now() - t0) * 1e6) / n }`)
    write(20_000)
    const bridgedWrite = write(n)
    const counter = em.run<(n: number) => number>(`(n) => { const r = frameRegion; const t0 = performance.now(); for (let i = 0; i < n; i++) r.counter(); return ((performance.now() - t0) * 1e6) / n }`)
    counter(20_000)
    const counterCost = counter(n)
    rows.push(['float64 field, core struct view (direct mode, zero-copy)', fmt(core)])
    rows.push(['float64 field, preload function called in its own world', fmt(preload)])
    rows.push(['float64 field, renderer struct view → contextBridge (vm emulation)', fmt(bridged)])
    rows.push(['getFloat64(h, off) called raw → contextBridge (vm emulation)', fmt(rawBridged)])
    rows.push(['float64 field write → contextBridge (vm emulation)', fmt(bridgedWrite)])
    rows.push(['region.counter() per animation frame → contextBridge (vm emulation)', fmt(counterCost)])
    expect(sink).not.toBe(0)
    expect(core).toBeLessThan(bridged)
    expect(preload).toBeLessThan(bridged)
  })

  it('bulk: one 256 000-byte frame read through the bridge', () => {
    const read = em.run<(n: number) => number>(`(n) => { const t0 = performance.now(); for (let i = 0; i < n; i++) frameRegion.read(0, 256000); return ((performance.now() - t0) * 1e6) / n }`)
    read(20)
    const ns = read(200)
    rows.push(['read(0, 256000) → contextBridge (vm emulation; 2 copies)', `${fmt(ns)} (${(256_000 / ns).toFixed(2)} GB/s)`])
    expect(ns).toBeGreaterThan(0)
  })

  it('IPC stand-ins for ipcRenderer.invoke: MessageChannel and child_process round trips', async () => {
    const { port1, port2 } = new MessageChannel()
    port2.on('message', (m: unknown) => port2.postMessage(m))
    const mc = await perOpAsync(2000, () => new Promise((resolve) => {
      port1.once('message', resolve)
      port1.postMessage(8)
    }))
    port1.close()
    const child = fork(path.join(__dirname, 'children', 'bridge-echo.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    await new Promise((resolve) => child.once('message', resolve))
    const cp = await perOpAsync(500, () => new Promise((resolve) => {
      child.once('message', resolve)
      child.send(8)
    }))
    const frame = new Uint8Array(256_000)
    const cpFrame = await perOpAsync(100, () => new Promise((resolve) => {
      child.once('message', resolve)
      child.send(frame)
    }))
    child.kill()
    const p = (s: number[], q: number) => fmt(s[Math.floor(s.length * q)]!)
    rows.push(['stand-in: MessageChannel round trip, one number (in-process)', `p50 ${p(mc, 0.5)}, p99 ${p(mc, 0.99)}`])
    rows.push(['stand-in: child_process IPC round trip, one number (cross-process)', `p50 ${p(cp, 0.5)}, p99 ${p(cp, 0.99)}`])
    rows.push(['stand-in: child_process IPC round trip, 256 000-byte frame', `p50 ${p(cpFrame, 0.5)}, p99 ${p(cpFrame, 0.99)}`])
    expect(mc[0]).toBeGreaterThan(0)
  })
})
