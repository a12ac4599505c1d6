// Sends on channel "bulk" as channel.send does, but stops between marking what the
// message carries in flight and publishing it — the few instructions a process can be
// killed in — and waits to be killed. argv[3]: "loan" (a loan alone, inline in the slot)
// or "pooled" (a loan inside a copied value too long for the ring: its frame goes into
// a loan pool array too).
import { SharedMemory } from 'interprocess-objects'
// Internal: the send's own steps, to stop half-way the way a killed process would.
import { Ring } from '../../core/ring'
import { identityOf } from '../../core/lock'
import type { Messages } from '../../core/messages'

const [name, mode] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<unknown>('bulk')
const value = mode === 'pooled' ? { loan: ch.loan(2000).fill(9), copied: new Uint8Array(5000).fill(3) } : ch.loan(1000).fill(7)
const ring = new Ring(shm.heap.i32, ch.ref, process.pid, identityOf(shm.segment))
// (The segment handle's own Messages: private to users.)
const messages = (shm as unknown as { messages: Messages }).messages
const out = messages.prepare(value, ring)
const slot = ring.claimSend(out.span)
if (slot < 0) throw new Error('loan-unpublished-sender: the ring is full')
messages.write(ring, slot, ring.pos, out)
process.send!('launched')
setInterval(() => {}, 1000)
