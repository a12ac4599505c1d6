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
    case 'read-bytes':
      // Outside any turn: a raw element read, which nothing can check.
      process.send!(Array.from(bytes!))
      break
    case 'drop-bytes':
      // Nothing here reaches the TypedArray any more: collected, its record is given back.
      bytes = undefined
      root = undefined
      ;(globalThis as { gc?: () => void }).gc!()
      setTimeout(() => process.send!('dropped'), 20)
      break
    case 'read-frames':
      // Reads every TypedArray of the list the parent put (each view holds its record) and
      // drops them at once: nothing here collects garbage on its own soon.
      process.send!(
        shm.access((tx) => {
          const frames = tx.takeMessage<Float64Array[]>({ channel: 'frames' })
          let sum = 0
          for (let i = 0; i < frames.length; i++) sum += frames[i]![0]!
          tx.destroy(frames)
          return sum
        }),
      )
      break
    case 'turn':
      shm.access(() => {})
      process.send!('turned')
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
