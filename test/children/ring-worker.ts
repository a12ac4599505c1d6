// A worker_threads worker: opens the segment, says 'ready', awaits one message on
// channel "to-worker" and posts it back to its parent.
import { parentPort, workerData } from 'node:worker_threads'
import { SharedMemory } from 'interprocess-objects'

const shm = SharedMemory.open({ name: workerData as string })
const ch = shm.channel('to-worker')
parentPort!.postMessage('ready')
void ch.receive().then((value) => {
  parentPort!.postMessage(value)
  ch.close()
  shm.close()
})
