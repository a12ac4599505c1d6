import { describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { runChild, uniqueName } from './helpers/processes'
import { inUse, withLoanPool } from './helpers/segments'

describe('channels and turns across processes', () => {
  it('tx.takeMessage returns a plain copy, usable after the turn; the message is freed as it is taken', () => {
    const shm = SharedMemory.create({ name: uniqueName('tcopy'), size: 1 << 20 })
    try {
      shm.access((tx) => {
        tx.putMessage(0, { channel: 'c' })
        tx.takeMessage({ channel: 'c' })
      })
      withLoanPool(shm)
      const baseline = inUse(shm) // with the channel's ring, which this handle keeps until close
      const shared = { tag: 'x' }
      const value = { a: [1, 'two', shared, shared], m: new Map([['k', new Set([1n])]]), bytes: Uint8Array.of(1, 2, 3) }
      // Larger than half the ring (64 slots of 128 bytes): it goes into a loan pool array, given back by the take.
      const big = { rows: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `row ${i}` })) }
      const [small, large, copied, nothing] = shm.access((tx) => {
        tx.putMessage(value, { channel: 'c' })
        tx.putMessage(big, { channel: 'c' })
        tx.putMessage(value, { channel: 'c' })
        tx.putMessage(undefined, { channel: 'c' })
        // Copied when put: later changes to the original do not reach the queued message.
        shared.tag = 'changed after the put'
        expect(tx.messageCount({ channel: 'c' })).toBe(4)
        expect(inUse(tx)).toBeGreaterThan(baseline)
        const taken = [
          tx.takeMessage<typeof value>({ channel: 'c' }),
          tx.takeMessage<typeof big>({ channel: 'c' }),
          // { copy: true } is accepted and changes nothing: every message is a copy.
          tx.takeMessage<typeof value>({ channel: 'c', copy: true }),
          tx.takeMessage({ channel: 'c' }),
        ] as const
        expect(tx.hasMessages({ channel: 'c' })).toBe(false)
        // A copy is not mapped: nothing to destroy, and tx.copy gives it back as it is.
        expect(tx.copy(taken[0])).toBe(taken[0])
        expect(() => tx.destroy(taken[0])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
        return taken
      })
      // Usable after the turn: nothing in it is a view of the segment.
      for (const out of [small, copied]) {
        expect(out).toEqual({ ...value, a: [1, 'two', { tag: 'x' }, { tag: 'x' }] })
        expect(out.bytes.buffer).not.toBe(shm.buffer)
        expect(out.a[2]).toBe(out.a[3])
        expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
      }
      expect(small).not.toBe(copied)
      expect(large).toEqual(big)
      expect(nothing).toBeUndefined()
      expect(inUse(shm)).toBe(baseline)
      shm.access((tx) => {
        expect(() => tx.takeMessage({ channel: 'c', copy: true })).toThrow(expect.objectContaining({ code: 'ERR_NO_MESSAGES' }))
        expect(() => tx.takeMessage({ channel: 'c', cpy: true } as never)).toThrow(/unknown option "cpy"; did you mean "copy"/)
      })
    } finally {
      shm.close()
    }
  })

  it('4 writers × 1 reader, all in turns: every message exactly once, in per-writer order; a full ring refuses and changes nothing; nothing leaked', async () => {
    const shm = SharedMemory.create({ name: uniqueName('mpsc'), size: 32 << 20 })
    try {
      // A small ring, made before the writers open it: each writer puts up to 20 messages
      // a turn, so a turn that finds it empty still fills it (ERR_CHANNEL_FULL).
      const inbox = shm.channel('inbox', { capacity: 16 })
      shm.access((tx) => {
        tx.putMessage(0, { channel: 'inbox' })
        tx.takeMessage({ channel: 'inbox' })
      })
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
            expect(m.pad).toBe('x'.repeat((m.seq % 10) * 20))
            next[m.writer]! += 1
            received++
          }
        })
      }
      const results = await Promise.all(writers)
      for (const w of results) expect(w.code).toBe(0)
      expect(next).toEqual([perWriter, perWriter, perWriter, perWriter])
      // Every writer found the ring full at least once (its first turn alone overfills it).
      for (const w of results) expect((w.messages[0] as { fulls: number }).fulls).toBeGreaterThan(0)
      shm.access((tx) => {
        expect(tx.hasMessages({ channel: 'inbox' })).toBe(false)
        expect(() => tx.takeMessage({ channel: 'inbox' })).toThrow(ShmError)
      })
      expect(inbox.stats()).toEqual({ size: 0, capacity: 16, dropped: 0 })
      const report = shm.check()
      expect(report.clean).toBe(true)
      // The writers closed their handles; the frames (and the Frame records of the larger
      // ones, and those of the refused puts) are all freed.
      expect(report.allocator.used).toBe(baseline.used)
      inbox.close()
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
