// Sleeps on a futex word of the segment (synchronously, on the main thread) and
// reports how the wait ended and what the word held afterwards.
import { SharedMemory } from '../../core'

const [name, offsetArg, expectedArg, timeoutArg] = process.argv.slice(2)
const offset = Number(offsetArg)
const shm = SharedMemory.open({ name: name! })
process.send!('waiting', () => {
  const started = performance.now()
  const result = shm.segment.wait(offset, Number(expectedArg), Number(timeoutArg))
  const elapsedMs = performance.now() - started
  const value = Atomics.load(shm.segment.words, offset >> 2)
  shm.close()
  process.send!({ result, value, elapsedMs }, () => process.disconnect())
})
