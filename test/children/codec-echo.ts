// Takes every message from channel "in" and sends it back through channel "out" until
// it takes the string 'stop'. Messages are copies: a copy goes back as it came. A value
// its sender passed by reference (a tx.put result) arrives as a live view this process
// owns: it goes back as a plain copy (tx.copy reads the records here), and the view is
// destroyed. With the argument 'report', whether each message was such a view is also
// sent, on channel "kind".
import { SharedMemory, registerClass } from 'interprocess-objects'
import { Point } from './shared-classes'

registerClass(Point)
const shm = SharedMemory.open({ name: process.argv[2]! })
const report = process.argv[3] === 'report'
for (;;) {
  shm.waitForMessageSync({ channel: 'in', timeoutMs: 20_000 })
  const stop = shm.access((tx) => {
    const value = tx.takeMessage({ channel: 'in' })
    if (value === 'stop') return true
    const copy = tx.copy(value)
    const mapped = !Object.is(copy, value)
    if (mapped) tx.destroy(value)
    if (report) tx.putMessage(mapped, { channel: 'kind' })
    tx.putMessage(copy, { channel: 'out' })
    return false
  })
  if (stop) break
}
shm.close()
