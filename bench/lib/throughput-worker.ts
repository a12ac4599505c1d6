// The consumer of bench/throughput.ts in a worker thread: checks each message and
// acknowledges it (the parent keeps WINDOW in flight).
import { parentPort } from 'node:worker_threads'
import { checkStamp } from './throughput-common'

parentPort!.on('message', (m: { seq: number; data: Uint8Array }) => {
  checkStamp(m.data, m.seq)
  parentPort!.postMessage(m.seq)
})
parentPort!.postMessage('ready')
