// Receives `count` loaned byte arrays (or objects carrying one as `data`) on channel
// "bulk": reports, for each, its offset in the segment and the sum of its bytes, then
// releases it. With `keep`, it releases nothing and stays alive until it is killed.
import { SharedMemory } from 'interprocess-objects'

const [name, countArg, mode] = process.argv.slice(2)
const keep = mode === 'keep'
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<Uint8Array | { data: Uint8Array }>('bulk')
process.send!('ready')
const report: Array<{ offset: number; sum: number }> = []
const next = (): Promise<void> =>
  ch.receive().then((got) => {
    const bytes = got instanceof Uint8Array ? got : got.data
    let sum = 0
    for (let i = 0; i < bytes.length; i++) sum += bytes[i]!
    report.push({ offset: bytes.byteOffset - shm.bytes.byteOffset, sum })
    if (keep) kept.push(bytes)
    else ch.release(bytes)
    return report.length < Number(countArg) ? next() : undefined
  })
const kept: Uint8Array[] = []
void next().then(() => {
  process.send!(report)
  if (keep) {
    setInterval(() => {}, 1000)
    return
  }
  ch.close()
  shm.close()
})
