// A worker thread that posts every message straight back (bench/messages.ts).
import { parentPort } from 'node:worker_threads'

parentPort!.on('message', (m: unknown) => parentPort!.postMessage(m))
parentPort!.postMessage('ready')
