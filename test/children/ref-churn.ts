// Forwards byte arrays received by reference (test/channel.test.ts, "by-reference
// messages without a turn"):   ref-churn.ts <segment>
// Takes a Map (by reference, on channel "box"), then until a {stop}: receives { i, data }
// on "refs-in" (data: a Float64Array of the segment, sent by reference), checks it, on
// every other message stores it in the Map and deletes it again in a turn (its record's
// count changed in a turn while other processes change it outside turns), sends it back
// by reference on "refs-out" and releases its own reference (no turn: others hold it).
import { SharedMemory } from 'interprocess-objects'

type In = { i: number; data: Float64Array } | { stop: true }

const shm = SharedMemory.open({ name: process.argv[2]! })
const box = shm.channel<Map<string, unknown>>('box').receiveSync()
const input = shm.channel<In>('refs-in', { capacity: 64 })
const output = shm.channel<{ i: number; data: Float64Array; bad: boolean }>('refs-out', { capacity: 64 })
process.send!('ready')
const key = String(process.pid)
for (;;) {
  const m = input.receiveSync()
  if ('stop' in m) break
  const bad = m.data.length !== 16 || m.data[0] !== 42 || m.data[15] !== 42
  if (m.i % 2 === 0) {
    shm.access(() => {
      box.set(key, m.data)
      box.delete(key)
    })
  }
  output.send({ i: m.i, data: m.data, bad })
  output.release(m.data)
}
input.close()
output.close()
shm.close()
