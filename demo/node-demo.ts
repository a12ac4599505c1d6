// interprocess-objects demo (plain Node): one process creates a shared segment, a
// second process fills it with a million doubles, and the first reads them where
// they lie. The fork IPC channel carries only a small "done" note.
//
//   npm run demo
//
// It uses the raw segment bytes (`shm.bytes`/`shm.buffer`), the layer that works
// today. The next versions move the data through `shm.access(tx => tx.put(…))`
// and run the child as an Electron utility process.
import { fork } from 'node:child_process'
import * as path from 'node:path'
import { SharedMemory } from 'interprocess-objects'
import { checksum, wave } from './checksum'

const COUNT = 1_000_000
/** Where the values go: past the segment header. Nothing else uses this segment's heap. */
const DATA_OFFSET = 64 * 1024

interface ChildReport {
  pid: number
  offset: number
  count: number
  writeMs: number
  checksum: string
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const ms = (t: number) => `${t.toFixed(1)} ms`

async function main(): Promise<number> {
  const name = `demo-${process.pid}`
  const t0 = performance.now()
  const shm = SharedMemory.create({ name, size: DATA_OFFSET + COUNT * 8 })
  try {
    console.log(`parent ${process.pid}: created segment "${name}", ${mib(shm.size)} (${shm.size} bytes) in ${ms(performance.now() - t0)}`)

    const t1 = performance.now()
    const child = fork(path.join(__dirname, 'node-demo-child.ts'), [name, String(DATA_OFFSET), String(COUNT)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')))
    const report = await new Promise<ChildReport>((resolve, reject) => {
      child.once('message', (m) => resolve(m as ChildReport))
      void exited.then((code) => reject(new Error(`the child exited (${code}) without reporting`)))
    })
    const roundTripMs = performance.now() - t1
    console.log(`child  ${report.pid}: wrote ${report.count.toLocaleString('en-US')} doubles (${mib(report.count * 8)}) into the segment in ${ms(report.writeMs)}, checksum ${report.checksum}`)

    const t2 = performance.now()
    const values = new Float64Array(shm.buffer, shm.bytes.byteOffset + report.offset, report.count)
    const seen = checksum(values)
    const readMs = performance.now() - t2
    let worst = 0
    for (let i = 0; i < values.length; i += 997) worst = Math.max(worst, Math.abs(values[i]! - wave(i)))
    console.log(`parent ${process.pid}: read them in place (no copy) and checksummed in ${ms(readMs)}, checksum ${seen}`)
    console.log(`        values[0..3] = ${Array.from(values.subarray(0, 4), (v) => v.toFixed(6)).join(', ')}; largest difference from wave(i) on a sample: ${worst}`)
    console.log(`        fork + child start + write + report took ${ms(roundTripMs)} (most of it starting Node and tsx in the child)`)

    const code = await exited
    const ok = seen === report.checksum && worst === 0 && code === 0
    console.log(ok ? 'ok: both processes saw the same bytes; closing the segment removes its name' : `FAILED: checksums ${seen} vs ${report.checksum}, child exit ${code}`)
    return ok ? 0 : 1
  } finally {
    shm.close()
  }
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
