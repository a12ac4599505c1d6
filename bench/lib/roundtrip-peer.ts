// The far side of bench/roundtrip.ts: answers every ping, either over the fork IPC
// channel ("ipc") or through one 32-bit word of a shared segment ("spin", "futex").
// Usage: roundtrip-peer.ts ipc | roundtrip-peer.ts spin|futex <name> <offset>
import { SharedMemory } from 'interprocess-objects'
import { rawSegment } from './raw_segment'
import { cpuMicrosSince } from './stats'

const [mode, name, offsetArg] = process.argv.slice(2)
const STOP = -1
/** Give up if the parent makes no progress for this long (it died, or a bug). */
const STALL_MS = 30_000

function stalled(): never {
  console.error(`roundtrip peer (${mode}): no ping for ${STALL_MS} ms, giving up`)
  process.exit(2)
}

if (mode === 'ipc') {
  let cpu0: NodeJS.CpuUsage | undefined
  let answers = 0
  process.on('message', (m) => {
    if (m === 'stop') {
      // This side's CPU per answer (bench/messages.ts reports both sides' per round trip).
      process.send!({ cpuMicros: cpuMicrosSince(cpu0), answers }, () => process.disconnect())
      return
    }
    cpu0 ??= process.cpuUsage()
    answers++
    process.send!(m)
  })
  process.send!('ready')
} else if (mode === 'spin' || mode === 'futex') {
  const shm = SharedMemory.open({ name: name! })
  const segment = rawSegment(shm)
  const words = segment.words
  const offset = Number(offsetArg)
  const index = offset >> 2
  process.send!('ready', () => {
    // The parent writes ping 2r-1, this side answers 2r; STOP (-1) ends the loop.
    if (mode === 'spin') {
      for (let r = 1; ; r++) {
        const ping = 2 * r - 1
        let spins = 0
        let since = 0 // read the clock only once a wait gets long: it is part of the round trip
        let seen: number
        while ((seen = Atomics.load(words, index)) !== ping) {
          if (seen === STOP) break
          if (++spins === 1 << 20) {
            spins = 0
            const now = performance.now()
            if (since === 0) since = now
            else if (now - since > STALL_MS) stalled()
          }
        }
        if (seen === STOP) break
        Atomics.store(words, index, ping + 1)
      }
    } else {
      outer: for (let r = 1; ; r++) {
        const ping = 2 * r - 1
        const since = performance.now()
        for (;;) {
          const seen = Atomics.load(words, index)
          if (seen === ping) break
          if (seen === STOP) break outer
          segment.wait(offset, seen, 1000)
          if (performance.now() - since > STALL_MS) stalled()
        }
        Atomics.store(words, index, ping + 1)
        segment.wake(offset, 1)
      }
    }
    shm.close()
    process.send!('done', () => process.disconnect())
  })
} else {
  throw new Error(`roundtrip-peer: unknown mode ${String(mode)}`)
}
