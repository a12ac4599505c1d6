// Sends `count` messages {p, i} on channel "ring" (blocking while the ring is full), then exits.
// With "stall" as 4th argument it claims a slot it never publishes and waits to be killed.
import { SharedMemory } from 'interprocess-objects'
// Internal: the ring's own claim step, to stop half-way the way a killed process would.
import { Ring } from '../../core/ring'

const [name, idArg, countArg, mode] = process.argv.slice(2)
const p = Number(idArg)
const count = Number(countArg)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<{ p: number; i: number }>('ring', { capacity: 256 })
for (let i = 0; i < count; i++) ch.send({ p, i })
if (mode === 'stall') {
  // The ring's own claim step, as a send does it just before writing: then nothing.
  const ring = new Ring(shm.heap.i32, ch.ref, process.pid)
  ring.claimSend()
  process.send!('stalled')
  setInterval(() => {}, 1000)
} else {
  ch.close()
  shm.close()
}
