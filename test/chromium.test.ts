// Renderer code in real Chromium. The demo page (demo/electron/renderer.ts) is bundled
// with esbuild for the browser and served on localhost. Its bridge is a stand-in for
// contextBridge: synchronous XHRs to this process, where the real preload functions
// (createBridge) run against a real segment that two real worker processes (the demo's
// WorkerPool frame workers) render frames into. So: real renderer code, real Chromium,
// real shared memory, real workers — only the contextBridge hop is replaced by HTTP.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { SharedObjectsHost, WorkerPool } from 'interprocess-objects/main'
import { createBridge, type Bridge } from 'interprocess-objects/preload'
import { bundleForBrowser } from '../e2e/bundle'
import { startHttpBridgeServer, type HttpBridgeServer } from '../e2e/http_bridge_server'
import { Control, FRAME_BYTES, HEIGHT, SEGMENT_SIZE, WIDTH, channels, regions } from '../demo/electron/schema'
import { startProducer, type Producer } from '../demo/electron/producer'
import type { handlers } from '../demo/electron/frame-worker'
import type { DemoStats } from '../demo/electron/renderer'
import { launchChromium } from './helpers/chromium'

const root = path.join(__dirname, '..')
const resultsDir = path.join(root, 'test-results')

interface DemoWindow {
  demo?: { stats(): DemoStats }
  sharedObjects: { region(s: string, r: string): number; counter(h: number): number; getUint32(h: number, o: number): number }
}

describe('renderer in real Chromium, reading a real segment', () => {
  let host: SharedObjectsHost
  let pool: WorkerPool<typeof handlers>
  let producer: Producer
  let bridge: Bridge
  let server: HttpBridgeServer
  let browser: Browser
  let page: Page
  const pageErrors: string[] = []

  beforeAll(async () => {
    // First, so a missing browser fails the file at once (loudly: the error says what
    // was tried and how to fix it) before any segment or worker exists.
    const launched = await launchChromium()
    browser = launched.browser
    console.log(`chromium: ${launched.source}`)
    host = SharedObjectsHost.create({ prefix: 'crm', segments: { frames: { size: SEGMENT_SIZE, regions, channels: [...channels] } } })
    pool = await WorkerPool.start<typeof handlers>({
      script: path.join(root, 'demo', 'electron', 'frame-worker.ts'),
      execArgv: ['--import', 'tsx'],
      workers: 2,
      shm: host.segment('frames'),
      host: 'node',
    })
    producer = startProducer({ host, pool, workers: 2 })
    // What main would grant the demo window; the page gets exactly these functions.
    bridge = createBridge(host.grants({ frames: { regions: { control: 'readwrite', pixels: 'read' }, channels: { input: 'put' } } }))
    const pixels = host.region('frames', 'pixels')
    const control = Control.view(host.region('frames', 'control').bytes)
    server = await startHttpBridgeServer({
      api: bridge.api,
      files: {
        '/': ['text/html; charset=utf-8', fs.readFileSync(path.join(root, 'demo', 'electron', 'index.html'), 'utf8')],
        '/renderer.js': ['text/javascript; charset=utf-8', await bundleForBrowser(path.join(root, 'e2e', 'chromium-page.ts'))],
      },
      ipcFrame: () => pixels.bytes.slice(control.latest * FRAME_BYTES, (control.latest + 1) * FRAME_BYTES),
    })
    page = await browser.newPage({ viewport: { width: 900, height: 800 } })
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text())
    })
    await page.goto(server.url)
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
    await producer?.stop()
    await pool?.close()
    bridge?.close()
    host?.close()
  })

  const stats = () => page.evaluate(() => (window as unknown as DemoWindow).demo!.stats())

  it('draws frames that workers computed into shared memory, and its counters advance', async () => {
    await page.waitForFunction(() => ((window as unknown as DemoWindow).demo?.stats().framesDrawn ?? 0) > 5, null, { timeout: 30_000 })
    const first = await stats()
    await page.waitForTimeout(1000)
    const second = await stats()
    expect(second.framesDrawn).toBeGreaterThan(first.framesDrawn)
    expect(second.counter).toBeGreaterThan(first.counter)
    expect(second.fps).toBeGreaterThan(1)
    expect(second.bytesPerSecond).toBeGreaterThan(FRAME_BYTES)
    expect(await page.textContent('#status')).toBe('running (bridge mode)')
    expect(producer.frames).toBeGreaterThan(5)

    // The canvas holds a rendered frame: many distinct colours, almost no blank pixels.
    const canvas = await page.evaluate(([w, h]) => {
      const c = document.getElementById('view') as HTMLCanvasElement
      const data = c.getContext('2d')!.getImageData(0, 0, w!, h!).data
      const colours = new Set<number>()
      let blank = 0
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] === 0) blank++
        colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!)
      }
      return { blank, colours: colours.size, pixels: data.length / 4 }
    }, [WIDTH, HEIGHT])
    expect(canvas.pixels).toBe(WIDTH * HEIGHT)
    expect(canvas.blank).toBe(0)
    expect(canvas.colours).toBeGreaterThan(20)

    fs.mkdirSync(resultsDir, { recursive: true })
    await page.screenshot({ path: path.join(resultsDir, 'chromium-demo.png') })
    expect(pageErrors).toEqual([])
  })

  it('writes through the bridge: pausing from the page stops the producers', async () => {
    const control = Control.view(host.region('frames', 'control').bytes)
    await page.check('#pause')
    await page.waitForTimeout(200)
    expect(control.paused).toBe(true)
    const frozen = control.frame
    await page.waitForTimeout(400)
    expect(control.frame).toBe(frozen)
    await page.uncheck('#pause')
    await page.waitForFunction((f) => {
      const so = (window as unknown as DemoWindow).sharedObjects
      return so.getUint32(so.region('frames', 'control'), 0) > f
    }, frozen, { timeout: 10_000 })
    expect(control.paused).toBe(false)
  })

  it('posts input messages to a shared channel that main consumes', async () => {
    const control = Control.view(host.region('frames', 'control').bytes)
    const before = control.centerX
    await page.click('#view', { position: { x: 40, y: 40 } })
    await expect.poll(() => control.centerX, { timeout: 5000 }).not.toBe(before)
  })

  it('compares the bridge read with an IPC stand-in, and measures the stand-in bridge call', async () => {
    await page.waitForFunction(() => (window as unknown as DemoWindow).demo?.stats().comparison !== undefined, null, { timeout: 30_000 })
    const { comparison } = await stats()
    expect(comparison!.sharedMsPerFrame).toBeGreaterThan(0)
    expect(comparison!.ipcMsPerFrame).toBeGreaterThan(0)
    expect(await page.textContent('#comparison')).toContain('bridge read')
    await page.screenshot({ path: path.join(resultsDir, 'chromium-demo-comparison.png') })
    const perCall = await page.evaluate(() => {
      const so = (window as unknown as DemoWindow).sharedObjects
      const h = so.region('frames', 'control')
      const n = 200
      const t0 = performance.now()
      for (let i = 0; i < n; i++) so.counter(h)
      return ((performance.now() - t0) * 1000) / n
    })
    console.log(
      `chromium: one ${FRAME_BYTES} B frame — bridge read (sync-XHR stand-in) ${comparison!.sharedMsPerFrame.toFixed(3)} ms, ` +
        `${comparison!.ipcLabel} ${comparison!.ipcMsPerFrame.toFixed(3)} ms; one counter() call through the stand-in ${perCall.toFixed(1)} µs ` +
        `(HTTP round trip; real contextBridge calls are in-process, see test/bridge-cost.test.ts)`,
    )
    expect(pageErrors).toEqual([])
  })
})
