// Sleeps on a futex word of the segment (synchronously, on the main thread) and
// reports how the wait ended and what the word held afterwards. With "announce"
// it first says 'opening' and reports how long SharedMemory.open took.
import { SharedMemory } from 'interprocess-objects'

const [name, offsetArg, expectedArg, timeoutArg, announce] = process.argv.slice(2)
const offset = Number(offsetArg)

function start(): void {
  const opening = performance.now()
  const shm = SharedMemory.open({ name: name!, readyTimeoutMs: 10_000 })
  const openMs = performance.now() - opening
  process.send!('waiting', () => {
    const started = performance.now()
    const result = shm.segment.wait(offset, Number(expectedArg), Number(timeoutArg))
    const elapsedMs = performance.now() - started
    const value = Atomics.load(shm.segment.words, offset >> 2)
    shm.close()
    process.send!({ result, value, elapsedMs, openMs }, () => process.disconnect())
  })
}

if (announce === 'announce') process.send!('opening', start)
else start()
