// Starts a wait that would never end, then lets the process finish: with
// keepAlive false it exits on its own; with "close" the close rejects the wait.
import { SharedMemory } from 'interprocess-objects'

const [name, how] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
if (how === 'unref') {
  void shm.waitForMessage({ channel: 'never', keepAlive: false })
} else {
  shm.waitForMessage({ channel: 'never' }).catch((err: { code?: string }) => process.send!(err.code))
  setTimeout(() => shm.close(), 50)
}
