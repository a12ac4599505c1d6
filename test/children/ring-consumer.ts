// Receives from channel "ring" until it has seen `stops` messages {stop: true}; marks each
// {p, i} in the shared tally (a mapped Uint8Array: seen[p * perProducer + i] += 1) and
// reports how many it took and whether each producer's messages came in order.
// With mode "async" it uses await receive(), else receiveSync(). With mode "stall" it claims
// one message the way a receive does, never frees it, and waits to be killed.
import { SharedMemory } from 'interprocess-objects'

const [name, perArg, modeArg] = process.argv.slice(2)
const per = Number(perArg)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<{ p: number; i: number } | { stop: true }>('ring', { capacity: 256 })
const tally = shm.access((tx) => tx.takeMessage<Uint8Array>({ channel: 'tally' }))
process.send!('ready')

if (modeArg === 'stall') {
  const { Ring } = await import('../../core/ring')
  const ring = new Ring(shm.heap.i32, ch.ref, process.pid)
  await new Promise<void>((resolve) => {
    const poll = (): void => (ring.claimReceive() >= 0 ? resolve() : void setTimeout(poll, 1))
    poll()
  })
  process.send!('stalled')
  setInterval(() => {}, 1000)
} else {
  let taken = 0
  let ordered = true
  const last = new Map<number, number>()
  for (;;) {
    const m = modeArg === 'async' ? await ch.receive() : ch.receiveSync()
    if ('stop' in m) break
    Atomics.add(tally, m.p * per + m.i, 1)
    if ((last.get(m.p) ?? -1) >= m.i) ordered = false
    last.set(m.p, m.i)
    taken++
  }
  process.send!({ taken, ordered })
  ch.close()
  shm.close()
}
