// The bare floor under every message figure: one 32-bit word of a shared segment
// flipped back and forth between this process and a peer (bench/lib/roundtrip-peer.ts),
// no API at all. "spin" stores the ping and spins on Atomics.load for the pong;
// "futex" stores it, wakes the peer with the addon's futex wake and sleeps in a
// futex wait. bench/roundtrip.ts reports these against child_process IPC;
// bench/messages.ts measures them again in its own run, as the floors its
// receiveSync round trips are held against.
import { randomBytes } from 'node:crypto'
import { SharedMemory } from 'interprocess-objects'
import { startPeer } from './processes'
import { rawSegment } from './raw_segment'
import { LatencyLoop } from './stats'

export interface PingPongPlan {
  warmup: number
  rounds: number
  /** Time budget of one case (see LatencyLoop). */
  budgetMs: number
}

const PEER = 'roundtrip-peer'
const SEGMENT_SIZE = 1 << 20
/** The ping word: a cache line in the middle of the heap, away from header and allocator roots. */
const WORD_OFFSET = SEGMENT_SIZE / 2
const STALL_MS = 30_000
/** Written to the word to end the peer's loop early (pings and pongs are positive). */
const STOP = -1

/** Ping-pong over one segment word with a peer process; returns the measured round trips in µs. */
export async function wordPingPong(mode: 'spin' | 'futex', plan: PingPongPlan): Promise<Float64Array> {
  const name = `bench-rt-${process.pid}-${randomBytes(3).toString('hex')}`
  const shm = SharedMemory.create({ name, size: SEGMENT_SIZE })
  const peer = startPeer(PEER, [mode, name, String(WORD_OFFSET)])
  try {
    if ((await peer.next()) !== 'ready') throw new Error('roundtrip peer did not start')
    const segment = rawSegment(shm)
    const words = segment.words
    const index = WORD_OFFSET >> 2
    const loop = new LatencyLoop(plan.warmup, plan.rounds, plan.budgetMs)
    const stalled = () => new Error(`roundtrip ${mode}: the peer stopped answering`)
    for (let r = 1; ; r++) {
      const pong = 2 * r
      const t0 = performance.now()
      if (mode === 'spin') {
        Atomics.store(words, index, pong - 1)
        let spins = 0
        while (Atomics.load(words, index) !== pong) {
          if (++spins === 1 << 24) {
            spins = 0
            if (performance.now() - t0 > STALL_MS) throw stalled()
          }
        }
      } else {
        Atomics.store(words, index, pong - 1)
        segment.wake(WORD_OFFSET, 1)
        for (;;) {
          const seen = Atomics.load(words, index)
          if (seen === pong) break
          segment.wait(WORD_OFFSET, seen, 1000)
          if (performance.now() - t0 > STALL_MS) throw stalled()
        }
      }
      const t1 = performance.now()
      if (!loop.add((t1 - t0) * 1e3)) break
    }
    Atomics.store(words, index, STOP)
    segment.wake(WORD_OFFSET, 1)
    if ((await peer.next()) !== 'done') throw new Error('roundtrip peer did not finish')
    return loop.result()
  } finally {
    let timer: NodeJS.Timeout | undefined
    const code = await Promise.race([peer.exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000, 'timeout')))])
    clearTimeout(timer)
    if (code !== 0) peer.proc.kill()
    shm.close()
  }
}
