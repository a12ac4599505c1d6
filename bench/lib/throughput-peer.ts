// The consumer side of bench/throughput.ts: takes the messages the parent puts,
// checks each one's stamp (so a stale or torn message fails the run), and tells
// the parent how far it got. One process per peer kind:
//   throughput-peer.ts sdk <segment> view|copy [wait]   receives views sent by reference, reads (or copies) them, destroys them
//   throughput-peer.ts sdk-copied <segment>              receives copies (send(bytes) → receive)
//   throughput-peer.ts sdk-loan <segment> view [wait]    receives loans (data.loan → send), reads them in place, releases each
//   throughput-peer.ts sdk-raw <segment> view|copy [wait]  ring slots in the segment + slot numbers as messages
//   throughput-peer.ts ipc                               fork IPC (serialization set by the parent)
//   throughput-peer.ts socket <path>                     Unix domain socket, parent listens
//   throughput-peer.ts shm-typed-array <dataKey> <ctrlKey>
//   throughput-peer.ts markusjx <id>
//   throughput-peer.ts spinner                           only keeps its core busy (the memcpy row beside a spinner)
// The parent starts every run with { cmd: 'run', first, n } and waits for { done }.
import * as net from 'node:net'
import { SharedMemory, type Channel, type Turn, type WaitMode } from 'interprocess-objects'
import { checkStamp, MESSAGE_BYTES, STALL_MS, WINDOW } from './throughput-common'
import { requirePeer } from './peer_packages'

const [kind, arg1, arg2, waitArg] = process.argv.slice(2)
const wait: WaitMode = waitArg === 'low-latency' ? 'low-latency' : 'cpu-friendly'
const waitOptions = { wait, timeoutMs: STALL_MS }
const accessOptions = { wait }

interface RunCommand {
  cmd: 'run'
  first: number
  n: number
}

/** A touched buffer to copy messages into (the "copy out" variants). */
const local = new Uint8Array(MESSAGE_BYTES).fill(1)

function onRun(handler: (cmd: RunCommand) => void | Promise<void>): void {
  process.on('message', (m: { cmd?: string }) => {
    if (m.cmd === 'run') {
      Promise.resolve(handler(m as RunCommand)).catch((err: unknown) => {
        console.error(`throughput peer (${kind}):`, err)
        process.exit(1)
      })
    }
  })
}

// Every kind: the parent ends the peer with { cmd: 'exit' }.
process.on('message', (m: { cmd?: string }) => {
  if (m.cmd === 'exit') process.exit(0)
})

function sdk(name: string, copyOut: boolean): void {
  const shm = SharedMemory.open({ name })
  const data = shm.channel<Uint8Array>('data')
  const ack = shm.channel<number>('ack')
  const views: Uint8Array[] = []
  const destroyAll = (tx: Turn) => {
    for (const view of views) tx.destroy(view)
  }
  onRun(({ first, n }) => {
    let taken = 0
    while (taken < n) {
      // Each message is the producer's view, sent by reference: this process owns it now.
      views.push(data.receiveSync(waitOptions))
      for (let m = data.tryReceive(); m !== undefined; m = data.tryReceive()) views.push(m)
      for (const view of views) {
        if (copyOut) {
          shm.copyBytes(local, view)
          checkStamp(local, first + taken)
        } else checkStamp(view, first + taken)
        taken++
      }
      shm.access(destroyAll, accessOptions)
      views.length = 0
      ack.send(taken)
    }
    process.send!({ done: taken })
  })
  process.send!('ready')
}

/** Receives the batches of channel "data", handing each message to `take`, and acknowledges on "ack". */
function sdkConsume(name: string, take: (data: Channel<Uint8Array>, m: Uint8Array, seq: number) => void): void {
  const shm = SharedMemory.open({ name })
  const data = shm.channel<Uint8Array>('data')
  const ack = shm.channel<number>('ack')
  onRun(({ first, n }) => {
    let taken = 0
    while (taken < n) {
      take(data, data.receiveSync(waitOptions), first + taken++)
      for (let m = data.tryReceive(); m !== undefined; m = data.tryReceive()) take(data, m, first + taken++)
      ack.send(taken)
    }
    process.send!({ done: taken })
  })
  process.send!('ready')
}

/** Copies: an ordinary Uint8Array, nothing to destroy. */
const sdkCopied = (name: string): void => sdkConsume(name, (_, m, seq) => checkStamp(m, seq))

/**
 * Loans the producer filled and sent by reference: this process owns each one now,
 * reads it where it lies and gives it back to the segment.
 */
const sdkLoan = (name: string): void =>
  sdkConsume(name, (data, view, seq) => {
    checkStamp(view, seq)
    data.release(view)
  })

function sdkRaw(name: string, copyOut: boolean): void {
  const shm = SharedMemory.open({ name })
  const data = shm.channel<number>('data')
  const ack = shm.channel<number>('ack')
  let slots: Uint8Array[] = []
  process.on('message', (m: { slots?: number[] }) => {
    if (m.slots) {
      slots = m.slots.map((offset) => new Uint8Array(shm.buffer, shm.bytes.byteOffset + offset, MESSAGE_BYTES))
      process.send!('ready')
    }
  })
  const check = (seq: number, expected: number) => {
    if (seq !== expected) throw new Error(`sdk-raw: expected message ${expected}, got ${seq}`)
    const bytes = slots[seq % slots.length]!
    if (copyOut) {
      shm.copyBytes(local, bytes)
      checkStamp(local, seq)
    } else checkStamp(bytes, seq)
  }
  onRun(({ first, n }) => {
    let taken = 0
    while (taken < n) {
      check(data.receiveSync(waitOptions), first + taken++)
      for (let m = data.tryReceive(); m !== undefined; m = data.tryReceive()) check(m, first + taken++)
      ack.send(taken)
    }
    process.send!({ done: taken })
  })
}

function ipc(): void {
  // Every data message is acknowledged; the parent keeps WINDOW in flight.
  process.on('message', (m: { seq?: number; data?: string | Uint8Array }) => {
    if (m.seq === undefined) return
    const bytes = typeof m.data === 'string' ? Buffer.from(m.data, 'base64') : m.data!
    checkStamp(bytes, m.seq)
    process.send!({ ack: m.seq })
  })
  process.send!('ready')
}

function socket(path: string): void {
  const sock = net.connect(path)
  let expect = 0
  let filled = 0
  sock.on('data', (chunk: Buffer) => {
    let at = 0
    while (at < chunk.length) {
      // Reassemble each message into one contiguous buffer, as a receiver must.
      const take = Math.min(MESSAGE_BYTES - filled, chunk.length - at)
      local.set(chunk.subarray(at, at + take), filled)
      filled += take
      at += take
      if (filled === MESSAGE_BYTES) {
        checkStamp(local, expect)
        const ack = Buffer.allocUnsafe(4)
        ack.writeUInt32LE(expect)
        sock.write(ack)
        expect++
        filled = 0
      }
    }
  })
  sock.on('connect', () => process.send!('ready'))
  sock.on('error', (err) => {
    console.error('throughput peer (socket):', err)
    process.exit(1)
  })
}

interface ShmTypedArray {
  get(key: number, type: 'Buffer'): Buffer | null
  get(key: number, type: 'Int32Array'): Int32Array | null
  detachAll(): number
}

function shmTypedArray(dataKey: number, ctrlKey: number): void {
  const shm = requirePeer<ShmTypedArray>('shm-typed-array')
  const data = shm.get(dataKey, 'Buffer')
  const ctrl = shm.get(ctrlKey, 'Int32Array')
  if (data === null || ctrl === null) throw new Error('shm-typed-array: segments not found')
  const slots = Math.floor(data.length / MESSAGE_BYTES)
  // ctrl[0]: messages written (parent), ctrl[1]: messages consumed (here). The
  // library has no wait/notify, so both sides spin on the words.
  onRun(({ first, n }) => {
    for (let seq = first; seq < first + n; seq++) {
      let spins = 0
      let since = 0
      while (Atomics.load(ctrl, 0) <= seq) {
        if (++spins === 1 << 20) {
          spins = 0
          const now = performance.now()
          if (since === 0) since = now
          else if (now - since > STALL_MS) throw new Error('shm-typed-array: producer stalled')
        }
      }
      const at = (seq % slots) * MESSAGE_BYTES
      checkStamp(data.subarray(at, at + MESSAGE_BYTES), seq)
      Atomics.store(ctrl, 1, seq + 1)
    }
    process.send!({ done: n })
  })
  process.on('exit', () => shm.detachAll())
  process.send!('ready')
}

interface MarkusjxMemory {
  readBuffer(): Buffer
}

function markusjx(id: string): void {
  const SharedMemoryBlock = requirePeer<new (name: string, size: number, global: boolean, host: boolean) => MarkusjxMemory>('@markusjx/shared_memory')
  const mem = new SharedMemoryBlock(id, MESSAGE_BYTES, false, false)
  // One block, no offsets and no wait/notify: the parent writes a message, says so
  // over fork IPC, this side copies it out (readBuffer) and acknowledges.
  process.on('message', (m: { seq?: number }) => {
    if (m.seq === undefined) return
    checkStamp(mem.readBuffer(), m.seq)
    process.send!({ ack: m.seq })
  })
  process.send!('ready')
}

function spinner(): void {
  // Spin in 1 ms slices so that the exit message still gets through.
  const words = new Int32Array(16)
  const slice = () => {
    const end = performance.now() + 1
    while (performance.now() < end) for (let i = 0; i < 1000; i++) Atomics.load(words, 0)
    setImmediate(slice)
  }
  process.send!('ready')
  slice()
}

switch (kind) {
  case 'spinner':
    spinner()
    break
  case 'sdk':
    sdk(arg1!, arg2 === 'copy')
    break
  case 'sdk-copied':
    sdkCopied(arg1!)
    break
  case 'sdk-loan':
    sdkLoan(arg1!)
    break
  case 'sdk-raw':
    sdkRaw(arg1!, arg2 === 'copy')
    break
  case 'ipc':
    ipc()
    break
  case 'socket':
    socket(arg1!)
    break
  case 'shm-typed-array':
    shmTypedArray(Number(arg1), Number(arg2))
    break
  case 'markusjx':
    markusjx(arg1!)
    break
  default:
    throw new Error(`throughput-peer: unknown kind ${String(kind)} (window ${WINDOW})`)
}
