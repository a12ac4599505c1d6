// A frame worker (Electron utility process, or a Node child process in tests): renders
// its rows straight into the pixels region of the shared segment, returns only timing.
import { serveTasks } from 'interprocess-objects/utility'
import { regionBytes, type RegionGrant } from 'interprocess-objects/preload'
import { FRAME_BYTES, HEIGHT, WIDTH } from './schema'
import { renderRows, type View } from './frames'

export interface RenderTask {
  pixels: RegionGrant
  /** 0 or 1: which frame buffer of the region. */
  buffer: number
  rowStart: number
  rowEnd: number
  view: View
}

export const handlers = {
  render(task: RenderTask, ctx: { shm: Parameters<typeof regionBytes>[0] }): number {
    const started = performance.now()
    const bytes = regionBytes(ctx.shm, task.pixels).subarray(task.buffer * FRAME_BYTES, (task.buffer + 1) * FRAME_BYTES)
    renderRows(bytes, WIDTH, HEIGHT, task.rowStart, task.rowEnd, task.view)
    return performance.now() - started
  },
}

void serveTasks(handlers)
