// Channels v2 (issue #14): copied messages on lock-free rings, with real processes.
import { describe, expect, it, vi } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { startChild, startThread, uniqueName } from './helpers/processes'
import { afterCollection, inUse, lendWholePool, shmError, withLoanPool } from './helpers/segments'

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof ShmError ? err.code : String(err)
  }
  return undefined
}

async function rejection(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return err instanceof ShmError ? err.code : String(err)
  }
  return undefined
}

describe('channel messages are copies', () => {
  it('receive returns an ordinary value, frees the frame at once, and the segment returns to where it was', () => {
    const shm = SharedMemory.create({ name: uniqueName('chcopy'), size: 4 << 20 })
    try {
      const ch = shm.channel<unknown>('c')
      const baseline = shm.stats().used
      const shared = { tag: 'x' }
      const value = { a: [1, 'two', shared, shared], m: new Map([['k', new Set([1n])]]), bytes: Uint8Array.of(1, 2, 3), d: new Date(5) }
      const big = { rows: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `row ${i}` })) }
      for (let round = 0; round < 3; round++) {
        ch.send(value)
        ch.send(big)
        const small = ch.tryReceive() as typeof value
        expect(small).toEqual(value)
        expect(Object.getPrototypeOf(small)).toBe(Object.prototype)
        expect(small.a[2]).toBe(small.a[3])
        expect(small.bytes.buffer).not.toBe(shm.buffer)
        expect(ch.tryReceive()).toEqual(big)
      }
      expect(ch.tryReceive()).toBeUndefined()
      expect(shm.stats().used).toBe(baseline)
      ch.close()
    } finally {
      shm.close()
    }
  })

  it('values of the segment travel by reference: the receiver gets the live view and owns it', () => {
    const shm = SharedMemory.create({ name: uniqueName('chref'), size: 4 << 20 })
    try {
      const ch = shm.channel<{ list: number[]; bytes: Float64Array; note: string }>('c')
      const baseline = shm.stats().used
      const list = shm.access((tx) => tx.put([1, 2, 3]))
      const bytes = shm.access((tx) => tx.put(new Float64Array(4)))
      ch.send({ list, bytes, note: 'by ref' })
      shm.access((tx) => {
        const m = ch.tryReceive()!
        expect(m.list).toBe(list)
        expect(m.bytes).toBe(bytes)
        expect(m.note).toBe('by ref')
        // Two owners now (the put and the receive): each destroys its own.
        tx.destroy(m.list)
        tx.destroy(m.bytes)
        expect(list[0]).toBe(1)
        tx.destroy(list)
        tx.destroy(bytes)
      })
      expect(shm.stats().used).toBe(baseline)
      // A freed view cannot be sent.
      expect(code(() => ch.send({ list } as never))).toBe('ERR_SHM_STALE')
      expect(ch.size).toBe(0)
    } finally {
      shm.close()
    }
  })

  it('frames longer than a slot span several slots (no turn), longer than half the ring go to a loan pool array (no turn) or, with references, a Frame record; all come back whole', () => {
    const shm = SharedMemory.create({ name: uniqueName('chspan'), size: 4 << 20 })
    try {
      const ch = shm.channel<unknown>('c', { capacity: 8 })
      withLoanPool(shm)
      const baseline = inUse(shm)
      const shared = shm.access((tx) => tx.put({ kept: true }))
      const values: unknown[] = [
        'a'.repeat(103),
        'b'.repeat(104),
        'c'.repeat(105),
        { text: 'é'.repeat(150), n: [1, 2, 3] },
        'd'.repeat(104 + 3 * 112 - 3),
        'e'.repeat(104 + 3 * 112 - 2),
        { big: 'f'.repeat(2000) },
        { ref: shared, pad: 'g'.repeat(300) },
      ]
      // Round after round, so spans wrap around the end of the ring.
      for (let round = 0; round < 5; round++) {
        for (const v of values) {
          ch.send(v)
          const got = ch.tryReceive()
          if (typeof v === 'object' && v !== null && 'ref' in v) expect((got as { ref: unknown }).ref).toBe(shared)
          else expect(got).toEqual(v)
        }
        // Several spans queued at once, then drained in order.
        ch.send('h'.repeat(200))
        ch.send('i'.repeat(300))
        expect(ch.size).toBe(2)
        shm.check()
        expect([ch.tryReceive(), ch.tryReceive()]).toEqual(['h'.repeat(200), 'i'.repeat(300)])
      }
      shm.access((tx) => {
        // Each by-reference receive handed this process one reference: destroy them and the put.
        for (let i = 0; i < 5; i++) tx.destroy(shared)
        tx.destroy(shared)
      })
      expect(inUse(shm)).toBe(baseline)
    } finally {
      shm.close()
    }
  })

  it('a full ring: trySend says ERR_CHANNEL_FULL, send times out, nothing changes; tx.putMessage refuses', () => {
    const shm = SharedMemory.create({ name: uniqueName('chfull'), size: 4 << 20 })
    try {
      const ch = shm.channel<number | string>('c', { capacity: 4 })
      withLoanPool(shm)
      for (let i = 0; i < 4; i++) expect(ch.trySend(i)).toBe(true)
      const used = inUse(shm)
      expect(ch.trySend(4)).toBe('ERR_CHANNEL_FULL')
      expect(code(() => ch.send('y'.repeat(5000), { timeoutMs: 20 }))).toBe('ERR_TIMEOUT')
      expect(code(() => shm.access((tx) => tx.putMessage(5, { channel: 'c' })))).toBe('ERR_CHANNEL_FULL')
      expect(inUse(shm)).toBe(used)
      expect(ch.stats()).toEqual({ size: 4, capacity: 4, dropped: 0 })
      expect([ch.tryReceive(), ch.tryReceive(), ch.tryReceive(), ch.tryReceive(), ch.tryReceive()]).toEqual([0, 1, 2, 3, undefined])
      expect(code(() => ch.send((() => 1) as never))).toBe('ERR_UNSUPPORTED_TYPE')
      expect(code(() => shm.channel('x', { capacity: 3 }))).toBe('ERR_INVALID_ARGUMENT')
      expect(code(() => shm.channel('x', { capacity: 1 }))).toBe('ERR_INVALID_ARGUMENT')
    } finally {
      shm.close()
    }
  })

  it('wait options are checked on every call: an unknown, mistyped or inherited bad option is ERR_INVALID_ARGUMENT naming it, and nothing is taken', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chopts'), size: 4 << 20 })
    try {
      const ch = shm.channel<number>('c')
      ch.send(1)
      const message = (fn: () => unknown): string => {
        try {
          fn()
        } catch (err) {
          expect(err).toBeInstanceOf(ShmError)
          expect((err as ShmError).code).toBe('ERR_INVALID_ARGUMENT')
          return (err as Error).message
        }
        return 'no error'
      }
      const options = { wait: 'low-latency' as const, timeoutMs: 10 }
      expect(ch.receiveSync(options)).toBe(1)
      // The same object, changed after a call that accepted it, is checked again.
      ch.send(2)
      ;(options as Record<string, unknown>).timeotMs = 5
      expect(message(() => ch.receiveSync(options))).toMatch(/unknown option "timeotMs"; did you mean "timeoutMs"/)
      expect(message(() => ch.receiveSync({ timeoutMs: '5' } as never))).toMatch(/"timeoutMs" must be a number/)
      expect(message(() => ch.receiveSync({ wait: 'fast' } as never))).toMatch(/wait must be 'cpu-friendly' or 'low-latency'/)
      expect(message(() => ch.send(3, { wiat: 'low-latency' } as never))).toMatch(/did you mean "wait"/)
      // An inherited option is what the call would read: checked as well (an inherited unknown key is not an option).
      expect(message(() => ch.receiveSync(Object.create({ timeoutMs: 'soon' }) as never))).toMatch(/"timeoutMs" must be a number/)
      expect(ch.receiveSync(Object.create({ unrelated: true }) as never)).toBe(2)
      expect(await rejection(ch.receive({ keepAlive: 'yes' } as never))).toBe('ERR_INVALID_ARGUMENT')
      // A library that added an enumerable key to Object.prototype adds no option.
      const proto = Object.prototype as Record<string, unknown>
      proto.polluted = 'x'
      try {
        ch.send(4)
        expect(ch.receiveSync({ wait: 'low-latency', timeoutMs: 10 })).toBe(4)
        expect(message(() => ch.receiveSync({ polluted: 1 } as never))).toMatch(/unknown option "polluted"/)
      } finally {
        delete proto.polluted
      }
      expect(ch.stats().size).toBe(0)
    } finally {
      shm.close()
    }
  })

  it('a frame larger than the free space is ERR_SHM_FULL and leaves the segment unchanged', () => {
    const shm = SharedMemory.create({ name: uniqueName('chbig'), size: 64 << 10 })
    try {
      const ch = shm.channel<Uint8Array>('c', { capacity: 2 })
      withLoanPool(shm)
      const used = inUse(shm)
      expect(code(() => ch.send(new Uint8Array(100_000)))).toBe('ERR_SHM_FULL')
      expect(inUse(shm)).toBe(used)
      expect(ch.size).toBe(0)
      shm.check()
    } finally {
      shm.close()
    }
  })

  it('receive waits, times out, aborts, and rejects when the handle or segment closes; for await ends on close', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chwait'), size: 1 << 20 })
    try {
      const ch = shm.channel<number>('c')
      expect(await rejection(ch.receive({ timeoutMs: 10 }))).toBe('ERR_TIMEOUT')
      const ac = new AbortController()
      const aborted = ch.receive({ signal: ac.signal })
      ac.abort()
      expect(await rejection(aborted)).toBe('ERR_ABORTED')
      // Waiting receivers are served in order, one message each.
      const a = ch.receive()
      const b = ch.receive()
      setTimeout(() => {
        ch.send(1)
        ch.send(2)
      }, 5)
      expect([await a, await b]).toEqual([1, 2])
      const seen: number[] = []
      const loop = (async () => {
        for await (const v of ch) {
          seen.push(v)
          if (v === 3) setTimeout(() => ch.close(), 1)
        }
      })()
      ch.send(3)
      await loop
      expect(seen).toEqual([3])
      expect(code(() => ch.send(4))).toBe('ERR_SHM_CLOSED')
      const other = shm.channel<number>('d')
      const pending = other.receive()
      shm.close()
      expect(await rejection(pending)).toBe('ERR_SHM_CLOSED')
    } finally {
      shm.close()
    }
  })

  it('channels are reclaimed: 5,000 short-lived reply channels leave the segment where it was', () => {
    const shm = SharedMemory.create({ name: uniqueName('chreply'), size: 8 << 20 })
    try {
      const jobs = shm.channel<string>('jobs')
      const baseline = shm.stats().used
      for (let i = 0; i < 5000; i++) {
        const replyTo = `reply-${i}`
        const reply = shm.channel<number>(replyTo, { capacity: 2 })
        jobs.send(replyTo)
        // The responder's side: open by name, answer, close.
        const name = jobs.tryReceive()!
        const answer = shm.channel<number>(name)
        answer.send(i)
        answer.close()
        expect(reply.tryReceive()).toBe(i)
        reply.close()
      }
      expect(shm.check().channels.map((c) => c.name)).toEqual(['jobs'])
      // The directory may have grown once; nothing else stays.
      expect(shm.stats().used - baseline).toBeLessThanOrEqual(4096)
      // A channel closed with messages in it stays until someone drains it.
      const kept = shm.channel<number>('kept')
      kept.send(7)
      kept.close()
      const again = shm.channel<number>('kept')
      expect(again.tryReceive()).toBe(7)
      again.close()
      expect(shm.check().channels.map((c) => c.name)).toEqual(['jobs'])
    } finally {
      shm.close()
    }
  })
})

describe('large payloads in copied messages', () => {
  it('binary payloads of every size come back byte for byte: inline, spanning slots, and in loan pool arrays (copied by the addon)', () => {
    const shm = SharedMemory.create({ name: uniqueName('chbig'), size: 8 << 20 })
    try {
      const ch = shm.channel<unknown>('big', { capacity: 256 })
      withLoanPool(shm)
      const baseline = inUse(shm)
      for (const n of [10, 100, 4095, 4096, 5000, 12_000, 100_000, 400_000]) {
        const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff)
        const doubles = Float64Array.from({ length: n >> 3 }, (_, i) => i * 1.5 - n)
        ch.send({ n, bytes, doubles, tail: 'end' })
        const got = ch.tryReceive() as { n: number; bytes: Uint8Array; doubles: Float64Array; tail: string }
        expect(got.n).toBe(n)
        expect(got.bytes).toBeInstanceOf(Uint8Array)
        expect(got.bytes.buffer).not.toBeInstanceOf(SharedArrayBuffer)
        expect(Buffer.from(got.bytes).equals(Buffer.from(bytes))).toBe(true)
        expect(got.doubles).toEqual(doubles)
        expect(got.tail).toBe('end')
      }
      expect(inUse(shm)).toBe(baseline)
      ch.close()
    } finally {
      shm.close()
    }
  })
})

describe('loans: bulk bytes without copies', () => {
  it('a loan is filled outside any turn, sent by reference, received as the same bytes and released; misuse is refused', () => {
    const shm = SharedMemory.create({ name: uniqueName('chloan'), size: 4 << 20 })
    try {
      const ch = shm.channel<Uint8Array | number | { meta: string; data: Uint8Array; put: unknown }>('bulk', { capacity: 2 })
      // The first loan makes the pool and its array; released, the array stays for the next loan.
      const first = ch.loan(100_000)
      ch.release(first)
      const baseline = shm.stats()
      expect(baseline.pooled).toBeGreaterThanOrEqual(100_000)
      const loan = ch.loan(99_000)
      expect(loan.length).toBe(99_000)
      // The same bytes again, nothing allocated; the released view is refused through the API.
      expect(loan.byteOffset).toBe(first.byteOffset)
      expect(shm.stats().used).toBe(baseline.used)
      expect(shm.stats().pooled).toBe(0)
      expect(code(() => ch.send(first))).toBe('ERR_SHM_STALE')
      expect(code(() => ch.release(first))).toBe('ERR_SHM_STALE')
      loan.fill(7)
      expect(shm.check().loans).toMatchObject({ held: 1, inFlight: 0 })
      ch.send(loan)
      expect(shm.check().loans).toMatchObject({ held: 0, inFlight: 1 })
      // It moved into the message: the sender can no longer release or send it.
      expect(code(() => ch.release(loan))).toBe('ERR_SHM_STALE')
      expect(code(() => ch.send(loan))).toBe('ERR_SHM_STALE')
      const got = ch.tryReceive() as Uint8Array
      expect(got).toBe(loan)
      expect(got[98_999]).toBe(7)
      ch.release(got)
      expect(shm.stats()).toMatchObject({ used: baseline.used, pooled: baseline.pooled })
      // Used after release: the API refuses it.
      expect(code(() => ch.release(got))).toBe('ERR_SHM_STALE')
      expect(code(() => ch.send(got))).toBe('ERR_SHM_STALE')
      // A loan that could not be sent stays the sender's.
      ch.send(1)
      ch.send(2)
      const unsent = ch.loan(5000)
      expect(ch.trySend(unsent)).toBe('ERR_CHANNEL_FULL')
      ch.release(unsent)
      expect(ch.tryReceive()).toBe(1)
      expect(ch.tryReceive()).toBe(2)
      // Inside a larger message, beside a value sent by reference (that frame is written in a turn).
      const inner = ch.loan(3000)
      inner.fill(9)
      const put = shm.access((tx) => tx.put({ k: 1 }))
      ch.send({ meta: 'm', data: inner, put })
      const whole = ch.tryReceive() as { meta: string; data: Uint8Array; put: { k: number } }
      expect(whole.meta).toBe('m')
      expect(whole.data).toBe(inner)
      expect(whole.data[2999]).toBe(9)
      ch.release(whole.data)
      ch.release(whole.put)
      shm.access((tx) => tx.destroy(put))
      expect(shm.stats().used - shm.stats().pooled).toBe(baseline.used - baseline.pooled)
      expect(code(() => ch.loan(-1))).toBe('ERR_INVALID_ARGUMENT')
      expect(code(() => ch.release({}))).toBe('ERR_INVALID_ARGUMENT')
      // Three arrays were made (100 KB, 5000 and 3000 bytes), all free again.
      expect(shm.check().loans).toEqual({ entries: 3, held: 0, inFlight: 0, pooled: shm.stats().pooled })
    } finally {
      shm.close()
    }
  })

  it('loan, send, receive and release take no turn once the pool has an array that fits; nor do copied frames too long for the ring', () => {
    const shm = SharedMemory.create({ name: uniqueName('chloannt'), size: 4 << 20 })
    const other = SharedMemory.open({ name: shm.name })
    try {
      const ch = shm.channel<Uint8Array>('bulk')
      ch.release(ch.loan(64_000))
      ch.send(new Uint8Array(30_000))
      expect(ch.tryReceive()!.length).toBe(30_000)
      // Another handle holds the turn: anything below that needed one would be refused
      // (ERR_SHM_REENTRANT: this thread cannot wait for a turn it holds itself).
      other.access(() => {
        expect(code(() => shm.access(() => 1))).toBe('ERR_SHM_REENTRANT')
        for (let i = 0; i < 100; i++) {
          const loan = ch.loan(60_000 + i)
          loan[0] = i
          ch.send(loan)
          const got = ch.tryReceive()!
          expect(got[0]).toBe(i)
          ch.release(got)
          // Copied both ways: the frame (far longer than half the ring) goes through a pooled array.
          const copy = new Uint8Array(20_000 + i).fill(i)
          ch.send(copy)
          const back = ch.tryReceive()!
          expect(back === copy).toBe(false)
          expect(back.length).toBe(20_000 + i)
          expect(back[19_999]).toBe(i)
        }
      })
      shm.check()
    } finally {
      other.close()
      shm.close()
    }
  })

  it('a byte array sent by reference by a handle that owns it is sent, received, forwarded and released without a turn, and lives until its last holder lets go', () => {
    const shm = SharedMemory.create({ name: uniqueName('chrefnt'), size: 4 << 20 })
    const other = SharedMemory.open({ name: shm.name })
    const blocker = SharedMemory.open({ name: shm.name })
    try {
      type Message = { i: number; data: Float64Array }
      const mine = shm.channel<Message>('refs')
      const theirs = other.channel<Message>('refs')
      const baseline = inUse(shm)
      const data = shm.access((tx) => tx.put(new Float64Array(4).fill(7)))
      // Another handle holds the turn: anything below that needed one would be refused.
      blocker.access(() => {
        expect(code(() => shm.access(() => 1))).toBe('ERR_SHM_REENTRANT')
        for (let i = 0; i < 50; i++) {
          mine.send({ i, data })
          const got = theirs.tryReceive()!
          expect(got.i).toBe(i)
          // The same bytes, not a copy: a write through one view shows in the other.
          expect(got.data.byteOffset - other.bytes.byteOffset).toBe(data.byteOffset - shm.bytes.byteOffset)
          got.data[1] = i
          expect(data[1]).toBe(i)
          // Forwarded by the handle that now owns a reference, then released by it (the sender still holds one).
          theirs.send({ i: -i, data: got.data })
          theirs.release(got.data)
          const home = mine.tryReceive()!
          expect(home.i).toBe(-i)
          expect(home.data).toBe(data) // the one view this handle has of that record
          mine.release(home.data)
        }
      })
      // Released, a view is no longer this handle's to release.
      const leftover = (() => {
        mine.send({ i: 0, data })
        return theirs.tryReceive()!.data
      })()
      theirs.release(leftover)
      expect(shmError(() => theirs.release(leftover)).code).toBe('ERR_INVALID_ARGUMENT')
      expect(mine.stats().dropped).toBe(0)
      // The put's reference is the last one: destroying it frees the record, and nothing else is left.
      shm.access((tx) => tx.destroy(data))
      expect(inUse(shm)).toBe(baseline)
      expect(shm.check().clean).toBe(true)
    } finally {
      blocker.close()
      other.close()
      shm.close()
    }
  })

  it('byte arrays by reference between processes: turn-free sends, receives and releases racing in-turn stores of the same record deliver every message once and keep its count exact', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chrefrace'), size: 8 << 20 })
    let children: ReturnType<typeof startChild>[] = []
    try {
      const boxes = shm.channel<Map<string, unknown>>('box')
      const input = shm.channel<{ i: number; data: Float64Array } | { stop: true }>('refs-in', { capacity: 64 })
      const output = shm.channel<{ i: number; data: Float64Array; bad: boolean }>('refs-out', { capacity: 64 })
      const baseline = inUse(shm)
      const { data, box } = shm.access((tx) => ({ data: tx.put(new Float64Array(16).fill(42)), box: tx.put(new Map<string, unknown>()) }))
      children = Array.from({ length: 2 }, () => startChild('ref-churn.ts', [shm.name]))
      for (let c = 0; c < children.length; c++) boxes.send(box)
      for (const child of children) expect(await child.next()).toBe('ready')
      const total = 4000
      const seen = new Uint8Array(total)
      let sent = 0
      let bad = 0
      let notSame = 0
      for (let got = 0; got < total; got++) {
        while (sent < total && sent - got < 48) input.send({ i: sent++, data })
        const m = await output.receive({ timeoutMs: 20_000 })
        seen[m.i]!++
        if (m.bad) bad++
        if (m.data !== data) notSame++
        output.release(m.data)
      }
      for (let c = 0; c < children.length; c++) input.send({ stop: true })
      for (const child of children) expect(await child.exited).toBe(0)
      expect(seen.every((n) => n === 1)).toBe(true)
      expect([bad, notSame]).toEqual([0, 0])
      expect([input.stats().dropped, output.stats().dropped]).toEqual([0, 0])
      expect(shm.access((tx) => tx.copy(box))).toEqual(new Map())
      // Only the put references are left: destroying them frees both records (a count
      // one too high would leak one, one too low would have freed it early).
      shm.access((tx) => {
        tx.destroy(data)
        tx.destroy(box)
      })
      expect(inUse(shm)).toBe(baseline)
      expect(shm.check().clean).toBe(true)
    } finally {
      // (A failed run must not leave them waiting for messages.)
      for (const child of children) child.proc.kill()
      shm.close()
    }
  }, 120_000)

  it('byte arrays received by reference outside a turn read soundly while another process splits and merges the blocks around them', async () => {
    // The records sit between free blocks that another process keeps allocating and
    // freeing in its turns: a receive outside a turn must not take a record for a damaged
    // one while a neighbour's header is being rewritten.
    const shm = SharedMemory.create({ name: uniqueName('chrefnext'), size: 4 << 20 })
    const churn = startChild('alloc-churn.ts', [shm.name])
    try {
      const ch = shm.channel<Float64Array>('next-door', { capacity: 64 })
      const stop = shm.channel<boolean>('churn-stop')
      const records = shm.access((tx) => {
        const all = Array.from({ length: 16 }, (_, i) => [tx.put(new Float64Array(24)), tx.put(Float64Array.from({ length: 8 }, (_, k) => i * 8 + k))])
        // Free space on both sides of each kept record.
        for (const [filler] of all) tx.destroy(filler!)
        return all.map(([, kept]) => kept!)
      })
      expect(await churn.next()).toBe('ready')
      let bad = 0
      let rounds = 0
      for (const until = Date.now() + 2000; Date.now() < until; rounds++) {
        for (const data of records) ch.send(data)
        for (let i = 0; i < records.length; i++) {
          const got = ch.tryReceive()!
          if (got !== records[i] || got[0] !== i * 8 || got[7] !== i * 8 + 7) bad++
          ch.release(got)
        }
      }
      stop.send(true)
      const report = (await churn.next()) as { rounds: number }
      expect(await churn.exited).toBe(0)
      expect(report.rounds).toBeGreaterThan(0)
      expect([bad, ch.stats().dropped]).toEqual([0, 0])
      expect(rounds).toBeGreaterThan(0)
      expect(shm.check().clean).toBe(true)
    } finally {
      churn.proc.kill()
      shm.close()
    }
  }, 60_000)

  it('a loan reuses the array given back last (still in cache), not the pool array unused longest', () => {
    const shm = SharedMemory.create({ name: uniqueName('chloanhot'), size: 8 << 20 })
    try {
      const ch = shm.channel<Uint8Array>('bulk')
      const pool = Array.from({ length: 8 }, () => ch.loan(64_000))
      for (const loan of pool) ch.release(loan)
      const through = (loan: Uint8Array): void => {
        ch.send(loan)
        ch.release(ch.tryReceive()!)
      }
      // One message at a time: every loan is the same array.
      const first = ch.loan(64_000)
      const hot = first.byteOffset
      through(first)
      for (let i = 0; i < 20; i++) {
        const loan = ch.loan(64_000)
        expect(loan.byteOffset).toBe(hot)
        through(loan)
      }
      // Two in flight: the two arrays alternate, the other six stay cold.
      const a = ch.loan(64_000)
      const b = ch.loan(64_000)
      const offsets = new Set([a.byteOffset, b.byteOffset])
      let held = b
      through(a)
      for (let i = 0; i < 20; i++) {
        const next = ch.loan(64_000)
        expect(offsets.has(next.byteOffset)).toBe(true)
        through(held)
        held = next
      }
      through(held)
      shm.check()
    } finally {
      shm.close()
    }
  })

  it('another process reads the loaned bytes in place and releases them', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chloan2'), size: 8 << 20 })
    try {
      const ch = shm.channel<Uint8Array | { data: Uint8Array }>('bulk', { capacity: 4 })
      ch.release(ch.loan(1))
      const baseline = shm.stats()
      const child = startChild('loan-receiver.ts', [shm.name, '3'])
      expect(await child.next()).toBe('ready')
      const sent: Array<{ offset: number; sum: number }> = []
      for (let k = 1; k <= 3; k++) {
        const loan = ch.loan(400_000)
        loan.fill(k)
        sent.push({ offset: loan.byteOffset - shm.bytes.byteOffset, sum: 400_000 * k })
        ch.send(k === 2 ? { data: loan } : loan)
      }
      expect(await child.next()).toEqual(sent)
      expect(await child.exited).toBe(0)
      // Every loan is back in the pool, and nothing else was left behind.
      const after = shm.stats()
      expect(after.pooled).toBeGreaterThanOrEqual(3 * 400_000)
      expect(after.used - after.pooled).toBe(baseline.used - baseline.pooled)
      shm.check()
    } finally {
      shm.close()
    }
  })

  it('loans held by a killed process go back to the pool; every loan held is ERR_SHM_FULL', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chloandead'), size: 8 << 20 })
    try {
      const ch = shm.channel<Uint8Array>('bulk', { capacity: 16 })
      const child = startChild('loan-receiver.ts', [shm.name, '10', 'keep'])
      expect(await child.next()).toBe('ready')
      for (let k = 0; k < 10; k++) ch.send(ch.loan(1000))
      expect((await child.next()) as unknown[]).toHaveLength(10)
      child.proc.kill('SIGKILL')
      await child.exited
      // The pool has 256 entries: ten were held by the dead child, so all 256 can be lent only if they came back.
      const held = lendWholePool(ch)
      expect(new Set(held.map((b) => b.byteOffset)).size).toBe(256)
      const full = (() => {
        try {
          ch.loan(1000)
        } catch (err) {
          return err as ShmError
        }
        return undefined
      })()
      expect(full?.code).toBe('ERR_SHM_FULL')
      expect(full?.message).toMatch(/256 loans .* are held/)
      // With every pool entry held, a long copied frame goes into a Frame record instead.
      const before = inUse(shm)
      ch.send(new Uint8Array(50_000).fill(5))
      expect(inUse(shm)).toBeGreaterThan(before + 50_000)
      const back = ch.tryReceive()!
      expect(back.length).toBe(50_000)
      expect(back[49_999]).toBe(5)
      expect(inUse(shm)).toBe(before)
      for (const b of held) ch.release(b)
      shm.check()
    } finally {
      shm.close()
    }
  })

  it('a blocking send that only the same thread\'s pending receives could make room for is refused, not a deadlock', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chselfwait'), size: 1 << 20 })
    try {
      const ch = shm.channel<number>('self', { capacity: 2 })
      const first = ch.receive() // pending: the ring is empty
      ch.send(1)
      ch.send(2)
      // Full, and the receive that would make room cannot run while send blocks this thread.
      const err = shmError(() => ch.send(3))
      expect(err.code).toBe('ERR_CHANNEL_FULL')
      expect(err.message).toMatch(/would wait for ever/)
      expect(await first).toBe(1)
      ch.send(3) // room again: nothing of the refused send was left behind
      expect([ch.tryReceive(), ch.tryReceive(), ch.tryReceive()]).toEqual([2, 3, undefined])
      // With another handle open, another thread or process may receive: send waits as asked.
      const other = shm.channel<number>('self')
      const pending = ch.receive()
      ch.send(4)
      ch.send(5)
      expect(shmError(() => ch.send(6, { timeoutMs: 50 })).code).toBe('ERR_TIMEOUT')
      expect(await pending).toBe(4)
      other.close()
      expect(shm.check().clean).toBe(true)
    } finally {
      shm.close()
    }
  })

  it('a sender killed while its send waits for room still holds its loans and its frame array: they come back to the pool', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chloanwait'), size: 8 << 20 })
    try {
      const ch = shm.channel<Uint8Array>('bulk', { capacity: 2 })
      const child = startChild('loan-blocked-sender.ts', [shm.name])
      expect(await child.next()).toBe('full')
      // The two queued loans are in flight; the waiting send has lent a loan and an array for its frame.
      await vi.waitFor(() => expect(shm.check().loans.held + shm.check().loans.inFlight).toBe(4), { timeout: 10_000 })
      child.proc.kill('SIGKILL')
      await child.exited
      for (let k = 1; k <= 2; k++) {
        const got = ch.tryReceive()!
        expect([got.length, got[0], got[999]]).toEqual([1000, k, k])
        ch.release(got)
      }
      expect(ch.tryReceive()).toBeUndefined()
      // Nothing was left in flight: the waiting send's entries are held by the dead process…
      expect(shm.check().loans).toMatchObject({ held: 2, inFlight: 0 })
      // … and come back when the pool runs out: all 256 entries can be lent.
      const held = lendWholePool(ch)
      expect(shm.check().loans).toMatchObject({ entries: 256, held: 256, inFlight: 0 })
      for (const b of held) ch.release(b)
      expect(shm.check().loans).toMatchObject({ held: 0, inFlight: 0 })
    } finally {
      shm.close()
    }
  })

  for (const mode of ['loan', 'pooled'] as const) {
    it(`a sender killed between marking its ${mode === 'loan' ? 'loan' : 'loan and its frame array'} in flight and publishing: the receiver that skips the slot gives them back`, async () => {
      const shm = SharedMemory.create({ name: uniqueName('chunpub'), size: 8 << 20 })
      try {
        const ch = shm.channel<Uint8Array>('bulk')
        const child = startChild('loan-unpublished-sender.ts', [shm.name, mode])
        expect(await child.next()).toBe('launched')
        expect(shm.check().loans).toMatchObject({ held: 0, inFlight: mode === 'loan' ? 1 : 2 })
        child.proc.kill('SIGKILL')
        await child.exited
        // The position stays pending for STUCK_MS (1 s), then a receive skips it and counts it.
        await vi.waitFor(
          () => {
            expect(ch.tryReceive()).toBeUndefined()
            expect(ch.stats()).toMatchObject({ size: 0, dropped: 1 })
          },
          { timeout: 5000, interval: 100 },
        )
        // Nothing stays in flight: every entry of the pool can be lent again.
        expect(shm.check().loans).toMatchObject({ held: 0, inFlight: 0 })
        const held = lendWholePool(ch)
        for (const b of held) ch.release(b)
        expect(shm.check().loans).toMatchObject({ entries: 256, held: 0, inFlight: 0 })
      } finally {
        shm.close()
      }
    })
  }

  it('a sender killed while a send with references waits for room: its Frame record and the references it retained come back', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chrefwait'), size: 1 << 20 })
    try {
      const ch = shm.channel<unknown>('refs', { capacity: 2 })
      const baseline = shm.stats().used
      const child = startChild('ref-blocked-sender.ts', [shm.name])
      expect(await child.next()).toBe('full')
      // The waiting send has retained the value and written its Frame record (~2 KB) …
      await vi.waitFor(() => expect(shm.stats().used).toBeGreaterThan(baseline + 5000), { timeout: 10_000 })
      // … and lists both in its holder slot a few µs later, before it sleeps.
      await new Promise((resolve) => setTimeout(resolve, 300))
      child.proc.kill('SIGKILL')
      await child.exited
      expect([ch.tryReceive(), ch.tryReceive(), ch.tryReceive()]).toEqual([1, 2, undefined])
      // The next handle to hold something sweeps the dead one's slot: its put, the message's reference, the Frame record.
      const other = SharedMemory.open({ name: shm.name })
      try {
        other.access((tx) => tx.destroy(tx.put({ x: 1 })))
      } finally {
        other.close()
      }
      expect(shm.stats().used).toBe(baseline)
      expect(shm.check().clean).toBe(true)
    } finally {
      shm.close()
    }
  })

  it('free pooled arrays go back to the allocator when the heap would be full without them', () => {
    const shm = SharedMemory.create({ name: uniqueName('chloanfull'), size: 4 << 20 })
    try {
      const ch = shm.channel<Uint8Array>('bulk')
      ch.release(ch.loan(3 << 20))
      expect(shm.stats().pooled).toBeGreaterThanOrEqual(3 << 20)
      // Without the pooled array, this does not fit.
      const big = shm.access((tx) => tx.put(new Uint8Array(3 << 20)))
      expect(shm.stats().pooled).toBe(0)
      shm.access((tx) => tx.destroy(big))
      // A handle's close gives back what it holds.
      const other = SharedMemory.open({ name: shm.name })
      const held = other.channel<Uint8Array>('bulk').loan(10_000)
      expect(held.length).toBe(10_000)
      const before = shm.stats().pooled
      other.close()
      expect(shm.stats().pooled).toBeGreaterThan(before)
      shm.check()
    } finally {
      shm.close()
    }
  })

  it('garbage collection releases a received loan nobody released', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chloangc'), size: 4 << 20 })
    try {
      const ch = shm.channel<Uint8Array>('bulk')
      ch.release(ch.loan(50_000))
      const baseline = shm.stats().pooled
      ;(() => {
        const loan = ch.loan(50_000)
        ch.send(loan)
        expect(ch.tryReceive()!.length).toBe(50_000)
      })()
      expect(shm.stats().pooled).toBeLessThan(baseline)
      await afterCollection(() => shm.stats().pooled === baseline)
      expect(shm.stats().pooled).toBe(baseline)
    } finally {
      shm.close()
    }
  })

  it('garbage collection gives back loans dropped in the task that made them, also past the batch registered at once', async () => {
    // Loan views are registered for collection at the end of their task, or in batches
    // of 64 in a loop that never yields: dropped either way, every loan comes back.
    const shm = SharedMemory.create({ name: uniqueName('chloangc2'), size: 4 << 20 })
    try {
      const ch = shm.channel<Uint8Array>('bulk')
      const loans = Array.from({ length: 150 }, () => ch.loan(1000))
      for (const loan of loans) ch.release(loan)
      const baseline = shm.stats().pooled
      ;(() => {
        // 150 loans, none released or sent: two forced batches and one at the end of the task.
        for (let i = 0; i < 150; i++) ch.loan(1000)[0] = i
      })()
      expect(shm.stats().pooled).toBe(0)
      await afterCollection(() => shm.stats().pooled === baseline)
      expect(shm.stats().pooled).toBe(baseline)
      // Sent in one task, received back by this handle (the same view) in a later one, dropped.
      ;(() => ch.send(ch.loan(1000)))()
      await new Promise((resolve) => setImmediate(resolve))
      ;(() => {
        expect(ch.tryReceive()!.length).toBe(1000)
      })()
      expect(shm.stats().pooled).toBeLessThan(baseline)
      await afterCollection(() => shm.stats().pooled === baseline)
      expect(shm.stats().pooled).toBe(baseline)
    } finally {
      shm.close()
    }
  })
})

describe('channels across processes', () => {
  async function exactlyOnce(producers: number, per: number, consumers: number, mode: 'sync' | 'async'): Promise<void> {
    const shm = SharedMemory.create({ name: uniqueName('chmpmc'), size: 64 << 20 })
    try {
      const ch = shm.channel<unknown>('ring', { capacity: 256 })
      const baseline = shm.stats().used
      const tally = shm.access((tx) => tx.put(new Uint8Array(producers * per)))
      shm.access((tx) => {
        for (let c = 0; c < consumers; c++) tx.putMessage(tally, { channel: 'tally' })
      })
      const readers = Array.from({ length: consumers }, () => startChild('ring-consumer.ts', [shm.name, String(per), mode]))
      for (const r of readers) expect(await r.next()).toBe('ready')
      const writers = Array.from({ length: producers }, (_, p) => startChild('ring-producer.ts', [shm.name, String(p), String(per)]))
      for (const w of writers) expect(await w.exited).toBe(0)
      for (let c = 0; c < consumers; c++) ch.send({ stop: true })
      const results = (await Promise.all(readers.map((r) => r.next()))) as Array<{ taken: number; ordered: boolean }>
      for (const r of readers) expect(await r.exited).toBe(0)
      expect(results.reduce((n, r) => n + r.taken, 0)).toBe(producers * per)
      expect(results.every((r) => r.ordered)).toBe(true)
      let wrong = 0
      for (let k = 0; k < tally.length; k++) if (tally[k] !== 1) wrong++
      expect(wrong).toBe(0)
      expect(ch.stats()).toEqual({ size: 0, capacity: 256, dropped: 0 })
      shm.access((tx) => tx.destroy(tally))
      ch.close()
      const after = shm.check()
      expect(after.channels.filter((c) => c.name === 'ring')).toEqual([])
      expect(shm.stats().used).toBeLessThanOrEqual(baseline)
    } finally {
      shm.close()
    }
  }

  it('8 producers × 100,000 messages, 2 blocking consumers: each exactly once, in order per producer', async () => {
    await exactlyOnce(8, 100_000, 2, 'sync')
  }, 240_000)

  it('4 producers × 20,000 messages, 2 consumers awaiting receive(): each exactly once', async () => {
    await exactlyOnce(4, 20_000, 2, 'async')
  }, 120_000)

  it.each(['sync', 'async'] as const)('loans and long copied frames from 4 processes to 2 (%s): every message exactly once and intact, every loan back in the pool', async (mode) => {
    const producers = 4
    const per = 900
    const shm = SharedMemory.create({ name: uniqueName('chtraffic'), size: 32 << 20 })
    try {
      const ch = shm.channel<unknown>('traffic', { capacity: 64 })
      withLoanPool(shm)
      const tally = shm.access((tx) => tx.put(new Uint8Array(producers * per)))
      shm.access((tx) => {
        for (let c = 0; c < 2; c++) tx.putMessage(tally, { channel: 'tally' })
      })
      // (The tally messages are taken by reference: once the readers close, that is as it was.)
      const baseline = inUse(shm)
      const readers = Array.from({ length: 2 }, () => startChild('loan-traffic.ts', [shm.name, 'receive', String(per), mode]))
      for (const r of readers) expect(await r.next()).toBe('ready')
      const writers = Array.from({ length: producers }, (_, p) => startChild('loan-traffic.ts', [shm.name, 'send', String(p), String(per)]))
      for (const w of writers) expect(await w.exited).toBe(0)
      for (let c = 0; c < 2; c++) ch.send({ stop: true })
      const results = (await Promise.all(readers.map((r) => r.next()))) as Array<{ taken: number; bad: number }>
      for (const r of readers) expect(await r.exited).toBe(0)
      expect(results.reduce((n, r) => n + r.taken, 0)).toBe(producers * per)
      expect(results.map((r) => r.bad)).toEqual([0, 0])
      let wrong = 0
      for (let k = 0; k < tally.length; k++) if (tally[k] !== 1) wrong++
      expect(wrong).toBe(0)
      expect(ch.stats()).toEqual({ size: 0, capacity: 64, dropped: 0 })
      // Every loan and every frame's array is free again: nothing is in use but what was before.
      expect(shm.stats().pooled).toBeGreaterThan(0)
      expect(inUse(shm)).toBe(baseline)
      shm.access((tx) => tx.destroy(tally))
      shm.check()
    } finally {
      shm.close()
    }
  }, 120_000)

  it('a producer killed mid-send holds the channel up for about a second, then its slot is skipped and counted', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chkillp'), size: 4 << 20 })
    try {
      const ch = shm.channel<{ p: number; i: number } | string>('ring', { capacity: 256 })
      const child = startChild('ring-producer.ts', [shm.name, '1', '3', 'stall'])
      expect(await child.next()).toBe('stalled')
      child.proc.kill('SIGKILL')
      await child.exited
      ch.send('after')
      const got: unknown[] = []
      for (let i = 0; i < 4; i++) got.push(await ch.receive({ timeoutMs: 5000 }))
      expect(got).toEqual([{ p: 1, i: 0 }, { p: 1, i: 1 }, { p: 1, i: 2 }, 'after'])
      expect(ch.stats().dropped).toBe(1)
      expect(ch.size).toBe(0)
      shm.check()
    } finally {
      shm.close()
    }
  })

  it.each([
    ['a frame spanning 39 slots', 4000, false],
    ['a frame in a loan pool array', 20_000, false],
    ['a Frame record (a frame with references)', 20_000, true],
  ])('a consumer killed mid-receive of %s loses that one message (counted); senders get the slots back', async (_kind, bytes, withRef) => {
    const shm = SharedMemory.create({ name: uniqueName('chkillc'), size: 4 << 20 })
    try {
      const ch = shm.channel<number | Uint8Array | { bytes: Uint8Array; ref: unknown }>('ring', { capacity: 256 })
      const tally = shm.access((tx) => tx.put(new Uint8Array(1)))
      shm.access((tx) => tx.putMessage(tally, { channel: 'tally' }))
      withLoanPool(shm)
      const child = startChild('ring-consumer.ts', [shm.name, '1', 'stall'])
      expect(await child.next()).toBe('ready')
      // Freeing the stalled slots must free what they hold too: the frame's array or record, and the value it refers to.
      const used = inUse(shm)
      if (withRef) {
        const ref = shm.access((tx) => tx.put([1, 2, 3]))
        ch.send({ bytes: new Uint8Array(bytes), ref })
        shm.access((tx) => tx.destroy(ref))
      } else ch.send(new Uint8Array(bytes))
      expect(await child.next()).toBe('stalled')
      child.proc.kill('SIGKILL')
      await child.exited
      // The ring is full only once it wraps onto the held slot.
      for (let i = 0; i < 255; i++) ch.send(i)
      ch.send(255, { timeoutMs: 5000 })
      expect(ch.stats().dropped).toBe(1)
      for (let i = 0; i < 256; i++) expect(ch.tryReceive()).toBe(i)
      shm.access((tx) => tx.destroy(tally))
      expect(inUse(shm)).toBeLessThanOrEqual(used)
      shm.check()
    } finally {
      shm.close()
    }
  })

  describe('a worker thread terminated in the middle of something, in a process that lives on', () => {
    const stall = async (name: string, mode: 'loans' | 'send' | 'receive'): Promise<void> => {
      const worker = startThread('thread-stall.ts', { name, mode })
      expect(await new Promise((resolve) => worker.once('message', resolve))).toBe('stalled')
      await worker.terminate()
    }

    it('its loans go back to the pool', async () => {
      const shm = SharedMemory.create({ name: uniqueName('thrloans'), size: 8 << 20 })
      try {
        const ch = shm.channel<Uint8Array>('bulk')
        await stall(shm.name, 'loans')
        expect(shm.check().loans.held).toBe(3)
        // All 256 entries can be lent only if the terminated thread's three came back.
        const held = lendWholePool(ch)
        expect(code(() => ch.loan(1000))).toBe('ERR_SHM_FULL')
        for (const b of held) ch.release(b)
        expect(shm.check().loans).toMatchObject({ held: 0, inFlight: 0 })
      } finally {
        shm.close()
      }
    })

    it('a send position it claimed is skipped after about a second and counted', async () => {
      const shm = SharedMemory.create({ name: uniqueName('thrsend'), size: 4 << 20 })
      try {
        const ch = shm.channel<string>('ring', { capacity: 256 })
        await stall(shm.name, 'send')
        ch.send('after')
        expect(await ch.receive({ timeoutMs: 5000 })).toBe('after')
        expect(ch.stats()).toEqual({ size: 0, capacity: 256, dropped: 1 })
        shm.check()
      } finally {
        shm.close()
      }
    })

    it('a message it claimed is lost (counted), and its slot is freed for senders', async () => {
      const shm = SharedMemory.create({ name: uniqueName('thrrecv'), size: 4 << 20 })
      try {
        const ch = shm.channel<number | string>('ring', { capacity: 256 })
        ch.send('taken by the thread')
        await stall(shm.name, 'receive')
        // The ring is full only once it wraps onto the held slot.
        for (let i = 0; i < 255; i++) ch.send(i)
        ch.send(255, { timeoutMs: 5000 })
        expect(ch.stats().dropped).toBe(1)
        for (let i = 0; i < 256; i++) expect(ch.tryReceive()).toBe(i)
        shm.check()
      } finally {
        shm.close()
      }
    })
  })

  it('a worker thread receives on its own event loop, woken by another process', async () => {
    const shm = SharedMemory.create({ name: uniqueName('chworker'), size: 4 << 20 })
    try {
      const worker = startThread('ring-worker.ts', shm.name)
      const messages: unknown[] = []
      const next = (): Promise<unknown> => new Promise((resolve) => worker.once('message', resolve))
      messages.push(await next())
      const child = startChild('ring-sender.ts', [shm.name, 'to-worker', JSON.stringify({ from: 'child' })])
      messages.push(await next())
      expect(await child.exited).toBe(0)
      expect(messages).toEqual(['ready', { from: 'child' }])
      await worker.terminate()
    } finally {
      shm.close()
    }
  })
})
