// Process B of the README example (any number of them can run): opens the segment —
// waiting for process A to create it — takes the Map A sent, updates it in place and
// answers. See owner.mts.
import { setTimeout as sleep } from 'node:timers/promises'
import { SharedMemory, ShmError } from 'interprocess-objects'

const name = process.argv[2] ?? 'readme-example'

/** Opens `name`, retrying while it does not exist yet (process A may start later). */
async function openWhenCreated(timeoutMs: number): Promise<SharedMemory> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return SharedMemory.open({ name })
    } catch (err) {
      if (!(err instanceof ShmError && err.code === 'ERR_SHM_NOT_FOUND') || Date.now() > deadline) throw err
      await sleep(50)
    }
  }
}

using peer = await openWhenCreated(30_000)
using inbox = peer.channel<Map<string, number>>('worker')
using replies = peer.channel<string>('owner')
const scores = await inbox.receive({ timeoutMs: 30_000 }) // a live view of A's Map, no copy
peer.access((tx) => {
  scores.set('bob', scores.get('bob')! + 1) // writes go straight to shared memory
  tx.destroy(scores) // drop this process's reference (the owner still holds the Map)
  replies.send('updated bob') // a copy
  // Done with both channels: closed in this turn, so by A's next turn this process holds
  // nothing (`using` would close them too, a moment later).
  inbox.close()
  replies.close()
})
console.log('worker: updated the scores')
