// Loans, long copied frames and small messages from several processes at once, on
// channel "traffic" (test/channel.test.ts, "loans and long frames across processes").
//   loan-traffic.ts <segment> send <p> <count>      sends message i of producer p, i = 0 … count − 1
//   loan-traffic.ts <segment> receive <per> <mode>  receives until a {stop} (mode sync | async),
//       checks every byte, marks tally[p * per + i], releases each loan, reports { taken, bad }
// Message i is, by i % 3: a loan of the channel, a Uint8Array copied into a frame too
// long for the ring (a loan pool array), or a small object; sizes vary with p and i.
import { SharedMemory } from 'interprocess-objects'

type Message = { p: number; i: number; loan?: Uint8Array; copy?: Uint8Array } | { stop: true }

const [name, role, arg1, arg2] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<Message>('traffic', { capacity: 64 })

const sizeOf = (p: number, i: number): number => 4000 + ((p * 7919 + i * 104_729) % 60_000)
const byteOf = (p: number, i: number): number => (p * 31 + i * 7) & 0xff

if (role === 'send') {
  const p = Number(arg1)
  for (let i = 0; i < Number(arg2); i++) {
    if (i % 3 === 0) {
      const loan = ch.loan(sizeOf(p, i))
      loan.fill(byteOf(p, i))
      ch.send({ p, i, loan })
    } else if (i % 3 === 1) ch.send({ p, i, copy: new Uint8Array(sizeOf(p, i)).fill(byteOf(p, i)) })
    else ch.send({ p, i })
  }
  ch.close()
  shm.close()
} else {
  const per = Number(arg1)
  const tally = shm.access((tx) => tx.takeMessage<Uint8Array>({ channel: 'tally' }))
  process.send!('ready')
  let taken = 0
  let bad = 0
  const count = (m: Message): boolean => {
    if ('stop' in m) return false
    const bytes = m.loan ?? m.copy
    if (bytes !== undefined) {
      const want = byteOf(m.p, m.i)
      let ok = bytes.length === sizeOf(m.p, m.i)
      for (let k = 0; k < bytes.length && ok; k++) ok = bytes[k] === want
      if (!ok) bad++
      if (m.loan !== undefined) ch.release(m.loan)
    }
    Atomics.add(tally, m.p * per + m.i, 1)
    taken++
    return true
  }
  const done = (): void => {
    process.send!({ taken, bad })
    ch.close()
    shm.close()
  }
  if (arg2 === 'async') {
    const loop = (): Promise<void> => ch.receive().then((m) => (count(m) ? loop() : done()))
    void loop()
  } else {
    while (count(ch.receiveSync()));
    done()
  }
}
