// Round trip of one 32-bit word between two real processes:
//   shm spin    Atomics.store / spin on Atomics.load over the mapped segment
//   shm futex   Atomics.store + wake, sleep in a cross-process futex wait
//   IPC json    child_process fork IPC, process.send ping-pong ('json')
//   IPC adv.    the same with serialization: 'advanced' (structured clone)
// The segment ping-pong lives in bench/lib/word-pingpong.ts (bench/messages.ts uses it too).
// Every peer is measured in this run, on this machine; each case warms up first.
import { availableParallelism } from 'node:os'
import type { SerializationType } from 'node:child_process'
import { startPeer } from './lib/processes'
import type { BenchRow, RunOptions } from './lib/scenario'
import { count, LatencyLoop, ratio, summarize, us, type Summary } from './lib/stats'
import { wordPingPong, type PingPongPlan } from './lib/word-pingpong'

export const title = 'roundtrip: one 32-bit word, ping-pong between two processes'
export const about = `The floor under every message figure: no API at all, just one 32-bit word in a shared segment that two processes flip back and forth. **shm spin** stores the ping and spins on \`Atomics.load\` for the pong (both processes keep a core busy); **shm futex** stores the ping, wakes the other side with the addon's futex wake, and sleeps in a futex wait until the pong (what cpu-friendly waiting does underneath). child_process IPC sends a number back and forth for comparison. The messages table puts the channel API on top of these (a frame encoded into a ring slot, the wake-up, the decode) and measures the spin and futex floors again in its own run, for its targets.`
export const notes = [
  'vs IPC = child_process IPC (json) time ÷ this time, at the same percentile; higher is faster.',
  'shm spin keeps both processes busy (one core each); shm futex sleeps and pays a wake syscall per hop.',
  'rounds = round trips measured after the warm-up; each case stops at its round count or its time budget (15 s; 2 s in quick mode), whichever comes first.',
]

const PEER = 'roundtrip-peer'

function plans(quick: boolean): Record<'spin' | 'futex' | 'ipc', PingPongPlan> {
  return quick
    ? { spin: { warmup: 2_000, rounds: 20_000, budgetMs: 2_000 }, futex: { warmup: 500, rounds: 5_000, budgetMs: 2_000 }, ipc: { warmup: 300, rounds: 2_000, budgetMs: 2_000 } }
    : { spin: { warmup: 50_000, rounds: 500_000, budgetMs: 15_000 }, futex: { warmup: 5_000, rounds: 50_000, budgetMs: 15_000 }, ipc: { warmup: 2_000, rounds: 20_000, budgetMs: 15_000 } }
}

/** Ping-pong over the fork IPC channel; returns the measured round trips in µs. */
async function overIpc(serialization: SerializationType, plan: PingPongPlan): Promise<Float64Array> {
  const peer = startPeer(PEER, ['ipc'], serialization)
  try {
    if ((await peer.next()) !== 'ready') throw new Error('roundtrip peer did not start')
    peer.detach()
    const loop = new LatencyLoop(plan.warmup, plan.rounds, plan.budgetMs)
    await new Promise<void>((resolve, reject) => {
      let r = 1
      let t0 = 0
      peer.exited.then((code) => reject(new Error(`roundtrip peer exited (${code}) during the IPC run`)))
      peer.proc.on('message', (m) => {
        const t1 = performance.now()
        if (m !== r) return reject(new Error(`roundtrip IPC: expected ${r}, got ${String(m)}`))
        if (!loop.add((t1 - t0) * 1e3)) return resolve()
        r++
        t0 = performance.now()
        peer.send(r)
      })
      t0 = performance.now()
      peer.send(r)
    })
    peer.send('stop')
    await peer.exited
    return loop.result()
  } finally {
    if (peer.proc.exitCode === null) peer.proc.kill()
  }
}

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const plan = plans(opts.quick)
  const cases: Array<[string, Summary]> = []
  // IPC first: the baseline everything is compared with.
  cases.push(['child_process IPC (json)', summarize(await overIpc('json', plan.ipc))])
  cases.push(['child_process IPC (advanced)', summarize(await overIpc('advanced', plan.ipc))])
  cases.push(['shm futex (store+wake / wait)', summarize(await wordPingPong('futex', plan.futex))])
  const rows: BenchRow[] = []
  // Two spinning processes on one core only make progress when the scheduler
  // switches between them: milliseconds per hop, and minutes for the run.
  if (availableParallelism() >= 2) cases.push(['shm spin (Atomics load/store)', summarize(await wordPingPong('spin', plan.spin))])
  else rows.push({ case: 'shm spin (Atomics load/store)', figures: {}, note: 'skipped: needs 2 or more cores' })
  const base = cases[0]![1]
  return cases.map(([name, s]): BenchRow => ({
    case: name,
    figures: {
      p50: us(s.p50),
      p99: us(s.p99),
      mean: us(s.mean),
      max: us(s.max),
      rounds: count(s.n),
      'vs IPC p50': ratio(base.p50 / s.p50),
      'vs IPC p99': ratio(base.p99 / s.p99),
    },
  })).concat(rows)
}
