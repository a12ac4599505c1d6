// Playwright's Electron driver against the demo app (demo/electron/). Runs only where an
// Electron binary exists: ELECTRON_PATH, or an `electron` package whose installer could
// download its binary. Elsewhere the suite is reported as skipped, with the reason in
// its name and on stdout — never as passed.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { SharedMemory } from 'interprocess-objects'
import { buildDemo } from '../demo/electron/build'

interface Found {
  path?: string
  reason?: string
}

function findElectron(): Found {
  const fromEnv = process.env.ELECTRON_PATH
  if (fromEnv !== undefined && fromEnv !== '') {
    return fs.existsSync(fromEnv) ? { path: fromEnv } : { reason: `ELECTRON_PATH=${fromEnv} does not exist` }
  }
  let p: unknown
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    p = require('electron')
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0]
    return { reason: `the electron package has no binary (${first}); its installer downloads one from outside the registry — set ELECTRON_PATH to an Electron 38 executable` }
  }
  if (typeof p !== 'string' || !fs.existsSync(p)) return { reason: 'require("electron") did not return an existing executable; set ELECTRON_PATH' }
  return { path: p }
}

function findDisplay(): string | undefined {
  if (process.platform !== 'linux') return undefined
  return process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? undefined : 'no DISPLAY: Electron needs a display on Linux; run the tests under xvfb-run'
}

const found = findElectron()
const reason = found.reason ?? (found.path === undefined ? 'no Electron binary' : findDisplay())
if (reason !== undefined) console.log(`SKIPPED: Electron e2e (demo app) — ${reason}`)

interface DemoStats {
  framesDrawn: number
  counter: number
  comparison?: { sharedMsPerFrame: number; ipcMsPerFrame: number; ipcLabel: string }
}

describe.skipIf(reason !== undefined)(`Electron demo app${reason === undefined ? '' : ` — SKIPPED: ${reason}`}`, () => {
  it('opens a window, draws frames from shared memory, counters advance, shows the IPC comparison, and a clean quit unlinks the segment', async () => {
    const buildDir = await buildDemo()
    const { _electron } = await import('playwright-core')
    const args = [buildDir]
    if (process.platform === 'linux' && process.getuid?.() === 0) args.unshift('--no-sandbox')
    const app = await _electron.launch({ executablePath: found.path!, args, timeout: 60_000 })
    let closed = false
    try {
      const page = await app.firstWindow()
      const stats = () => page.evaluate(() => (globalThis as unknown as { demo: { stats(): DemoStats } }).demo.stats())
      await page.waitForFunction(() => ((globalThis as unknown as { demo?: { stats(): DemoStats } }).demo?.stats().framesDrawn ?? 0) > 5, null, { timeout: 30_000 })
      const a = await stats()
      await page.waitForTimeout(1000)
      const b = await stats()
      expect(b.framesDrawn).toBeGreaterThan(a.framesDrawn)
      expect(b.counter).toBeGreaterThan(a.counter)
      expect(await page.textContent('#status')).toBe('running (bridge mode)')
      await page.waitForFunction(() => (globalThis as unknown as { demo: { stats(): DemoStats } }).demo.stats().comparison !== undefined, null, { timeout: 30_000 })
      expect(await page.textContent('#comparison')).toContain('ipcRenderer.invoke')
      // The page has no Node and no raw shared memory: only the bridge functions.
      expect(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined')
      const results = path.join(__dirname, '..', 'test-results')
      fs.mkdirSync(results, { recursive: true })
      await page.screenshot({ path: path.join(results, 'electron-demo.png') })

      const name = await app.evaluate(() => (globalThis as unknown as { __demoSegmentName: string }).__demoSegmentName)
      expect(() => SharedMemory.open({ name }).close()).not.toThrow()
      await app.close()
      closed = true
      expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
    } finally {
      if (!closed) await app.close()
    }
  }, 120_000)
})
