// The turn always comes back: a turn word naming a reused pid, a foreign pid, a closed
// handle's claims and a terminated worker thread never block other processes for long.
// Real processes and worker_threads; the lock word is read (and, to stage a fault,
// written) through the header (white-box: core/layout, core/lock, core/native).
import { spawn, type ChildProcess } from 'node:child_process'
import type { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { Header } from '../core/layout'
import { Chan } from '../core/records'
import { ownerIdentity, startStamp } from '../core/lock'
import { native } from '../core/native'
import { startChild, startThread, uniqueName, type Child } from './helpers/processes'

interface TakerReport {
  ok: boolean
  code?: string
  pid: number
  waitedMs: number
  at: number
  recovery: { deadOwnerPid: number; clean: boolean } | null
}

const cleanup: Array<() => void | Promise<unknown>> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

function create(): SharedMemory {
  const shm = SharedMemory.create({ name: uniqueName('turn'), size: 1 << 20 })
  cleanup.push(() => {
    if (!shm.closed) shm.close()
  })
  return shm
}

/** The header's lock words, read through a handle that stays open. */
function header(shm: SharedMemory) {
  const i32 = new Int32Array(shm.buffer, shm.bytes.byteOffset, Header.AllocatorRoot / 4)
  return {
    get owner() {
      return Atomics.load(i32, Header.LockOwner / 4)
    },
    get ownerId() {
      return Atomics.load(i32, Header.LockOwnerId / 4) >>> 0
    },
    get heir() {
      return Atomics.load(i32, Header.LockHeir / 4)
    },
    get waiters() {
      return Atomics.load(i32, Header.LockWaiters / 4)
    },
    get recoveries() {
      return Atomics.load(i32, Header.Recoveries / 4)
    },
    /** Stages a fault: the turn word as if `pid` held the turn with this identity. */
    write(pid: number, identity: number) {
      const word = new BigUint64Array(shm.buffer, shm.bytes.byteOffset + Header.LockOwner, 1)
      Atomics.store(word, 0, (BigInt(identity) << 32n) | BigInt(pid >>> 0))
    },
  }
}

/** A live process unrelated to any segment. */
function sleeper(): ChildProcess {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' })
  cleanup.push(() => {
    child.kill('SIGKILL')
  })
  return child
}

function taker(name: string, timeoutMs = 10_000, how: 'sync' | 'async' = 'sync'): Child {
  const child = startChild('turn-taker.ts', [name, String(timeoutMs), how])
  cleanup.push(() => {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL')
  })
  return child
}

async function takeInChild(name: string, timeoutMs = 10_000): Promise<TakerReport> {
  const child = taker(name, timeoutMs)
  expect(await child.next()).toBe('ready')
  const report = await child.next<TakerReport>()
  expect(await child.exited).toBe(0)
  return report
}

/** A worker_thread running test/children/turn-worker.ts (TypeScript, through tsx). */
function startWorker(name: string, how: 'hold' | 'wait'): { worker: Worker; next: () => Promise<unknown> } {
  const worker = startThread('turn-worker.ts', { name, how })
  const queue: unknown[] = []
  const waiting: Array<(m: unknown) => void> = []
  worker.on('message', (m) => (waiting.length > 0 ? waiting.shift()!(m) : queue.push(m)))
  worker.on('error', (err) => (waiting.length > 0 ? waiting.shift()!({ error: String(err) }) : queue.push({ error: String(err) })))
  cleanup.push(() => worker.terminate())
  return { worker, next: () => new Promise((resolve) => (queue.length > 0 ? resolve(queue.shift()) : waiting.push(resolve))) }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (err) {
    return err instanceof ShmError ? err.code : String(err)
  }
}

describe('a turn word naming a process that does not hold it', () => {
  it('a live process with another start time (a reused pid) is taken over by another process, and the heap checked', async () => {
    const shm = create()
    const h = header(shm)
    const other = sleeper()
    const pid = other.pid!
    const real = startStamp(native.processStartTime(pid))
    expect(real).toBeGreaterThan(0) // Linux: field 22 of /proc/<pid>/stat
    // Same pid, as if a holder with another start time had left it: the pid was reused.
    h.write(pid, ownerIdentity(real === 0xffff ? 1 : real + 1, 1234))

    const r = await takeInChild(shm.name)
    expect(r.ok).toBe(true)
    expect(r.recovery).toEqual({ deadOwnerPid: pid, clean: true })
    expect(h.recoveries).toBe(1)
    expect(other.exitCode).toBe(null) // the unrelated process was left alone
    expect(h.owner).toBe(0)
    console.log(`reused pid: taken over after ${r.waitedMs} ms`)

    // With the right start time the same process counts as a live holder: never taken over.
    h.write(pid, ownerIdentity(real, 1234))
    expect(() => shm.access(() => 1, { timeoutMs: 400 })).toThrow(expect.objectContaining({ code: 'ERR_TIMEOUT' }))
    expect(h.owner).toBe(pid)
    expect(h.recoveries).toBe(1)
  })

  it('a live foreign process that never registered is taken over (in another process, and in this one)', async () => {
    const shm = create()
    const h = header(shm)
    const pid = sleeper().pid!
    h.write(pid, 0)
    const r = await takeInChild(shm.name)
    expect(r.ok).toBe(true)
    expect(r.recovery).toEqual({ deadOwnerPid: pid, clean: true })
    expect(h.recoveries).toBe(1)
    console.log(`foreign live pid: taken over after ${r.waitedMs} ms`)

    // This process's own pid, unregistered: it used to be skipped (never judged).
    h.write(process.pid, 0)
    const started = performance.now()
    expect(shm.access(() => 'mine', { timeoutMs: 5000 })).toBe('mine')
    expect(shm.lastRecovery?.deadOwnerPid).toBe(process.pid)
    expect(h.recoveries).toBe(2)
    console.log(`own pid, unregistered: taken over after ${Math.round(performance.now() - started)} ms`)
  })

  it('a reservation for an heir that never takes it is voided, without a recovery', async () => {
    const shm = create()
    const h = header(shm)
    const pid = sleeper().pid!
    h.write(-pid, 0) // as a release leaves it for a waiting heir of that process
    const r = await takeInChild(shm.name)
    expect(r.ok).toBe(true)
    expect(r.recovery).toBe(null)
    expect(h.recoveries).toBe(0)
    expect(h.owner).toBe(0)
  })
})

describe('close() withdraws what the handle registered', () => {
  it('while an accessAsync() waits behind a turn another process holds: heir claim and waiter count go, the wait rejects', async () => {
    const shm = create()
    const h = header(shm)
    const holder = startChild('turn-holder.ts', [shm.name, '1500'])
    expect(await holder.next()).toBe('holding')

    const waiter = SharedMemory.open({ name: shm.name })
    const pending = codeOf(waiter.accessAsync(() => 'never'))
    // After STARVING_MS the waiter claims the next turn for this process (the heir).
    await vi.waitFor(() => {
      expect(h.heir).toBe(process.pid)
      expect(h.waiters).toBe(1)
    }, { timeout: 5000, interval: 5 })
    waiter.close()
    expect(h.heir).toBe(0)
    expect(h.waiters).toBe(0)
    expect(await pending).toBe('ERR_SHM_CLOSED')

    // Another process waits for the turn and gets it when the holder lets go: no -pid of
    // this (live) process is left in the lock word to block it.
    const r = await takeInChild(shm.name)
    expect(r).toMatchObject({ ok: true, recovery: null })
    expect(await holder.exited).toBe(0)
    expect([h.owner, h.heir, h.waiters, h.recoveries]).toEqual([0, 0, 0, 0])
  })

  it('while a first waitForMessage() waits for the turn to create its queue', async () => {
    const shm = create()
    const h = header(shm)
    const holder = startChild('turn-holder.ts', [shm.name, '1500'])
    expect(await holder.next()).toBe('holding')
    const waiter = SharedMemory.open({ name: shm.name })
    const pending = codeOf(waiter.waitForMessage({ channel: 'fresh' }))
    await vi.waitFor(() => expect(h.heir).toBe(process.pid), { timeout: 5000, interval: 5 })
    waiter.close()
    expect([h.heir, h.waiters]).toEqual([0, 0])
    expect(await pending).toBe('ERR_SHM_CLOSED')
    const r = await takeInChild(shm.name)
    expect(r).toMatchObject({ ok: true, recovery: null })
    expect(await holder.exited).toBe(0)
    expect([h.owner, h.heir, h.waiters]).toEqual([0, 0, 0])
  })

  // A channel's waiter count (check's ChannelReport.waiters) is Chan.Sleepers (event
  // loops listed in its sleeper table) + Chan.FutexWaiters (threads on its futex word).
  // Another handle keeps the channel open, so the count can be read after the close.
  const waiterCases: Array<[string, (waiter: SharedMemory) => Promise<unknown>, 'Sleepers' | 'FutexWaiters']> = [
    ['waitForMessage() sleeps in the sleeper table (it waits through its channel handle)', (w) => w.waitForMessage({ channel: 'c' }), 'Sleepers'],
    ['channel.receive() sleeps in the sleeper table (this event loop’s notifier)', (w) => w.channel('c').receive(), 'Sleepers'],
    ['channel.receive({ wait: low-latency }) spins 1 ms, then sleeps in the sleeper table', (w) => w.channel('c').receive({ wait: 'low-latency' }), 'Sleepers'],
  ]
  for (const [what, wait, word] of waiterCases) {
    it(`while ${what}: the channel waiter count goes back`, async () => {
      const shm = create()
      const keep = shm.channel('c')
      const ref = keep.ref
      const waiter = SharedMemory.open({ name: shm.name })
      const pending = codeOf(wait(waiter))
      const waitersOn = (name: string) => shm.check().channels.find((c) => c.name === name)?.waiters
      const words = () => ({ Sleepers: Atomics.load(shm.heap.i32, (ref + Chan.Sleepers) >>> 2), FutexWaiters: Atomics.load(shm.heap.i32, (ref + Chan.FutexWaiters) >>> 2) })
      await vi.waitFor(() => expect(waitersOn('c')).toBe(1), { timeout: 5000, interval: 5 })
      expect(words()).toEqual({ Sleepers: 0, FutexWaiters: 0, [word]: 1 })
      waiter.close()
      expect(await pending).toBe('ERR_SHM_CLOSED')
      expect(waitersOn('c')).toBe(0)
      expect(words()).toEqual({ Sleepers: 0, FutexWaiters: 0 })
      // The channel works on: a message sent now is there for the handle that stayed.
      keep.send('after')
      expect(keep.tryReceive()).toBe('after')
      keep.close()
      // Its last handle closed while empty: the channel is gone.
      expect(waitersOn('c')).toBe(undefined)
      expect(shm.check().clean).toBe(true)
    })
  }

  it('with the sleeper table full, an async receive waits on the futex word (a waiter thread), and close() withdraws it', async () => {
    const shm = create()
    const keep = shm.channel('c')
    const word = (field: number) => Atomics.load(shm.heap.i32, (keep.ref + field) >>> 2)
    // Eight handles fill the channel's sleeper table.
    const others = Array.from({ length: 8 }, () => SharedMemory.open({ name: shm.name }))
    const otherWaits = others.map((o) => codeOf(o.channel('c').receive()))
    await vi.waitFor(() => expect(word(Chan.Sleepers)).toBe(8), { timeout: 5000, interval: 5 })
    const waiter = SharedMemory.open({ name: shm.name })
    const pending = codeOf(waiter.channel('c').receive())
    await vi.waitFor(() => expect(word(Chan.FutexWaiters)).toBe(1), { timeout: 5000, interval: 5 })
    waiter.close()
    expect(await pending).toBe('ERR_SHM_CLOSED')
    expect(word(Chan.FutexWaiters)).toBe(0)
    for (const o of others) o.close()
    expect(await Promise.all(otherWaits)).toEqual(Array(8).fill('ERR_SHM_CLOSED'))
    expect(word(Chan.Sleepers)).toBe(0)
    keep.close()
    expect(shm.check().clean).toBe(true)
  })

  it('the last handle of a channel closes while waiting on it: the waiter count is withdrawn before the channel is freed', async () => {
    const shm = create()
    const waiter = SharedMemory.open({ name: shm.name })
    // Stands for another process that allocates the moment close() has dropped the
    // handle's references: registered first, this withdrawal runs before the others.
    // Were the channel freed by then, this record would take its place, and the waiter
    // count withdrawn after it would be subtracted from its bytes.
    let victim: Float64Array | undefined
    ;(waiter as unknown as { segment: { onClose(fn: () => void): void } }).segment.onClose(() => {
      victim = shm.access((tx) => tx.put(new Float64Array(100).fill(1)))
    })
    const pending = codeOf(waiter.waitForMessage({ channel: 'last' }))
    const waitersOn = (name: string) => shm.check().channels.find((c) => c.name === name)?.waiters
    await vi.waitFor(() => expect(waitersOn('last')).toBe(1), { timeout: 5000, interval: 5 })
    waiter.close()
    expect(await pending).toBe('ERR_SHM_CLOSED')
    expect(waitersOn('last')).toBe(undefined) // freed with its last handle
    expect(victim).toBeDefined()
    expect(shm.access(() => [...victim!])).toEqual(new Array(100).fill(1))
    expect(shm.check().clean).toBe(true)
  })

  it('is refused inside the handle’s own turn, and the turn is released as usual', () => {
    const shm = create()
    const h = header(shm)
    expect(() => shm.access(() => shm.close())).toThrow(expect.objectContaining({ code: 'ERR_SHM_REENTRANT' }))
    expect(shm.closed).toBe(false)
    expect(h.owner).toBe(0)
    // Another handle of this thread may close inside it: it holds nothing.
    const other = SharedMemory.open({ name: shm.name })
    expect(shm.access(() => (other.close(), other.closed))).toBe(true)
    shm.close()
    expect(shm.closed).toBe(true)
  })
})

describe('a worker_thread terminated inside access()', () => {
  it('the main thread and another process get the turn, the heap checked', async () => {
    const shm = create()
    const h = header(shm)
    const { worker, next } = startWorker(shm.name, 'hold')
    expect(await next()).toBe('holding')
    expect(h.owner).toBe(process.pid)

    // Another process and this thread wait for the turn the worker holds.
    const child = taker(shm.name)
    expect(await child.next()).toBe('ready')
    const childTurn = child.next<TakerReport>()
    const mainTurn = shm.accessAsync((tx) => ({ at: Date.now(), from: tx.takeMessage<{ from: string }>({ channel: 'worker' }).from }), { timeoutMs: 10_000 })
    await new Promise((r) => setTimeout(r, 300)) // both asleep on the turn by now
    expect(h.owner).toBe(process.pid)

    const terminated = Date.now()
    await worker.terminate()
    const mine = await mainTurn
    const theirs = await childTurn
    expect(await child.exited).toBe(0)
    expect(theirs.ok).toBe(true)
    expect(mine.from).toBe('worker') // put inside the worker's turn, intact
    // Exactly one of them took the abandoned turn over and checked the heap.
    const recoveries = [shm.lastRecovery === null ? null : { deadOwnerPid: shm.lastRecovery.deadOwnerPid, clean: shm.lastRecovery.report.clean }, theirs.recovery].filter((r) => r !== null)
    expect(recoveries).toEqual([{ deadOwnerPid: process.pid, clean: true }])
    expect(h.recoveries).toBe(1)
    expect([h.owner, h.heir, h.waiters]).toEqual([0, 0, 0])
    expect(shm.check().clean).toBe(true)
    console.log(`terminated worker: this thread got the turn after ${mine.at - terminated} ms, the other process after ${theirs.at - terminated} ms`)
    expect(Math.max(mine.at, theirs.at) - terminated).toBeLessThan(3000)
  })

  it('a worker terminated while it is the heir: the reservation it would leave expires', async () => {
    const shm = create()
    const h = header(shm)
    const holder = startChild('turn-holder.ts', [shm.name, '800'])
    expect(await holder.next()).toBe('holding')
    const { worker, next } = startWorker(shm.name, 'wait')
    expect(await next()).toBe('waiting')
    await vi.waitFor(() => expect(h.heir).toBe(process.pid), { timeout: 5000, interval: 5 })
    await worker.terminate()
    // The holder's release reserves the turn for this process (the dead worker's claim);
    // the other process voids the reservation nobody picks up.
    const r = await takeInChild(shm.name)
    expect(r).toMatchObject({ ok: true, recovery: null })
    expect(await holder.exited).toBe(0)
    expect([h.owner, h.heir, h.recoveries]).toEqual([0, 0, 0])
  })
})

describe('the addon’s turn entry points check their arguments', () => {
  it('guardTurn and guardListing take only an 8-byte-aligned word inside the segment; processStartTime an integer pid', () => {
    const shm = create()
    const id = (shm as unknown as { segment: { id: number } }).segment.id
    for (const offset of [-8, 4, 33, shm.size, shm.size - 4, 2 ** 53, Number.NaN, Infinity]) {
      expect(() => native.guardTurn(id, offset)).toThrow(Number.isNaN(offset) ? RangeError : /multiple of 8 inside the segment/)
    }
    expect(() => native.guardTurn(id, 'x' as never)).toThrow(TypeError)
    expect(() => native.guardTurn(987654, 32)).toThrow(expect.objectContaining({ code: 'ERR_SHM_CLOSED' }))
    native.guardTurn(id, shm.size - 8) // the last word is fine
    native.guardTurn(id, Header.LockOwner)
    // guardListing: the same word rule, and two 32-bit halves.
    for (const offset of [-8, 4, 33, shm.size, shm.size - 4, 2 ** 53, Number.NaN, Infinity]) {
      expect(() => native.guardListing(id, offset, 1, 1)).toThrow(Number.isNaN(offset) ? RangeError : /multiple of 8 inside the segment/)
    }
    for (const half of [-1, 2 ** 32, 0.5, Number.NaN]) {
      expect(() => native.guardListing(id, Header.Handles, half, 1)).toThrow(RangeError)
      expect(() => native.guardListing(id, Header.Handles, 1, half)).toThrow(RangeError)
    }
    expect(() => native.guardListing(id, 'x' as never, 1, 1)).toThrow(TypeError)
    expect(() => native.guardListing(987654, Header.Handles, 1, 1)).toThrow(expect.objectContaining({ code: 'ERR_SHM_CLOSED' }))
    expect(() => native.processStartTime(1.5)).toThrow(RangeError)
    expect(() => native.processStartTime('1' as never)).toThrow(TypeError)
    for (const pid of [0, -1, 2 ** 31, 2 ** 40]) expect(native.processStartTime(pid)).toBe(0)
    expect(native.processStartTime(process.pid)).toBeGreaterThan(0)
    expect(shm.access(() => 'still fine')).toBe('still fine')
  })
})
