// The computation of the offload demo: a Mandelbrot image, RGBA, one band of rows
// at a time. Shared by the demo itself (the one-process baseline), its pool worker
// and its IPC-baseline child, so every variant does exactly the same work.

export interface Frame {
  width: number
  height: number
  maxIter: number
  /** The complex plane shown: centre and the width of the view. */
  cx: number
  cy: number
  span: number
}

export const frame: Frame = { width: 1600, height: 1200, maxIter: 500, cx: -0.6, cy: 0, span: 3.2 }

/** Writes rows [y0, y1) of the frame into `rgba` (the whole image, width × height × 4 bytes). */
export function renderRows(f: Frame, rgba: Uint8ClampedArray, y0: number, y1: number, shouldStop?: () => boolean): void {
  const { width, height, maxIter } = f
  const scale = f.span / width
  const left = f.cx - (width / 2) * scale
  const top = f.cy - (height / 2) * scale
  for (let y = y0; y < y1; y++) {
    if (shouldStop !== undefined && (y & 15) === 0 && shouldStop()) return
    const ci = top + y * scale
    let at = y * width * 4
    for (let x = 0; x < width; x++) {
      const cr = left + x * scale
      let zr = 0
      let zi = 0
      let n = 0
      while (n < maxIter) {
        const zr2 = zr * zr
        const zi2 = zi * zi
        if (zr2 + zi2 > 4) break
        zi = 2 * zr * zi + ci
        zr = zr2 - zi2 + cr
        n++
      }
      if (n === maxIter) {
        rgba[at] = 0
        rgba[at + 1] = 0
        rgba[at + 2] = 0
      } else {
        const t = n / maxIter
        rgba[at] = 9 * (1 - t) * t * t * t * 255
        rgba[at + 1] = 15 * (1 - t) * (1 - t) * t * t * 255
        rgba[at + 2] = 8.5 * (1 - t) * (1 - t) * (1 - t) * t * 255
      }
      rgba[at + 3] = 255
      at += 4
    }
  }
}

/** FNV-1a over the bytes: equal only if every pixel is equal. */
export function checksum(image: Uint8ClampedArray): string {
  // What IPC delivers may start at any byte: word access needs 4-byte alignment.
  const bytes = image.byteOffset % 4 === 0 ? image : image.slice()
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2)
  let h = 0x811c9dc5
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 0x01000193) >>> 0
  return h.toString(16).padStart(8, '0')
}
