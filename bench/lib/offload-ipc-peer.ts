// The child_process peer of bench/offload.ts: answers each request over the fork IPC channel.
import { answer, type OffloadRequest } from './offload-handlers'

process.on('message', (m: OffloadRequest | 'stop') => {
  if (m === 'stop') process.disconnect()
  else process.send!(answer(m))
})
process.send!('ready')
