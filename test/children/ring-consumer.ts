// Receives from channel "ring" until it has seen `stops` messages {stop: true}; marks each
// {p, i} in the shared tally (a mapped Uint8Array: seen[p * perProducer + i] += 1) and
// reports how many it took and whether each producer's messages came in order.
// With mode "async" it uses await receive(), else receiveSync(). With mode "stall" it claims
// one message the way a receive does, never frees it, and waits to be killed.
import { SharedMemory } from 'interprocess-objects'
// Internal: the ring's own claim step, to stop half-way the way a killed process would.
import { Ring } from '../../core/ring'

const [name, perArg, modeArg] = process.argv.slice(2)
const per = Number(perArg)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<{ p: number; i: number } | { stop: true }>('ring', { capacity: 256 })
const tally = shm.access((tx) => tx.takeMessage<Uint8Array>({ channel: 'tally' }))
process.send!('ready')

if (modeArg === 'stall') {
  const ring = new Ring(shm.heap.i32, ch.ref, process.pid)
  const poll = (): void => {
    if (ring.claimReceive() < 0) return void setTimeout(poll, 1)
    process.send!('stalled')
    setInterval(() => {}, 1000)
  }
  poll()
} else {
  let taken = 0
  let ordered = true
  const last = new Map<number, number>()
  const count = (m: { p: number; i: number } | { stop: true }): boolean => {
    if ('stop' in m) return false
    Atomics.add(tally, m.p * per + m.i, 1)
    if ((last.get(m.p) ?? -1) >= m.i) ordered = false
    last.set(m.p, m.i)
    taken++
    return true
  }
  const done = (): void => {
    process.send!({ taken, ordered })
    ch.close()
    shm.close()
  }
  if (modeArg === 'async') {
    const loop = (): Promise<void> => ch.receive().then((m) => (count(m) ? loop() : done()))
    void loop()
  } else {
    while (count(ch.receiveSync()));
    done()
  }
}
