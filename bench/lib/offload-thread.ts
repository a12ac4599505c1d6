// The worker_threads peer of bench/offload.ts.
import { parentPort } from 'node:worker_threads'
import { answer, type OffloadRequest } from './offload-handlers'

parentPort!.on('message', (m: OffloadRequest) => parentPort!.postMessage(answer(m)))
parentPort!.postMessage('ready')
