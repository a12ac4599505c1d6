// Creates, opens, closes and unlinks a large segment many times, and reports RSS:
// the mapped windows must be given back, not pile up. Run with --expose-gc.
import { SharedMemory } from 'interprocess-objects'

const [name, cyclesArg, sizeArg] = process.argv.slice(2)
const cycles = Number(cyclesArg)
const size = Number(sizeArg)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')

const word = (size / 2) >> 2 // a word in the middle of the heap, away from allocator metadata
let sawWrite = 0
let sawFresh = 0
let rssAt100 = 0
const started = performance.now()
for (let i = 1; i <= cycles; i++) {
  const explicitUnlink = i % 2 === 0
  const creator = SharedMemory.create({ name: name!, size, unlinkOnExit: !explicitUnlink })
  const opener = SharedMemory.open({ name: name! })
  const mine = creator.segment.words
  const theirs = opener.segment.words
  // A fresh object: nothing from the previous cycle's segment may show through.
  if (Atomics.load(theirs, word) === 0) sawFresh++
  Atomics.store(mine, word, i)
  if (Atomics.load(theirs, word) === i) sawWrite++
  opener.close()
  creator.close()
  if (explicitUnlink) SharedMemory.unlink(name!)
  if (i % 50 === 0) gc()
  if (i === 100) rssAt100 = process.memoryUsage().rss
}
gc()
const rssEnd = process.memoryUsage().rss
process.send!({ cycles, sawWrite, sawFresh, rssAt100, rssEnd, ms: performance.now() - started }, () => process.disconnect())
