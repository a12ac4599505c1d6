// The notifier (core/notifier.ts, native/notifier_posix.cc): one datagram from another
// process wakes this thread's event loop. Every test uses real processes or threads.
// POSIX only: Windows has no notifier (localNotifier() is null there), so the suite skips.
import { execFileSync } from 'node:child_process'
import * as path from 'node:path'
import type { Worker } from 'node:worker_threads'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { native } from '../core/native'
import { closeLocalNotifier, localNotifier, notifyProcess, type Notifier } from '../core/notifier'
import { childrenDir, startChild as start, startThread, type Child } from './helpers/processes'

const peer = path.join(childrenDir, 'notifier-peer.ts')

/** Children still running after a test: a failed one may leave a listener holding them. */
const started: Child[] = []
function startChild(script: string, args: string[]): Child {
  const child = start(script, args)
  started.push(child)
  return child
}

interface Address {
  pid: number
  nonce: number
}

function mine(): Notifier {
  const n = localNotifier()
  if (!n) throw new Error('no notifier on this platform')
  return n
}

/** Resolves on the next wake of this thread's notifier. */
function nextWake(n: Notifier): Promise<void> {
  return new Promise((resolve) => {
    const unlisten = n.listen(() => {
      unlisten()
      resolve()
    }, false)
  })
}

/** A nonce that is not this thread's, so nobody listens at (this pid, it). */
function otherNonce(n: Notifier): number {
  return n.nonce === 0xffffffff ? 1 : n.nonce + 1
}

/** Resolves with 'exited' or 'running': whichever comes first, the exit or `ms`. */
function exitWithin(child: Child, ms: number): Promise<'exited' | 'running'> {
  return Promise.race([child.exited.then(() => 'exited' as const), new Promise<'running'>((r) => setTimeout(() => r('running'), ms))])
}

function startWorker(mode: 'stay' | 'once'): Worker {
  return startThread('notifier-peer.ts', mode)
}

function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
}

function p50(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const supported = process.platform !== 'win32'

describe.skipIf(!supported)('notifier', () => {
  afterEach(() => {
    for (const child of started.splice(0)) if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill()
  })
  afterAll(() => closeLocalNotifier())

  it('a child process wakes this thread: once per notify, and a burst sent while the loop is busy wakes it once and is drained', async () => {
    const me = mine()
    for (let round = 0; round < 2; round++) {
      const woken = nextWake(me)
      const child = startChild('notifier-peer.ts', ['notify', String(me.pid), String(me.nonce), '1'])
      expect(await child.next()).toEqual(['sent'])
      await woken
      expect(await child.exited).toBe(0)
    }

    let wakes = 0
    const unlisten = me.listen(() => wakes++, false)
    try {
      // execFileSync blocks this loop until the child has sent all 50 (past the receive
      // queue's length: those beyond it find the queue full, which counts as sent).
      const out = execFileSync(process.execPath, ['--import', 'tsx', peer, 'notify', String(me.pid), String(me.nonce), '50'], { encoding: 'utf8' })
      expect(JSON.parse(out)).toEqual(Array(50).fill('sent'))
      expect(wakes).toBe(0)
      await vi.waitFor(() => expect(wakes).toBeGreaterThan(0))
      // Undrained datagrams would keep waking the loop; drained, a marker adds exactly one.
      expect(notifyProcess(me.pid, me.nonce)).toBe('sent')
      await vi.waitFor(() => expect(wakes).toBeGreaterThan(1))
      expect(wakes).toBe(2)
    } finally {
      unlisten()
    }
  })

  it('reports gone for an address nobody listens at and for a process that exited', async () => {
    const me = mine()
    expect(notifyProcess(me.pid, otherNonce(me))).toBe('gone')
    const child = startChild('notifier-peer.ts', ['listen', 'unref'])
    const { pid, nonce } = await child.next<Address>()
    expect(pid).toBe(child.proc.pid)
    expect(await child.exited).toBe(0)
    expect(notifyProcess(pid, nonce)).toBe('gone')
  })

  it('checks its arguments', () => {
    for (const bad of [0, -1, 1.5, 2 ** 32, NaN, Infinity]) {
      expect(() => notifyProcess(bad, 1)).toThrow(RangeError)
      expect(() => notifyProcess(1, bad)).toThrow(RangeError)
    }
    expect(() => notifyProcess('1' as never, 1)).toThrow(TypeError)
    expect(() => native.notifierRef(1 as never)).toThrow(TypeError)
    expect(() => native.notifierOpen(undefined as never)).toThrow(TypeError)
    mine()
    expect(() => native.notifierOpen(() => {})).toThrow(/already open/)
  })

  it('keepAlive: a listening child stays alive until notified; unreferenced, it exits at once', async () => {
    const kept = startChild('notifier-peer.ts', ['listen', 'keep'])
    const { pid, nonce } = await kept.next<Address>()
    // Nothing but the notifier holds this child: without the reference it would be gone in
    // a few milliseconds.
    expect(await exitWithin(kept, 500)).toBe('running')
    expect(notifyProcess(pid, nonce)).toBe('sent')
    expect(await kept.next()).toBe('woken')
    expect(await kept.exited).toBe(0) // its listener unsubscribed: nothing holds it any more
    expect(notifyProcess(pid, nonce)).toBe('gone')

    const unref = startChild('notifier-peer.ts', ['listen', 'unref'])
    await unref.next<Address>()
    expect(await exitWithin(unref, 20_000)).toBe('exited')
    expect(await unref.exited).toBe(0)
  })

  it('a listener that throws does not stop the others, and its error is reported as uncaught', async () => {
    const child = startChild('notifier-peer.ts', ['throwing'])
    const { pid, nonce } = await child.next<Address>()
    expect(notifyProcess(pid, nonce)).toBe('sent')
    expect(await child.next()).toBe('second ran')
    expect(await child.next()).toEqual({ uncaught: 'listener failed' })
    expect(await child.exited).toBe(0)
  })

  it("an exception from the addon's onWake is an uncaught exception, not a crash", async () => {
    const child = startChild('notifier-peer.ts', ['raw-throw'])
    const { pid, nonce } = await child.next<Address>()
    expect(notifyProcess(pid, nonce)).toBe('sent')
    expect(await child.next()).toEqual({ uncaught: 'onWake failed' })
    expect(await child.exited).toBe(0)
  })

  it('a worker_thread has its own notifier: a wake for it reaches the worker, not the main thread', async () => {
    const me = mine()
    let mainWakes = 0
    const unlisten = me.listen(() => mainWakes++, false)
    const worker = startWorker('stay')
    try {
      const addr = await nextMessage<Address>(worker)
      expect(addr.pid).toBe(process.pid)
      expect(addr.nonce).not.toBe(me.nonce)
      const woken = nextMessage(worker)
      const child = startChild('notifier-peer.ts', ['notify', String(addr.pid), String(addr.nonce), '1'])
      expect(await child.next()).toEqual(['sent'])
      expect(await woken).toBe('woken')
      expect(await child.exited).toBe(0)
      // Had the datagram reached this thread, a marker would make two.
      expect(notifyProcess(me.pid, me.nonce)).toBe('sent')
      await vi.waitFor(() => expect(mainWakes).toBeGreaterThan(0))
      expect(mainWakes).toBe(1)

      // Terminated while listening with keepAlive: its env cleanup closes the socket.
      await worker.terminate()
      expect(notifyProcess(addr.pid, addr.nonce)).toBe('gone')
    } finally {
      unlisten()
      await worker.terminate()
    }

    // A worker whose listener unsubscribes ends by itself, and its address goes with it.
    const once = startWorker('once')
    const addr = await nextMessage<Address>(once)
    const exited = new Promise<number>((resolve) => once.once('exit', resolve))
    expect(notifyProcess(addr.pid, addr.nonce)).toBe('sent')
    expect(await nextMessage(once)).toBe('woken')
    expect(await exited).toBe(0)
    expect(notifyProcess(addr.pid, addr.nonce)).toBe('gone')
  })

  it('after closing, the address is gone; a listener may close the notifier it runs in; reopening gives a new nonce', async () => {
    const first = mine()
    expect(notifyProcess(first.pid, first.nonce)).toBe('sent')
    await new Promise<void>((resolve) => {
      first.listen(() => {
        closeLocalNotifier()
        resolve()
      }, false)
    })
    expect(notifyProcess(first.pid, first.nonce)).toBe('gone')
    expect(() => first.listen(() => {}, false)).toThrow(/closed/)

    const second = mine()
    expect(second.nonce).not.toBe(first.nonce)
    const woken = nextWake(second)
    expect(notifyProcess(second.pid, second.nonce)).toBe('sent')
    await woken
    native.notifierClose()
    native.notifierClose() // idempotent
    // (notifyProcess wakes this thread's own open address without the addon: ask the addon itself.)
    expect(native.notify(second.pid, second.nonce)).toBe(1) // 'gone'
    closeLocalNotifier()
    expect(notifyProcess(second.pid, second.nonce)).toBe('gone')
  })

  it('round trips between two processes: notifier versus child_process IPC (printed, not asserted)', async () => {
    const rounds = 2000
    const me = mine()
    const child = startChild('notifier-peer.ts', ['echo', String(me.pid), String(me.nonce)])
    const { pid, nonce } = await child.next<Address>()

    const viaNotifier: number[] = []
    await new Promise<void>((resolve, reject) => {
      let started = 0
      const ping = (): void => {
        started = performance.now()
        const outcome = notifyProcess(pid, nonce)
        if (outcome !== 'sent') reject(new Error(`notify: ${outcome}`))
      }
      const unlisten = me.listen(() => {
        viaNotifier.push(performance.now() - started)
        if (viaNotifier.length < rounds) return ping()
        unlisten()
        resolve()
      }, false)
      ping()
    })

    const viaIpc: number[] = []
    for (let i = 0; i < rounds; i++) {
      const started = performance.now()
      child.send(i)
      expect(await child.next()).toBe(i)
      viaIpc.push(performance.now() - started)
    }
    child.send('stop')
    expect(await child.exited).toBe(0)

    expect(viaNotifier).toHaveLength(rounds)
    console.log(
      `round trip p50 over ${rounds}: notifier ${(p50(viaNotifier) * 1000).toFixed(1)} µs, ` +
        `child_process IPC ${(p50(viaIpc) * 1000).toFixed(1)} µs`,
    )
  })
})
