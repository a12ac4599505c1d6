// Creates a segment, queues a couple of messages, tells the parent its pid and then
// stays alive until it is killed: a SIGKILL skips the exit hook, so the segment is
// left behind under its name with a dead creator (a stale segment).
import { SharedMemory } from 'interprocess-objects'

const [name, sizeArg] = process.argv.slice(2)
const shm = SharedMemory.create({ name: name!, size: Number(sizeArg ?? 64 * 1024) })
shm.access((tx) => {
  tx.putMessage({ from: 'creator', pid: process.pid })
  tx.putMessage('second', { channel: 'other' })
})
process.send!({ pid: process.pid, size: shm.size })
setInterval(() => {}, 1 << 30)
