// interprocess-objects offload demo (plain Node): a 1600×1200 RGBA Mandelbrot image
// rendered three ways, each timed in this run on this machine:
//   (a) here, in this one process
//   (b) in a child process, the finished bytes sent back over child_process IPC
//   (c) by a WorkerPool of 2 workers, each rendering a band of rows straight into
//       a Uint8ClampedArray that lies in the shared segment (zero-copy both ways:
//       only the task descriptions and small results travel, through the segment)
//
//   npx tsx demo/offload-demo.ts
import { fork } from 'node:child_process'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { WorkerPool } from 'interprocess-objects/main'
import type { handlers } from './offload-worker'
import { checksum, frame, renderRows } from './offload-mandelbrot'

const WORKERS = 2
const WARM_RUNS = 3
const tsx = ['--import', 'tsx']

interface Timing {
  first: number
  best: number
}

const ms = (t: number) => `${t.toFixed(0).padStart(5)} ms`

async function timed(runs: number, once: () => Promise<void> | void): Promise<Timing> {
  const t0 = performance.now()
  await once()
  const first = performance.now() - t0
  let best = Infinity
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await once()
    best = Math.min(best, performance.now() - t)
  }
  return { first, best }
}

async function main(): Promise<number> {
  const { width, height, maxIter } = frame
  const pixels = width * height
  const bytes = pixels * 4
  console.log(`Mandelbrot ${width}×${height} RGBA (${(bytes / 1e6).toFixed(2)} MB), up to ${maxIter} iterations per pixel; ${availableParallelism()} cores here.`)
  console.log(`Each way renders the frame once cold, then ${WARM_RUNS} more times; "best" is the fastest of those.\n`)

  // (a) one process
  const local = new Uint8ClampedArray(bytes)
  const a = await timed(WARM_RUNS, () => renderRows(frame, local, 0, height))
  const expected = checksum(local)
  console.log(`(a) this process alone:           first ${ms(a.first)}, best ${ms(a.best)}  checksum ${expected}`)

  // (b) a child renders, the bytes come back over IPC
  const child = fork(path.join(__dirname, 'offload-ipc-child.ts'), [], { execArgv: tsx, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const messages: unknown[] = []
  const waiters: Array<(m: unknown) => void> = []
  child.on('message', (m) => (waiters.length > 0 ? waiters.shift()!(m) : messages.push(m)))
  const next = () => new Promise<unknown>((resolve) => (messages.length > 0 ? resolve(messages.shift()) : waiters.push(resolve)))
  const childExited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let fromChild: Uint8ClampedArray = new Uint8ClampedArray(0)
  let b: Timing
  try {
    if ((await next()) !== 'ready') throw new Error('the IPC child did not start')
    b = await timed(WARM_RUNS, async () => {
      child.send({ frame })
      fromChild = (await next()) as Uint8ClampedArray
    })
    child.send('stop')
    await childExited
  } finally {
    child.kill()
  }
  const bSum = checksum(fromChild)
  console.log(`(b) child + IPC ('advanced'):     first ${ms(b.first)}, best ${ms(b.best)}  checksum ${bSum}`)

  // (c) a WorkerPool; the workers write into the shared image
  const t0 = performance.now()
  const pool = await WorkerPool.start<typeof handlers>({
    script: path.join(__dirname, 'offload-worker.ts'),
    workers: WORKERS,
    execArgv: tsx,
    segmentSize: bytes + (4 << 20),
  })
  const startMs = performance.now() - t0
  let cSum = ''
  let bands: Array<{ pid: number; rows: number; ms: number }> = []
  let c: Timing
  try {
    const image = pool.shm.access((tx) => tx.put(new Uint8ClampedArray(bytes)))
    const rowsPer = Math.ceil(height / WORKERS)
    c = await timed(WARM_RUNS, async () => {
      bands = await Promise.all(
        Array.from({ length: WORKERS }, (_, i) => pool.run('render', { frame, image, y0: i * rowsPer, y1: Math.min(height, (i + 1) * rowsPer) })),
      )
    })
    cSum = checksum(image)
    console.log(`(c) WorkerPool, ${WORKERS} workers, shared:  first ${ms(c.first)}, best ${ms(c.best)}  checksum ${cSum}`)
    console.log(`    (starting the pool took ${startMs.toFixed(0)} ms, not counted: mostly Node + tsx starting in each worker)`)
    console.log(`    last run: ${bands.map((r, i) => `worker ${i} (pid ${r.pid}) rendered rows ${i * rowsPer}–${i * rowsPer + r.rows - 1} in ${r.ms.toFixed(0)} ms`).join('; ')}`)
    pool.shm.access((tx) => tx.destroy(image))
  } finally {
    await pool.close()
  }

  const rate = (t: number) => `${(pixels / 1e3 / t).toFixed(1).padStart(6)} Mpixel/s, ${(bytes / 1e3 / t).toFixed(0).padStart(4)} MB/s`
  console.log('\nthroughput (best run):')
  console.log(`  (a) one process      ${rate(a.best)}`)
  console.log(`  (b) child + IPC      ${rate(b.best)}`)
  console.log(`  (c) WorkerPool       ${rate(c.best)}`)
  console.log(`speed-up of (c): ${(a.best / c.best).toFixed(2)}× over (a) one process, ${(b.best / c.best).toFixed(2)}× over (b) child + IPC`)
  console.log(`  (cold first runs: ${(a.first / c.first).toFixed(2)}× over (a), ${(b.first / c.first).toFixed(2)}× over (b))`)

  const ok = bSum === expected && cSum === expected
  console.log(ok ? '\nok: all three ways produced the same bytes; the pool closed its workers and removed its segment' : `\nFAILED: checksums differ (a ${expected}, b ${bSum}, c ${cSum})`)
  return ok ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error(err)
    process.exitCode = 1
  },
)
