// The pool worker of the offload demo: renders the band of rows it is given
// straight into the image the main process put in the shared segment.
import { serveTasks, type TaskContext } from 'interprocess-objects/utility'
import { renderRows, type Frame } from './offload-mandelbrot'

export const handlers = {
  render(task: { frame: Frame; image: Uint8ClampedArray; y0: number; y1: number }, ctx: TaskContext) {
    const t0 = performance.now()
    renderRows(task.frame, task.image, task.y0, task.y1, () => ctx.cancelled)
    ctx.throwIfCancelled()
    return { pid: process.pid, rows: task.y1 - task.y0, ms: performance.now() - t0 }
  },
}

void serveTasks(handlers)
