// The seed's headline benchmark: 1000 messages of 400,000 bytes, one process puts
// them, the other takes them. Every peer moves the same stamped messages with at
// most WINDOW unacknowledged, and the consumer checks every stamp.
//   cold = the first batch on fresh processes and a fresh segment/socket/channel
//   warm = the next batch, same processes (steady state)
// The ceiling is one memcpy per message in one process (Uint8Array.set between two
// touched buffers): every shared-memory path here copies each message once on the
// producer side, like that ceiling.
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import type { SerializationType } from 'node:child_process'
import type { Worker } from 'node:worker_threads'
import { SharedMemory, type Transaction, type WaitMode } from '../core'
import { nextFromWorker, startPeer, startWorker, uniqueName, type Peer } from './lib/processes'
import { rowOf, valueOf, type BenchRow, type Check, type RunOptions } from './lib/scenario'
import { bytesPerSec, ratio, textFigure } from './lib/stats'
import { MESSAGE_BYTES, stamp, STALL_MS, WINDOW } from './lib/throughput-common'
import { peerUnavailable, requirePeer } from './lib/peer_packages'

export const title = `throughput: messages of ${MESSAGE_BYTES.toLocaleString('en-US')} bytes from one process to another (the seed's test)`
export const notes = [
  `cold = first batch on fresh processes and a fresh segment/socket; warm = the next batch. At most ${WINDOW} messages in flight, every one acknowledged and its stamp checked.`,
  'vs memcpy = warm ÷ memcpy (warm); vs IPC = warm ÷ child_process IPC (advanced, warm). Higher is better.',
]
export const about = `The seed's headline test. One process puts N messages of ${MESSAGE_BYTES.toLocaleString('en-US')} bytes, another takes them; the consumer checks a stamp in every message, so a message counts only once it is readable, whole, on the other side. At most ${WINDOW} messages are unacknowledged at any time (every peer uses the same window). **cold** is the first batch right after the processes started and the segment (or socket, channel) was created, so it pays page faults and JIT warm-up; **warm** is the next batch in the same processes. The ceiling is one \`Uint8Array.set\` per message between two touched buffers in one process: every shared-memory path below also copies each message exactly once (into the segment), so it cannot beat that. "view" consumers read the message where it lies in the segment (zero-copy); "copy out" consumers copy it into their own buffer first, as code that keeps the data past the turn would.`

const SEGMENT_BYTES = 32 << 20

interface Plan {
  messages: number
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

async function twoRuns(run: (first: number, n: number) => Promise<void> | void, n: number): Promise<Timing> {
  const t0 = performance.now()
  await run(0, n)
  const t1 = performance.now()
  await run(n, n)
  const t2 = performance.now()
  return { cold: (t1 - t0) / 1e3, warm: (t2 - t1) / 1e3 }
}

// ---------------------------------------------------------------------------
// The ceiling: one process, one copy per message.

function memcpy(n: number): { warm: number; cold: number } {
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
  const warm = pass()
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

// ---------------------------------------------------------------------------
// This SDK

/** Waits for acks on channel 'ack' (the consumer's running count of messages taken). */
function waitForAck(shm: SharedMemory, acked: number, wait: WaitMode): number {
  shm.waitForMessageSync({ channel: 'ack', timeoutMs: STALL_MS, wait })
  return shm.access(
    (tx) => {
      let latest = acked
      while (tx.hasMessages({ channel: 'ack' })) latest = tx.takeMessage<number>({ channel: 'ack' })
      return latest
    },
    { wait },
  )
}

function drainAcks(shm: SharedMemory): void {
  shm.access((tx) => {
    while (tx.hasMessages({ channel: 'ack' })) tx.takeMessage({ channel: 'ack' })
  })
}

async function sdkMessages(n: number, copyOut: boolean, prefault: boolean, wait: WaitMode = 'cpu-friendly'): Promise<Timing> {
  const name = uniqueName('bench-tp')
  const shm = SharedMemory.create({ name, size: SEGMENT_BYTES, prefault })
  const peer = startPeer('throughput-peer', ['sdk', name, copyOut ? 'copy' : 'view', wait])
  const accessOptions = { wait }
  try {
    await expectReady(peer)
    const src = sourceMessage()
    return await twoRuns(async (first, count) => {
      drainAcks(shm)
      peer.send({ cmd: 'run', first, n: count })
      let sent = 0
      let acked = 0
      while (sent < count) {
        if (sent - acked >= WINDOW) {
          acked = waitForAck(shm, acked, wait)
          continue
        }
        stamp(src, first + sent)
        shm.access((tx) => {
          tx.putMessage(src)
        }, accessOptions)
        sent++
      }
      await expectDone(peer, count)
    }, n)
  } finally {
    await stopPeer(peer)
    shm.close()
  }
}

/** The same API calls with no other process: what the codec, allocator and turns cost by themselves. */
function sdkAlone(n: number): Timing {
  const shm = SharedMemory.create({ name: uniqueName('bench-t1'), size: SEGMENT_BYTES })
  try {
    const src = sourceMessage()
    let taken = 0
    const put = (tx: Transaction) => {
      tx.putMessage(src)
    }
    const take = (tx: Transaction) => {
      const msg = tx.takeMessage<Uint8Array>()
      if (tx.bufferOf(msg)[0] !== (taken & 0xff)) throw new Error('throughput: wrong message')
      tx.destroy(msg)
      taken++
    }
    const pass = (first: number, count: number) => {
      for (let i = 0; i < count; i++) {
        stamp(src, first + i)
        shm.access(put)
        shm.access(take)
      }
    }
    const t0 = performance.now()
    pass(0, n)
    const t1 = performance.now()
    pass(n, n)
    const t2 = performance.now()
    return { cold: (t1 - t0) / 1e3, warm: (t2 - t1) / 1e3 }
  } finally {
    shm.close()
  }
}

async function sdkRaw(n: number, copyOut: boolean, wait: WaitMode = 'cpu-friendly'): Promise<Timing> {
  const name = uniqueName('bench-tr')
  const shm = SharedMemory.create({ name, size: SEGMENT_BYTES })
  const peer = startPeer('throughput-peer', ['sdk-raw', name, copyOut ? 'copy' : 'view', wait])
  const accessOptions = { wait }
  try {
    // WINDOW slots allocated once; the producer writes a message straight into its
    // slot (outside any turn: the slot is its own until acknowledged) and then puts
    // only the slot's sequence number as a message.
    const slots = shm.access((tx) => Array.from({ length: WINDOW }, () => tx.bufferOf(tx.put(new Uint8Array(MESSAGE_BYTES)))))
    peer.send({ slots: slots.map((s) => s.byteOffset - shm.bytes.byteOffset) })
    await expectReady(peer)
    const src = sourceMessage()
    return await twoRuns(async (first, count) => {
      drainAcks(shm)
      peer.send({ cmd: 'run', first, n: count })
      let sent = 0
      let acked = 0
      while (sent < count) {
        if (sent - acked >= WINDOW) {
          acked = waitForAck(shm, acked, wait)
          continue
        }
        const seq = first + sent
        stamp(src, seq)
        slots[seq % WINDOW]!.set(src)
        shm.access((tx) => {
          tx.putMessage(seq)
        }, accessOptions)
        sent++
      }
      await expectDone(peer, count)
    }, n)
  } finally {
    await stopPeer(peer)
    shm.close()
  }
}

// ---------------------------------------------------------------------------
// Peers

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
    const onAck = (cb: (seq: number) => void) => {
      const listener = (m: { ack?: number }) => {
        if (m.ack !== undefined) cb(m.ack)
      }
      peer.proc.on('message', listener)
      return () => peer.proc.off('message', listener)
    }
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
    return await twoRuns((first, count) => windowed(first, count, send, onAck), n)
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
    return await twoRuns((first, count) => windowed(first, count, send, onAck), n)
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
    const timing = await twoRuns((first, count) => windowed(first, count, send, onAck), n)
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
    return await twoRuns(async (first, count) => {
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
    const onAck = (cb: (seq: number) => void) => {
      const listener = (m: { ack?: number }) => {
        if (m.ack !== undefined) cb(m.ack)
      }
      peer.proc.on('message', listener)
      return () => peer.proc.off('message', listener)
    }
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
    return await twoRuns(run, n)
  } finally {
    await stopPeer(peer)
  }
}

// ---------------------------------------------------------------------------

const IPC_BASE = 'child_process IPC (advanced)'
const MEMCPY = 'memcpy in one process (ceiling)'
const SDK_VIEW = 'SDK putMessage/takeMessage, view'
const SDK_VIEW_LOW = 'SDK putMessage/takeMessage, view, low-latency'
const SDK_ALONE = 'SDK putMessage + takeMessage, one process (no peer)'
const SDK_RAW = 'SDK raw: write into segment slots + putMessage(seq)'

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const plan: Plan = { messages: opts.quick ? 100 : 1000 }
  const n = plan.messages
  // Spinning peers need a core each; on one core they only progress when the scheduler switches.
  const spinOk = availableParallelism() >= 2
  const results: Array<{ name: string; timing?: Timing; note?: string }> = []
  const add = async (name: string, measure: () => Promise<Timing> | Timing, note?: string) => {
    results.push({ name, timing: await measure(), note })
  }
  await add(MEMCPY, () => memcpy(n), 'Uint8Array.set between two touched buffers; cold = into never-touched memory')
  await add(SDK_ALONE, () => sdkAlone(n), 'put in one turn, take + destroy in the next: the API cost with nothing to wait for')
  await add(SDK_VIEW, () => sdkMessages(n, false, false), 'consumer reads tx.bufferOf(message) in place')
  await add('SDK putMessage/takeMessage, view, prefault', () => sdkMessages(n, false, true), 'SharedMemory.create({ prefault: true })')
  await add('SDK putMessage/takeMessage, copy out', () => sdkMessages(n, true, false), 'consumer copies each message into its own buffer')
  if (spinOk) await add(SDK_VIEW_LOW, () => sdkMessages(n, false, false, 'low-latency'), "both sides wait with { wait: 'low-latency' } (spin)")
  await add(SDK_RAW, () => sdkRaw(n, false), `${WINDOW} slots allocated once; copy into the slot outside the turn`)
  await add('SDK raw, copy out', () => sdkRaw(n, true))
  if (spinOk) await add('SDK raw, low-latency', () => sdkRaw(n, false, 'low-latency'), "both sides wait with { wait: 'low-latency' } (spin)")
  const sta = peerUnavailable('shm-typed-array')
  if (sta === undefined && !spinOk) results.push({ name: 'shm-typed-array', note: 'skipped: spins, needs 2 or more cores' })
  else if (sta === undefined) await add('shm-typed-array (ring + Atomics spin)', () => shmTypedArray(n), 'no wait/notify in the library: both sides spin')
  else results.push({ name: 'shm-typed-array', note: sta })
  const mjx = peerUnavailable('@markusjx/shared_memory')
  if (mjx === undefined) await add('@markusjx/shared_memory (write/readBuffer)', () => markusjx(n), 'copies in and out of one block; fork IPC says when (window 1)')
  else results.push({ name: '@markusjx/shared_memory', note: mjx })
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
        'vs memcpy': ratio(warm / memcpyWarm),
        'vs IPC': ratio(warm / ipcWarm),
      },
      note: note === undefined ? `${n} messages` : note,
    }
  })
}

const GiB = 2 ** 30

export function checks(rows: BenchRow[]): Check[] {
  const sdk = rowOf(rows, SDK_VIEW).figures
  const raw = rowOf(rows, SDK_RAW).figures
  const memcpyWarm = valueOf(rows, MEMCPY, 'warm')
  const ipcWarm = valueOf(rows, IPC_BASE, 'warm')
  const best = Math.max(sdk['vs memcpy']!.value, raw['vs memcpy']!.value)
  return [
    {
      target: 'bulk ≥ 0.8× memcpy (warm)',
      measured: `putMessage ${sdk['vs memcpy']!.value.toFixed(2)}×, raw slots ${raw['vs memcpy']!.value.toFixed(2)}× (${(sdk.warm!.value / GiB).toFixed(2)} / ${(raw.warm!.value / GiB).toFixed(2)} GiB/s vs memcpy ${(memcpyWarm / GiB).toFixed(2)} GiB/s)`,
      met: best >= 0.8,
      why:
        'The API itself is close to the ceiling: put and take in one process reach ~0.6× memcpy (the "one process" row). ' +
        'Across processes every byte is written on one core and read on the other, so it crosses between the cores\' caches, which the one-core memcpy ceiling never pays, ' +
        'and every message costs a wake-up of the other side (see the messages table: tens of µs per hop on this VM) and an acknowledgement back. ' +
        'Peers that share memory without a wake-up (shm-typed-array spins on both sides) land in the same range; the raw-slots pattern, which allocates its slots once, is the faster SDK path.',
    },
    {
      target: 'bulk ≥ 10× child_process IPC (warm)',
      measured: `putMessage ${sdk['vs IPC']!.value.toFixed(1)}×, raw slots ${raw['vs IPC']!.value.toFixed(1)}× (IPC advanced ${(ipcWarm / GiB).toFixed(3)} GiB/s)`,
      met: Math.max(sdk['vs IPC']!.value, raw['vs IPC']!.value) >= 10,
      why: 'putMessage pays an allocation, a turn and a wake-up per message (see the first target); the raw-slots pattern avoids the allocation and is the one that reaches it when the machine is quiet.',
    },
  ]
}
