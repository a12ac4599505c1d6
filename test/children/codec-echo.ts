// Takes every message from channel "in", copies it out and sends the copy back
// through channel "out" until it takes the string 'stop'.
import { SharedMemory, registerClass } from 'interprocess-objects'
import { Point } from './shared-classes'

registerClass(Point)
const shm = SharedMemory.open({ name: process.argv[2]! })
for (;;) {
  shm.waitForMessageSync({ channel: 'in', timeoutMs: 20_000 })
  const stop = shm.access((tx) => {
    const value = tx.takeMessage({ channel: 'in' })
    if (value === 'stop') return true
    const copy = tx.copy(value)
    tx.destroy(value)
    tx.putMessage(copy, { channel: 'out' })
    return false
  })
  if (stop) break
}
shm.close()
