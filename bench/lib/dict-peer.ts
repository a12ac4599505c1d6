// The far side of bench/shared-dict.ts: on each request, increments each of the
// player's 9 fields `passes` times in one turn (or, for "ipc", on the copy that
// came in the message) and answers.
//   dict-peer.ts struct|object|map <segment>     the record is shared (received by reference); requests are channel messages
//   dict-peer.ts ipc                             the record travels in fork IPC messages
import { SharedMemory, type MappedMap } from 'interprocess-objects'
import { incrementLocal, incrementMap, incrementObject, incrementStruct, type PlayerObject, type PlayerView, type RecordKind } from './dict-common'

const [kind, name] = process.argv.slice(2) as [RecordKind | 'ipc', string | undefined]
const STALL_MS = 30_000

if (kind === 'ipc') {
  process.on('message', (m: { record?: PlayerObject; passes?: number }) => {
    if (m.record === undefined) return process.disconnect()
    incrementLocal(m.record, m.passes!)
    process.send!({ record: m.record })
  })
  process.send!('ready')
} else {
  const shm = SharedMemory.open({ name: name! })
  const req = shm.channel<number>('req')
  const res = shm.channel<number>('res')
  // The record came by reference: the live view, owned by this process from now on.
  const record = shm.channel<unknown>('record').receiveSync({ timeoutMs: STALL_MS })
  const increment =
    kind === 'struct'
      ? (passes: number) => incrementStruct(record as PlayerView, passes)
      : kind === 'object'
        ? (passes: number) => incrementObject(record as PlayerObject, passes)
        : (passes: number) => incrementMap(record as MappedMap<string, number>, passes)
  process.send!('ready')
  const waitOptions = { timeoutMs: STALL_MS }
  for (;;) {
    const passes = req.receiveSync(waitOptions)
    if (passes < 0) break
    shm.access(() => increment(passes))
    res.send(passes)
  }
  shm.access((tx) => tx.destroy(record))
  shm.close()
  process.send!('done', () => process.disconnect())
}
