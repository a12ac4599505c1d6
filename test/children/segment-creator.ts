// Creates a segment and exits without closing it: the exit hook must remove the
// name. "exit" leaves through process.exit(), "natural" lets the event loop end.
import { SharedMemory } from 'interprocess-objects'

const [name, how] = process.argv.slice(2)
const shm = SharedMemory.create({ name: name!, size: 64 * 1024 })
shm.bytes[shm.size - 1] = 42
process.send!({ pid: process.pid, size: shm.size }, () => {
  if (how === 'exit') process.exit(0)
  process.disconnect()
})
