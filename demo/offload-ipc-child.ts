// The IPC baseline of the offload demo: a plain child process that renders the whole
// frame on request and sends the bytes back over child_process IPC ('advanced'
// serialization, which carries TypedArrays by structured clone).
import { renderRows, type Frame } from './offload-mandelbrot'

process.on('message', (m: { frame: Frame } | 'stop') => {
  if (m === 'stop') {
    process.disconnect()
    return
  }
  const { frame } = m
  const image = new Uint8ClampedArray(frame.width * frame.height * 4)
  renderRows(frame, image, 0, frame.height)
  process.send!(image)
})
process.send!('ready')
