// Puts `count` messages {writer, seq, pad} on channel "inbox", up to 20 per turn. The
// pad makes some frames too large for a ring slot (they go into Frame records). When
// the ring is full, tx.putMessage throws ERR_CHANNEL_FULL and sends nothing: the turn
// ends and the same message goes again in a later turn. Reports how often that happened.
import { SharedMemory, ShmError } from 'interprocess-objects'

const [name, writerArg, countArg] = process.argv.slice(2)
const writer = Number(writerArg)
const count = Number(countArg)
const shm = SharedMemory.open({ name: name! })
const pause = new Int32Array(new SharedArrayBuffer(4))
let fulls = 0
for (let seq = 0; seq < count; ) {
  const full = shm.access((tx) => {
    for (let k = 0; k < 20 && seq < count; k++, seq++) {
      try {
        tx.putMessage({ writer, seq, pad: 'x'.repeat((seq % 10) * 20) }, { channel: 'inbox' })
      } catch (err) {
        if (!(err instanceof ShmError) || err.code !== 'ERR_CHANNEL_FULL') throw err
        return true
      }
    }
    return false
  })
  if (full) {
    fulls++
    Atomics.wait(pause, 0, 0, 1) // let the reader drain the ring
  }
}
process.send!({ fulls })
shm.close()
