// The far side of bench/shared-dict.ts: on each request, increments each of the
// player's 9 fields `passes` times in one turn (or, for "ipc", on the copy that
// came in the message) and answers.
//   dict-peer.ts struct|object|map <segment>     the record is shared; requests are messages
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
  shm.waitForMessageSync({ channel: 'record', timeoutMs: STALL_MS })
  const record = shm.access((tx) => tx.takeMessage<unknown>({ channel: 'record' }))
  const increment =
    kind === 'struct'
      ? (passes: number) => incrementStruct(record as PlayerView, passes)
      : kind === 'object'
        ? (passes: number) => incrementObject(record as PlayerObject, passes)
        : (passes: number) => incrementMap(record as MappedMap<string, number>, passes)
  process.send!('ready')
  for (let stop = false; !stop; ) {
    shm.waitForMessageSync({ channel: 'req', timeoutMs: STALL_MS })
    shm.access((tx) => {
      const passes = tx.takeMessage<number>({ channel: 'req' })
      if (passes < 0) stop = true
      else {
        increment(passes)
        tx.putMessage(passes, { channel: 'res' })
      }
    })
  }
  shm.close()
  process.send!('done', () => process.disconnect())
}
