// Takes the shared counter from channel "counter" and increments it `times` times,
// one turn each, racing the other counter processes.
import { SharedMemory } from 'interprocess-objects'

const [name, timesArg, mode] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
shm.waitForMessageSync({ channel: 'counter', timeoutMs: 10_000 })
const counter = shm.access((tx) => tx.takeMessage<{ n: number }>({ channel: 'counter' }))
const wait = mode === 'low-latency' ? 'low-latency' : 'cpu-friendly'
for (let i = 0; i < Number(timesArg); i++) {
  shm.access(() => {
    counter.n += 1
  }, { wait })
}
shm.close()
