// The seed's shared-dict test, as a request/answer between two processes: this
// process asks, the other increments each of a player's 9 numeric fields in one
// turn, this process reads the 9 fields back. Shared as a struct view
// (defineStruct), a mapped plain object and a MappedMap; the same exchange
// through child_process IPC carries the record in the messages.
import type { SerializationType } from 'node:child_process'
import { SharedMemory, type MappedMap } from 'interprocess-objects'
import { FIELDS, incrementLocal, initialPlayer, Player, type PlayerObject, type PlayerView, type RecordKind } from './lib/dict-common'
import { startPeer, uniqueName } from './lib/processes'
import { valueOf, type BenchRow, type Check, type RunOptions } from './lib/scenario'
import { opsPerSec, ratio, textFigure } from './lib/stats'

export const BATCH = 1000

export const title = 'shared-dict: another process increments a 9-field player record (the seed\'s dict test)'
export const notes = [
  `per request: ask → the other process increments each field once in one turn → read the 9 fields back (9 increments per round trip).`,
  `batched: the same, with ${BATCH} passes over the 9 fields per turn (${(9 * BATCH).toLocaleString('en-US')} increments per round trip): the cost of the field access itself.`,
  'per request vs IPC = this ÷ child_process IPC (advanced), per request. batched vs plain object = this ÷ the same loop on an ordinary object in one process (the ceiling).',
  'Requests and answers are channel messages (send, receiveSync, cpu-friendly); the record itself was put in the segment once and sent by reference. The IPC rows increment the child\'s private copy, which then travels back: nothing is shared while it runs.',
]
export const about = `The seed's dict benchmark counts increments of values in a shared dictionary. Here a player record with 9 numeric fields (5 int32, 4 float64) is shared; this process sends a request, the other process increments each field in one turn and answers, and this process reads the 9 fields back (and checks them). **per request** does one increment per field per request, so it mostly measures the request/answer round trip; **batched** does ${BATCH} passes per request, so it measures what one increment of shared data costs. The record is shared three ways: a struct view (\`defineStruct\`, fields at fixed offsets), a mapped plain object (a Proxy over a shared hash table) and a \`MappedMap\`. The record is put in the segment once (\`tx.put\`) and sent to the other process by reference on a channel (it receives the live view); requests and answers are small copied channel messages (\`req.send(passes)\`, \`res.receiveSync()\`, cpu-friendly), and this process reads the fields back in a turn. child_process IPC cannot share the record: it travels in the request and the answer, and the other process increments its own copy (so its batched figure measures a private object, not sharing; its per-request figure is the comparison that means something). The seed's dict table reports increments per second of shared values; the closest column here is **batched**, which counts increments of the shared record with the cost of the request spread over 9,000 of them. "plain object, one process" is the same loop with nothing shared: the ceiling for the batched column.`

interface Measured {
  perRequest: number // increments/s
  batched: number
}

function budgets(quick: boolean): { ms: number; warmRequests: number } {
  return quick ? { ms: 400, warmRequests: 300 } : { ms: 3000, warmRequests: 3000 }
}

const sumStruct = (p: PlayerView) => p.level + p.hp + p.mp + p.strength + p.agility + p.gold + p.xp + p.x + p.y
const sumObject = (p: PlayerObject) => p.level + p.hp + p.mp + p.strength + p.agility + p.gold + p.xp + p.x + p.y
const sumMap = (m: MappedMap<string, number>) =>
  m.get('level')! + m.get('hp')! + m.get('mp')! + m.get('strength')! + m.get('agility')! + m.get('gold')! + m.get('xp')! + m.get('x')! + m.get('y')!

function initialSum(): number {
  const p = initialPlayer()
  return FIELDS.reduce((s, f) => s + p[f], 0)
}

/** Runs requests of `passes` until `ms` have passed; returns increments/s. */
function loop(ms: number, passes: number, request: (passes: number) => number, state: { total: number }): number {
  const t0 = performance.now()
  let requests = 0
  let now = t0
  do {
    const sum = request(passes)
    state.total += passes
    if (sum !== initialSum() + 9 * state.total) throw new Error(`shared-dict: read back ${sum}, expected ${initialSum() + 9 * state.total}`)
    requests++
    now = performance.now()
  } while (now - t0 < ms)
  return (requests * passes * 9) / ((now - t0) / 1e3)
}

async function overSdk(kind: RecordKind, quick: boolean): Promise<Measured> {
  const { ms, warmRequests } = budgets(quick)
  const name = uniqueName('bench-dict')
  const shm = SharedMemory.create({ name, size: 1 << 20 })
  const recordChannel = shm.channel<unknown>('record')
  const req = shm.channel<number>('req')
  const res = shm.channel<number>('res')
  const peer = startPeer('dict-peer', [kind, name])
  try {
    // The record is put in the segment and sent by reference: the peer receives the live view (and owns it).
    const record = shm.access((tx) => {
      let view: unknown
      if (kind === 'struct') {
        const local = new Uint8Array(Player.byteLength)
        Player.write(local, 0, initialPlayer())
        view = tx.put(Player.view(local))
      } else view = tx.put(kind === 'map' ? new Map(Object.entries(initialPlayer())) : initialPlayer())
      recordChannel.send(view)
      return view
    })
    if ((await peer.next()) !== 'ready') throw new Error('dict peer did not start')
    const sum =
      kind === 'struct' ? () => sumStruct(record as PlayerView) : kind === 'object' ? () => sumObject(record as PlayerObject) : () => sumMap(record as MappedMap<string, number>)
    const waitOptions = { timeoutMs: 30_000 }
    const request = (passes: number) => {
      req.send(passes)
      if (res.receiveSync(waitOptions) !== passes) throw new Error('shared-dict: wrong answer')
      return shm.access(sum)
    }
    const state = { total: 0 }
    loop(0, 1, request, state)
    for (let i = 0; i < warmRequests; i++) loop(0, 1, request, state)
    for (let i = 0; i < 20; i++) loop(0, BATCH, request, state)
    const perRequest = loop(ms, 1, request, state)
    const batched = loop(ms, BATCH, request, state)
    req.send(-1)
    if ((await peer.next()) !== 'done') throw new Error('dict peer did not finish')
    shm.access((tx) => tx.destroy(record))
    return { perRequest, batched }
  } finally {
    await peer.stop()
    recordChannel.close()
    req.close()
    res.close()
    shm.close()
  }
}

async function overIpc(serialization: SerializationType, quick: boolean): Promise<Measured> {
  const { ms, warmRequests } = budgets(quick)
  const peer = startPeer('dict-peer', ['ipc'], serialization)
  try {
    if ((await peer.next()) !== 'ready') throw new Error('dict peer did not start')
    let record = initialPlayer()
    const state = { total: 0 }
    const measure = async (budget: number, passes: number, times = Infinity): Promise<number> => {
      const t0 = performance.now()
      let requests = 0
      let now = t0
      do {
        peer.send({ record, passes })
        record = (await peer.next<{ record: PlayerObject }>()).record
        state.total += passes
        if (sumObject(record) !== initialSum() + 9 * state.total) throw new Error('shared-dict (IPC): wrong read back')
        requests++
        now = performance.now()
      } while (now - t0 < budget && requests < times)
      return (requests * passes * 9) / ((now - t0) / 1e3)
    }
    await measure(Infinity, 1, warmRequests)
    await measure(Infinity, BATCH, 20)
    const perRequest = await measure(ms, 1)
    const batched = await measure(ms, BATCH)
    peer.send({})
    return { perRequest, batched }
  } finally {
    await peer.stop()
  }
}

function local(quick: boolean): Measured {
  const { ms } = budgets(quick)
  const p = initialPlayer()
  const state = { total: 0 }
  const request = (passes: number) => {
    incrementLocal(p, passes)
    return sumObject(p)
  }
  for (let i = 0; i < 50; i++) loop(0, BATCH, request, state)
  return { perRequest: NaN, batched: loop(ms, BATCH, request, state) }
}

const IPC_BASE = 'child_process IPC (advanced)'
const STRUCT = 'struct view (defineStruct)'
const OBJECT = 'mapped plain object'
const MAP = 'MappedMap'
const LOCAL = 'plain object, one process (nothing shared)'

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const results: Array<[string, Measured, string?]> = []
  results.push([STRUCT, await overSdk('struct', opts.quick)])
  results.push([OBJECT, await overSdk('object', opts.quick)])
  results.push([MAP, await overSdk('map', opts.quick)])
  results.push([IPC_BASE, await overIpc('advanced', opts.quick), 'the record travels in both messages; batched: increments of a private copy'])
  results.push(['child_process IPC (json)', await overIpc('json', opts.quick), 'the record travels in both messages; batched: increments of a private copy'])
  results.push([LOCAL, local(opts.quick), 'the batched loop on an ordinary object'])
  const base = results.find(([name]) => name === IPC_BASE)![1]
  const ceiling = results.find(([name]) => name === LOCAL)![1]
  return results.map(([name, m, note]): BenchRow => ({
    case: name,
    figures: {
      'per request': Number.isNaN(m.perRequest) ? textFigure('') : opsPerSec(m.perRequest),
      'per request vs IPC': Number.isNaN(m.perRequest) ? textFigure('') : ratio(m.perRequest / base.perRequest),
      batched: opsPerSec(m.batched),
      'batched vs plain object': ratio(m.batched / ceiling.batched),
    },
    note,
  }))
}

export function checks(rows: BenchRow[]): Check[] {
  const m = (v: number) => `${(v / 1e6).toFixed(2)}M increments/s`
  const struct = valueOf(rows, STRUCT, 'batched')
  const map = valueOf(rows, MAP, 'batched')
  return [
    { target: 'struct view increments ≥ 10M/s (batched)', measured: `${m(struct)} (per request: ${m(valueOf(rows, STRUCT, 'per request'))})`, met: struct >= 10e6 },
    { target: 'MappedMap increments ≥ 1M/s (batched)', measured: `${m(map)} (per request: ${m(valueOf(rows, MAP, 'per request'))})`, met: map >= 1e6 },
  ]
}
