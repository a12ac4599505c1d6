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
// the block ends, also on an exception.
using shm = SharedMemory.create({ name, size: 1 << 20 })
const usedBefore = shm.stats().used

// A live Map in shared memory, and a message that shares it (a reference, not a copy).
const scores = shm.access((tx) => {
  const m = tx.put(new Map([['bob', 1]]))
  tx.putMessage(m, { channel: 'worker' })
  return m
})
console.log('owner: sent the scores; waiting for the worker')

// Sleeps on a futex (~0% CPU) until the worker answers on the 'owner' channel.
await shm.waitForMessage({ channel: 'owner', timeoutMs: 30_000 })
const bob = shm.access((tx) => {
  const done = tx.takeMessage<string>({ channel: 'owner', copy: true }) // a plain copy: nothing to free
  const value = scores.get('bob')
  tx.destroy(scores) // the worker dropped its reference; this frees the Map
  console.log(`owner: the worker says "${done}"`)
  return value
})
console.log(`owner: bob = ${bob}`)
// What is left is the two channels' queue records; the Map and the messages are freed.
console.log(`owner: ${shm.stats().used - usedBefore} bytes in use beyond the fresh segment (the queues of channels 'worker' and 'owner')`)
