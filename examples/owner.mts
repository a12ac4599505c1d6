// Process A of the README example: creates the segment, puts a Map in it, hands it to
// the worker by reference, and waits for the worker's answer.
//
//   npx tsx examples/owner.mts          # in one terminal (any order)
//   npx tsx examples/worker.mts         # in another
//
// Both take an optional segment name (default 'readme-example').
import { SharedMemory } from 'interprocess-objects'

const name = process.argv[2] ?? 'readme-example'

// `using`: the segment is closed — and, as this process created it, its name removed — when
// the block ends, also on an exception. The same for the channel handles.
using shm = SharedMemory.create({ name, size: 1 << 20 })
using toWorker = shm.channel('worker')
using fromWorker = shm.channel<string>('owner')

// A live Map in shared memory, and a message that shares it (a reference, not a copy).
const scores = shm.access((tx) => tx.put(new Map([['bob', 1]])))
toWorker.send(scores)
console.log('owner: sent the scores; waiting for the worker')

// Sleeps (~0% CPU) until the worker's answer comes; it arrives as a plain copy.
const done = await fromWorker.receive({ timeoutMs: 30_000 })
console.log(`owner: the worker says "${done}"`)
const bob = shm.access((tx) => {
  const value = scores.get('bob')
  tx.destroy(scores) // the worker dropped its reference; this frees the Map
  return value
})
console.log(`owner: bob = ${bob}`)

// A channel is freed when its last handle closes while it is empty (the worker closed
// its handles in the turn it answered in). What is left is the segment's own bookkeeping
// (with the channel directory's table, which stays once made).
toWorker.close()
fromWorker.close()
console.log(`owner: ${shm.stats().used} bytes in use: the Map, the messages and both channels are freed`)
