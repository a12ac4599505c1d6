// Runs in a worker_thread (see test/turn-recovery.test.ts). "hold": takes the turn, puts a
// message, says 'holding' and loops forever inside the turn until the thread is
// terminated. "wait": waits for the turn with accessAsync (becoming the heir) and says
// 'waiting'.
import { parentPort, workerData } from 'node:worker_threads'
import { SharedMemory } from 'interprocess-objects'

const { name, how } = workerData as { name: string; how: 'hold' | 'wait' }
const shm = SharedMemory.open({ name })
if (how === 'hold') {
  shm.access((tx) => {
    tx.putMessage({ from: 'worker', payload: 'x'.repeat(1000) }, { channel: 'worker' })
    parentPort!.postMessage('holding')
    const spin = new Int32Array(new SharedArrayBuffer(4))
    for (;;) Atomics.add(spin, 0, 1) // a long loop inside the turn: only terminate() ends it
  })
} else {
  parentPort!.postMessage('waiting')
  void shm.accessAsync(() => parentPort!.postMessage('took the turn'))
}
