// Opens the parent's segment and works on its heap while the parent waits: checks
// the patterns the parent wrote, frees every other block, allocates new ones with
// its own patterns, and reports the new blocks and its view of the stats. The fork
// IPC channel only passes the turn and the offsets; the data travels in the segment.
import { SharedMemory } from 'interprocess-objects'
import { Allocator } from '../../core/allocator'

interface Block {
  offset: number
  size: number
  id: number
}

/** The byte the writer of block `id` puts at index `j`; allocator.test.ts uses the same. */
function patternByte(id: number, j: number): number {
  return (id * 131 + j * 7 + (j >>> 8)) & 255
}

const [name] = process.argv.slice(2)

process.once('message', (m) => {
  const { blocks, newCount } = m as { blocks: Block[]; newCount: number }
  const shm = SharedMemory.open({ name: name! })
  try {
    const bytes = shm.segment.bytes
    const allocator = new Allocator(shm.segment)
    allocator.check()
    let mismatches = 0
    let tooSmall = 0
    for (const b of blocks) {
      if (allocator.usableSize(b.offset) < b.size) tooSmall++
      for (let j = 0; j < b.size; j++) if (bytes[b.offset + j] !== patternByte(b.id, j)) mismatches++
    }
    const kept: Block[] = []
    blocks.forEach((b, i) => (i % 2 === 0 ? allocator.free(b.offset) : kept.push(b)))
    const added: Block[] = []
    for (let k = 0; k < newCount; k++) {
      const size = 1 + ((k * 977) % 3000)
      const b = { offset: allocator.alloc(size), size, id: 100_000 + k }
      for (let j = 0; j < size; j++) bytes[b.offset + j] = patternByte(b.id, j)
      added.push(b)
    }
    allocator.check()
    process.send!({ mismatches, tooSmall, kept, added, stats: allocator.stats() })
  } finally {
    shm.close()
    process.disconnect()
  }
})
process.send!('ready')
