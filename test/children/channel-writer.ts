// Puts `count` messages {writer, seq} on channel "inbox", a few per turn.
import { SharedMemory } from 'interprocess-objects'

const [name, writerArg, countArg] = process.argv.slice(2)
const writer = Number(writerArg)
const count = Number(countArg)
const shm = SharedMemory.open({ name: name! })
for (let seq = 0; seq < count; ) {
  shm.access((tx) => {
    for (let k = 0; k < 7 && seq < count; k++, seq++) tx.putMessage({ writer, seq, pad: 'x'.repeat(seq % 50) }, { channel: 'inbox' })
  })
}
shm.close()
