// The far side of bench/messages.ts: answers every 64-byte message on channel
// "ping" with a 64-byte message on channel "pong", through the channel API, until a
// 1-byte message on "ping" says stop.
// With sync-ref, the ping is a Float64Array of the segment received by reference: the
// answer is written into it (element 1 = element 0 + 1) and the same view sent back by
// reference, then released.
// Usage: messages-peer.ts <segment> low-latency|cpu-friendly sync|async|sync-ref
import { SharedMemory, type WaitMode } from 'interprocess-objects'
import { cpuMicrosSince } from './stats'

const [name, waitArg, style] = process.argv.slice(2)
const wait = waitArg as WaitMode
const STALL_MS = 30_000

const shm = SharedMemory.open({ name: name! })
const ping = shm.channel<Uint8Array | Float64Array>('ping')
const pong = shm.channel<Uint8Array | Float64Array>('pong')
const reply = new Uint8Array(64)
const syncOptions = { wait, timeoutMs: STALL_MS }
// As in the parent: cpu-friendly receive() without options; the parent going away ends this process.
const asyncOptions = wait === 'low-latency' ? { wait } : undefined
process.on('disconnect', () => process.exit(0))

/** Answers one ping (a copy: nothing to destroy; or a view by reference, released); false when it was the stop message. */
function answer(m: Uint8Array | Float64Array): boolean {
  if (m instanceof Float64Array) {
    m[1] = m[0]! + 1
    pong.send(m)
    ping.release(m)
    return true
  }
  if (m.length !== 64) return false
  reply.set(m)
  reply[0] = (reply[0]! + 1) & 0xff
  pong.send(reply)
  return true
}

async function main(): Promise<void> {
  process.send!('ready')
  // This side's CPU over the run, per answer: the parent reports both sides' per round trip.
  const cpu0 = process.cpuUsage()
  let answers = 0
  if (style !== 'async') {
    while (answer(ping.receiveSync(syncOptions))) answers++
  } else {
    while (answer(await ping.receive(asyncOptions))) answers++
  }
  const cpuMicros = cpuMicrosSince(cpu0)
  ping.close()
  pong.close()
  shm.close()
  process.send!({ done: true, cpuMicros, answers }, () => process.disconnect())
}

main().catch((err: unknown) => {
  console.error('messages peer:', err)
  process.exit(1)
})
