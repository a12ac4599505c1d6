// Electron main process of the demo: creates the shared segment, starts two frame
// workers (utility processes) that render into it, and opens a window whose preload
// may open only the regions and channel granted below.
import { app, BrowserWindow, ipcMain } from 'electron'
import * as path from 'node:path'
import { SharedObjectsHost, WorkerPool } from 'interprocess-objects/main'
import { Control, FRAME_BYTES, SEGMENT_SIZE, channels, regions } from './schema'
import { startProducer, type Producer } from './producer'
import type { handlers } from './frame-worker'

// The bundles (demo/electron/build.ts) sit beside this file: preload.js, renderer.js,
// frame-worker.js, index.html.
const here = __dirname

async function main(): Promise<void> {
  await app.whenReady()
  const host = SharedObjectsHost.create({ prefix: 'demo', segments: { frames: { size: SEGMENT_SIZE, regions, channels: [...channels] } } })
  host.closeOnQuit(app)
  // For the e2e test: which segment to check is gone after quit.
  ;(globalThis as Record<string, unknown>).__demoSegmentName = host.segment('frames').name

  let pool: WorkerPool<typeof handlers> | undefined
  try {
    pool = await WorkerPool.start<typeof handlers>({ script: path.join(here, 'frame-worker.js'), workers: 2, shm: host.segment('frames') })
  } catch (err) {
    console.error('demo: frame workers did not start, rendering in main instead:', err)
  }
  const producer: Producer = startProducer({ host, pool, workers: 2 })

  // The IPC path the page compares with: the same frame, copied through ipcRenderer.invoke.
  const pixels = host.region('frames', 'pixels')
  const control = Control.view(host.region('frames', 'control').bytes)
  ipcMain.handle('demo:frame', () => pixels.bytes.slice(control.latest * FRAME_BYTES, (control.latest + 1) * FRAME_BYTES))

  const win = new BrowserWindow({
    width: 900,
    height: 860,
    title: 'interprocess-objects demo',
    webPreferences: host.webPreferences(
      { frames: { regions: { control: 'readwrite', pixels: 'read' }, channels: { input: 'put' } } },
      { preload: path.join(here, 'preload.js') },
    ),
  })
  await win.loadFile(path.join(here, 'index.html'))

  let stopping = false
  app.on('window-all-closed', () => {
    if (stopping) return
    stopping = true
    // Stop producing, stop the workers, then quit: 'will-quit' closes and unlinks the segment.
    void producer
      .stop()
      .then(() => pool?.close())
      .finally(() => app.quit())
  })
}

main().catch((err: unknown) => {
  console.error(err)
  app.exit(1)
})
