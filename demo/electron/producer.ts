// Main-process side of the demo: drives frame production. Each frame is split between
// the workers of a WorkerPool (rows rendered straight into shared memory), then main
// flips the double buffer, updates the Control struct and bumps the change counters the
// renderer polls. Without a pool it renders in main (fallback). No Electron import:
// the Chromium test runs the same code under Node.
import type { SharedObjectsHost, WorkerPool } from 'interprocess-objects/main'
import { Control, FRAME_BYTES, HEIGHT, WIDTH } from './schema'
import { renderRows, viewAt } from './frames'
import type { handlers } from './frame-worker'

export interface ProducerOptions {
  host: SharedObjectsHost
  /** Workers that render the rows; without one, main renders (blocking its event loop). */
  pool?: WorkerPool<typeof handlers>
  /** How many workers share a frame (default 2). */
  workers?: number
  /** Target frame interval (default 16 ms). */
  intervalMs?: number
}

export interface Producer {
  /** Frames completed. */
  readonly frames: number
  stop(): Promise<void>
}

interface InputEvent {
  type: 'center'
  /** Click position, 0…1 across the canvas. */
  x: number
  y: number
}

export function startProducer(options: ProducerOptions): Producer {
  const { host, pool } = options
  const parts = options.workers ?? 2
  const interval = options.intervalMs ?? 16
  const controlRegion = host.region('frames', 'control')
  const pixelsRegion = host.region('frames', 'pixels')
  const pixelsGrant = host.manifest().segments.frames!.regions.pixels!
  const control = Control.view(controlRegion.bytes)
  const shm = host.segment('frames')
  control.width = WIDTH
  control.height = HEIGHT
  control.workers = pool === undefined ? 0 : parts
  let center = { x: -0.743643887, y: 0.131825904 }
  let t = 0
  let last = performance.now()
  let frames = 0
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> = Promise.resolve()

  function takeInput(): void {
    const events: InputEvent[] = shm.access((tx) => {
      const out: InputEvent[] = []
      // Messages are copies: nothing to destroy.
      while (tx.hasMessages({ channel: 'input' })) out.push(tx.takeMessage<InputEvent>({ channel: 'input' }))
      return out
    })
    for (const e of events) {
      if (e?.type !== 'center' || typeof e.x !== 'number' || typeof e.y !== 'number') continue
      const v = viewAt(t, center)
      const scale = 3 / (v.zoom * WIDTH)
      center = { x: v.centerX + (e.x - 0.5) * WIDTH * scale, y: v.centerY + (e.y - 0.5) * HEIGHT * scale }
    }
  }

  async function frame(): Promise<void> {
    const now = performance.now()
    if (!control.paused) t += (now - last) / 1000
    last = now
    takeInput()
    if (control.paused) return
    const buffer = control.latest ^ 1
    const view = viewAt(t, center)
    const started = performance.now()
    if (pool !== undefined) {
      const rows = Math.ceil(HEIGHT / parts)
      await Promise.all(
        Array.from({ length: parts }, (_, i) =>
          pool.run('render', { pixels: pixelsGrant, buffer, rowStart: i * rows, rowEnd: Math.min(HEIGHT, (i + 1) * rows), view }),
        ),
      )
    } else {
      renderRows(pixelsRegion.bytes.subarray(buffer * FRAME_BYTES, (buffer + 1) * FRAME_BYTES), WIDTH, HEIGHT, 0, HEIGHT, view)
    }
    control.computeMs = performance.now() - started
    control.zoom = view.zoom
    control.centerX = view.centerX
    control.centerY = view.centerY
    control.latest = buffer
    control.frame = ++frames
    pixelsRegion.bump()
    controlRegion.bump()
  }

  function schedule(): void {
    if (stopped) return
    const started = performance.now()
    running = frame().then(
      () => {
        timer = setTimeout(schedule, Math.max(0, interval - (performance.now() - started)))
      },
      (err: unknown) => {
        if (!stopped) console.error('demo producer:', err)
        timer = setTimeout(schedule, 250)
      },
    )
  }
  schedule()

  return {
    get frames() {
      return frames
    },
    async stop() {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      await running.catch(() => undefined)
    },
  }
}
