// CPU used by a process that is only waiting for a message, measured inside that
// process with process.cpuUsage() (all its threads) over the whole wait, then
// woken by one real message. All waiters run at the same time, each on its own
// channel of one segment; the parent sleeps meanwhile.
import { SharedMemory } from 'interprocess-objects'
import { sleep, startPeer, uniqueName, type Peer } from './lib/processes'
import { valueOf, type BenchRow, type Check, type RunOptions } from './lib/scenario'
import { percent } from './lib/stats'

export const title = 'idle: CPU of a process waiting for a message'
const IDLE_MS = { full: 10_000, quick: 2_000 }

export const notes = (opts: RunOptions): string[] => [
  '% of one core = CPU time of the waiting process (user + system, every thread) ÷ wall time of the wait.',
  opts.quick
    ? `quick mode: each process idles ${IDLE_MS.quick / 1000} s instead of ${IDLE_MS.full / 1000} s, so start-up leftovers weigh more; the full run is the one to quote.`
    : `Each process idles ${IDLE_MS.full / 1000} s.`,
]
export const about = `A desktop app keeps utility processes waiting for work most of the time, so waiting must cost nothing. Each waiter below is its own process, waiting for one message on its own channel of a shared segment; after the idle period (10 s; 2 s in quick mode) the parent puts the message, the waiter wakes and reports \`process.cpuUsage()\` (user + system time of every thread in it, the addon's waiter thread included) over the wait. \`await ch.receive()\` on a channel handle (\`shm.channel(name)\`, cpu-friendly) is the default way to wait, and \`ch.receiveSync()\` its blocking form; the legacy \`shm.waitForMessage()\` / \`waitForMessageSync()\` are kept for comparison; \`setInterval(…, 1)\` polling \`tx.hasMessages()\` is what code without a wake-up has to do; an idle Node process with only an IPC channel open is the floor. \`low-latency\` waiting spins by design and is shown for the trade-off: a blocking wait spins for as long as it waits, an \`await\` spins 1 ms and then sleeps like the default. The waiter does not care how an async receive is woken (this event loop's notifier or the addon's waiter thread): whichever this build uses is what is measured.`

interface Usage {
  cpuMs: number
  userMs: number
  systemMs: number
  wallMs: number
}

const WAITERS: Array<{ mode: string; label: string; note?: string }> = [
  { mode: 'baseline', label: 'idle Node process (floor)', note: 'only an IPC channel open' },
  { mode: 'receive', label: 'await ch.receive() (cpu-friendly)', note: 'the default way to wait' },
  { mode: 'receive-sync', label: 'ch.receiveSync() (cpu-friendly)', note: 'blocks the thread' },
  { mode: 'wait', label: 'await shm.waitForMessage() (cpu-friendly)', note: 'legacy' },
  { mode: 'wait-sync', label: 'shm.waitForMessageSync() (cpu-friendly)', note: 'legacy; blocks the thread' },
  { mode: 'poll', label: 'setInterval(…, 1) polling tx.hasMessages()', note: 'a turn every millisecond' },
  { mode: 'wait-low-latency', label: "await shm.waitForMessage({ wait: 'low-latency' })", note: 'spins 1 ms in the event loop, then sleeps like the default (it spun on a waiter thread for the whole wait before)' },
]

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const idleMs = opts.quick ? IDLE_MS.quick : IDLE_MS.full
  const name = uniqueName('bench-idle')
  const shm = SharedMemory.create({ name, size: 1 << 20 })
  const peers: Peer[] = []
  try {
    for (const [i, w] of WAITERS.entries()) peers.push(startPeer('idle-peer', w.mode === 'baseline' ? ['baseline'] : [w.mode, name, `idle-${i}`]))
    for (const peer of peers) if ((await peer.next()) !== 'ready') throw new Error('idle peer did not start')
    const reports = peers.map((peer) => peer.next<Usage>())
    await sleep(idleMs)
    shm.access((tx) => {
      WAITERS.forEach((w, i) => {
        if (w.mode !== 'baseline') tx.putMessage(1, { channel: `idle-${i}` })
      })
    })
    peers[WAITERS.findIndex((w) => w.mode === 'baseline')]!.send('wake')
    const usages = await Promise.all(reports)
    return WAITERS.map((w, i): BenchRow => {
      const u = usages[i]!
      return {
        case: w.label,
        figures: {
          'CPU (% of a core)': percent((100 * u.cpuMs) / u.wallMs),
          user: percent((100 * u.userMs) / u.wallMs),
          system: percent((100 * u.systemMs) / u.wallMs),
        },
        note: `${(u.wallMs / 1000).toFixed(1)} s idle${w.note ? `; ${w.note}` : ''}`,
      }
    })
  } finally {
    for (const peer of peers) await peer.stop()
    shm.close()
  }
}

const cpuOf = (rows: BenchRow[], mode: string): number => valueOf(rows, WAITERS.find((w) => w.mode === mode)!.label, 'CPU (% of a core)')

export function checks(rows: BenchRow[]): Check[] {
  const receive = cpuOf(rows, 'receive')
  const floor = cpuOf(rows, 'baseline')
  const poll = cpuOf(rows, 'poll')
  return [
    {
      target: 'idle await ch.receive() (cpu-friendly) ≤ 1% of a core',
      measured: `${receive.toFixed(3)} % (idle Node process ${floor.toFixed(3)} %, legacy waitForMessage ${cpuOf(rows, 'wait').toFixed(3)} %, 1 ms polling ${poll.toFixed(2)} %)`,
      met: receive <= 1,
    },
  ]
}
