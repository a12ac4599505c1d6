import { describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { runChild, startChild, uniqueName } from './helpers/processes'

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(ShmError)
    expect((err as ShmError).code).toBe(code)
    return
  }
  throw new Error(`expected rejection with ${code}`)
}

function segment(size = 4 << 20) {
  return SharedMemory.create({ name: uniqueName('wait'), size })
}

describe('waiting without blocking the event loop', () => {
  it('waitForMessage resolves when another process writes, while timers keep ticking', async () => {
    const shm = segment()
    try {
      let ticks = 0
      const interval = setInterval(() => ticks++, 5)
      const waiting = shm.waitForMessage({ channel: 'work' })
      const writer = startChild('put-later.ts', [shm.name, 'work', '150', 'go'])
      await waiting
      clearInterval(interval)
      expect(ticks).toBeGreaterThan(5)
      expect(await writer.exited).toBe(0)
      expect(shm.access((tx) => tx.takeMessage({ channel: 'work' }))).toBe('go')
    } finally {
      shm.close()
    }
  })

  it('times out, aborts, and rejects on close', async () => {
    const shm = segment()
    try {
      await rejectsWith(shm.waitForMessage({ channel: 'x', timeoutMs: 50 }), 'ERR_TIMEOUT')
      const controller = new AbortController()
      const aborted = shm.waitForMessage({ channel: 'x', signal: controller.signal })
      setTimeout(() => controller.abort(new Error('user gave up')), 20)
      await rejectsWith(aborted, 'ERR_ABORTED')
      await rejectsWith(shm.waitForMessage({ signal: AbortSignal.abort() }), 'ERR_ABORTED')
      const pending = [shm.waitForMessage({ channel: 'a' }), shm.waitForMessage({ channel: 'b' })]
      const outcomes = Promise.allSettled(pending)
      await shm.accessAsync(() => 1)
      await new Promise((r) => setTimeout(r, 20)) // both are asleep on their channels now
      shm.close()
      for (const o of await outcomes) {
        expect(o.status).toBe('rejected')
        expect(((o as PromiseRejectedResult).reason as ShmError).code).toBe('ERR_SHM_CLOSED')
      }
    } finally {
      shm.close()
    }
  })

  it('accessAsync waits for a turn held by another process without stalling timers', async () => {
    const shm = segment()
    try {
      const holder = startChild('turn-holder.ts', [shm.name, '300'])
      expect(await holder.next()).toBe('holding')
      let ticks = 0
      const interval = setInterval(() => ticks++, 5)
      const started = performance.now()
      const result = await shm.accessAsync((tx) => tx.stats().used > 0)
      clearInterval(interval)
      expect(result).toBe(true)
      expect(performance.now() - started).toBeGreaterThan(100)
      expect(ticks).toBeGreaterThan(10)
      expect(await holder.exited).toBe(0)
      await rejectsWith(shm.accessAsync(() => 1, { wait: 'sideways' as never }), 'ERR_INVALID_ARGUMENT')
    } finally {
      shm.close()
    }
  })

  it('an async turn runs in the microtask that takes it: sync turns of other code in between do not collide', async () => {
    const shm = segment()
    try {
      // Each chain alternates awaits with turns; none of them nests a turn in another.
      const chain = async (k: number) => {
        let sum = 0
        for (let i = 0; i < 50; i++) {
          sum += await shm.accessAsync(() => k)
          sum += shm.access(() => k)
          await null
        }
        return sum
      }
      expect(await Promise.all([chain(1), chain(2), chain(3)])).toEqual([100, 200, 300])
    } finally {
      shm.close()
    }
  })

  it('recovers the turn from a process killed while holding it', async () => {
    const shm = segment()
    try {
      const holder = startChild('turn-holder.ts', [shm.name, '50', 'die'])
      expect(await holder.next()).toBe('holding')
      expect(await holder.exited).toBe('SIGKILL')
      const started = performance.now()
      expect(shm.access(() => 'mine')).toBe('mine')
      expect(performance.now() - started).toBeLessThan(1000)
      const async = startChild('turn-holder.ts', [shm.name, '50', 'die'])
      expect(await async.next()).toBe('holding')
      await async.exited
      expect(await shm.accessAsync(() => 'mine again')).toBe('mine again')
      expect(shm.bytes[52]).toBe(2) // Header.Recoveries
    } finally {
      shm.close()
    }
  })

  it('serves many concurrent waiters in 4 processes', async () => {
    const shm = segment(16 << 20)
    try {
      // The rounds are put in turns, and a turn cannot wait for room in a full ring
      // (ERR_CHANNEL_FULL): each inbox is made large enough for all of them, before the
      // readers' waits would make it with the default capacity.
      const inboxes = [0, 1, 2, 3].map((i) => shm.channel<number | string>(`inbox-${i}`, { capacity: 256 }))
      const readers = [0, 1, 2, 3].map((i) => {
        const c = startChild('inbox-reader.ts', [shm.name, `inbox-${i}`])
        return { c, report: c.next<{ count: number; sum: number }>() }
      })
      for (let round = 0; round < 250; round++) {
        await shm.accessAsync((tx) => {
          for (let i = 0; i < 4; i++) tx.putMessage(round, { channel: `inbox-${i}` })
        })
        if (round % 25 === 0) await new Promise((r) => setTimeout(r, 1))
      }
      shm.access((tx) => {
        for (let i = 0; i < 4; i++) tx.putMessage('stop', { channel: `inbox-${i}` })
      })
      for (const r of readers) {
        expect(await r.report).toEqual({ count: 250, sum: (249 * 250) / 2 })
        expect(await r.c.exited).toBe(0)
      }
      for (const inbox of inboxes) {
        expect(inbox.stats()).toEqual({ size: 0, capacity: 256, dropped: 0 })
        inbox.close()
      }
    } finally {
      shm.close()
    }
  })

  it('no waiter starves under a steady stream of turns from 3 other processes', async () => {
    const shm = segment()
    try {
      const state = shm.access((tx) => {
        const st = tx.put({ stop: false, n: 0 })
        for (let i = 0; i < 3; i++) tx.putMessage(st, { channel: 'hammer' })
        return st
      })
      const hammers = [0, 1, 2].map(() => {
        const c = startChild('turn-hammer.ts', [shm.name])
        return { c, report: c.next<{ stoppedByFlag: boolean }>() }
      })
      // Wait until the stream is flowing.
      while (shm.access(() => state.n) < 50) await new Promise((r) => setTimeout(r, 5))
      for (let i = 0; i < 50; i++) {
        shm.access(() => state.n)
        await shm.accessAsync(() => state.n)
      }
      shm.access(() => {
        state.stop = true
      })
      for (const h of hammers) {
        // Each hammer was still running when this process finished: nobody waited out its 15 s cap.
        expect(await h.report).toEqual({ stoppedByFlag: true })
        expect(await h.c.exited).toBe(0)
      }
    } finally {
      shm.close()
    }
  })

  it('a process with a pending wait still exits: keepAlive false, or close()', async () => {
    const shm = segment()
    try {
      const unref = await runChild('pending-wait-exit.ts', [shm.name, 'unref'])
      expect(unref.code).toBe(0)
      const closed = await runChild('pending-wait-exit.ts', [shm.name, 'close'])
      expect(closed.code).toBe(0)
      expect(closed.messages).toEqual(['ERR_SHM_CLOSED'])
    } finally {
      shm.close()
    }
  })
})

describe('waiter threads', () => {
  it('waits started together each get a thread: one that is satisfied is not stuck behind others that wait on', async () => {
    const shm = SharedMemory.create({ name: uniqueName('wt'), size: 1 << 20 })
    const idle = new AbortController()
    try {
      // Channels first, so each wait below goes straight to a waiter thread, in one burst.
      shm.access((tx) => {
        for (const channel of ['b', ...Array.from({ length: 16 }, (_, i) => `idle-${i}`)]) {
          tx.putMessage(0, { channel })
          tx.takeMessage({ channel })
        }
      })
      const long = Array.from({ length: 16 }, (_, i) => shm.waitForMessage({ channel: `idle-${i}`, signal: idle.signal }).catch((e: ShmError) => e.code))
      const b = shm.waitForMessage({ channel: 'b' }).then(() => 'b')
      shm.access((tx) => tx.putMessage(1, { channel: 'b' }))
      // Before the fix, b's wait could sit queued behind the sixteen that wait forever.
      const starved = new Promise<string>((r) => setTimeout(() => r('starved behind the other waits'), 20_000).unref())
      expect(await Promise.race([b, starved])).toBe('b')
      idle.abort()
      expect(await Promise.all(long)).toEqual(Array(16).fill('ERR_ABORTED'))
    } finally {
      idle.abort()
      shm.close()
    }
  }, 30_000)
})
