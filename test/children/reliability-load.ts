// One of 8 load peers: puts `n` messages {p, s} spread over the load channels and,
// in the same turns, takes whatever is queued on any of them (competing with the
// other peers), until the shared counter says every message of every peer was
// taken. Reports what it received as one byte per (peer, sequence number).
import { SharedMemory, ShmError } from 'interprocess-objects'

const [name, indexArg, nArg, peersArg, channelsArg] = process.argv.slice(2)
const index = Number(indexArg)
const n = Number(nArg)
const peers = Number(peersArg)
const channels = Array.from({ length: Number(channelsArg) }, (_, c) => `load-${c}`)
const total = n * peers
const BATCH = 16

const shm = SharedMemory.open({ name: name! })
shm.waitForMessageSync({ channel: 'ctl', timeoutMs: 30_000 })
const ctl = shm.access((tx) => tx.takeMessage<{ taken: number }>({ channel: 'ctl' }))
const received = new Uint8Array(total)
const sleeper = new Int32Array(new SharedArrayBuffer(4))
let sent = 0
let taken = 0
let full = 0
let done = false
let rotate = index

while (!done) {
  let progress = false
  shm.access((tx) => {
    for (let b = 0; b < BATCH && sent < n; b++) {
      try {
        tx.putMessage({ p: index, s: sent }, { channel: channels[(index + sent) % channels.length] })
      } catch (err) {
        if (!(err instanceof ShmError) || err.code !== 'ERR_SHM_FULL') throw err
        full++
        break // nothing was written: try again in a later turn
      }
      sent++
      progress = true
    }
    for (let b = 0, tries = 0; b < BATCH && tries < channels.length; ) {
      const channel = channels[rotate++ % channels.length]!
      if (!tx.hasMessages({ channel })) {
        tries++
        continue
      }
      const m = tx.takeMessage<{ p: number; s: number }>({ channel })
      const at = m.p * n + m.s
      if (received[at]! < 255) received[at]! += 1
      tx.destroy(m)
      ctl.taken += 1
      taken++
      b++
      tries = 0
      progress = true
    }
    if (ctl.taken >= total) {
      done = true
      tx.destroy(ctl)
    }
  })
  if (!progress && !done) Atomics.wait(sleeper, 0, 0, 1)
}
shm.close()
process.send!({ index, sent, taken, full, received: Buffer.from(received).toString('base64') }, () => process.disconnect())
