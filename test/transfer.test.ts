// The segment lives in a SharedArrayBuffer (issue "Reliability II", item 1). An
// ArrayBuffer there could be transferred away — structuredClone or postMessage with a
// transfer list — and freed by GC while it still was the mapping. A SharedArrayBuffer
// cannot be detached: every transfer route throws, and the segment keeps working and
// closes cleanly. worker_threads share it by postMessage (no copy); other processes
// see the same bytes through their own mapping.
import { fork } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MessageChannel, Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { native } from '../core/native'
import { childrenDir, uniqueName } from './helpers/processes'
import { held } from './helpers/segments'

const SIZE = 1 << 20
const isLinux = process.platform === 'linux'
const page = native.pageSize

const opened: SharedMemory[] = []
afterEach(() => {
  for (const shm of opened.splice(0)) shm.close()
})

function create(): SharedMemory {
  const shm = SharedMemory.create({ name: uniqueName('xfer'), size: SIZE })
  opened.push(shm)
  return shm
}

/** What structuredClone / postMessage throw for a SharedArrayBuffer in a transfer list. */
function refusal(fn: () => unknown): Error {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown, 'the transfer was accepted').toBeDefined()
  const err = thrown as Error
  expect(err instanceof TypeError || err.name === 'DataCloneError', `${err.name}: ${err.message}`).toBe(true)
  return err
}

/**
 * After a refused transfer: the buffer is the same, whole and shared; a mapped value
 * put before still reads back; the heap checks out; and close() gives everything back.
 */
function stillWorks(shm: SharedMemory, buffer: SharedArrayBuffer, putBefore: number): void {
  expect(shm.buffer).toBe(buffer)
  expect(buffer.byteLength).toBe(SIZE + page)
  expect(shm.bytes.byteLength).toBe(SIZE)
  expect(shm.bytes.buffer).toBe(buffer)
  shm.access((tx) => {
    expect(tx.takeMessage()).toBe(putBefore)
    tx.putMessage({ after: [1, 2, 3] })
    expect(tx.takeMessage()).toEqual({ after: [1, 2, 3] })
  })
  expect(shm.check().clean).toBe(true)
  const name = shm.name
  opened.splice(opened.indexOf(shm), 1)
  shm.close()
  if (isLinux) {
    expect(held(name)).toEqual({ fds: 0, maps: 0 })
    expect(fs.existsSync(`/dev/shm/ipo-${name}`)).toBe(false)
  }
  // The window now holds private zeros; its views stay valid (nothing was detached).
  expect(buffer.byteLength).toBe(SIZE + page)
  expect(new Uint8Array(buffer).every((b) => b === 0)).toBe(true)
}

/** A transfer list naming `buffer` (the types only admit ArrayBuffers; that is the point). */
function listed(buffer: ArrayBufferLike): ArrayBuffer[] {
  return [buffer as ArrayBuffer]
}

function withMessage(shm: SharedMemory, value: number): void {
  shm.access((tx) => tx.putMessage(value))
}

describe('shm.buffer is a SharedArrayBuffer', () => {
  it('bytes is exactly the segment, at a page boundary less than a page into the buffer', () => {
    const shm = create()
    expect(shm.buffer).toBeInstanceOf(SharedArrayBuffer)
    expect(shm.buffer.byteLength).toBe(SIZE + page)
    expect(shm.bytes.buffer).toBe(shm.buffer)
    expect(shm.bytes.byteLength).toBe(SIZE)
    expect(shm.bytes.byteOffset).toBeGreaterThanOrEqual(0)
    expect(shm.bytes.byteOffset).toBeLessThan(page)
    // Mapped values lie in the same buffer.
    shm.access((tx) => {
      const f = tx.put(new Float64Array([1, 2]))
      expect(f.buffer).toBe(shm.buffer)
      tx.destroy(f)
    })
  })

  it('Atomics.wait works on segment words (it needs a shared buffer)', () => {
    const shm = create()
    const word = new Int32Array(shm.buffer, shm.bytes.byteOffset, 1)
    expect(Atomics.wait(word, 0, 12345, 1)).toBe('not-equal')
  })
})

describe('no transfer route detaches the buffer', () => {
  it('structuredClone with the buffer, a view or a mapped value in the transfer list throws', () => {
    const shm = create()
    const buffer = shm.buffer
    withMessage(shm, 1)
    refusal(() => structuredClone(shm.buffer, { transfer: listed(shm.buffer) }))
    refusal(() => structuredClone(shm.bytes, { transfer: listed(shm.bytes.buffer) }))
    const view = new Float64Array(shm.buffer, shm.bytes.byteOffset + 8192, 4)
    refusal(() => structuredClone({ view }, { transfer: listed(view.buffer) }))
    shm.access((tx) => {
      const mapped = tx.put(new Uint8Array([7, 8, 9]))
      refusal(() => structuredClone(mapped, { transfer: listed(mapped.buffer) }))
      expect(Array.from(mapped)).toEqual([7, 8, 9])
      tx.destroy(mapped)
    })
    stillWorks(shm, buffer, 1)
  })

  it('ArrayBuffer.prototype.transfer cannot take it either (where the runtime has it)', () => {
    const shm = create()
    const buffer = shm.buffer
    withMessage(shm, 2)
    const proto = ArrayBuffer.prototype as unknown as Record<string, ((this: unknown) => unknown) | undefined>
    for (const method of ['transfer', 'transferToFixedLength']) {
      const fn = proto[method]
      if (typeof fn === 'function') expect(() => fn.call(shm.buffer)).toThrow(TypeError)
    }
    stillWorks(shm, buffer, 2)
  })

  it('MessageChannel: port.postMessage with a transfer list throws', () => {
    const shm = create()
    const buffer = shm.buffer
    withMessage(shm, 3)
    const { port1, port2 } = new MessageChannel()
    try {
      refusal(() => port1.postMessage(shm.buffer, listed(shm.buffer)))
      refusal(() => port1.postMessage({ bytes: shm.bytes }, listed(shm.bytes.buffer)))
    } finally {
      port1.close()
      port2.close()
    }
    stillWorks(shm, buffer, 3)
  })

  it('worker_threads: worker.postMessage and workerData with a transfer list throw', async () => {
    const shm = create()
    const buffer = shm.buffer
    withMessage(shm, 4)
    const worker = new Worker('require("node:worker_threads").parentPort.on("message", () => {})', { eval: true })
    try {
      refusal(() => worker.postMessage(shm.bytes, listed(shm.bytes.buffer)))
      refusal(() => worker.postMessage({ buffer: shm.buffer }, listed(shm.buffer)))
    } finally {
      await worker.terminate()
    }
    refusal(() => new Worker('0', { eval: true, workerData: shm.buffer, transferList: listed(shm.buffer) }))
    stillWorks(shm, buffer, 4)
  })

  it('child_process (the utility parentPort stand-in): send cannot transfer; the buffer survives a send', async () => {
    const shm = create()
    const buffer = shm.buffer
    withMessage(shm, 5)
    // 'advanced' serialization is the structured clone one; 'json' would send {}.
    const child = fork('-e', ['process.on("message", (m) => process.send(typeof m, () => process.disconnect()))'], {
      execPath: process.execPath,
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const reply = new Promise((resolve) => child.once('message', resolve))
    let sent: string
    try {
      child.send({ buffer: shm.buffer, bytes: shm.bytes })
      sent = 'sent'
    } catch (err) {
      // "#<SharedArrayBuffer> could not be cloned": it does not cross processes.
      expect((err as Error).message).toMatch(/could not be cloned/)
      sent = 'refused'
      child.send('plain')
    }
    expect(await reply).toBe(sent === 'sent' ? 'object' : 'string')
    await new Promise((resolve) => child.once('exit', resolve))
    stillWorks(shm, buffer, 5)
  })
})

describe('sharing', () => {
  it('a worker_thread given shm.buffer by postMessage sees writes both ways, with no copy', async () => {
    const shm = create()
    let offset = 0
    shm.access((tx) => {
      const words = tx.put(new Int32Array(4)) // a home for the words in the heap
      offset = words.byteOffset
    })
    const words = new Int32Array(shm.buffer, offset, 4)
    Atomics.store(words, 0, 41)
    const worker = new Worker(
      `
      const { parentPort } = require('node:worker_threads')
      parentPort.once('message', ({ buffer, offset }) => {
        const words = new Int32Array(buffer, offset, 4)
        const seen = Atomics.load(words, 0)
        Atomics.store(words, 1, seen + 1)
        Atomics.store(words, 2, 1)
        Atomics.notify(words, 2)
        const waited = Atomics.wait(words, 3, 0, 10000)
        let transfer = 'did not throw'
        try { structuredClone(buffer, { transfer: [buffer] }) } catch (err) { transfer = err.name }
        parentPort.postMessage({ seen, waited, second: Atomics.load(words, 3), shared: buffer instanceof SharedArrayBuffer, length: buffer.byteLength, transfer })
      })
      `,
      { eval: true },
    )
    try {
      const report = new Promise<Record<string, unknown>>((resolve) => worker.once('message', resolve))
      worker.postMessage({ buffer: shm.buffer, offset })
      // The worker's write reaches us through the segment.
      while (Atomics.load(words, 2) === 0) await new Promise((resolve) => setTimeout(resolve, 1))
      expect(Atomics.load(words, 1)).toBe(42)
      expect(shm.bytes[offset - shm.bytes.byteOffset + 4]).toBe(42)
      // Ours reaches it: Atomics.notify wakes a thread of this process.
      Atomics.store(words, 3, 7)
      Atomics.notify(words, 3)
      const r = await report
      expect(r).toEqual({ seen: 41, waited: expect.stringMatching(/^(ok|not-equal)$/), second: 7, shared: true, length: SIZE + page, transfer: expect.stringMatching(/TypeError|DataCloneError/) })
    } finally {
      await worker.terminate()
    }
    expect(shm.check().clean).toBe(true)
  })

  it('closing while a worker still holds the buffer: the worker reads zeros, nothing crashes', async () => {
    const shm = create()
    const at = shm.bytes.byteOffset + 8192
    new Int32Array(shm.buffer, at, 1)[0] = 99
    const worker = new Worker(
      `
      const { parentPort } = require('node:worker_threads')
      let words
      parentPort.on('message', (m) => {
        if (m.buffer) words = new Int32Array(m.buffer, m.at, 1)
        const before = words[0]
        words[0] = 5 // after close this lands in private memory
        parentPort.postMessage({ before, after: words[0] })
      })
      `,
      { eval: true },
    )
    try {
      const ask = (m: object): Promise<{ before: number; after: number }> => {
        const p = new Promise<{ before: number; after: number }>((resolve) => worker.once('message', resolve))
        worker.postMessage(m)
        return p
      }
      expect(await ask({ buffer: shm.buffer, at })).toEqual({ before: 99, after: 5 })
      const name = shm.name
      opened.splice(opened.indexOf(shm), 1)
      shm.close()
      expect(await ask({})).toEqual({ before: 0, after: 5 })
      // The worker's write reached no segment: a fresh one under the same name is clean.
      const again = SharedMemory.create({ name, size: SIZE })
      opened.push(again)
      expect(new Int32Array(again.buffer, again.bytes.byteOffset + 8192, 1)[0]).toBe(0)
    } finally {
      await worker.terminate()
    }
  })

  it('another process sees our writes and we see its writes, live', async () => {
    const shm = create()
    let offset = 0
    shm.access((tx) => {
      offset = tx.put(new Int32Array(4)).byteOffset - shm.bytes.byteOffset
    })
    const words = new Int32Array(shm.buffer, shm.bytes.byteOffset + offset, 4)
    Atomics.store(words, 0, 1000)
    const child = fork(path.join(childrenDir, 'transfer-peer.ts'), [shm.name, String(offset)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const next = (): Promise<Record<string, unknown>> => new Promise((resolve) => child.once('message', resolve as (m: unknown) => void))
    const first = await next()
    expect(first).toEqual({ seen: 1000, shared: true, transfer: expect.stringMatching(/TypeError|DataCloneError/), stillSees: 1000 })
    expect(Atomics.load(words, 1)).toBe(1001)
    Atomics.store(words, 0, 2000)
    child.send('again')
    expect(await next()).toEqual({ again: 2000 })
    await new Promise((resolve) => child.once('exit', resolve))
    expect(shm.check().clean).toBe(true)
  })
})

describe('errors stay ShmErrors', () => {
  it('a closed segment refuses buffer and bytes', () => {
    const shm = create()
    opened.splice(opened.indexOf(shm), 1)
    shm.close()
    expect(() => shm.buffer).toThrow(ShmError)
    expect(() => shm.bytes).toThrow(ShmError)
  })
})
