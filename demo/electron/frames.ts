// Frame content: a Mandelbrot zoom, rows [rowStart, rowEnd) into RGBA bytes. Pure, so a
// worker, main, or a test computes exactly the same pixels.
export interface View {
  centerX: number
  centerY: number
  zoom: number
}

export function renderRows(out: Uint8Array, width: number, height: number, rowStart: number, rowEnd: number, view: View, maxIter = 96): void {
  const scale = 3 / (view.zoom * width)
  for (let y = rowStart; y < rowEnd; y++) {
    const ci = view.centerY + (y - height / 2) * scale
    let p = y * width * 4
    for (let x = 0; x < width; x++) {
      const cr = view.centerX + (x - width / 2) * scale
      let zr = 0
      let zi = 0
      let i = 0
      while (i < maxIter && zr * zr + zi * zi < 4) {
        const t = zr * zr - zi * zi + cr
        zi = 2 * zr * zi + ci
        zr = t
        i++
      }
      if (i === maxIter) {
        out[p] = 8
        out[p + 1] = 8
        out[p + 2] = 24
      } else {
        const c = i / maxIter
        out[p] = Math.floor(255 * Math.sqrt(c))
        out[p + 1] = Math.floor(255 * c * c)
        out[p + 2] = Math.floor(160 + 95 * Math.sin(c * 6.28))
      }
      out[p + 3] = 255
      p += 4
    }
  }
}

/** The view at time t (seconds): a slow zoom into a point on the boundary, repeating. */
export function viewAt(t: number, center: { x: number; y: number } = { x: -0.743643887, y: 0.131825904 }): View {
  const cycle = 20
  const phase = (t % cycle) / cycle
  return { centerX: center.x, centerY: center.y, zoom: Math.pow(2, phase * 10) }
}
