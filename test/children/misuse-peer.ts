// The second process of test/misuse.test.ts: opens the segment it is told to, runs the
// op descriptors it is sent (test/helpers/misuse-exec.ts) and answers with the results.
import { SharedMemory } from 'interprocess-objects'
import { Executor, type Action } from '../helpers/misuse-exec'

type Request =
  | { type: 'open'; name: string }
  | { type: 'channels'; channels: string[] }
  | { type: 'turn'; actions: Action[]; outside: boolean }
  | { type: 'cleanup'; owned: number[]; channels: string[] }
  | { type: 'used' }
  | { type: 'allocations' }
  | { type: 'collect' }
  | { type: 'check' }
  | { type: 'close' }

const ex = new Executor()
process.on('message', (m: Request) => {
  if (m.type === 'collect') {
    // Drops every view, then collects a few times: held records go back (core/view_holds.ts).
    ex.dropViews()
    void (async () => {
      for (let round = 0; round < 4; round++) {
        ;(globalThis as { gc?: () => void }).gc!()
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      process.send!({ ok: true })
    })()
    return
  }
  let reply: unknown
  try {
    switch (m.type) {
      case 'open':
        ex.shm?.close()
        ex.attach(SharedMemory.open({ name: m.name }))
        reply = { ok: true }
        break
      case 'channels':
        ex.openChannels(m.channels)
        reply = { ok: true }
        break
      case 'turn':
        reply = ex.turn(m.actions, m.outside)
        break
      case 'cleanup':
        reply = ex.cleanup(m.owned, m.channels)
        break
      case 'used':
        reply = ex.used()
        break
      case 'allocations':
        reply = ex.allocations()
        break
      case 'check':
        reply = ex.check()
        break
      case 'close':
        ex.shm?.close()
        reply = ex.afterClose()
        ex.shm = undefined
        break
    }
  } catch (err) {
    reply = { fatal: `${(err as Error).name}: ${(err as Error).message}` }
  }
  process.send!(reply)
})
process.on('disconnect', () => process.exit(0))
process.send!('ready')
