// Allocates and frees blocks in turns, as fast as it can, until a message on channel
// "churn-stop" (or 20 s): the allocator splits and merges free blocks all over the heap,
// next to records other processes read outside turns. Reports { rounds }.
//   alloc-churn.ts <segment>
import { SharedMemory } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
const stop = shm.channel<boolean>('churn-stop')
process.send!('ready')
const until = Date.now() + 20_000
let rounds = 0
while (stop.tryReceive() === undefined && Date.now() < until) {
  shm.access((tx) => {
    const made = [1, 5, 17, 40, 3, 90].map((n) => tx.put(new Float64Array(n + (rounds % 7))))
    for (const v of made) tx.destroy(v)
  })
  rounds++
}
process.send!({ rounds }, () => {
  shm.close()
  process.exit(0)
})
