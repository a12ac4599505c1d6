// Short-lived reply channels: a request names a channel made for its answer, the
// responder opens it by name, answers and closes it, the requester receives and closes
// it too. Measured on a fresh segment and again after CHURN such channels came and
// went, with shm.stats().used before and after; opening a channel by name is measured
// the same way (a name lookup that scanned every channel ever made was 8× slower after
// 20,000). The peer is worker_threads' own way to answer one request: a new
// MessageChannel per request.
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads'
import { SharedMemory, type Channel } from 'interprocess-objects'
import { uniqueName } from './lib/processes'
import type { BenchRow, Check, RunOptions } from './lib/scenario'
import { bytes, formatBytes, opsPerSec, rate, ratio, textFigure, us } from './lib/stats'

export const title = 'channels: short-lived reply channels, and opening a channel by name after thousands of them'

const CHURN = { full: 20_000, quick: 5_000 }
const churnOf = (opts: RunOptions): number => (opts.quick ? CHURN.quick : CHURN.full)
/** Named channels the segment holds besides the reply channels (a lookup finds one among them). */
const NAMED = 10

export const notes = (opts: RunOptions): string[] => [
  'One reply round = make channel "reply-i" (capacity 2), send its name on "jobs", receive it, open "reply-i" by name, send the answer, close that handle, receive the answer, close the first handle (the channel is freed: empty, no handle left). Both sides in this process, so the figure is the API cost with nothing to wait for.',
  `"after" rows: the same, measured after ${churnOf(opts).toLocaleString('en-US')} reply rounds on the same segment; vs fresh = fresh time ÷ this time (1.00× = no slower; higher is faster).`,
  'open + close by name = shm.channel(name) of one of the segment\'s ' + `${NAMED} named channels, then close(): the name lookup plus the handle's reference (a turn each).`,
  'The MessageChannel row is the closest worker_threads has: a new MessageChannel per request, postMessage on one port, receiveMessageOnPort on the other, close both (in one thread: no other thread is woken either).',
]

export const about = `Request/response over shared memory often gives each request a channel of its own for the answer ("reply-to"): the requester makes it, sends its name with the request, the responder opens it by name, answers and closes it. A thousand requests a second make a thousand channels a second, so channels must go away without a trace once drained and closed, and finding a channel by name must not slow down as more of them have come and gone. This table runs that pattern on a fresh segment, then ${CHURN.full.toLocaleString('en-US')} times (${CHURN.quick.toLocaleString('en-US')} in quick mode), then again, and reports the time per round and per open-by-name before and after, and \`shm.stats().used\` before and after. Both sides run in one process, so these are the API costs with no other process to wait for; the round trip between processes is the messages table's.`

function replyRound(shm: SharedMemory, jobs: Channel<string>, i: number): void {
  const replyTo = `reply-${i}`
  const reply = shm.channel<number>(replyTo, { capacity: 2 })
  jobs.send(replyTo)
  // The responder's side: open by name, answer, close.
  const name = jobs.tryReceive()
  if (name !== replyTo) throw new Error(`channels: expected request ${replyTo}, got ${String(name)}`)
  const answer = shm.channel<number>(name)
  answer.send(i)
  answer.close()
  if (reply.tryReceive() !== i) throw new Error(`channels: reply ${i} missing`)
  reply.close()
}

function openByName(shm: SharedMemory): void {
  shm.channel(`named-${NAMED >> 1}`).close()
}

function messageChannelRound(i: number): void {
  const { port1, port2 } = new MessageChannel()
  port2.postMessage(i)
  const got = receiveMessageOnPort(port1)
  if (got?.message !== i) throw new Error(`channels: MessageChannel reply ${i} missing`)
  port1.close()
  port2.close()
}

const OPEN = 'open + close a channel by name'
const ROUND = 'reply round (make, send the name, open by name, answer, close both)'
const FRESH = 'fresh segment'
const USED = 'shm.stats().used'

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const churn = churnOf(opts)
  const ms = opts.quick ? 300 : 1500
  const shm = SharedMemory.create({ name: uniqueName('bench-chan'), size: 16 << 20 })
  const named: Channel[] = []
  try {
    for (let k = 0; k < NAMED; k++) named.push(shm.channel(`named-${k}`))
    const jobs = shm.channel<string>('jobs')
    let seq = 0
    const round = (): void => replyRound(shm, jobs, seq++)
    const open0 = rate(ms, () => openByName(shm))
    const round0 = rate(ms, round)
    const used0 = shm.stats().used
    const t0 = performance.now()
    for (let i = 0; i < churn; i++) round()
    const churnMs = performance.now() - t0
    const used1 = shm.stats().used
    const open1 = rate(ms, () => openByName(shm))
    const round1 = rate(ms, round)
    let m = 0
    const port = rate(ms, () => messageChannelRound(m++))
    const after = `after ${churn.toLocaleString('en-US')} reply channels`
    const row = (name: string, perSec: number, fresh?: number, note?: string): BenchRow => ({
      case: name,
      figures: { 'µs/op': us(1e6 / perSec), 'ops/s': opsPerSec(perSec), 'vs fresh': fresh === undefined ? textFigure('') : ratio(perSec / fresh), growth: textFigure('') },
      note,
    })
    return [
      row(`${OPEN}, ${FRESH}`, open0),
      row(`${OPEN}, ${after}`, open1, open0),
      row(`${ROUND}, ${FRESH}`, round0),
      row(`${ROUND}, ${after}`, round1, round0, `the ${churn.toLocaleString('en-US')} rounds in between took ${((churnMs / churn) * 1e3).toFixed(1)} µs each`),
      row('worker_threads: new MessageChannel, postMessage, receiveMessageOnPort, close both', port, undefined, 'the peer: one port pair per request'),
      {
        case: `${USED}, ${after}`,
        figures: { 'µs/op': textFigure(''), 'ops/s': textFigure(''), 'vs fresh': textFigure(''), growth: bytes(used1 - used0) },
        note: `${formatBytes(used0)} before, ${formatBytes(used1)} after; ${churn.toLocaleString('en-US')} channels made and closed`,
      },
    ]
  } finally {
    for (const ch of named) ch.close()
    shm.close()
  }
}

/** The segment may grow its channel directory once (a power of two of 4-byte entries); nothing else may stay. */
const GROWTH_SLACK = 4096

export function checks(rows: BenchRow[]): Check[] {
  const openRows = rows.filter((r) => r.case.startsWith(OPEN))
  const openAfter = openRows[1]?.figures['vs fresh']?.value ?? NaN
  const roundAfter = rows.filter((r) => r.case.startsWith(ROUND))[1]?.figures['vs fresh']?.value ?? NaN
  const usedRow = rows.find((r) => r.case.startsWith(USED))
  const growth = usedRow?.figures.growth?.value ?? NaN
  const after = usedRow?.case.slice(USED.length + 2) ?? 'after the churn'
  return [
    {
      target: 'short-lived reply channels: after thousands, opening a channel by name ≥ 0.67× as fast as on a fresh segment (≤ 1.5× its time), and shm.stats().used grows by ≤ 4 KiB',
      measured: `${after}: open by name ${openAfter.toFixed(2)}× the fresh rate, a reply round ${roundAfter.toFixed(2)}×; used grew by ${formatBytes(growth)}`,
      met: openAfter >= 1 / 1.5 && growth <= GROWTH_SLACK,
      why: `Compare the two open-by-name rows: a lookup that slows down as channels come and go scans what they left behind; a growth of ${formatBytes(growth)} is what drained, closed channels keep.`,
    },
  ]
}
