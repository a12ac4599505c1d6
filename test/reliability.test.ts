// Reliability and security: what happens when things go wrong — hostile names and
// arguments, a full segment, processes killed holding the turn or while creating,
// a heap beyond repair, sustained load from 8 processes — and the
// `interprocess-objects` CLI that finds and removes what crashes leave behind.
// docs/reliability.md lists every fault tried here and what was seen.
//
// Fast by default; IPO_LONG=1 runs the long variants (more rounds, more kills,
// 100k messages per load peer).
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { SharedMemory, ShmError, type AllocatorStats, type Turn } from 'interprocess-objects'
import { findChannel } from '../core/channel'
import { mappedHandleOf } from '../core/values/mapped_handle'
import { Header, HeaderFlag } from '../core/layout'
import { native, OpenMode } from '../core/native'
import { localNotifier } from '../core/notifier'
import { Chan, Hash, Rec } from '../core/records'
import { startChild, uniqueName } from './helpers/processes'
import { cli } from './helpers/cli'
import { afterCollection, inUse, shmError, shmFile, withLoanPool } from './helpers/segments'
import { prng } from './helpers/prng'

const LONG = process.env.IPO_LONG === '1'
const root = path.join(__dirname, '..')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The channel record of `channel` (which must exist). */
function channelOf(shm: SharedMemory, channel: string): number {
  const ref = shm.access(() => findChannel(shm.heap, channel))
  expect(ref).toBeGreaterThan(0)
  return ref
}

/** The record a mapped value stands for. */
const refOf = (view: unknown): number => mappedHandleOf(view as object)!.ref

/** Header offset of the heap's first block; its size word is 4 bytes further. */
const FIRST_BLOCK = Header.HeapStart + 8
// Allocator root words (core/allocator.ts, Root.Op / Root.OpBlock): an operation under way.
const ROOT_OP = 19 * 4
const ROOT_OP_BLOCK = 20 * 4

describe('segment security', () => {
  it('creates the OS object with mode 0600, whatever the umask', () => {
    for (const mask of [0o000, 0o022, 0o077]) {
      const old = process.umask(mask)
      let shm: SharedMemory | undefined
      try {
        shm = SharedMemory.create({ name: uniqueName('mode'), size: 16 * 1024 })
        expect(fs.statSync(shmFile(shm.name)).mode & 0o777).toBe(0o600)
        expect(fs.statSync(shmFile(shm.name)).uid).toBe(process.getuid!())
      } finally {
        process.umask(old)
        shm?.close()
      }
    }
  })

  it('refuses names with "/", "..", too long, empty, spaces or non-ASCII with ERR_INVALID_NAME before asking the OS', () => {
    const bad: unknown[] = ['/', 'a/b', '/abs', '../x', '..', '.', 'x'.repeat(27), '', 'a b', 'tab\t', 'nul\0', 'é', 'ü-name', '%2e%2e', 'a\\b', 42, null, undefined]
    for (const name of bad) {
      for (const call of [
        () => SharedMemory.create({ name: name as string, size: 16 * 1024 }),
        () => SharedMemory.open({ name: name as string }),
        () => SharedMemory.openOrCreate({ name: name as string, size: 16 * 1024 }),
        () => SharedMemory.unlink(name as string),
      ]) {
        const err = shmError(call)
        expect(err.code, `name ${JSON.stringify(name)}`).toBe('ERR_INVALID_NAME')
        expect(err.message.length).toBeGreaterThan(20)
      }
    }
    // Nothing was created under any of these names.
    for (const name of bad) if (typeof name === 'string') expect(fs.existsSync(shmFile(name)), name).toBe(false)
    // The longest legal name (26 characters) works.
    const longest = `${uniqueName('n')}${'z'.repeat(26)}`.slice(0, 26)
    const shm = SharedMemory.create({ name: longest, size: 16 * 1024 })
    expect(fs.existsSync(shmFile(longest))).toBe(true)
    shm.close()
    expect(fs.existsSync(shmFile(longest))).toBe(false)
  })

  it('native entry points reject wrong types and ranges with TypeError / RangeError, and stay usable', async () => {
    const shm = SharedMemory.create({ name: uniqueName('native'), size: 64 * 1024 })
    const osName = `/ipo-${shm.name}`
    const m = native.open(osName, 0, OpenMode.Open, false)
    const id = m.id
    const size = m.size
    const n = native as unknown as Record<string, (...args: unknown[]) => unknown>
    const cases: Array<[string, unknown[], typeof TypeError | typeof RangeError]> = [
      ['open', [42, 0, 1, false], TypeError],
      ['open', [undefined, 0, 1, false], TypeError],
      ['open', ['/ipo-../x', 0, 1, false], TypeError],
      ['open', ['ipo-noslash', 0, 1, false], TypeError],
      ['open', [`/ipo-${'a'.repeat(40)}`, 0, 1, false], TypeError],
      ['open', ['/ipo-a/b', 0, 1, false], TypeError],
      ['open', [osName, '4096', 0, false], TypeError],
      ['open', [osName, NaN, 0, false], RangeError],
      ['open', [`/ipo-${shm.name}x`, 1000, 0, false], RangeError],
      ['open', [`/ipo-${shm.name}x`, -4096, 0, false], RangeError],
      ['open', [`/ipo-${shm.name}x`, 2 ** 50, 0, false], RangeError],
      ['open', [`/ipo-${shm.name}x`, Infinity, 0, false], RangeError],
      ['open', [osName, 4096, 3, false], RangeError],
      ['open', [osName, 4096, 1.5, false], RangeError],
      ['open', [osName, 4096, '1', false], TypeError],
      ['close', ['1'], TypeError],
      ['close', [NaN], RangeError],
      ['unlink', [undefined], TypeError],
      ['unlink', ['../../etc/passwd'], TypeError],
      ['wait', [], TypeError],
      ['wait', ['1', 0, 0, 0], TypeError],
      ['wait', [id, 2, 0, 0], RangeError],
      ['wait', [id, -4, 0, 0], RangeError],
      ['wait', [id, size, 0, 0], RangeError],
      ['wait', [id, 2 ** 53, 0, 0], RangeError],
      ['wait', [id, 4.5, 0, 0], RangeError],
      ['wait', [id, 0, 2 ** 32, 0], RangeError],
      ['wait', [id, 0, 1.5, 0], RangeError],
      ['wait', [id, 0, -(2 ** 31) - 1, 0], RangeError],
      ['wait', [id, 0, 0, 'soon'], TypeError],
      ['wait', [id, 0, 0, NaN], RangeError],
      ['wake', [id, 0, -1], RangeError],
      ['wake', [id, size + 4, 1], RangeError],
      ['wake', [id, 0, 'all'], TypeError],
      ['waitAsync', [id, 0, 0, 0, -1, false, () => {}], RangeError],
      ['waitAsync', [id, 0, 0, 0, 2e9, false, () => {}], RangeError],
      ['waitAsync', [id, 3, 0, 0, 0, false, () => {}], RangeError],
      ['waitAsync', [id, 0, 0, 0, 0, false, 'callback'], TypeError],
      ['cancelWait', ['x'], TypeError],
      ['syncIn', ['x'], TypeError],
      ['syncOut', [{}], TypeError],
      ['processAlive', ['1'], TypeError],
      ['processAlive', [1.5], RangeError],
      ['processAlive', [NaN], RangeError],
      ['setErrorClass', [5], TypeError],
      // The notifier (core/notifier.ts): a callback, a boolean, and an address of two integers 1..2^32-1.
      ['notifierOpen', [], TypeError],
      ['notifierOpen', ['onWake'], TypeError],
      ['notifierOpen', [{}], TypeError],
      ['notifierRef', [], TypeError],
      ['notifierRef', [1], TypeError],
      ['notifierRef', ['true'], TypeError],
      ['notify', [], TypeError],
      ['notify', ['1', 1], TypeError],
      ['notify', [1, '1'], TypeError],
      ['notify', [1], TypeError],
      ['notify', [NaN, 1], RangeError],
      ['notify', [1, NaN], RangeError],
      ['notify', [0, 1], RangeError],
      ['notify', [1, 0], RangeError],
      ['notify', [-1, 1], RangeError],
      ['notify', [1.5, 1], RangeError],
      ['notify', [1, 2.5], RangeError],
      ['notify', [2 ** 32, 1], RangeError],
      ['notify', [1, 2 ** 32], RangeError],
      ['notify', [Infinity, 1], RangeError],
    ]
    const wrong: string[] = []
    for (const [fn, args, expected] of cases) {
      try {
        n[fn]!(...args)
        wrong.push(`${fn}(${args.map(String).join(', ')}) did not throw`)
      } catch (err) {
        if (!(err instanceof expected) || (err as Error).message.length === 0) wrong.push(`${fn}(${args.map(String).join(', ')}) threw ${String(err)}, expected a ${expected.name}`)
      }
    }
    expect(wrong).toEqual([])
    // Ids that name no segment are a ShmError, out-of-range pids are simply not alive.
    for (const bad of [-1, 2 ** 40, 0.5, 999_999]) expect(shmError(() => native.close(bad)).code).toBe('ERR_SHM_CLOSED')
    expect(native.processAlive(-1)).toBe(false)
    expect(native.processAlive(2 ** 40)).toBe(false)
    expect(native.cancelWait(-1)).toBe(false)
    // Everything still works.
    expect(native.wait(id, 0, 12345, 0)).toBe('not-equal')
    expect(native.wake(id, 0, 1)).toBe(0)
    expect(native.processAlive(process.pid)).toBe(true)
    native.close(id)
    shm.access((tx) => tx.putMessage('still fine'))
    expect(shm.access((tx) => tx.takeMessage())).toBe('still fine')
    // This thread's notifier: open (the refused calls above opened none, and this one
    // cannot be opened twice), reachable at its address, and nobody at a neighbouring one.
    const notifier = localNotifier()
    expect(notifier).not.toBe(null)
    expect(() => native.notifierOpen(() => {})).toThrow(/already open/)
    expect(native.notify(process.pid, notifier!.nonce)).toBe(0)
    expect(native.notify(process.pid, notifier!.nonce === 0xfffffffe ? 1 : notifier!.nonce + 1)).toBe(1)
    // A receive that waits is woken through it by a send from another handle.
    const other = SharedMemory.open({ name: shm.name })
    const ch = shm.channel<string>('woken', { capacity: 2 })
    const received = ch.receive()
    expect(shm.check().channels.find((c) => c.name === 'woken')?.waiters).toBe(1)
    other.channel<string>('woken').send('woken')
    expect(await received).toBe('woken')
    other.close()
    shm.close()
  })
})

describe('ERR_SHM_FULL, fill and drain', () => {
  it('a put that does not fit throws ERR_SHM_FULL and leaves every byte of the segment as it was', () => {
    const shm = SharedMemory.create({ name: uniqueName('full'), size: 64 * 1024 })
    try {
      shm.access((tx) => {
        const live = tx.put({ a: [1, 2, 3], s: 'kept', m: new Map([[1, 'one']]) })
        tx.putMessage({ queued: true })
        const stats = tx.stats()
        const before = shm.bytes.slice()
        const sameBytes = (): boolean => Buffer.compare(Buffer.from(shm.bytes), Buffer.from(before)) === 0
        // One record too big: the allocation fails before anything is written.
        for (const attempt of [
          () => tx.put(new Uint8Array(stats.largestFree + 1)),
          () => tx.put(new Float64Array(Math.ceil((stats.largestFree + 1) / 8))),
          () => tx.putMessage(new Uint8Array(stats.largestFree + 1)),
          () => tx.put(new Uint8Array(2 ** 31)),
        ]) {
          expect(shmError(attempt).code).toBe('ERR_SHM_FULL')
          expect(sameBytes()).toBe(true)
        }
        // Several records, the last one too big: what was taken is given back; the
        // figures and live values are as before (block contents may differ).
        const err = shmError(() => tx.put({ small: 'a', list: [1, 2], big: 'y'.repeat(stats.largestFree + 1) }))
        expect(err.code).toBe('ERR_SHM_FULL')
        expect(tx.stats()).toEqual(stats)
        expect(tx.copy(live)).toEqual({ a: [1, 2, 3], s: 'kept', m: new Map([[1, 'one']]) })
      })
      expect(shm.check().clean).toBe(true)
      expect(shm.access((tx) => tx.takeMessage())).toEqual({ queued: true })
    } finally {
      shm.close()
    }
  })

  const ROUNDS = LONG ? 10_000 : 1000
  it(`fills a segment to ERR_SHM_FULL and drains it ${ROUNDS} times, back to the baseline every round`, () => {
    const shm = SharedMemory.create({ name: uniqueName('filldrain'), size: 64 * 1024 })
    const rnd = prng(0xf111)
    const int = (k: number): number => Math.floor(rnd() * k)
    const makeValue = (): { value: unknown; single: boolean } => {
      const r = rnd()
      if (r < 0.35) return { value: new Uint8Array(int(3000)), single: true }
      if (r < 0.5) return { value: new Float64Array(int(200)), single: true }
      if (r < 0.7) return { value: { i: int(1000), s: 's'.repeat(int(400)), a: [1, 'two', [3]] }, single: false }
      if (r < 0.85) return { value: new Map<unknown, unknown>([[int(9), 'v'.repeat(int(200))], ['k', [1, 2]]]), single: false }
      return { value: Array.from({ length: int(40) }, (_, i) => (i % 2 === 0 ? i : `e${i}`)), single: false }
    }
    try {
      const baseline = shm.stats()
      let puts = 0
      let identical = 0
      for (let round = 0; round < ROUNDS; round++) {
        shm.access((tx: Turn) => {
          const held: unknown[] = []
          for (;;) {
            const { value, single } = makeValue()
            const statsBefore: AllocatorStats = tx.stats()
            // Close to full, snapshot: a failing single-record put must not change a byte.
            const before = single && statsBefore.largestFree < 4096 ? shm.bytes.slice() : null
            try {
              held.push(tx.put(value))
              puts++
            } catch (err) {
              if (!(err instanceof ShmError) || err.code !== 'ERR_SHM_FULL') throw err
              expect(tx.stats()).toEqual(statsBefore)
              if (before !== null) {
                expect(Buffer.compare(Buffer.from(shm.bytes), Buffer.from(before))).toBe(0)
                identical++
              }
              break
            }
          }
          expect(held.length).toBeGreaterThan(0)
          // Drain in a random order.
          for (let i = held.length - 1; i > 0; i--) {
            const j = int(i + 1)
            ;[held[i], held[j]] = [held[j], held[i]]
          }
          for (const v of held) tx.destroy(v)
          expect(tx.stats()).toEqual(baseline)
        })
        if (round % 100 === 99) expect(shm.check().clean).toBe(true)
      }
      expect(identical).toBeGreaterThan(ROUNDS / 10)
      console.log(`fill/drain: ${ROUNDS} rounds, ${puts} puts, ${identical} failing single-record puts compared byte for byte`)
    } finally {
      shm.close()
    }
  }, LONG ? 600_000 : 60_000)
})

describe('dead processes', () => {
  it('opens a segment whose creator was SIGKILLed, and says the creator is dead (creatorAlive)', async () => {
    const name = uniqueName('deadcreator')
    const creator = startChild('reliability-creator.ts', [name])
    const { pid } = await creator.next<{ pid: number }>()
    const live = SharedMemory.open({ name })
    expect(live.creatorPid).toBe(pid)
    expect(live.creatorAlive).toBe(true)
    creator.proc.kill('SIGKILL')
    expect(await creator.exited).toBe('SIGKILL')
    expect(live.creatorAlive).toBe(false)
    live.close()
    // The name outlived its creator (no exit hook runs on SIGKILL) and opens fine.
    const peer = SharedMemory.open({ name })
    try {
      expect(peer.creatorPid).toBe(pid)
      expect(peer.creatorAlive).toBe(false)
      expect(peer.created).toBe(false)
      expect(peer.access((tx) => tx.takeMessage())).toEqual({ from: 'creator', pid })
      expect(peer.check().clean).toBe(true)
    } finally {
      peer.close()
      SharedMemory.unlink(name)
    }
    // A live creator (this process) is reported alive.
    const own = SharedMemory.create({ name: uniqueName('livecreator'), size: 16 * 1024 })
    expect(own.creatorAlive).toBe(true)
    own.close()
  })

  it('a shared Map, queued by reference, whose count a killed insert or delete left one off is repaired from its entries', () => {
    const shm = SharedMemory.create({ name: uniqueName('tcount'), size: 1 << 20 })
    try {
      const ref = shm.access((tx) => {
        const m = tx.put(new Map([['a', 1], ['b', 2], ['c', 3]]))
        tx.putMessage(m, { channel: 'm' }) // by reference: check walks it from the queued frame
        m.delete('b')
        tx.destroy(m) // the message holds the record now
        return refOf(m)
      })
      const words = new Uint32Array(shm.buffer, shm.bytes.byteOffset, shm.size >>> 2)
      for (const wrong of [3, 1]) {
        words[(ref + Hash.Count) >>> 2] = wrong // one high (delete) or one low (insert)
        const err = shmError(() => shm.check())
        expect(err.code).toBe('ERR_SHM_CORRUPT')
        expect(err.message).toContain(`table ${ref} says ${wrong} live entries, holds 2`)
        const report = shm.check({ repair: true })
        expect(report.repairs.join('\n')).toContain(`table ${ref}: Count ${wrong} → 2`)
        expect(shm.check().clean).toBe(true)
      }
      // The message brings the same record (the receiver owns the reference it held).
      expect(
        shm.access((tx) => {
          const m = tx.takeMessage<Map<string, number>>({ channel: 'm' })
          expect(refOf(m)).toBe(ref)
          const entries = [...tx.copy(m)]
          tx.destroy(m)
          return entries
        }),
      ).toEqual([['a', 1], ['c', 3]])
      expect(shm.check().clean).toBe(true)
    } finally {
      shm.close()
    }
  })

  it('after a dead turn owner the full heap check runs first and repairs an interrupted allocator operation; queued messages are intact', async () => {
    const shm = SharedMemory.create({ name: uniqueName('recover'), size: 1 << 20 })
    try {
      const shared = shm.access((tx) => {
        for (let i = 0; i < 5; i++) tx.putMessage({ i, s: `message ${i}`, pad: 'p'.repeat(i * 40) }, { channel: 'q' })
        const v = tx.put({ shared: [1, 2, 3] })
        tx.putMessage({ v }, { channel: 'q' })
        return v
      })
      const baseline = shm.stats()
      const words = new Uint32Array(shm.buffer, shm.bytes.byteOffset, shm.size >>> 2)
      // What a process killed in alloc() leaves: the allocator's "operation under way" word set.
      const holder = startChild('turn-holder.ts', [shm.name, '100', 'die'])
      expect(await holder.next()).toBe('holding')
      words[ROOT_OP >>> 2] = 1
      words[ROOT_OP_BLOCK >>> 2] = FIRST_BLOCK
      expect(await holder.exited).toBe('SIGKILL')
      const started = performance.now()
      const count = shm.access((tx) => tx.messageCount({ channel: 'q' }))
      console.log(`recovery with an allocator repair: ${(performance.now() - started).toFixed(0)} ms`)
      expect(count).toBe(6)
      const recovery = shm.lastRecovery!
      expect(recovery.deadOwnerPid).toBe(holder.proc.pid)
      expect(recovery.report.clean).toBe(false)
      expect(recovery.report.allocatorRepair?.interrupted).toEqual({ op: 'alloc', block: FIRST_BLOCK })
      expect(recovery.report.repairs).toHaveLength(1)
      expect(recovery.report.repairs[0]).toMatch(/allocator: an interrupted alloc/)
      expect(recovery.report.channels).toEqual([{ name: 'q', messages: 6, waiters: 0 }])
      expect(recovery.report.records).toBeGreaterThanOrEqual(2) // the shared object and its array, reached from the queued frame
      // (The report has the allocator's figures; shm.stats() adds the loan pool's.)
      const { pooled, ...allocator } = baseline
      expect(pooled).toBe(0)
      expect(shm.check()).toMatchObject({ clean: true, repairs: [], allocator })
      expect(shm.access((tx) => Array.from({ length: 5 }, () => tx.takeMessage({ channel: 'q' })))).toEqual(
        Array.from({ length: 5 }, (_, i) => ({ i, s: `message ${i}`, pad: 'p'.repeat(i * 40) })),
      )
      shm.access((tx) => {
        const { v } = tx.takeMessage<{ v: { shared: number[] } }>({ channel: 'q' })
        expect(refOf(v)).toBe(refOf(shared))
        expect(tx.copy(v)).toEqual({ shared: [1, 2, 3] })
        tx.destroy(v)
        tx.destroy(shared)
      })
      expect(shm.check().clean).toBe(true)
    } finally {
      shm.close()
    }
  })

  it('a dead turn owner over a heap beyond repair: ERR_SHM_CORRUPT, the segment marked corrupt for every process until check repairs it', async () => {
    const shm = SharedMemory.create({ name: uniqueName('beyond'), size: 256 * 1024 })
    const peer = SharedMemory.open({ name: shm.name })
    try {
      shm.access((tx) => tx.putMessage('precious'))
      const view = new DataView(shm.buffer, shm.bytes.byteOffset, shm.size)
      const sizeWord = FIRST_BLOCK + 4
      const original = view.getUint32(sizeWord, true)
      const holder = startChild('turn-holder.ts', [shm.name, '100', 'die'])
      expect(await holder.next()).toBe('holding')
      view.setUint32(sizeWord, 0x00fffff0, true) // a stray write no crash can produce
      expect(await holder.exited).toBe('SIGKILL')

      let err = shmError(() => shm.access(() => 'never runs'))
      expect(err.code).toBe('ERR_SHM_CORRUPT')
      expect(err.message).toContain(`from pid ${holder.proc.pid}`)
      expect(err.message).toContain('beyond repair')
      expect(err.message).toMatch(/allocator is inconsistent/)
      expect(view.getUint32(Header.Flags, true) & HeaderFlag.Corrupt).toBe(HeaderFlag.Corrupt)
      // Every later turn, in every handle, refuses; nothing silently continues.
      for (const h of [shm, peer]) {
        err = shmError(() => h.access(() => 'never runs'))
        expect(err.code).toBe('ERR_SHM_CORRUPT')
        expect(err.message).toMatch(/marked corrupt/)
        expect(shmError(() => h.stats()).code).toBe('ERR_SHM_CORRUPT')
      }
      await expect(peer.accessAsync(() => 1)).rejects.toMatchObject({ code: 'ERR_SHM_CORRUPT' })
      // check() still runs on a marked segment and says what is wrong, repair or not.
      expect(shmError(() => peer.check()).message).toMatch(/allocator is inconsistent/)
      expect(shmError(() => peer.check({ repair: true })).message).toMatch(/allocator is inconsistent/)
      // Once the damage is undone, the mark alone is reported, and cleared by a repair.
      view.setUint32(sizeWord, original, true)
      expect(shmError(() => peer.check()).message).toMatch(/marked corrupt .* checks out now/)
      const report = peer.check({ repair: true })
      expect(report.repairs).toEqual(['segment: cleared the corrupt mark (the heap checks out)'])
      expect(shm.check().clean).toBe(true)
      expect(shm.access((tx) => tx.takeMessage())).toBe('precious')
    } finally {
      peer.close()
      shm.close()
    }
  })

  const KILLS = LONG ? 25 : 3
  it(`SIGKILL of a child mid-turn while it mutates the heap and sends messages (${KILLS}×): the turn is recovered and the heap checks out`, async () => {
    const shm = SharedMemory.create({ name: uniqueName('midturn'), size: 4 << 20 })
    const words = new Int32Array(shm.buffer, shm.bytes.byteOffset, shm.size >>> 2)
    const rnd = prng(Number(process.env.IPO_SEED ?? 7))
    // Queued by reference: the message holds the record, so check() walks it from there.
    const newState = (tx: Turn): void => {
      const state = tx.put({ list: [] as Array<number | string>, map: new Map<number, string>(), text: '', rounds: 0 })
      tx.putMessage(state, { channel: 'state' })
      tx.destroy(state)
    }
    shm.access(newState)
    const repairs: string[] = []
    let kills = 0
    let attempts = 0
    let slowest = 0
    let dropped = 0
    let pendingLeft = 0
    try {
      while (kills < KILLS && attempts < KILLS * 3) {
        attempts++
        const child = startChild('reliability-mutator.ts', [shm.name, String(attempts * 7919)])
        expect(await child.next()).toBe('running')
        await sleep(20 + rnd() * 100)
        const pid = child.proc.pid!
        child.proc.kill('SIGKILL')
        expect(await child.exited).toBe('SIGKILL')
        const owner = Atomics.load(words, Header.LockOwner >> 2)
        const midTurn = Math.abs(owner) === pid
        const previous = shm.lastRecovery
        const started = performance.now()
        // Use the heap right away: take every message, read what it refers to whole, free that.
        const taken = shm.access((tx) => {
          let n = 0
          for (const channel of ['m0', 'm1', 'm2']) {
            while (tx.hasMessages({ channel })) {
              let m: { i: number; kept?: object }
              try {
                m = tx.takeMessage({ channel })
              } catch (err) {
                // The child was killed between claiming a position and writing it: the
                // channel gives up on it once it stalled for ring.STUCK_MS (see below).
                if (!(err instanceof ShmError) || err.code !== 'ERR_NO_MESSAGES') throw err
                pendingLeft++
                break
              }
              expect(typeof m.i).toBe('number')
              if (m.kept !== undefined) {
                tx.copy(m.kept)
                tx.destroy(m.kept)
              }
              n++
            }
          }
          if (tx.hasMessages({ channel: 'state' })) {
            const s = tx.takeMessage<{ list: unknown[]; map: Map<number, string> }>({ channel: 'state' })
            const copy = tx.copy(s)
            expect(Array.isArray(copy.list)).toBe(true)
            expect(copy.map).toBeInstanceOf(Map)
            s.list.push('after recovery')
            tx.putMessage(s, { channel: 'state' })
            tx.destroy(s) // the message holds its own reference again
          } else {
            dropped++ // killed between its take and its send of the state: start a new one
            newState(tx)
          }
          return n
        })
        const ms = performance.now() - started
        if (midTurn) {
          kills++
          slowest = Math.max(slowest, ms)
          const recovery = shm.lastRecovery
          expect(recovery).not.toBe(previous)
          expect(recovery!.deadOwnerPid).toBe(pid)
          repairs.push(...recovery!.report.repairs)
        } else {
          expect(shm.lastRecovery).toBe(previous) // a kill between turns needs no recovery
        }
        const report = shm.check()
        expect(report.clean).toBe(true)
        expect(taken).toBeGreaterThanOrEqual(0)
      }
      expect(kills).toBe(KILLS)
      // The channels work on. What the last child left comes out ahead of a marker (a
      // receive skips a position a killed sender claimed once it stalled for
      // ring.STUCK_MS), then twice around each ring (a send frees a slot a killed
      // receiver held once it stalled as long).
      for (const name of ['m0', 'm1', 'm2']) {
        const ch = shm.channel<{ i: number; kept?: object; pad?: string }>(name)
        ch.send({ i: -1 }, { timeoutMs: 20_000 })
        for (let m = ch.receiveSync({ timeoutMs: 20_000 }); m.i !== -1; m = ch.receiveSync({ timeoutMs: 20_000 })) {
          const kept = m.kept
          if (kept !== undefined) shm.access((tx) => tx.destroy(kept))
        }
        for (let i = 0; i < 128; i++) {
          const pad = i % 2 === 0 ? 'q'.repeat(200) : undefined
          ch.send({ i, pad }, { timeoutMs: 20_000 })
          expect(ch.receiveSync({ timeoutMs: 20_000 })).toEqual({ i, pad })
        }
        expect(ch.size).toBe(0)
        ch.close()
      }
      const final = shm.check()
      expect(final.clean).toBe(true)
      console.log(
        `mid-turn kills: ${kills} of ${attempts} kills landed inside a turn; slowest recovery ${slowest.toFixed(0)} ms; ` +
          `${repairs.length} repair(s)${repairs.length > 0 ? `: ${repairs.join(' | ')}` : ''}; state message dropped ${dropped}×; ` +
          `a killed sender's position left pending ${pendingLeft}×`,
      )
    } finally {
      shm.close()
    }
  }, LONG ? 600_000 : 60_000)
})

// Messages with references or a Frame record are written and taken in turns
// (core/messages.ts): a send retains the references and writes the Frame record, a
// receive frees the ring slot, takes the references over and frees the Frame record, a
// trySend that finds the ring full gives all of that back. A process killed at any step
// of those turns may leak what it was handling, but must leave a heap that check()
// accepts with nothing to repair, references that are never dropped twice (the values
// this process sent by reference stay alive and whole), and a channel that still works.
describe('a turn owner killed while it sends or receives a message with references and a Frame record', () => {
  /** phase:method:nth for test/children/message-killer.ts; `leaksNothing`: the allocator is back to its baseline at the end. */
  const points: Array<{ point: string; leaksNothing?: boolean }> = [
    { point: 'prepare:retain:1', leaksNothing: true },
    { point: 'prepare:retain:2' },
    { point: 'prepare:allocRecord:1' },
    { point: 'prepare:writeTo:1' },
    { point: 'read:release:1', leaksNothing: true },
    { point: 'read:holdWithoutTurn:1' },
    { point: 'read:holdWithoutTurn:2' },
    { point: 'read:freeRecord:1' },
    { point: 'abandon:dropShared:1' },
    { point: 'abandon:dropShared:2' },
    { point: 'abandon:freeRecord:1' },
  ]
  const CAPACITY = 4
  for (const { point, leaksNothing } of points) {
    it(`killed at ${point}`, async () => {
      const shm = SharedMemory.create({ name: uniqueName('mkill'), size: 1 << 20 })
      const words = new Int32Array(shm.buffer, shm.bytes.byteOffset, shm.size >>> 2)
      try {
        const ch = shm.channel<unknown>('k', { capacity: CAPACITY })
        withLoanPool(shm)
        const baseline = inUse(shm)
        const mine = shm.access((tx) => ({ list: tx.put([1, 'two', [3]]), map: tx.put(new Map([['k', 'v']])) }))
        const phase = point.split(':')[0]
        if (phase === 'read') ch.send({ big: 'p'.repeat(300), list: mine.list, map: mine.map })
        if (phase === 'abandon') for (let i = 0; i < CAPACITY; i++) ch.send(i)
        const child = startChild('message-killer.ts', [shm.name, point])
        const survived = child.next()
        expect(await child.exited).toBe('SIGKILL')
        expect(await survived).toEqual({ exited: 'SIGKILL' }) // it sent nothing: the point was reached
        // It died inside its turn: the turn word still names it.
        expect(Math.abs(Atomics.load(words, Header.LockOwner >> 2))).toBe(child.proc.pid)

        const report = shm.check()
        expect(shm.lastRecovery?.deadOwnerPid).toBe(child.proc.pid)
        expect(shm.lastRecovery!.report.repairs).toEqual([])
        expect(report.clean).toBe(true)
        // What this process sent by reference is alive and whole.
        const whole = (): unknown => shm.access((tx) => [tx.copy(mine.list), tx.copy(mine.map)])
        expect(whole()).toEqual([[1, 'two', [3]], new Map([['k', 'v']])])

        // The channel works: what is queued comes out, then twice around the ring with
        // plain, Frame-record and by-reference messages. A slot the dead receiver claimed
        // and never freed is freed by a sender once that is seen to stall (ring.STUCK_MS).
        if (phase === 'abandon') expect(Array.from({ length: CAPACITY }, () => ch.tryReceive())).toEqual([0, 1, 2, 3])
        expect(ch.tryReceive()).toBe(undefined)
        for (let i = 0; i < CAPACITY * 2; i++) {
          const sent = shm.access((tx) => {
            const ref = i % 3 === 2 ? tx.put({ i }) : undefined
            const message = { i, pad: i % 3 === 1 ? 'f'.repeat(200) : '', ref }
            ch.send(message, { timeoutMs: 20_000 })
            if (ref !== undefined) tx.destroy(ref)
            return message
          })
          const got = ch.tryReceive() as { i: number; pad: string; ref?: object }
          expect(got.i).toBe(i)
          expect(got.pad).toBe(sent.pad)
          if (got.ref !== undefined) {
            shm.access((tx) => {
              expect(tx.copy(got.ref)).toEqual({ i })
              tx.destroy(got.ref)
            })
          } else expect(i % 3).not.toBe(2)
        }
        expect(ch.stats()).toEqual({ size: 0, capacity: CAPACITY, dropped: point === 'read:release:1' ? 1 : 0 })
        expect(whole()).toEqual([[1, 'two', [3]], new Map([['k', 'v']])])
        shm.access((tx) => {
          tx.destroy(mine.list)
          tx.destroy(mine.map)
        })
        expect(shm.check().clean).toBe(true)
        if (leaksNothing) expect(inUse(shm)).toBe(baseline)
        ch.close()
      } finally {
        shm.close()
      }
    })
  }
})

// A byte array sent by reference by the process that owns it, to a receiver with room
// in its holder list, is received without a turn (core/messages.ts readWithRefs): the
// receiver reads the frame, frees the slot, then lists the reference as its own. Killed
// before freeing the slot, the slot stays claimed until a sender frees it after
// ring.STUCK_MS and drops the message's reference in its turn (nothing leaks); killed
// after, that one reference leaks (the record stays, never freed twice).
describe('a receiver killed while it takes a message with references outside a turn', () => {
  for (const { point, leaks } of [
    { point: 'read:release:1', leaks: false },
    { point: 'read:holdWithoutTurn:1', leaks: true },
  ]) {
    it(`killed at ${point}`, async () => {
      const shm = SharedMemory.create({ name: uniqueName('mrefkill'), size: 1 << 20 })
      const words = new Int32Array(shm.buffer, shm.bytes.byteOffset, shm.size >>> 2)
      try {
        const CAPACITY = 4
        const ch = shm.channel<unknown>('k', { capacity: CAPACITY })
        const baseline = inUse(shm)
        const data = shm.access((tx) => tx.put(new Float64Array(8).fill(3)))
        const recordBytes = inUse(shm) - baseline
        ch.send({ data })
        expect(shm.heap.u32[(refOf(data) + Rec.RefCount) >>> 2]).toBe(2)
        const child = startChild('message-killer.ts', [shm.name, point])
        const survived = child.next()
        expect(await child.exited).toBe('SIGKILL')
        expect(await survived).toEqual({ exited: 'SIGKILL' }) // the point was reached
        // It died outside any turn.
        expect(Math.abs(Atomics.load(words, Header.LockOwner >> 2))).not.toBe(child.proc.pid)
        expect(shm.check().clean).toBe(true)
        expect(ch.tryReceive()).toBe(undefined)
        // The channel goes on: twice around the ring by reference (a slot the dead receiver
        // claimed is freed by a sender once it has stalled for ring.STUCK_MS).
        for (let i = 0; i < CAPACITY * 2; i++) {
          ch.send({ i, data }, { timeoutMs: 20_000 })
          const got = ch.tryReceive() as { i: number; data: Float64Array }
          expect(got.i).toBe(i)
          expect(got.data).toBe(data)
          ch.release(got.data)
        }
        expect(ch.stats().dropped).toBe(leaks ? 0 : 1)
        expect(Array.from(data)).toEqual(new Array(8).fill(3))
        // This process's put and, when it leaked, the dead receiver's: never one too few.
        expect(shm.heap.u32[(refOf(data) + Rec.RefCount) >>> 2]).toBe(leaks ? 2 : 1)
        shm.access((tx) => tx.destroy(data))
        // What the dead receiver's holder slot lists (its channel handle) goes when a
        // handle registers: then only the leaked reference, if any, keeps the record.
        const sweeper = SharedMemory.open({ name: shm.name })
        sweeper.channel('k').close()
        sweeper.close()
        expect(inUse(shm) - baseline).toBe(leaks ? recordBytes : 0)
        expect(shm.check().clean).toBe(true)
        ch.close()
      } finally {
        shm.close()
      }
    })
  }
})

// A view received by reference owns its reference; dropped unreleased, garbage
// collection gives the reference back (core/view_holds.ts watch, registered at the end
// of the receiving task or in batches of 64). From then on the handle owns nothing
// through that record: a view of it read out of a container must not be destroyable,
// nor sent without a turn (core/messages.ts sends a reference outside turns only when
// this handle owns one, which nothing else can drop).
describe('views received by reference and collected unreleased', () => {
  it('are given back by garbage collection, every reference received through them (also past the views watched at once), and are owned no more', async () => {
    const shm = SharedMemory.create({ name: uniqueName('gcref'), size: 1 << 20 })
    const other = SharedMemory.open({ name: shm.name })
    const blocker = SharedMemory.open({ name: shm.name })
    try {
      const mine = shm.channel<unknown>('gcref')
      const theirs = other.channel<unknown>('gcref')
      const box = shm.access((tx) => tx.put({ data: new Float64Array(4).fill(5) }))
      // A view read out of a container: it borrows (and holds) the record, it owns none.
      const borrowed = shm.access(() => box.data) as Float64Array
      const ref = refOf(borrowed)
      const count = (): number => shm.heap.u32[(ref + Rec.RefCount) >>> 2]!
      mine.send(box)
      const theirBox = theirs.tryReceive() as { data: Float64Array }
      const before = count()
      // 70 more records, each received once: more views than wait for the end of the task (64).
      const many = shm.access((tx) => Array.from({ length: 70 }, (_, i) => tx.put(new Float64Array(2).fill(i))))
      const counts = (): number[] => many.map((v) => shm.heap.u32[(refOf(v) + Rec.RefCount) >>> 2]!)
      ;(() => {
        // The same record 100 times (one view in the receiving handle, 100 references), then the 70.
        for (let i = 0; i < 100; i++) {
          mine.send(borrowed)
          expect(Array.from(theirs.tryReceive() as Float64Array)).toEqual([5, 5, 5, 5])
        }
        for (const v of many) {
          mine.send(v)
          expect(theirs.tryReceive()).toBeInstanceOf(Float64Array)
        }
      })()
      expect(count()).toBe(before + 100)
      expect(new Set(counts())).toEqual(new Set([2]))
      await afterCollection(() => count() === before && counts().every((n) => n === 1))
      expect(count()).toBe(before)
      expect(new Set(counts())).toEqual(new Set([1]))
      other.access((tx) => expect(shmError(() => tx.destroy(theirBox.data)).code).toBe('ERR_INVALID_ARGUMENT'))
      const again = other.access(() => theirBox.data)
      // Sending it needs a turn, which another handle holds: refused at once, nothing sent.
      blocker.access(() => expect(shmError(() => theirs.send(again)).code).toBe('ERR_SHM_REENTRANT'))
      expect(mine.tryReceive()).toBe(undefined)
      expect(count()).toBe(before + 1) // again's own hold
      expect(shm.check().clean).toBe(true)
    } finally {
      blocker.close()
      other.close()
      shm.close()
    }
  })
})

describe('load', () => {
  const PEERS = 8
  const N = Number(process.env.IPO_LOAD_N ?? (LONG ? 100_000 : 5000))
  const CHANNELS = 4
  it(`${PEERS} processes × ${N} messages over ${CHANNELS} channels: each delivered exactly once, allocator back to the baseline`, async () => {
    const shm = SharedMemory.create({ name: uniqueName('load'), size: 32 << 20 })
    try {
      // Channels live while a handle is open: these keep them from before the baseline to the end.
      const kept = ['ctl', ...Array.from({ length: CHANNELS }, (_, c) => `load-${c}`)].map((name) => shm.channel(name))
      const baseline = shm.stats()
      // The shared counter goes to every peer by reference: each owns a reference to the same record.
      const ctlRef = shm.access((tx) => {
        const ctl = tx.put({ taken: 0 })
        for (let p = 0; p < PEERS; p++) kept[0]!.send(ctl)
        tx.destroy(ctl) // the peers hold the references now
        return refOf(ctl)
      })
      expect(shm.heap.u32[(ctlRef + Rec.RefCount) >>> 2]).toBe(PEERS)
      const started = performance.now()
      const peers = Array.from({ length: PEERS }, (_, p) => {
        const c = startChild('reliability-load.ts', [shm.name, String(p), String(N), String(PEERS), String(CHANNELS)])
        return { c, report: c.next<{ index: number; sent: number; taken: number; full: number; bad: number; received: string }>() }
      })
      const counts = new Uint16Array(PEERS * N)
      let takenTotal = 0
      let fullTotal = 0
      const perPeer: number[] = []
      for (const { c, report } of peers) {
        const r = await report
        expect(r.sent).toBe(N)
        expect(r.bad).toBe(0)
        takenTotal += r.taken
        fullTotal += r.full
        perPeer.push(r.taken)
        const received = Buffer.from(r.received, 'base64')
        expect(received.length).toBe(PEERS * N)
        for (let i = 0; i < received.length; i++) counts[i]! += received[i]!
        expect(await c.exited).toBe(0)
      }
      const seconds = (performance.now() - started) / 1000
      expect(takenTotal).toBe(PEERS * N)
      const wrong: string[] = []
      for (let i = 0; i < counts.length && wrong.length < 10; i++) {
        if (counts[i] !== 1) wrong.push(`peer ${Math.floor(i / N)} message ${i % N} delivered ${counts[i]}×`)
      }
      expect(wrong).toEqual([])
      // Every Frame record, by-reference value and the counter were freed; nothing was lost.
      expect(shm.stats()).toEqual(baseline)
      for (const ch of kept) expect(ch.stats()).toMatchObject({ size: 0, dropped: 0 })
      const report = shm.check()
      expect(report.clean).toBe(true)
      expect(report.channels.map((c) => c.name).sort()).toEqual(['ctl', ...Array.from({ length: CHANNELS }, (_, c) => `load-${c}`)])
      expect(report.channels.every((c) => c.messages === 0 && c.waiters === 0)).toBe(true)
      for (const ch of kept) ch.close()
      // Their last handles closed while empty: the channels are gone.
      expect(shm.check().channels).toEqual([])
      console.log(
        `load: ${PEERS * N} messages through ${PEERS} processes in ${seconds.toFixed(1)} s (${Math.round((PEERS * N) / seconds)}/s); ` +
          `taken per peer ${perPeer.join(', ')}; trySend found a ring full ${fullTotal}×`,
      )
    } finally {
      shm.close()
    }
  }, LONG ? 1_800_000 : 120_000)
})

describe('CLI: interprocess-objects ls | rm | check', () => {
  it('lists, refuses, removes stale segments (one left by a SIGKILLed creator) and checks heaps, touching only our own', async () => {
    const prefix = `rc-${randomBytes(3).toString('hex')}-`
    const stale = `${prefix}stale`
    const live = `${prefix}live`
    const junk = `${prefix}junk`
    const creator = startChild('reliability-creator.ts', [stale, String(64 * 1024)])
    const { pid: stalePid } = await creator.next<{ pid: number }>()
    creator.proc.kill('SIGKILL')
    expect(await creator.exited).toBe('SIGKILL')
    const own = SharedMemory.create({ name: live, size: 128 * 1024 })
    fs.writeFileSync(shmFile(junk), Buffer.alloc(8192, 7), { mode: 0o600 })
    try {
      // ls: ours only, creator pid, alive/dead, size, created.
      let r = await cli('ls', '--prefix', prefix, '--json')
      expect(r.code).toBe(0)
      const entries = JSON.parse(r.stdout) as Array<{ name: string; valid: boolean; creatorPid: number; creatorAlive: boolean; size: number; createdAt: string; ready: boolean; attachedPids: number[] }>
      expect(entries.map((s) => s.name)).toEqual([junk, live, stale])
      expect(entries[0]).toMatchObject({ name: junk, valid: false, type: 'file' })
      const listed = entries.filter((s) => s.valid)
      expect(listed[0]).toMatchObject({ creatorPid: process.pid, creatorAlive: true, size: 128 * 1024, ready: true, attachedPids: [process.pid] })
      expect(listed[1]).toMatchObject({ creatorPid: stalePid, creatorAlive: false, size: 64 * 1024, ready: true, attachedPids: [] })
      expect(Math.abs(Date.parse(listed[1]!.createdAt) - Date.now())).toBeLessThan(120_000)
      r = await cli('ls', '--prefix', prefix)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`${live}\\s+${process.pid}\\s+alive\\s+128 KiB`))
      expect(r.stdout).toMatch(new RegExp(`${stale}\\s+${stalePid}\\s+dead\\s+64 KiB`))
      expect(r.stdout).toMatch(new RegExp(`${junk}\\s+not a valid segment: wrong magic`))
      expect(r.stdout).toContain('rm --stale')

      // check: a peer's view of the stale segment's heap.
      r = await cli('check', stale)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`${stale}: ok`)
      expect(r.stdout).toContain(`creator pid ${stalePid} (dead)`)
      expect(r.stdout).toContain('(default): 1 message(s)')

      // rm refuses a live creator's segment, a foreign file, a missing name, a bad name.
      r = await cli('rm', live)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`creator pid ${process.pid}`)
      expect(fs.existsSync(shmFile(live))).toBe(true)
      r = await cli('rm', junk)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`"${junk}" is not a valid segment (wrong magic`)
      expect(fs.existsSync(shmFile(junk))).toBe(true)
      r = await cli('rm', `${prefix}none`)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('no segment named')
      r = await cli('rm', '../../tmp/x')
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('ERR_INVALID_NAME')
      r = await cli('rm', '--stale', '--frce')
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('unknown option --frce')

      // rm --stale keeps a dead creator's segment that a live process still maps…
      const peer = SharedMemory.open({ name: stale })
      r = await cli('rm', '--stale', '--prefix', prefix)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`kept ${stale}`)
      expect(r.stdout).toContain(String(process.pid))
      expect(fs.existsSync(shmFile(stale))).toBe(true)
      peer.close()
      r = await cli('rm', '--stale', '--prefix', prefix, '--dry-run')
      expect(r.stdout).toContain(`would remove ${stale}`)
      expect(fs.existsSync(shmFile(stale))).toBe(true)
      // …and removes it once nobody does; live and foreign names stay.
      r = await cli('rm', '--stale', '--prefix', prefix)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`removed ${stale} (creator pid ${stalePid}, dead)`)
      expect(fs.existsSync(shmFile(stale))).toBe(false)
      expect(fs.existsSync(shmFile(live))).toBe(true)
      expect(fs.existsSync(shmFile(junk))).toBe(true)

      // check finds damage, --repair repairs what a crash leaves, the rest stays an error.
      const mapRef = own.access((tx) => {
        for (let i = 0; i < 3; i++) tx.putMessage(`m${i}`, { channel: 'work' })
        const m = tx.put(new Map([['a', 1], ['b', 2], ['c', 3]]))
        tx.putMessage({ m }, { channel: 'work' })
        tx.destroy(m)
        return refOf(m)
      })
      const words = new Uint32Array(own.buffer, own.bytes.byteOffset, own.size >>> 2)
      // What an insert killed before it raised the count leaves, in a value a queued message refers to.
      words[(mapRef + Hash.Count) >>> 2] = 2
      r = await cli('check', live)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain('CORRUPT')
      expect(r.stdout).toContain(`table ${mapRef} says 2 live entries, holds 3`)
      r = await cli('check', live, '--repair')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`repaired: table ${mapRef}: Count 2 → 3`)
      expect(r.stdout).toContain('work: 4 message(s)')
      expect(words[(mapRef + Hash.Count) >>> 2]).toBe(3)
      // A ring no crash can leave (rings are not written in turns): Dequeue ahead of Enqueue.
      const work = channelOf(own, 'work')
      const dequeue = words[(work + Chan.Dequeue) >>> 2]!
      const enqueue = words[(work + Chan.Enqueue) >>> 2]!
      expect(enqueue - dequeue).toBe(4)
      words[(work + Chan.Dequeue) >>> 2] = enqueue + 8
      for (const args of [[], ['--repair']]) {
        r = await cli('check', live, ...args)
        expect(r.code).toBe(1)
        expect(r.stdout).toContain('CORRUPT')
        expect(r.stdout).toContain(`channel "work": Enqueue ${enqueue} and Dequeue ${enqueue + 8} are -8 apart`)
      }
      words[(work + Chan.Dequeue) >>> 2] = dequeue
      const view = new DataView(own.buffer, own.bytes.byteOffset, own.size)
      const original = view.getUint32(FIRST_BLOCK + 4, true)
      view.setUint32(FIRST_BLOCK + 4, 0x00fffff0, true)
      r = await cli('check', live, '--repair', '--json')
      expect(r.code).toBe(1)
      expect(JSON.parse(r.stdout)).toMatchObject({ name: live, ok: false, error: { code: 'ERR_SHM_CORRUPT' } })
      view.setUint32(FIRST_BLOCK + 4, original, true)
      r = await cli('check', live, '--json')
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, creator: { pid: process.pid, alive: true }, report: { clean: true } })

      // A process that died holding the turn: check takes it over and says so.
      const holder = startChild('turn-holder.ts', [live, '0', 'die'])
      expect(await holder.next()).toBe('holding')
      expect(await holder.exited).toBe('SIGKILL')
      r = await cli('check', live)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`took the turn over from pid ${holder.proc.pid}, which died holding it; recovery: nothing to repair`)

      // --force removes a live creator's name; the creator keeps its mapping.
      r = await cli('rm', live, '--force')
      expect(r.code).toBe(0)
      expect(fs.existsSync(shmFile(live))).toBe(false)
      expect(own.access((tx) => tx.takeMessage({ channel: 'work' }))).toBe('m0')
      r = await cli('check', stale)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('ERR_SHM_NOT_FOUND')
    } finally {
      own.close()
      fs.rmSync(shmFile(junk), { force: true })
      fs.rmSync(shmFile(stale), { force: true })
    }
  }, 120_000)

  it('is built as an executable: a shebang, and tsconfig.build.json compiles cli/', () => {
    expect(fs.readFileSync(path.join(root, 'cli', 'index.ts'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node')
    const build = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] }
    expect(build.include).toContain('cli')
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }
    expect(pkg.bin['interprocess-objects']).toBe('dist/cli/index.js')
    const built = path.join(root, 'dist', 'cli', 'index.js')
    if (fs.existsSync(built)) expect(fs.readFileSync(built, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node')
  })
})
