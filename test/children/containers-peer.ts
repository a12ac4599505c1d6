// Takes the shared state object from channel "state" (sent by reference: a live view
// this process owns), mutates it through the view in its own turn, sends the view back
// by reference, destroys its own, and reports what it saw over the fork channel.
import { SharedMemory, registerClass, type MappedMap } from 'interprocess-objects'
import { Point } from './shared-classes'

registerClass(Point)
const shm = SharedMemory.open({ name: process.argv[2]! })
shm.waitForMessageSync({ channel: 'state', timeoutMs: 10_000 })
const seen = shm.access((tx) => {
  const state = tx.takeMessage<{ list: number[]; tags: Set<string>; scores: MappedMap<string, number>; point: Point; bytes: Float64Array; note: string }>({ channel: 'state' })
  const before = { list: [...state.list], tags: [...state.tags], scores: [...state.scores], norm: state.point.norm(), bytes: [...state.bytes], note: state.note }
  state.list.push(4)
  state.list[0] = 100
  state.tags.add('from-child')
  state.tags.delete('a')
  state.scores.set('bob', (state.scores.get('bob') ?? 0) + 10)
  state.scores.set('carol', 7)
  state.point.moveBy(10)
  state.bytes[1] = 42.5
  state.note = 'changed by child'
  tx.putMessage(state, { channel: 'back' }) // the same records, shared back
  tx.destroy(state) // the message holds its own reference
  return before
})
process.send!(seen)
shm.close()
