// Fills channel "refs" (made with capacity 2) with two small messages, then sends one
// that carries a value of the segment by reference and is too long for the ring (so
// its frame goes into a Frame record): that send waits for room until this process is
// killed.
import { SharedMemory } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
const ch = shm.channel<unknown>('refs')
ch.send(1)
ch.send(2)
const value = shm.access((tx) => tx.put({ big: 'x'.repeat(3000) }))
process.send!('full', () => {
  ch.send({ value, pad: 'y'.repeat(2000) })
})
