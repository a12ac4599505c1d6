// The "utility worker" of test/bridge.test.ts: opens the segment main created, from
// the manifest main handed it (argv[2], Grants JSON), writes struct fields, typed arrays
// and messages for the renderer, and reports what the renderer wrote back.
import { SharedMemory, StructArray } from 'interprocess-objects'
import { regionBytes, regionCounter, type Grants } from 'interprocess-objects/preload'
import { PARTICLES, Particle, SAMPLES, Stats } from './bridge-schema'

const manifest = JSON.parse(process.argv[2]!) as Grants
const seg = manifest.segments.data!
const shm = SharedMemory.open({ name: seg.name })
const stats = Stats.view(regionBytes(shm, seg.regions.stats!))
const samplesBytes = regionBytes(shm, seg.regions.samples!)
const samples = new Float32Array(samplesBytes.buffer, samplesBytes.byteOffset, SAMPLES)
const table = new StructArray(Particle, regionBytes(shm, seg.regions.table!), 0, PARTICLES)

type Request = { op: 'write' } | { op: 'report' } | { op: 'bump'; times: number } | { op: 'exit' }

process.on('message', (m: Request) => {
  if (m.op === 'write') {
    stats.frame = 7
    stats.fps = 59.5
    stats.big = -(2n ** 40n)
    stats.ok = true
    stats.name = 'child héé'
    stats.pos.x = 1.25
    stats.pos.y = -2
    stats.history.set([1, 2, 3, 4.5])
    stats.ids.set([10, 20, 30])
    for (let i = 0; i < SAMPLES; i++) samples[i] = i * 0.5
    for (let i = 0; i < PARTICLES; i++) {
      const row = table.at(i)
      row.x = i + 0.25
      row.mass = i * 10
      row.id = 100 + i
      row.alive = i % 2 === 0
      row.label = `p${i}`
    }
    Atomics.add(regionCounter(shm, seg.regions.stats!), 0, 1)
    Atomics.add(regionCounter(shm, seg.regions.samples!), 0, 1)
    shm.access((tx) => {
      tx.putMessage({ kind: 'hello', list: [1, 2, 3], nested: { a: 'b' }, when: new Date(0), big: 12n }, { channel: 'toRenderer' })
      tx.putMessage(new Float64Array([1.5, 2.5]), { channel: 'toRenderer' })
      tx.putMessage(new Map<string, number>([['a', 1]]), { channel: 'toRenderer' })
    })
    process.send!({ done: 'write' })
  } else if (m.op === 'bump') {
    for (let i = 0; i < m.times; i++) Atomics.add(regionCounter(shm, seg.regions.stats!), 0, 1)
    process.send!({ done: 'bump' })
  } else if (m.op === 'report') {
    const messages: unknown[] = []
    shm.access((tx) => {
      while (tx.hasMessages({ channel: 'fromRenderer' })) {
        const msg = tx.takeMessage({ channel: 'fromRenderer' })
        messages.push(typeof msg === 'object' && msg !== null ? tx.copy(msg) : msg)
      }
    })
    process.send!({
      stats: { frame: stats.frame, fps: stats.fps, name: stats.name, posY: stats.pos.y, history: Array.from(stats.history), big: String(stats.big) },
      rows: table.toArray().map((r) => ({ x: r.x, id: r.id, label: r.label })),
      statsCounter: Atomics.load(regionCounter(shm, seg.regions.stats!), 0),
      messages: JSON.parse(JSON.stringify(messages, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))) as unknown,
    })
  } else {
    shm.close()
    process.disconnect()
  }
})
process.send!({ ready: true })
