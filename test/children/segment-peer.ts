// Opens a segment, writes a Float64Array into it, and after the parent answered
// (through the segment) checks the parent's values. The fork IPC channel only
// says "your turn"; every value travels through shared memory.
import { SharedMemory } from 'interprocess-objects'

const [name, offsetArg, countArg] = process.argv.slice(2)
const offset = Number(offsetArg)
const count = Number(countArg)

// The values the child writes; segment.test.ts computes the same ones.
function childValue(i: number): number {
  if (i === 0) return -0
  if (i === 1) return Number.MAX_VALUE
  if (i === 2) return Number.MIN_VALUE
  if (i === 3) return -Infinity
  return Math.sin(i) * 10 ** ((i % 600) - 300)
}

const shm = SharedMemory.open({ name: name! })
const values = new Float64Array(shm.buffer, shm.bytes.byteOffset + offset, count)
for (let i = 0; i < count; i++) values[i] = childValue(i)
process.send!('written')

process.on('message', (m) => {
  if (m !== 'answered') return
  let mismatches = 0
  for (let i = 0; i < count; i++) {
    // The parent wrote back each value negated and halved.
    if (!Object.is(values[i], -childValue(i) / 2)) mismatches++
  }
  shm.close()
  process.send!({ mismatches }, () => process.disconnect())
})
