import { SharedMemory } from 'interprocess-objects'
const shm = SharedMemory.create({ name: 'byref-probe-' + process.pid, size: 8 << 20 })
const other = SharedMemory.open({ name: shm.name })
const mine = shm.channel('p'), theirs = other.channel('p')
const data = shm.access((tx) => tx.put(new Float64Array(1000).fill(1)))
const N = 200000
let best = Infinity
for (let r = 0; r < 5; r++) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) {
    mine.send(data)
    const v = theirs.tryReceive()
    theirs.release(v)
  }
  best = Math.min(best, Number(process.hrtime.bigint() - t) / N)
}
console.log(`by-ref send+receive+release: ${best.toFixed(0)} ns`)
shm.access((tx) => tx.destroy(data))
other.close(); shm.close()
