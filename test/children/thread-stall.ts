// A worker_threads worker that is terminated in the middle of something, to see the
// other handles of the segment get past it (core/handles.ts). workerData: { name, mode }.
//   loans    lends 3 loans of channel "bulk" and keeps them
//   views    puts two values and keeps their views (this handle holds their references)
//   send     claims a send position of channel "ring" and never publishes it
//   receive  claims the oldest message of channel "ring" and never frees its slot
// It posts 'stalled' once it holds what it holds, then waits to be terminated.
import { parentPort, workerData } from 'node:worker_threads'
import { SharedMemory } from 'interprocess-objects'
// Internal: the ring's own claim steps, to stop half-way the way a terminated thread would.
import { Ring } from '../../core/ring'
import { identityOf } from '../../core/lock'

const { name, mode } = workerData as { name: string; mode: 'loans' | 'views' | 'send' | 'receive' }
const shm = SharedMemory.open({ name })
const kept: unknown[] = []
if (mode === 'views') {
  shm.access((tx) => {
    kept.push(tx.put({ big: 'y'.repeat(2000), nested: { deeper: [1, 2, 3] } }))
    kept.push(tx.put(new Uint8Array(4096)))
  })
} else if (mode === 'loans') {
  const bulk = shm.channel<Uint8Array>('bulk')
  for (let i = 0; i < 3; i++) kept.push(bulk.loan(1000))
} else {
  const ch = shm.channel('ring', { capacity: 256 })
  // As a send or a receive of this handle does it: pid and this handle's identity.
  const ring = new Ring(shm.heap.i32, ch.ref, process.pid, identityOf(shm.segment))
  if (mode === 'send') ring.claimSend()
  else if (ring.claimReceive() < 0) throw new Error('thread-stall: nothing to receive')
}
parentPort!.postMessage('stalled')
setInterval(() => {}, 1000)
