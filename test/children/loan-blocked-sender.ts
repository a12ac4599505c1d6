// Fills channel "bulk" (made with capacity 2) with two loans, then sends one more
// message — a loan inside a copied value too long for the ring, so its frame goes into
// a loan pool array too — which waits for room until this process is killed.
import { SharedMemory } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
const ch = shm.channel<unknown>('bulk')
for (let k = 0; k < 2; k++) ch.send(ch.loan(1000).fill(k + 1))
process.send!('full', () => {
  ch.send({ loan: ch.loan(2000).fill(9), copied: new Uint8Array(500).fill(3) })
})
