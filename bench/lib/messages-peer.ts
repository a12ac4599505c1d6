// The far side of bench/messages.ts: answers every 64-byte message on channel
// "ping" with a 64-byte message on channel "pong", through the real API, until a
// 1-byte message on "ping" says stop.
// Usage: messages-peer.ts <segment> low-latency|cpu-friendly sync|async
import { SharedMemory, type WaitMode } from 'interprocess-objects'

const [name, waitArg, style] = process.argv.slice(2)
const wait = waitArg as WaitMode
const STALL_MS = 30_000

const shm = SharedMemory.open({ name: name! })
const reply = new Uint8Array(64)
const access = { wait }

/** Answers one ping; false when it was the stop message. */
function answer(): boolean {
  return shm.access((tx) => {
    const m = tx.takeMessage<Uint8Array>({ channel: 'ping' })
    if (m.length !== 64) {
      tx.destroy(m)
      return false
    }
    reply.set(m)
    reply[0] = (reply[0]! + 1) & 0xff
    tx.destroy(m)
    tx.putMessage(reply, { channel: 'pong' })
    return true
  }, access)
}

async function main(): Promise<void> {
  process.send!('ready')
  if (style === 'sync') {
    do shm.waitForMessageSync({ channel: 'ping', wait, timeoutMs: STALL_MS })
    while (answer())
  } else {
    do await shm.waitForMessage({ channel: 'ping', wait, timeoutMs: STALL_MS })
    while (answer())
  }
  shm.close()
  process.send!('done', () => process.disconnect())
}

main().catch((err: unknown) => {
  console.error('messages peer:', err)
  process.exit(1)
})
