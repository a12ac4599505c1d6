// The far side of bench/messages.ts: answers every 64-byte message on channel
// "ping" with a 64-byte message on channel "pong", through the real API.
// Usage: messages-peer.ts <segment> <rounds> low-latency|cpu-friendly sync|async
import { SharedMemory, type WaitMode } from '../../core'

const [name, roundsArg, waitArg, style] = process.argv.slice(2)
const rounds = Number(roundsArg)
const wait = waitArg as WaitMode
const STALL_MS = 30_000

const shm = SharedMemory.open({ name: name! })
const reply = new Uint8Array(64)

function answer(): void {
  shm.access((tx) => {
    const m = tx.takeMessage<Uint8Array>({ channel: 'ping' })
    reply.set(m)
    reply[0] = (reply[0]! + 1) & 0xff
    tx.destroy(m)
    tx.putMessage(reply, { channel: 'pong' })
  })
}

async function main(): Promise<void> {
  process.send!('ready')
  if (style === 'sync') {
    for (let r = 0; r < rounds; r++) {
      shm.waitForMessageSync({ channel: 'ping', wait, timeoutMs: STALL_MS })
      answer()
    }
  } else {
    for (let r = 0; r < rounds; r++) {
      await shm.waitForMessage({ channel: 'ping', wait, timeoutMs: STALL_MS })
      answer()
    }
  }
  shm.close()
  process.send!('done', () => process.disconnect())
}

main().catch((err: unknown) => {
  console.error('messages peer:', err)
  process.exit(1)
})
