// The seed's headline benchmark: 1000 messages of 400,000 bytes, one process puts
// them, the other takes them. Every peer moves the same stamped messages with at
// most WINDOW unacknowledged, and the consumer checks every stamp.
//   cold = the first batch on fresh processes and a fresh segment/socket/channel
//   warm = the next batch, same processes (steady state)
// The ceiling is one memcpy per message in one process (Uint8Array.set between two
// touched buffers): every shared-memory path here copies each message once on the
// producer side, like that ceiling, except "copied both ends" (send(bytes) and
// receive, the default message path), which copies it twice. The SDK figure the
// targets use is the loan row (channel.loan → send → receive → release).
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import type { SerializationType } from 'node:child_process'
import type { Worker } from 'node:worker_threads'
import { SharedMemory, type Channel, type Turn, type WaitMode } from 'interprocess-objects'
import { nextFromWorker, startPeer, startWorker, uniqueName, type Peer } from './lib/processes'
import { rowOf, valueOf, type BenchRow, type Check, type RunOptions } from './lib/scenario'
import { bytesPerSec, ratio, textFigure, us } from './lib/stats'
import { MESSAGE_BYTES, stamp, STALL_MS, WINDOW } from './lib/throughput-common'
import { peerUnavailable, requirePeer } from './lib/peer_packages'

export const title = `throughput: messages of ${MESSAGE_BYTES.toLocaleString('en-US')} bytes from one process to another (the seed's test)`
export const notes = [
  `cold = first batch on fresh processes and a fresh segment/socket; warm = the median of the next batches (3 in a full run, 1 in quick mode) once the row has run for 1 s (0.25 s quick), same processes. At most ${WINDOW} messages in flight, every one acknowledged and its stamp checked.`,
  'µs/message = one message at the warm rate; vs memcpy = warm ÷ memcpy (warm); vs IPC = warm ÷ child_process IPC (advanced, warm). Higher is better.',
  'Rows that spin (low-latency, shm-typed-array) need the other core to themselves: on a 2-core machine with other work running (see the load average) they suffer most.',
]
export const about = `The seed's headline test. One process sends N messages of ${MESSAGE_BYTES.toLocaleString('en-US')} bytes, another receives them; the consumer checks a stamp in every message, so a message counts only once it is readable, whole, on the other side. At most ${WINDOW} messages are unacknowledged at any time (every peer uses the same window). **cold** is the first batch right after the processes started and the segment (or socket, channel) was created, so it pays page faults and JIT warm-up; **warm** is the median of three more batches in the same processes (one in quick mode), run once the row has run for a second (uncounted batches after the cold one; a quarter second in quick mode), so that both processes run optimized code. The ceiling is one \`Uint8Array.set\` per message between two touched buffers in one process (the best of three passes): every shared-memory path below but one also copies each message exactly once (into the segment), so it cannot beat that. The same memcpy is also timed while another process spins on the other core, because in every cross-process row the other core is busy with the consumer, all the time for the peers that spin. The main SDK row, the one the targets compare, is the loan row, the SDK's zero-copy bulk API: the producer asks the channel for a byte array in the segment (\`data.loan(bytes)\`: an array of the segment's loan pool, taken by a compare-and-swap; only the first loans of a size allocate one, in a turn), fills it outside any turn (\`shm.copyBytes(buf, source)\`, a native memcpy, as the raw rows do: the one copy; \`buf.set(source)\` works too, but on the segment's SharedArrayBuffer V8 uses its slower copy for shared memory, about 3× a memcpy for 400 KB) and sends it by reference (\`data.send(buf)\`: the message names the pool entry, and the producer does not touch the array again); the consumer receives the same bytes (\`receiveSync\`), reads them where they lie, gives them back to the pool (\`data.release(view)\`) and acknowledges. Once the pool holds arrays of this size no step takes a turn or allocates; the producer timestamps each call, which splits its time per message into loan, fill, send and waiting for acknowledgements. The tx.put rows put each message in the segment (\`tx.put(bytes)\`: the one copy) and send the view by reference on a channel (\`ch.send(view)\`), all in one producer turn; the consumer receives the live view and reads it where it lies ("read in place", zero-copy) or copies it into its own buffer first ("copy out", as code that keeps the data would), then destroys the batch it took in one turn and acknowledges. For the first tx.put row the producer also timestamps its turn, which splits its time per message into copying, sending (which wakes the consumer), releasing, waiting for the turn and waiting for acknowledgements. "copied both ends" is the default message path for bytes that are not in the segment: \`ch.send(bytes)\` copies them into the segment and \`receive\` copies them out into a new \`Uint8Array\` (two copies). The raw rows allocate ${WINDOW} slots once, copy each message into its slot outside any turn and send only the slot number.`

const SEGMENT_BYTES = 32 << 20

interface Plan {
  messages: number
  /** Warm batches of `messages` after the cold one; the warm figure is their median. */
  warmBatches: number
}

interface Timing {
  cold: number // seconds
  warm: number
}

function rate(seconds: number, messages: number): number {
  return (messages * MESSAGE_BYTES) / seconds
}

/** A touched, stamped source message. */
function sourceMessage(): Buffer<ArrayBuffer> {
  return Buffer.alloc(MESSAGE_BYTES, 0x5a) as Buffer<ArrayBuffer>
}

/**
 * Batches after the cold one that are run but not counted, until the row has run this
 * long: the warm figure is the steady state. A batch of 1000 messages of a fast row is
 * over in 10–30 ms, while V8 needs a few thousand calls of the channel code (in both
 * processes) before it is optimized — measured from the first warm batches, the SDK rows
 * read 2–3× slower than they run a second later. A row whose cold batch took longer
 * than this (the slow peers) gets no extra batch.
 */
const WARM_UP_MS = 1000

/** Warm batches per peer (set by run): the warm figure is their median. */
let warmBatches = 1
/** Warm-up per row (set by run: shorter in quick mode). */
let warmUpMs = WARM_UP_MS

/** One cold batch of `n` messages, uncounted warm-up batches (for warmUpMs in all), then `warmBatches` warm ones; `run` gets each batch's first sequence number. */
async function batches(run: (first: number, n: number, counted: boolean) => Promise<void> | void, n: number): Promise<Timing> {
  const t0 = performance.now()
  await run(0, n, false)
  const cold = (performance.now() - t0) / 1e3
  let first = n
  while (performance.now() - t0 < warmUpMs) {
    await run(first, n, false)
    first += n
  }
  const warm: number[] = []
  for (let k = 1; k <= warmBatches; k++) {
    const t = performance.now()
    await run(first, n, true)
    first += n
    warm.push((performance.now() - t) / 1e3)
  }
  warm.sort((a, b) => a - b)
  return { cold, warm: warm[(warm.length - 1) >> 1]! }
}

// ---------------------------------------------------------------------------
// The ceiling: one process, one copy per message.

function memcpy(n: number): Timing {
  const src = sourceMessage()
  const dst = new Uint8Array(MESSAGE_BYTES).fill(1)
  const pass = () => {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      stamp(src, i)
      dst.set(src)
    }
    return (performance.now() - t0) / 1e3
  }
  pass()
  // The ceiling: the best of three passes (a pass the scheduler interrupted is not the ceiling).
  const warm = Math.min(pass(), pass(), pass())
  // Cold: every message lands on memory never touched before (as in a fresh segment).
  const fresh = new Uint8Array(n * MESSAGE_BYTES)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    stamp(src, i)
    fresh.set(src, i * MESSAGE_BYTES)
  }
  const cold = (performance.now() - t0) / 1e3
  return { warm, cold }
}

/** The same memcpy while another process spins on the other core, as the spinning peers below do. */
async function memcpyBesideSpinner(n: number): Promise<Timing> {
  const spinner = startPeer('throughput-peer', ['spinner'])
  try {
    await expectReady(spinner)
    return memcpy(n)
  } finally {
    await stopPeer(spinner)
  }
}

// ---------------------------------------------------------------------------
// This SDK

/** Waits for acks on channel 'ack' (the consumer's running count of messages it is done with). */
function waitForAck(ack: Channel<number>, acked: number, wait: WaitMode): number {
  let latest = ack.receiveSync({ wait, timeoutMs: STALL_MS })
  for (let m = ack.tryReceive(); m !== undefined; m = ack.tryReceive()) latest = m
  return Math.max(acked, latest)
}

function drainAcks(ack: Channel<number>): void {
  while (ack.tryReceive() !== undefined);
}

/** What the producer loop of one SDK batch measured (ms). */
interface BatchTimes {
  /** Waiting for acknowledgements (the window was full). */
  ackWait: number
  /** The whole loop, up to the last send (not the peer's last acknowledgement). */
  total: number
}

/**
 * One batch of an SDK row on the producer side: tells the peer to take `count`
 * messages from `first`, calls `sendOne(seq)` for each with at most WINDOW
 * unacknowledged (waiting on channel 'ack' with `wait`), then waits for the peer's
 * { done }. Every SDK row with a peer shares this loop; only `sendOne` differs.
 */
async function sdkBatch(peer: Peer, ack: Channel<number>, wait: WaitMode, first: number, count: number, sendOne: (seq: number) => void): Promise<BatchTimes> {
  drainAcks(ack)
  peer.send({ cmd: 'run', first, n: count })
  let sent = 0
  let acked = 0
  let ackWait = 0
  const t0 = performance.now()
  while (sent < count) {
    if (sent - acked >= WINDOW) {
      const a = performance.now()
      acked = waitForAck(ack, acked, wait)
      ackWait += performance.now() - a
      continue
    }
    sendOne(first + sent)
    sent++
  }
  const total = performance.now() - t0
  await expectDone(peer, count)
  return { ackWait, total }
}

/** Where the producer's time went in the warm batch, per message (µs). */
export interface ProducerTimes {
  turnWait: number
  /** tx.put: allocating the record and copying the 400 KB into it. */
  copy: number
  /** ch.send(view): the ring slot, publishing, waking the consumer. */
  send: number
  /** tx.destroy of the producer's own reference and leaving the turn. */
  release: number
  ackWait: number
  total: number
}

interface SdkChannels<T> {
  shm: SharedMemory
  /** The messages (the views, the copies, or the raw rows' sequence numbers). */
  data: Channel<T>
  /** The consumer's running count of messages it is done with. */
  ack: Channel<number>
}

function sdkSegment<T = Uint8Array>(prefault = false): SdkChannels<T> {
  const shm = SharedMemory.create({ name: uniqueName('bench-tp'), size: SEGMENT_BYTES, prefault })
  return { shm, data: shm.channel<T>('data'), ack: shm.channel<number>('ack') }
}

function closeSdk<T>({ shm, data, ack }: SdkChannels<T>): void {
  data.close()
  ack.close()
  shm.close()
}

/**
 * The producer puts each message in the segment (tx.put: one copy) and sends the view
 * by reference; the consumer receives the live view, reads it in place (or copies it
 * out), destroys it and acknowledges.
 */
async function sdkMessages(n: number, copyOut: boolean, prefault: boolean, wait: WaitMode = 'cpu-friendly', times?: (t: ProducerTimes) => void): Promise<Timing> {
  const sdk = sdkSegment(prefault)
  const { shm, data, ack } = sdk
  const peer = startPeer('throughput-peer', ['sdk', shm.name, copyOut ? 'copy' : 'view', wait])
  const accessOptions = { wait }
  try {
    await expectReady(peer)
    const src = sourceMessage()
    // Timestamps around and inside each turn: five performance.now() calls per
    // message (~0.25 µs in all), against tens of µs per message.
    let entered = 0
    let copied = 0
    let sentAt = 0
    const put = (tx: Turn) => {
      entered = performance.now()
      const view = tx.put(src)
      copied = performance.now()
      data.send(view)
      sentAt = performance.now()
      // The message holds its own reference now: drop the producer's.
      tx.destroy(view)
    }
    return await batches(async (first, count, counted) => {
      const t: ProducerTimes = { turnWait: 0, copy: 0, send: 0, release: 0, ackWait: 0, total: 0 }
      const { ackWait, total } = await sdkBatch(peer, ack, wait, first, count, (seq) => {
        stamp(src, seq)
        const a = performance.now()
        shm.access(put, accessOptions)
        const b = performance.now()
        t.turnWait += entered - a
        t.copy += copied - entered
        t.send += sentAt - copied
        t.release += b - sentAt
      })
      t.ackWait = ackWait
      t.total = total
      if (counted && times) {
        const perMessage = 1e3 / count
        times({ turnWait: t.turnWait * perMessage, copy: t.copy * perMessage, send: t.send * perMessage, release: t.release * perMessage, ackWait: t.ackWait * perMessage, total: t.total * perMessage })
      }
    }, n)
  } finally {
    await stopPeer(peer)
    closeSdk(sdk)
  }
}

/** Where the loan row's producer spent its time in the warm batches, per message (µs). */
export interface LoanTimes {
  /** data.loan: a free array of the loan pool, taken by compare-and-swap (a turn and an allocation only while the pool grows). */
  loan: number
  /** shm.copyBytes(buf, source): the one copy, outside any turn. */
  fill: number
  /** data.send(buf): the frame naming the loan, the ring slot, waking the consumer. */
  send: number
  ackWait: number
  total: number
}

/**
 * The SDK's zero-copy bulk path: the producer loans a byte array in the segment
 * (channel.loan), fills it outside any turn (the one copy) and sends it by
 * reference; the consumer receives the live view, reads it in place, releases it
 * (channel.release) and acknowledges.
 */
async function sdkLoan(n: number, times?: (t: LoanTimes) => void, wait: WaitMode = 'cpu-friendly'): Promise<Timing> {
  const sdk = sdkSegment()
  const { shm, data, ack } = sdk
  const peer = startPeer('throughput-peer', ['sdk-loan', shm.name, 'view', wait])
  try {
    await expectReady(peer)
    const src = sourceMessage()
    return await batches(async (first, count, counted) => {
      // Three performance.now() calls more per message than the plain loop (~0.15 µs).
      let loan = 0
      let fill = 0
      let send = 0
      const { ackWait, total } = await sdkBatch(peer, ack, wait, first, count, (seq) => {
        stamp(src, seq)
        const a = performance.now()
        const buf = data.loan(MESSAGE_BYTES)
        const b = performance.now()
        // The native copy: buf.set into the segment's SharedArrayBuffer is V8's slower
        // copy for shared memory (about 3× a memcpy for 400 KB here).
        shm.copyBytes(buf, src)
        const c = performance.now()
        // By reference: the loan is the message's now, this side does not touch it again.
        data.send(buf)
        const d = performance.now()
        loan += b - a
        fill += c - b
        send += d - c
      })
      if (counted && times) {
        const perMessage = 1e3 / count
        times({ loan: loan * perMessage, fill: fill * perMessage, send: send * perMessage, ackWait: ackWait * perMessage, total: total * perMessage })
      }
    }, n)
  } finally {
    await stopPeer(peer)
    closeSdk(sdk)
  }
}

/** The default path: ch.send(bytes) copies the message into the segment, the consumer's receive copies it out. */
async function sdkCopied(n: number): Promise<Timing> {
  const sdk = sdkSegment()
  const { shm, data, ack } = sdk
  const peer = startPeer('throughput-peer', ['sdk-copied', shm.name])
  try {
    await expectReady(peer)
    const src = new Uint8Array(sourceMessage())
    const sendOne = (seq: number) => {
      stamp(src, seq)
      data.send(src)
    }
    return await batches(async (first, count) => {
      await sdkBatch(peer, ack, 'cpu-friendly', first, count, sendOne)
    }, n)
  } finally {
    await stopPeer(peer)
    closeSdk(sdk)
  }
}

/** The same API calls with no other process: what the codec, allocator and turns cost by themselves. */
async function sdkAlone(n: number): Promise<Timing> {
  const sdk = sdkSegment()
  const { shm, data } = sdk
  try {
    const src = sourceMessage()
    let taken = 0
    const put = (tx: Turn) => {
      const view = tx.put(src)
      data.send(view)
      tx.destroy(view)
    }
    const take = (tx: Turn) => {
      const msg = data.tryReceive()
      if (msg === undefined || msg[0] !== (taken & 0xff)) throw new Error('throughput: wrong message')
      tx.destroy(msg)
      taken++
    }
    return await batches((first, count) => {
      for (let i = 0; i < count; i++) {
        stamp(src, first + i)
        shm.access(put)
        shm.access(take)
      }
    }, n)
  } finally {
    closeSdk(sdk)
  }
}

async function sdkRaw(n: number, copyOut: boolean, wait: WaitMode = 'cpu-friendly'): Promise<Timing> {
  const sdk = sdkSegment<number>()
  const { shm, data, ack } = sdk
  const peer = startPeer('throughput-peer', ['sdk-raw', shm.name, copyOut ? 'copy' : 'view', wait])
  try {
    // WINDOW slots allocated once; the producer writes a message straight into its
    // slot (outside any turn: the slot is its own until acknowledged) and then sends
    // only the slot's sequence number (an inline message: no turn either).
    const views = shm.access((tx) => Array.from({ length: WINDOW }, () => tx.put(new Uint8Array(MESSAGE_BYTES))))
    const slots = shm.access((tx) => views.map((v) => tx.bufferOf(v)))
    peer.send({ slots: slots.map((s) => s.byteOffset - shm.bytes.byteOffset) })
    await expectReady(peer)
    const src = sourceMessage()
    const sendOne = (seq: number) => {
      stamp(src, seq)
      shm.copyBytes(slots[seq % WINDOW]!, src)
      data.send(seq)
    }
    return await batches(async (first, count) => {
      await sdkBatch(peer, ack, wait, first, count, sendOne)
    }, n)
  } finally {
    await stopPeer(peer)
    closeSdk(sdk)
  }
}

// ---------------------------------------------------------------------------
// Peers

/** Subscribes to a peer's `{ ack: seq }` messages over the fork channel; returns the unsubscribe. */
function ackListener(peer: Peer): (cb: (seq: number) => void) => () => void {
  return (cb) => {
    const listener = (m: { ack?: number }) => {
      if (m.ack !== undefined) cb(m.ack)
    }
    peer.proc.on('message', listener)
    return () => peer.proc.off('message', listener)
  }
}

async function expectReady(peer: Peer): Promise<void> {
  const m = await peer.next()
  if (m !== 'ready') throw new Error(`throughput peer did not start (said ${JSON.stringify(m)})`)
}

async function expectDone(peer: Peer, n: number): Promise<void> {
  const m = await peer.next<{ done?: number }>()
  if (m?.done !== n) throw new Error(`throughput peer: expected { done: ${n} }, got ${JSON.stringify(m)}`)
}

async function stopPeer(peer: Peer): Promise<void> {
  if (peer.proc.connected) peer.send({ cmd: 'exit' })
  await peer.stop()
}

/**
 * Sends messages 0..n-1 of a run through `send`, keeping at most WINDOW in flight;
 * `onAck` registers the callback the transport calls with each acknowledged seq.
 */
function windowed(first: number, n: number, send: (seq: number) => void, onAck: (cb: (seq: number) => void) => () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let sent = 0
    let acked = 0
    const timer = setTimeout(() => {
      off()
      reject(new Error(`throughput: no progress for ${STALL_MS} ms (${acked}/${n} acknowledged)`))
    }, STALL_MS)
    const pump = () => {
      while (sent < n && sent - acked < WINDOW) send(first + sent++)
    }
    const off = onAck((seq) => {
      if (seq !== first + acked) {
        off()
        clearTimeout(timer)
        reject(new Error(`throughput: acknowledgement ${seq} out of order (expected ${first + acked})`))
        return
      }
      acked++
      if (acked === n) {
        off()
        clearTimeout(timer)
        resolve()
      } else pump()
    })
    pump()
  })
}

async function childIpc(n: number, serialization: SerializationType): Promise<Timing> {
  const peer = startPeer('throughput-peer', ['ipc'], serialization)
  try {
    await expectReady(peer)
    peer.detach()
    const src = sourceMessage()
    const onAck = ackListener(peer)
    // JSON cannot carry bytes: base64 is what applications send (a Buffer would
    // become {"type":"Buffer","data":[…]}, several times slower still).
    const send =
      serialization === 'json'
        ? (seq: number) => {
            stamp(src, seq)
            peer.send({ seq, data: src.toString('base64') })
          }
        : (seq: number) => {
            stamp(src, seq)
            peer.send({ seq, data: src })
          }
    return await batches((first, count) => windowed(first, count, send, onAck), n)
  } finally {
    await stopPeer(peer)
  }
}

async function workerThread(n: number, transfer: boolean): Promise<Timing> {
  const worker: Worker = startWorker('throughput-worker')
  try {
    if ((await nextFromWorker(worker)) !== 'ready') throw new Error('throughput worker did not start')
    const src = sourceMessage()
    const onAck = (cb: (seq: number) => void) => {
      worker.on('message', cb)
      return () => worker.off('message', cb)
    }
    const send = transfer
      ? (seq: number) => {
          // A transferred buffer is gone from the sender: each message needs a new one.
          const data = new Uint8Array(MESSAGE_BYTES)
          stamp(src, seq)
          data.set(src)
          worker.postMessage({ seq, data }, [data.buffer])
        }
      : (seq: number) => {
          stamp(src, seq)
          worker.postMessage({ seq, data: src })
        }
    return await batches((first, count) => windowed(first, count, send, onAck), n)
  } finally {
    await worker.terminate()
  }
}

async function unixSocket(n: number): Promise<Timing> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-uds-'))
  const sockPath = path.join(dir, 's')
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(sockPath, resolve))
  const connected = new Promise<net.Socket>((resolve) => server.once('connection', resolve))
  const peer = startPeer('throughput-peer', ['socket', sockPath])
  try {
    await expectReady(peer)
    const sock = await connected
    // socket.write keeps a reference until the bytes are out: one buffer per window slot.
    const srcs = Array.from({ length: WINDOW }, sourceMessage)
    let pending: Buffer = Buffer.alloc(0)
    const onAck = (cb: (seq: number) => void) => {
      const listener = (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
        let at = 0
        for (; at + 4 <= pending.length; at += 4) cb(pending.readUInt32LE(at))
        pending = pending.subarray(at)
      }
      sock.on('data', listener)
      return () => sock.off('data', listener)
    }
    const send = (seq: number) => {
      const src = srcs[seq % WINDOW]!
      stamp(src, seq)
      sock.write(src)
    }
    const timing = await batches((first, count) => windowed(first, count, send, onAck), n)
    sock.destroy()
    return timing
  } finally {
    await stopPeer(peer)
    server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

interface ShmTypedArrayModule {
  create(count: number, type: 'Buffer'): (Buffer & { key: number }) | null
  create(count: number, type: 'Int32Array'): (Int32Array & { key: number }) | null
  destroy(key: number): boolean
}

async function shmTypedArray(n: number): Promise<Timing> {
  const shm = requirePeer<ShmTypedArrayModule>('shm-typed-array')
  const data = shm.create(WINDOW * MESSAGE_BYTES, 'Buffer')
  const ctrl = shm.create(16, 'Int32Array')
  if (data === null || ctrl === null) throw new Error('shm-typed-array: create failed')
  const peer = startPeer('throughput-peer', ['shm-typed-array', String(data.key), String(ctrl.key)])
  try {
    await expectReady(peer)
    const src = sourceMessage()
    return await batches(async (first, count) => {
      peer.send({ cmd: 'run', first, n: count })
      const done = peer.next<{ done?: number }>()
      // No wait/notify in the library: spin on the consumer's counter word.
      for (let seq = first; seq < first + count; seq++) {
        const since = performance.now()
        let spins = 0
        while (seq - Atomics.load(ctrl, 1) >= WINDOW) {
          if (++spins === 1 << 20) {
            spins = 0
            if (performance.now() - since > STALL_MS) throw new Error('shm-typed-array: consumer stalled')
          }
        }
        stamp(src, seq)
        data.set(src, (seq % WINDOW) * MESSAGE_BYTES)
        Atomics.store(ctrl, 0, seq + 1)
      }
      const m = await done
      if (m.done !== count) throw new Error(`shm-typed-array peer: ${JSON.stringify(m)}`)
    }, n)
  } finally {
    await stopPeer(peer)
    shm.destroy(data.key)
    shm.destroy(ctrl.key)
  }
}

interface MarkusjxModule {
  new (name: string, size: number, global: boolean, host: boolean): { write(data: Buffer): void }
  generateId(): string
}

async function markusjx(n: number): Promise<Timing> {
  const Block = requirePeer<MarkusjxModule>('@markusjx/shared_memory')
  const id = Block.generateId()
  const mem = new Block(id, MESSAGE_BYTES, false, true)
  const peer = startPeer('throughput-peer', ['markusjx', id])
  try {
    await expectReady(peer)
    peer.detach()
    const src = sourceMessage()
    const onAck = ackListener(peer)
    // One block without offsets: one message at a time (window 1).
    const run = (first: number, count: number) =>
      new Promise<void>((resolve, reject) => {
        let seq = first
        const next = () => {
          stamp(src, seq)
          mem.write(src)
          peer.send({ seq })
        }
        const off = onAck((acked) => {
          if (acked !== seq) {
            off()
            reject(new Error(`markusjx: ack ${acked}, expected ${seq}`))
          } else if (++seq === first + count) {
            off()
            resolve()
          } else next()
        })
        next()
      })
    return await batches(run, n)
  } finally {
    await stopPeer(peer)
  }
}

// ---------------------------------------------------------------------------

const IPC_BASE = 'child_process IPC (advanced)'
const MEMCPY = 'memcpy in one process (ceiling)'
const MEMCPY_BUSY = 'memcpy in one process, other core busy'
const SDK_LOAN = 'SDK loan → send → receive → release, read in place'
const SDK_LOAN_LOW = `${SDK_LOAN}, low-latency`
const SDK_VIEW = 'SDK tx.put + send(view), read in place'
const SDK_VIEW_LOW = 'SDK tx.put + send(view), read in place, low-latency'
const SDK_COPIED = 'SDK send(bytes) → receive, copied both ends'
const SDK_ALONE = 'SDK tx.put + send, receive + destroy, one process (no peer)'
const SDK_RAW = 'SDK raw: write into segment slots + send(seq)'
const STA = 'shm-typed-array (ring + Atomics spin)'

/** The producer's time per message in the warm batches of the SDK view rows (filled by run, read by checks). */
let producer: ProducerTimes | undefined
let producerLow: ProducerTimes | undefined
/** The loan row's producer time per message in its warm batches (filled by run, read by checks). */
let loanProducer: LoanTimes | undefined

/** The field-by-field mean of the warm batches' times. */
function meanTimes<T extends object>(all: T[]): T | undefined {
  if (all.length === 0) return undefined
  const out: Record<string, number> = {}
  for (const k of Object.keys(all[0]!)) out[k] = all.reduce((sum, t) => sum + (t as Record<string, number>)[k]!, 0) / all.length
  return out as T
}

const fmtUs = (us: number) => (Number.isFinite(us) ? (us >= 100 ? us.toFixed(0) : us.toFixed(1)) : 'n/a')

function describeLoan(t: LoanTimes): string {
  return `${fmtUs(t.loan)} µs in loan, ${fmtUs(t.fill)} µs filling it (the copy), ${fmtUs(t.send)} µs in send (incl. waking the consumer), ${fmtUs(t.ackWait)} µs waiting for acks; ${fmtUs(t.total)} µs in all`
}

function describeProducer(t: ProducerTimes): string {
  return `${fmtUs(t.copy)} µs in tx.put (copy into the segment), ${fmtUs(t.send)} µs in send (incl. waking the consumer), ${fmtUs(t.release)} µs destroying its reference and leaving the turn, ${fmtUs(t.turnWait)} µs waiting for the turn, ${fmtUs(t.ackWait)} µs waiting for acks; ${fmtUs(t.total)} µs in all`
}

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const plan: Plan = { messages: opts.quick ? 100 : 1000, warmBatches: opts.quick ? 1 : 3 }
  const n = plan.messages
  warmBatches = plan.warmBatches
  warmUpMs = opts.quick ? WARM_UP_MS / 4 : WARM_UP_MS
  // Spinning peers need a core each; on one core they only progress when the scheduler switches.
  const spinOk = availableParallelism() >= 2
  const results: Array<{ name: string; timing?: Timing; note?: string }> = []
  const add = async (name: string, measure: () => Promise<Timing> | Timing, note?: string) => {
    results.push({ name, timing: await measure(), note })
  }
  await add(MEMCPY, () => memcpy(n), 'Uint8Array.set between two touched buffers, best of 3 passes; cold = into never-touched memory')
  if (spinOk) await add(MEMCPY_BUSY, () => memcpyBesideSpinner(n), 'the same while another process spins (as the spinning peers below do)')
  await add(SDK_ALONE, () => sdkAlone(n), 'put + send in one turn, receive + destroy in the next: the API cost with nothing to wait for')
  const loans: LoanTimes[] = []
  await add(SDK_LOAN, () => sdkLoan(n, (t) => loans.push(t)))
  loanProducer = meanTimes(loans)
  results[results.length - 1]!.note =
    'data.loan(bytes) (a pooled array, no turn), fill it (the one copy), send(buf) by reference; consumer receives the same bytes, reads them in place, release(view) back to the pool (no turn on either side)' +
    (loanProducer ? `. Producer, per message (warm batches): ${describeLoan(loanProducer)}` : '')
  if (spinOk) await add(SDK_LOAN_LOW, () => sdkLoan(n, undefined, 'low-latency'), "the same with { wait: 'low-latency' } on both sides (they spin, as shm-typed-array does)")
  const sleeping: ProducerTimes[] = []
  await add(SDK_VIEW, () => sdkMessages(n, false, false, 'cpu-friendly', (t) => sleeping.push(t)))
  producer = meanTimes(sleeping)
  results[results.length - 1]!.note =
    'consumer receives the live view (by reference), reads it in place, destroys it in a turn' + (producer ? `. Producer, per message (warm batches): ${describeProducer(producer)}` : '')
  await add(`${SDK_VIEW}, prefault`, () => sdkMessages(n, false, true), 'SharedMemory.create({ prefault: true })')
  await add('SDK tx.put + send(view), copy out', () => sdkMessages(n, true, false), 'consumer copies each view into its own buffer (shm.copyBytes) before destroying it')
  producerLow = undefined
  if (spinOk) {
    const spinning: ProducerTimes[] = []
    await add(SDK_VIEW_LOW, () => sdkMessages(n, false, false, 'low-latency', (t) => spinning.push(t)))
    producerLow = meanTimes(spinning)
    results[results.length - 1]!.note =
      "both sides wait with { wait: 'low-latency' } (spin): no wake-ups, but a core each" + (producerLow ? `. Producer, per message: ${describeProducer(producerLow)}` : '')
  }
  await add(SDK_COPIED, () => sdkCopied(n), 'the default path: send copies the bytes into a Frame record, receive copies them out into a new Uint8Array (two copies per message)')
  await add(SDK_RAW, () => sdkRaw(n, false), `${WINDOW} slots allocated once; copy into the slot outside any turn, send the slot number (inline, no turn)`)
  await add('SDK raw, copy out', () => sdkRaw(n, true), 'consumer copies each slot into its own buffer (shm.copyBytes)')
  if (spinOk) await add('SDK raw, low-latency', () => sdkRaw(n, false, 'low-latency'), "both sides wait with { wait: 'low-latency' } (spin)")
  const sta = peerUnavailable('shm-typed-array')
  if (sta === undefined && !spinOk) results.push({ name: STA, note: 'skipped: spins, needs 2 or more cores' })
  else if (sta === undefined) await add(STA, () => shmTypedArray(n), `${WINDOW}-slot ring in one segment; no wait/notify in the library: both sides spin`)
  else results.push({ name: STA, note: sta })
  const mjx = peerUnavailable('@markusjx/shared_memory')
  const MJX = '@markusjx/shared_memory (write/readBuffer)'
  if (mjx === undefined) await add(MJX, () => markusjx(n), 'copies in and out of one block; fork IPC says when (window 1)')
  else results.push({ name: MJX, note: mjx })
  await add(IPC_BASE, () => childIpc(n, 'advanced'), 'Buffer in the message')
  await add('child_process IPC (json)', () => childIpc(n, 'json'), 'base64 string in the message')
  await add('worker_threads postMessage (copy)', () => workerThread(n, false), 'a thread, not a process')
  await add('worker_threads postMessage (transfer)', () => workerThread(n, true), 'a new ArrayBuffer per message (filled, then transferred)')
  await add('Unix domain socket', () => unixSocket(n), 'consumer reassembles each message into one buffer')

  const memcpyWarm = rate(results.find((r) => r.name === MEMCPY)!.timing!.warm, n)
  const ipcWarm = rate(results.find((r) => r.name === IPC_BASE)!.timing!.warm, n)
  return results.map(({ name, timing, note }): BenchRow => {
    if (timing === undefined) return { case: name, figures: { cold: textFigure('n/a'), warm: textFigure('n/a') }, note }
    const warm = rate(timing.warm, n)
    return {
      case: name,
      figures: {
        cold: bytesPerSec(rate(timing.cold, n)),
        warm: bytesPerSec(warm),
        'µs/message': us((MESSAGE_BYTES / warm) * 1e6),
        'vs memcpy': ratio(warm / memcpyWarm),
        'vs IPC': ratio(warm / ipcWarm),
      },
      note: note === undefined ? `${n} messages` : note,
    }
  })
}

const GiB = 2 ** 30

export function checks(rows: BenchRow[]): Check[] {
  // The loan row is the SDK figure, and the one each target is met or missed by:
  // channel.loan → send → receive → release is the SDK's zero-copy bulk API. The
  // raw-slots row (slots allocated once and managed by hand) stays in the text for
  // comparison; it does not meet a target for the API.
  const sdk = rowOf(rows, SDK_LOAN).figures
  const raw = rowOf(rows, SDK_RAW).figures
  const memcpyWarm = valueOf(rows, MEMCPY, 'warm')
  const ipcWarm = valueOf(rows, IPC_BASE, 'warm')
  const perMessage = (name: string) => valueOf(rows, name, 'µs/message')
  const f = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : 'n/a')
  const staRatio = valueOf(rows, STA, 'vs memcpy')
  const staWarm = valueOf(rows, STA, 'warm')
  const busyRatio = valueOf(rows, MEMCPY_BUSY, 'vs memcpy')
  const lowRatio = valueOf(rows, SDK_VIEW_LOW, 'vs memcpy')
  const viewRatio = valueOf(rows, SDK_VIEW, 'vs memcpy')
  const rawRatio = raw['vs memcpy']!.value
  const sdkRatio = sdk['vs memcpy']!.value
  const sdkWarm = sdk.warm!.value
  const copy = perMessage(MEMCPY)
  const L = loanProducer
  const loanPart =
    L === undefined
      ? ''
      : `In the loan row the producer spent, per message, ${f(L.loan)} µs in loan (a pooled array taken by compare-and-swap, no turn), ${f(L.fill)} µs filling it (the one copy; the one-process memcpy takes ${f(copy)} µs), ${f(L.send)} µs in send (the frame naming the loan, the ring slot, and waking the consumer when it sleeps), and ${f(L.ackWait)} µs waiting for acknowledgements. ` +
        'The consumer takes no turn either: receive claims the loan and release gives it back to the pool, each by compare-and-swap. '
  const p = producer
  const handOff =
    p === undefined
      ? ''
      : `In the tx.put + send(view) row (${viewRatio.toFixed(2)}×; one producer turn per message for put, send and destroy) the producer spent, per message, ${f(p.copy)} µs in tx.put copying the message into the segment, ${f(p.send)} µs in send (the ring slot, and the futex wake of the sleeping consumer: a system call that on this VM has to wake the other virtual CPU), ` +
        `${f(p.release)} µs dropping its own reference and leaving the turn, ${f(p.turnWait)} µs waiting for the turn while the consumer held it, and ${f(p.ackWait)} µs waiting for acknowledgements. `
  const q = producerLow
  const lowPart = !Number.isFinite(lowRatio)
    ? ''
    : `With low-latency waits nobody sleeps and nobody is woken, and the tx.put row reaches ${lowRatio.toFixed(2)}× memcpy against ${viewRatio.toFixed(2)}× ` +
      (q === undefined ? '. ' : `(its producer: ${f(q.copy)} µs copying, ${f(q.send)} µs sending, ${f(q.release)} µs releasing, ${f(q.turnWait)} µs waiting for the turn, ${f(q.ackWait)} µs waiting for acknowledgements). `) +
      (Number.isFinite(busyRatio) && busyRatio < 0.85 ? `Spinning has its own price here: a process spinning on the other core slows even the one-process memcpy to ${busyRatio.toFixed(2)}× (the "other core busy" row). ` : '')
  const ring = Number.isFinite(staRatio)
    ? `A ring with fixed slots where both sides spin on counters (shm-typed-array: nothing allocated, no turns, no wake-ups) reaches ${staRatio.toFixed(2)}× memcpy in this run` +
      (staRatio < 0.8 ? ', so on this VM even a hand-off with no allocation and no sleeping stays under the target. ' : '. ') +
      `A ring of fixed slots (it, and the raw-slots row) writes each message into the next of its ${WINDOW} slots, ${((WINDOW * MESSAGE_BYTES) / 1e6).toFixed(1)} MB in turn, more than a core's cache holds on most machines, so every copy goes to memory that left the cache; a loan reuses the array its producer filled last once the consumer has given it back, still in cache (the memcpy ceiling copies between two buffers that stay in cache). `
    : ''
  const loanLowWarm = valueOf(rows, SDK_LOAN_LOW, 'warm')
  const staRow = rows.find((r) => r.case === STA)
  const staMissing = !Number.isFinite(staWarm)
  return [
    {
      target: 'bulk ≥ 0.8× memcpy (warm)',
      measured: `loan → send → receive → release ${sdkRatio.toFixed(2)}×, raw slots ${rawRatio.toFixed(2)}× (${(sdkWarm / GiB).toFixed(2)} / ${(raw.warm!.value / GiB).toFixed(2)} GiB/s vs memcpy ${(memcpyWarm / GiB).toFixed(2)} GiB/s)`,
      met: sdkRatio >= 0.8,
      why:
        `A message of 400,000 bytes takes ${f(perMessage(SDK_LOAN))} µs from one process to the other with loan → send → receive → release, against ${f(copy)} µs for the copy alone (memcpy) and ${f(perMessage(SDK_ALONE))} µs for tx.put, send, receive and destroy in one process with nothing to wait for (the "one process" row). ` +
        loanPart +
        handOff +
        lowPart +
        ring +
        `The raw-slots row allocates nothing per message and sends only a slot number through the ring (no turn on either side); it reaches ${rawRatio.toFixed(2)}×.`,
    },
    {
      target: 'bulk ≥ 10× child_process IPC (warm)',
      measured: `loan → send → receive → release ${sdk['vs IPC']!.value.toFixed(1)}×, raw slots ${raw['vs IPC']!.value.toFixed(1)}× (IPC advanced ${(ipcWarm / GiB).toFixed(3)} GiB/s)`,
      met: sdk['vs IPC']!.value >= 10,
      why:
        `Same cause as the memcpy target. child_process IPC takes ${f(perMessage(IPC_BASE))} µs per message here, so 10× means ${f(perMessage(IPC_BASE) / 10)} µs per message; ` +
        `the copy alone takes ${f(copy)} µs, and the hand-off between the processes (ring slot, wake-up, acknowledgement) adds ${f(perMessage(SDK_LOAN) - copy)} µs on top of it in the loan row.`,
    },
    {
      target: '400 KB loan → send → receive → release, consumer reading in place: ≥ the shm-typed-array ring of the same run',
      measured: staMissing
        ? `n/a: ${staRow?.note ?? 'no shm-typed-array row'}`
        : `loan ${(sdkWarm / GiB).toFixed(2)} GiB/s vs shm-typed-array ${(staWarm / GiB).toFixed(2)} GiB/s (${(sdkWarm / staWarm).toFixed(2)}×; ${f(perMessage(SDK_LOAN))} vs ${f(perMessage(STA))} µs/message)` +
          (Number.isFinite(loanLowWarm) ? `; spinning like the ring (low-latency) ${(loanLowWarm / staWarm).toFixed(2)}× (${f(perMessage(SDK_LOAN_LOW))} µs/message)` : ''),
      met: !staMissing && sdkWarm >= staWarm,
      na: staMissing,
      why:
        `Both copy each message once into shared memory and the consumer reads it in place; what differs is the hand-off. shm-typed-array writes into one of ${WINDOW} fixed slots and publishes a counter, and both sides spin on counters: nothing is allocated, no turn is taken, nobody sleeps or is woken. ` +
        loanPart +
        `Per message that is ${f(perMessage(SDK_LOAN) - perMessage(STA))} µs more than the ring in this run; the raw-slots row, which moves the same bytes through the same channel with no turn and no allocation, takes ${f(perMessage(SDK_RAW))} µs.`,
    },
  ]
}
