import { describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { runChild, uniqueName } from './helpers/processes'

describe('channels and turns across processes', () => {
  it('takeMessage({ copy: true }) returns a plain copy and frees the message at once', () => {
    const shm = SharedMemory.create({ name: uniqueName('tcopy'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        tx.putMessage(0, { channel: 'c' })
        tx.takeMessage({ channel: 'c' })
      })
      const baseline = shm.stats() // with the channel's queue, which stays
      const shared = { tag: 'x' }
      const value = { a: [1, 'two', shared, shared], m: new Map([['k', new Set([1n])]]), bytes: Uint8Array.of(1, 2, 3) }
      const out = shm.access((tx) => {
        tx.putMessage(value, { channel: 'c' })
        return tx.takeMessage<typeof value>({ channel: 'c', copy: true })
      })
      // Usable after the turn: nothing in it is a view of the segment.
      expect(out).toEqual(value)
      expect(out.bytes.buffer).not.toBe(shm.buffer)
      expect(out.a[2]).toBe(out.a[3])
      expect(shm.stats()).toEqual(baseline)
      shm.access((tx) => {
        expect(() => tx.takeMessage({ channel: 'c', copy: true })).toThrow(expect.objectContaining({ code: 'ERR_NO_MESSAGES' }))
        expect(() => tx.takeMessage({ channel: 'c', cpy: true } as never)).toThrow(/unknown option "cpy"; did you mean "copy"/)
      })
    } finally {
      shm.close()
    }
  })

  it('4 writers × 1 reader: every message exactly once, in per-writer order, nothing leaked', async () => {
    const shm = SharedMemory.create({ name: uniqueName('mpsc'), size: 32 << 20 })
    try {
      const baseline = shm.stats()
      const perWriter = 3000
      const writers = [0, 1, 2, 3].map((w) => runChild('channel-writer.ts', [shm.name, String(w), String(perWriter)]))
      const next = [0, 0, 0, 0]
      let received = 0
      while (received < 4 * perWriter) {
        shm.waitForMessageSync({ channel: 'inbox', timeoutMs: 30_000 })
        shm.access((tx) => {
          while (tx.hasMessages({ channel: 'inbox' })) {
            const m = tx.takeMessage<{ writer: number; seq: number; pad: string }>({ channel: 'inbox' })
            expect(m.seq).toBe(next[m.writer])
            expect(m.pad).toBe('x'.repeat(m.seq % 50))
            next[m.writer]! += 1
            received++
            tx.destroy(m)
          }
        })
      }
      for (const w of await Promise.all(writers)) expect(w.code).toBe(0)
      expect(next).toEqual([perWriter, perWriter, perWriter, perWriter])
      shm.access((tx) => {
        expect(tx.hasMessages({ channel: 'inbox' })).toBe(false)
        expect(() => tx.takeMessage({ channel: 'inbox' })).toThrow(ShmError)
      })
      shm.heap.allocator.check()
      // Only the "inbox" queue record, its name and the grown channel directory remain.
      expect(shm.stats().used - baseline.used).toBeLessThan(512)
    } finally {
      shm.close()
    }
  })

  for (const mode of ['cpu-friendly', 'low-latency'] as const) {
    it(`turns exclude each other: 4 processes × 2000 increments (${mode})`, async () => {
      const shm = SharedMemory.create({ name: uniqueName('turn'), size: 1 << 20 })
      try {
        const counter = shm.access((tx) => {
          const c = tx.put({ n: 0 })
          for (let i = 0; i < 4; i++) tx.putMessage(c, { channel: 'counter' })
          return c
        })
        const results = await Promise.all([0, 1, 2, 3].map(() => runChild('counter.ts', [shm.name, '2000', mode])))
        for (const r of results) expect(r.code).toBe(0)
        expect(shm.access(() => counter.n)).toBe(8000)
      } finally {
        shm.close()
      }
    })
  }

  it('takeMessage on an empty or unknown channel says what to do', () => {
    const shm = SharedMemory.create({ name: uniqueName('empty'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        for (const channel of [undefined, 'never-used']) {
          try {
            tx.takeMessage(channel === undefined ? undefined : { channel })
            throw new Error('no error')
          } catch (err) {
            expect((err as ShmError).code).toBe('ERR_NO_MESSAGES')
            expect((err as Error).message).toMatch(/hasMessages|waitForMessage/)
          }
        }
        expect(() => tx.putMessage(1, { chanel: 'x' } as never)).toThrow(/did you mean "channel"/)
      })
      expect(() => shm.waitForMessageSync({ timeoutMs: 50 })).toThrow(/no message/)
    } finally {
      shm.close()
    }
  })
})
