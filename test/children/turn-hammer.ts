// Takes the turn again and again (a steady stream) until the shared flag says stop
// or 15 s pass; reports how it ended.
import { SharedMemory } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
shm.waitForMessageSync({ channel: 'hammer', timeoutMs: 10_000 })
const state = shm.access((tx) => tx.takeMessage<{ stop: boolean; n: number }>({ channel: 'hammer' }))
const until = Date.now() + 15_000
let stoppedByFlag = false
while (Date.now() < until) {
  stoppedByFlag = shm.access(() => {
    for (let spin = 0; spin < 2000; spin++) state.n += 0 // a turn that takes a few microseconds
    if (state.stop) return true
    state.n++
    return false
  }, { wait: 'low-latency' })
  if (stoppedByFlag) break
}
process.send!({ stoppedByFlag })
shm.close()
