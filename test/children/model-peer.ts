// The second process of test/model.test.ts. Commands over the fork IPC channel (JSON):
//   { cmd: 'open', name }  opens the segment and takes the root view from channel "model-root"
//   { cmd: 'op', op }      applies the operation to the shared root in its own turn, answers the StepResult
//   { cmd: 'close' }       destroys its reference to the root and closes the segment
// Every command is answered with { ok: … } or { error: stack }.
import { SharedMemory } from 'interprocess-objects'
import { runStep, type Op, type Root } from './model-ops'

type Command = { cmd: 'open'; name: string } | { cmd: 'op'; op: Op } | { cmd: 'close' }

let shm: SharedMemory | undefined
let root: Root | undefined

function handle(m: Command): unknown {
  switch (m.cmd) {
    case 'open':
      shm = SharedMemory.open({ name: m.name })
      root = shm.access((tx) => tx.takeMessage<Root>({ channel: 'model-root' }), { timeoutMs: 10_000 })
      return true
    case 'op': {
      const r = root!
      return shm!.access((tx) => runStep(r, m.op, (v) => tx.copy(v)), { timeoutMs: 10_000 })
    }
    case 'close': {
      const s = shm
      const r = root
      shm = undefined
      root = undefined
      if (s === undefined) return true
      try {
        if (r !== undefined) s.access((tx) => tx.destroy(r), { timeoutMs: 10_000 })
      } finally {
        s.close()
      }
      return true
    }
  }
}

process.on('message', (m: Command) => {
  let reply: unknown
  try {
    reply = { ok: handle(m) }
  } catch (err) {
    reply = { error: err instanceof Error ? `${err.stack}${'code' in err ? ` (${String(err.code)})` : ''}` : String(err) }
  }
  process.send!(reply)
})
process.on('disconnect', () => process.exit(0))
process.send!({ ok: 'ready' })
