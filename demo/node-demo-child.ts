// The demo's second process: opens the segment the parent created, tabulates a
// function straight into it (no copy, no message carrying the data), and tells
// the parent where the values are and their checksum.
import { SharedMemory } from 'interprocess-objects'
import { checksum, wave } from './checksum'

const [name, offsetArg, countArg] = process.argv.slice(2)
const offset = Number(offsetArg)
const count = Number(countArg)

const shm = SharedMemory.open({ name: name! })
const started = performance.now()
// A Float64Array over the shared pages: every store lands in the segment itself.
const values = new Float64Array(shm.buffer, shm.bytes.byteOffset + offset, count)
for (let i = 0; i < count; i++) values[i] = wave(i)
const writeMs = performance.now() - started
const sum = checksum(values)
shm.close()
process.send!({ pid: process.pid, offset, count, writeMs, checksum: sum }, () => process.disconnect())
