// After `ms` milliseconds, puts `value` on `channel`.
import { SharedMemory } from 'interprocess-objects'

const [name, channel, msArg, value] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
setTimeout(() => {
  shm.access((tx) => tx.putMessage(value, { channel }))
  shm.close()
}, Number(msArg))
