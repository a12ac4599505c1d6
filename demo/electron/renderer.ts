// The demo page: draws live frames from shared memory on a canvas, shows FPS, bytes/s
// and the change counter, and compares reading a frame through the bridge with fetching
// the same frame over IPC. Browser-only code: it talks to the preload's bridge through
// interprocess-objects/renderer, and to main only through `ipc`.
import { connect } from 'interprocess-objects/renderer'
import { Control, FRAME_BYTES, HEIGHT, WIDTH } from './schema'

/** The IPC path the comparison panel measures (ipcRenderer.invoke in the Electron demo). */
export interface DemoIpc {
  readonly label: string
  fetchFrame(): Promise<Uint8Array>
}

export interface DemoStats {
  framesDrawn: number
  counter: number
  producerFrame: number
  fps: number
  bytesPerSecond: number
  comparison?: { sharedMsPerFrame: number; ipcMsPerFrame: number; ipcLabel: string }
}

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`demo page: #${id} is missing`)
  return found as T
}

export function startDemo(ipc?: DemoIpc): { stats(): DemoStats } {
  const shared = connect()
  const controlRegion = shared.region('frames', 'control')
  const control = controlRegion.struct(Control)
  const pixels = shared.region('frames', 'pixels')
  const input = shared.channel('frames', 'input')
  const canvas = el<HTMLCanvasElement>('view')
  canvas.width = WIDTH
  canvas.height = HEIGHT
  const ctx = canvas.getContext('2d')!
  const stats: DemoStats = { framesDrawn: 0, counter: 0, producerFrame: 0, fps: 0, bytesPerSecond: 0 }
  let seen = -1
  let windowStart = performance.now()
  let windowFrames = 0
  let windowBytes = 0

  function draw(): void {
    // One bridge call per animation frame; the frame itself is copied only when it changed.
    const seq = pixels.counter()
    if (seq !== seen) {
      seen = seq
      const latest = control.latest
      const copy = pixels.read(latest * FRAME_BYTES, FRAME_BYTES)
      ctx.putImageData(new ImageData(new Uint8ClampedArray(copy.buffer as ArrayBuffer, copy.byteOffset, copy.byteLength), WIDTH, HEIGHT), 0, 0)
      stats.framesDrawn++
      windowFrames++
      windowBytes += FRAME_BYTES
    }
    stats.counter = seq
    const now = performance.now()
    if (now - windowStart >= 500) {
      stats.fps = (windowFrames * 1000) / (now - windowStart)
      stats.bytesPerSecond = (windowBytes * 1000) / (now - windowStart)
      stats.producerFrame = control.frame
      windowStart = now
      windowFrames = 0
      windowBytes = 0
      el('fps').textContent = stats.fps.toFixed(1)
      el('bytes').textContent = `${(stats.bytesPerSecond / 1e6).toFixed(1)} MB/s`
      el('counter').textContent = String(seq)
      el('frame').textContent = String(stats.producerFrame)
      el('compute').textContent = `${control.computeMs.toFixed(1)} ms on ${control.workers || 'main'} ${control.workers ? 'workers' : ''}`
      el('zoom').textContent = control.zoom.toFixed(1)
    }
    requestAnimationFrame(draw)
  }
  requestAnimationFrame(draw)

  const pause = el<HTMLInputElement>('pause')
  pause.addEventListener('change', () => {
    control.paused = pause.checked // a write through the bridge into shared memory
  })
  canvas.addEventListener('click', (e) => {
    const r = canvas.getBoundingClientRect()
    void input.put({ type: 'center', x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height })
  })

  async function compare(): Promise<void> {
    const out = el('comparison')
    if (ipc === undefined) {
      out.textContent = 'no IPC path to compare with'
      return
    }
    const n = 20
    let t0 = performance.now()
    for (let i = 0; i < n; i++) pixels.read(control.latest * FRAME_BYTES, FRAME_BYTES)
    const sharedMs = (performance.now() - t0) / n
    t0 = performance.now()
    for (let i = 0; i < n; i++) await ipc.fetchFrame()
    const ipcMs = (performance.now() - t0) / n
    stats.comparison = { sharedMsPerFrame: sharedMs, ipcMsPerFrame: ipcMs, ipcLabel: ipc.label }
    const rate = (ms: number) => `${(FRAME_BYTES / 1e6 / (ms / 1000)).toFixed(0)} MB/s`
    out.textContent = `one ${FRAME_BYTES / 1024} KiB frame — bridge read: ${sharedMs.toFixed(3)} ms (${rate(sharedMs)}); ${ipc.label}: ${ipcMs.toFixed(3)} ms (${rate(ipcMs)})`
  }
  el('compare').addEventListener('click', () => void compare())
  setTimeout(() => void compare(), 1000)
  el('status').textContent = `running (${shared.mode} mode)`

  const api = { stats: () => ({ ...stats }) }
  ;(globalThis as Record<string, unknown>).demo = api
  return api
}
