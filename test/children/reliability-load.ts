// One of the load peers. Sends `n` messages {p, s} spread over the load channels with
// channel.trySend (every 8th padded so that its frame is a Frame record, every 64th
// carrying a value of the segment by reference), and receives from every load channel
// with `await channel.receive()`, competing with the other peers. A shared counter
// (a live record every peer got by reference on channel "ctl") counts the messages
// taken; the peer that takes the last one sends each peer's receive loops a 'stop'.
// Reports what it received as one byte per (peer, sequence number).
import { SharedMemory } from 'interprocess-objects'

interface Load {
  p: number
  s: number
  pad?: string
  ref?: Int32Array
}

const [name, indexArg, nArg, peersArg, channelsArg] = process.argv.slice(2)
const index = Number(indexArg)
const n = Number(nArg)
const peers = Number(peersArg)
const total = n * peers
const BATCH = 16

const shm = SharedMemory.open({ name: name! })
const chans = Array.from({ length: Number(channelsArg) }, (_, c) => shm.channel<Load | 'stop'>(`load-${c}`))
const received = new Uint8Array(total)
let sent = 0
let taken = 0
let full = 0
let bad = 0
let pending = 0
let flushScheduled = false

const yieldLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function main(): Promise<void> {
  const ctlChannel = shm.channel<{ taken: number }>('ctl')
  const ctl = await ctlChannel.receive({ timeoutMs: 30_000 })
  ctlChannel.close()

  /** Adds what was taken since the last flush to the shared counter; the last taker stops everyone. */
  const flush = (): void => {
    flushScheduled = false
    if (pending === 0) return
    const add = pending
    pending = 0
    const last = shm.access(() => {
      ctl.taken += add
      return ctl.taken === total
    })
    if (last) for (const ch of chans) for (let p = 0; p < peers; p++) ch.send('stop')
  }

  const receiveLoop = async (ch: (typeof chans)[number]): Promise<void> => {
    for (;;) {
      const m = await ch.receive()
      if (m === 'stop') return
      if (m.ref !== undefined) {
        const ref = m.ref
        shm.access((tx) => {
          if (ref[0] !== m.p || ref[1] !== m.s) bad++
          tx.destroy(ref)
        })
      }
      if ((m.s % 8 === 0) !== (m.pad?.length === 120)) bad++
      const at = m.p * n + m.s
      if (received[at]! < 255) received[at]! += 1
      taken++
      pending++
      if (!flushScheduled) {
        flushScheduled = true
        setImmediate(flush)
      }
    }
  }
  const receiving = Promise.all(chans.map(receiveLoop))

  while (sent < n) {
    for (let b = 0; b < BATCH && sent < n; b++) {
      const ch = chans[(index + sent) % chans.length]!
      const s = sent
      let outcome: true | 'ERR_CHANNEL_FULL'
      if (s % 64 === 63) {
        outcome = shm.access((tx) => {
          const ref = tx.put(new Int32Array([index, s]))
          const r = ch.trySend({ p: index, s, ref })
          tx.destroy(ref) // the message holds its own reference
          return r
        })
      } else {
        outcome = ch.trySend(s % 8 === 0 ? { p: index, s, pad: 'x'.repeat(120) } : { p: index, s })
      }
      if (outcome !== true) {
        full++
        break // nothing was sent: the receivers of this event loop run first
      }
      sent++
    }
    await yieldLoop()
  }
  await receiving
  flush()
  shm.access((tx) => tx.destroy(ctl))
  for (const ch of chans) ch.close()
  shm.close()
  process.send!({ index, sent, taken, full, bad, received: Buffer.from(received).toString('base64') }, () => process.disconnect())
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
