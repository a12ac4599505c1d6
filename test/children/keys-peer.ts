// Takes the Map and Set the parent sent by reference on channel "keys" (live views of
// its records), looks up Date and tuple keys with values built here (other objects,
// same values), adds its own keys, reports what it found over the fork channel and
// sends both back by reference on channel "back".
import { SharedMemory, frozen, MappedMap, MappedSet } from 'interprocess-objects'

const shm = SharedMemory.open({ name: process.argv[2]! })
shm.waitForMessageSync({ channel: 'keys', timeoutMs: 10_000 })
const seen = shm.access((tx) => {
  const { map, set } = tx.takeMessage<{ map: MappedMap<unknown, string>; set: MappedSet<unknown> }>({ channel: 'keys' })
  const found = {
    live: map instanceof MappedMap && set instanceof MappedSet,
    date: map.get(new Date(Date.UTC(2024, 0, 2))),
    tuple: map.get(Object.freeze(['key', 2])),
    helperTuple: map.get(frozen(['key', 2])),
    mixed: map.get(Object.freeze(['at', new Date(0), 7n])),
    nested: map.get(Object.freeze([Object.freeze([1, 2]), 'x'])),
    negativeZero: map.get(Object.freeze([0])),
    setTuple: set.has(Object.freeze([1, 'a'])),
    setDate: set.has(new Date(86_400_000)),
    missing: map.get(Object.freeze(['key', 3])),
    keys: [...map.keys()].map((k) => (k instanceof Date ? { date: k.getTime() } : Array.isArray(k) ? { tuple: Object.isFrozen(k) } : k)),
  }
  map.set(new Date(1_000), 'child date')
  map.set(Object.freeze(['child', 1]), 'child tuple')
  set.add(Object.freeze(['child', new Date(5)]))
  tx.putMessage({ map, set }, { channel: 'back' })
  return found
})
process.send!(seen)
shm.close()
