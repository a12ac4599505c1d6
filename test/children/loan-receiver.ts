// Receives `count` loaned byte arrays on channel "bulk": reports, for each, its offset in
// the segment and the sum of its bytes, then releases it.
import { SharedMemory } from 'interprocess-objects'

const [name, countArg] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<Uint8Array>('bulk')
process.send!('ready')
const report: Array<{ offset: number; sum: number }> = []
const next = (): Promise<void> =>
  ch.receive().then((bytes) => {
    let sum = 0
    for (let i = 0; i < bytes.length; i++) sum += bytes[i]!
    report.push({ offset: bytes.byteOffset - shm.bytes.byteOffset, sum })
    ch.release(bytes)
    return report.length < Number(countArg) ? next() : undefined
  })
void next().then(() => {
  process.send!(report)
  ch.close()
  shm.close()
})
