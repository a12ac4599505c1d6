// Mutates the heap in long turns until the parent SIGKILLs it: messages sent and
// taken on several channels (small ones inline in the ring, larger ones in Frame
// records, some carrying a value of the segment by reference), values put and
// destroyed, and a shared object (queued by reference on channel "state", so the heap
// check walks it) whose array, map and string are rewritten. Almost all of its time is
// spent inside turns, so the kill lands in the middle of allocator, message and
// container updates.
import { SharedMemory, ShmError, type Turn } from 'interprocess-objects'

interface State {
  list: Array<number | string>
  map: Map<number, string>
  text: string
  rounds: number
}

const [name, seedArg] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })

let seed = Number(seedArg) >>> 0
function rnd(): number {
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (n: number): number => Math.floor(rnd() * n)
const channels = ['m0', 'm1', 'm2']

// Keep the state queued (shared: the message and this process each hold a reference).
const state = shm.access((tx) => {
  const s = tx.takeMessage<State>({ channel: 'state' })
  tx.putMessage(s, { channel: 'state' })
  return s
})
const kept: object[] = []

interface Message {
  i: number
  s?: string
  a?: unknown[]
  /** A value of the segment, sent by reference: whoever takes the message owns it. */
  kept?: object
}

/** Takes the oldest message of `channel` and frees what it owns. */
function take(tx: Turn, channel: string): void {
  const m = tx.takeMessage<Message>({ channel })
  if (m.kept !== undefined) tx.destroy(m.kept)
}

/** Takes every message of `channel` that is ready. */
function drain(tx: Turn, channel: string): void {
  try {
    while (tx.hasMessages({ channel })) take(tx, channel)
  } catch (err) {
    // The oldest position was claimed by a sender killed before it wrote it: given up
    // on by a receiver that finds it stalled for ring.STUCK_MS.
    if (!(err instanceof ShmError) || err.code !== 'ERR_NO_MESSAGES') throw err
  }
}

function step(tx: Turn, i: number): void {
  const r = rnd()
  if (r < 0.2) {
    const channel = channels[int(channels.length)]!
    // Up to 300 characters: most frames outgrow a ring slot and go into a Frame record.
    if (tx.messageCount({ channel }) < 40) tx.putMessage({ i, s: 'x'.repeat(int(300)), a: [i, 'y', [i]] }, { channel })
    else take(tx, channel)
  } else if (r < 0.3) {
    const channel = channels[int(channels.length)]!
    if (tx.hasMessages({ channel })) take(tx, channel)
  } else if (r < 0.38) {
    const channel = channels[int(channels.length)]!
    // By reference: the message retains the record, this process keeps its own reference.
    if (kept.length > 0 && tx.messageCount({ channel }) < 40) tx.putMessage({ i, kept: kept[int(kept.length)] }, { channel })
  } else if (r < 0.5) {
    if (kept.length < 60) kept.push(tx.put(rnd() < 0.5 ? new Float64Array(int(200)) : { k: i, m: new Map([[i, 'v'.repeat(int(100))]]) }))
    else tx.destroy(kept.splice(int(kept.length), 1)[0])
  } else if (r < 0.6) {
    if (kept.length > 0) tx.destroy(kept.splice(int(kept.length), 1)[0])
  } else if (r < 0.75) {
    if (state.list.length < 300) state.list.push(rnd() < 0.5 ? i : 'z'.repeat(int(60)))
    else for (let k = 0; k < 150; k++) state.list.pop()
  } else if (r < 0.9) {
    const key = int(200)
    if (state.map.has(key)) state.map.delete(key)
    else state.map.set(key, 'w'.repeat(int(120)))
  } else {
    state.text = 't'.repeat(int(500))
    state.rounds += 1
  }
}

let turns = 0
for (;;) {
  shm.access((tx) => {
    for (let i = 0; i < 60; i++) {
      try {
        step(tx, i)
      } catch (err) {
        if (!(err instanceof ShmError)) throw err
        // Nothing was changed by the failed step. The ring is full: a slot stays held
        // by a receiver killed mid-receive until a sender finds it stalled for
        // ring.STUCK_MS (a turn cannot wait that long). No message ready: a position
        // a killed sender claimed stays pending as long.
        if (err.code === 'ERR_CHANNEL_FULL' || err.code === 'ERR_NO_MESSAGES') continue
        if (err.code !== 'ERR_SHM_FULL') throw err
        // Make room.
        for (const v of kept.splice(0)) tx.destroy(v)
        for (const channel of channels) drain(tx, channel)
      }
    }
  })
  if (turns++ === 0) process.send!('running')
}
