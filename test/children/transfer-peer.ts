// Another process on the same segment as test/transfer.test.ts: it reads the word the
// parent wrote, answers in the next one, and reports what its own shm.buffer is. The
// fork IPC channel carries only the report; the values travel through shared memory.
import { SharedMemory } from 'interprocess-objects'

const [name, offsetArg] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const words = new Int32Array(shm.buffer, shm.bytes.byteOffset + Number(offsetArg), 4)
const seen = Atomics.load(words, 0)
Atomics.store(words, 1, seen + 1)

let transfer = 'did not throw'
try {
  structuredClone(shm.buffer, { transfer: [shm.buffer as unknown as ArrayBuffer] })
} catch (err) {
  transfer = (err as Error).name
}

process.send!({ seen, shared: shm.buffer instanceof SharedArrayBuffer, transfer, stillSees: Atomics.load(words, 0) })
process.on('message', (m) => {
  if (m !== 'again') return
  // The parent wrote again after our first report: the mapping is live, not a copy.
  const again = Atomics.load(words, 0)
  shm.close()
  process.send!({ again }, () => process.disconnect())
})
