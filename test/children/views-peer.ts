// The second process of test/views.test.ts: runs the step the parent names, in its
// own turns, and answers with what it saw (error codes as { code }).
import { SharedMemory, ShmError } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
let root: Record<string, unknown> | undefined
let child: Record<string, unknown> | undefined
let bytes: Float64Array | undefined

function attempt(fn: () => unknown): unknown {
  try {
    return { ok: fn() }
  } catch (err) {
    return { code: err instanceof ShmError ? err.code : String(err) }
  }
}

process.on('message', (step: string) => {
  switch (step) {
    case 'take-root':
      // Owned by this process from here on, and never destroyed: a kill leaves it held.
      process.send!(shm.access((tx) => {
        root = tx.takeMessage<Record<string, unknown>>({ channel: 'views' })
        child = root.child as Record<string, unknown>
        bytes = root.bytes as Float64Array
        return { child: child.a, same: root.child === child, bytes: bytes[1] }
      }))
      break
    case 'read-child':
      process.send!(shm.access(() => attempt(() => child!.a)))
      break
    case 'copy-bytes':
      process.send!(shm.access((tx) => attempt(() => Array.from(tx.copy(bytes!)))))
      break
    case 'put-and-hold':
      // Puts values it never destroys, then closes: close() must drop what they hold.
      shm.access((tx) => {
        tx.put({ big: 'x'.repeat(1000), list: [1, 2, 3] })
        tx.put(new Float64Array(64))
      })
      shm.close()
      process.send!('closed')
      break
    case 'hold-and-wait':
      shm.access((tx) => {
        tx.put({ big: 'y'.repeat(2000), nested: { deeper: [1, 2, 3] } })
        tx.put(new Uint8Array(4096))
      })
      process.send!('holding')
      break
  }
})
process.send!('ready')
