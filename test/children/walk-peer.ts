// Takes the turn of a segment whenever asked: receives a message on channel "in",
// returns it from a turn of its own and sends it back on "out", until it receives
// 'stop'. It opens both channels once, at start: the lookups go through the channel
// directory, which a test may damage later.
import { SharedMemory } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
const input = shm.channel<unknown>('in')
const output = shm.channel<unknown>('out')
process.send!('ready')
for (;;) {
  const m = input.receiveSync({ timeoutMs: 60_000 })
  if (m === 'stop') break
  output.send(shm.access(() => m))
}
shm.close()
