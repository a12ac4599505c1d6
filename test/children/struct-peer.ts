// Opens a segment, uses the same Player struct as test/struct.test.ts and changes
// fields on request, so the parent can check that both processes see the same bytes.
import { SharedMemory, StructArray } from 'interprocess-objects'
import { Player } from './struct-schema'

const [name, viewOffset, arrayOffset, arrayLength] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const p = Player.view(shm.bytes, Number(viewOffset))
const rows = new StructArray(Player, shm.bytes, Number(arrayOffset), Number(arrayLength))

type Request = { op: 'increment'; times: number } | { op: 'report' } | { op: 'exit' }

process.send!({ fingerprint: Player.fingerprint, hp: p.hp, name: p.name })
process.on('message', (m: Request) => {
  if (m.op === 'increment') {
    for (let i = 0; i < m.times; i++) {
      p.id += 1
      p.hp += 1
      p.score += 0.5
      p.big += 1n
      p.pos.x += 1
      p.history[2] += 1
      for (const row of rows) row.hp += 1
    }
    p.name = 'child'
    rows.at(3).name = 'row 3'
    process.send!({ done: 'increment' })
  } else if (m.op === 'report') {
    process.send!({ hp: p.hp })
  } else {
    shm.close()
    process.disconnect()
  }
})
