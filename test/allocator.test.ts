import { describe, it, expect } from 'vitest'
import { ShmError, SharedMemory, type AllocatorStats } from 'interprocess-objects'
// White-box: the allocator itself is internal.
import { Allocator, type HeapMemory } from '../core/allocator'
import { startChild, uniqueName } from './helpers/processes'
import { prng } from './helpers/prng'
import { shmError } from './helpers/segments'

const HEAP_START = 4096
const FIRST_HEADER = HEAP_START + 8

/** A real segment with a freshly formatted heap (the creator's channel directory dropped). */
function withHeap<T>(size: number, fn: (a: Allocator, mem: HeapMemory) => T): T {
  const shm = SharedMemory.create({ name: uniqueName('alloc'), size })
  try {
    Allocator.format(shm.segment)
    return fn(new Allocator(shm.segment), shm.segment)
  } finally {
    shm.close()
  }
}

function plainMemory(size: number): HeapMemory {
  const buf = new ArrayBuffer(size)
  return { bytes: new Uint8Array(buf), words: new Int32Array(buf), view: new DataView(buf), size }
}

function shuffle<T>(items: T[], rnd: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}


function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
}

/** alloc(size) must fail with ERR_SHM_FULL and leave every byte of the segment as it was. */
function expectFullUnchanged(a: Allocator, mem: HeapMemory, size: number): void {
  const before = Buffer.from(mem.bytes)
  const stats = a.stats()
  const err = shmError(() => a.alloc(size))
  expect(err.code).toBe('ERR_SHM_FULL')
  expect(err.message).toContain(`${size} bytes`)
  expect(err.message).toContain(`largest free block holds ${stats.largestFree} bytes`)
  expect(err.message).toContain(`${stats.free} bytes free`)
  expect(err.message).toMatch(/create a bigger segment or destroy objects you no longer need/)
  expect(sameBytes(mem.bytes, before)).toBe(true)
}

/** Header offsets of every block, walking the documented layout (8-byte headers, size at +4). */
function blocksOf(mem: HeapMemory): Array<{ h: number; size: number; free: boolean }> {
  const end = mem.size - 8
  const out: Array<{ h: number; size: number; free: boolean }> = []
  for (let h = FIRST_HEADER; h < end; ) {
    const word = mem.words[(h + 4) >>> 2]!
    const size = (word & -16) >>> 0
    out.push({ h, size, free: (word & 1) !== 0 })
    h += size
  }
  return out
}

function emptyStats(mem: HeapMemory): AllocatorStats {
  const heapBytes = mem.size - HEAP_START
  // One free block between an 8-byte lead-in (to align payloads) and the 8-byte sentinel.
  return { heapBytes, used: 0, free: heapBytes - 16, largestFree: heapBytes - 24, allocations: 0, freeBlocks: 1 }
}

describe('allocator', () => {
  it('aligns to 16 bytes, gives at least the requested size, reuses and coalesces freed memory', () => {
    withHeap(1 << 20, (a, mem) => {
      const base = a.stats()
      expect(base).toEqual(emptyStats(mem))
      a.check()

      const sizes = [0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 100, 255, 256, 257, 1000, 4095, 4096, 65536, 100_000]
      const blocks = sizes.map((size, i) => {
        const p = a.alloc(size)
        const usable = a.usableSize(p)
        expect(p % 16).toBe(0)
        expect(p).toBeGreaterThanOrEqual(HEAP_START)
        expect(usable).toBeGreaterThanOrEqual(size)
        // 8-byte header, blocks in 16-byte steps: at most 15 bytes of slack.
        expect(usable).toBeLessThanOrEqual(size + 15)
        expect(p + usable).toBeLessThanOrEqual(mem.size)
        mem.bytes.fill(i + 1, p, p + usable)
        return { p, usable, fill: i + 1 }
      })
      for (const b of blocks) {
        for (let j = 0; j < b.usable; j++) if (mem.bytes[b.p + j] !== b.fill) throw new Error(`block at ${b.p} was overwritten at byte ${j}`)
      }
      const s = a.stats()
      expect(s.allocations).toBe(sizes.length)
      expect(s.used).toBe(blocks.reduce((n, b) => n + b.usable + 8, 0))
      expect(s.used + s.free).toBe(base.free)
      a.check()
      for (const b of shuffle(blocks, prng(1))) a.free(b.p)
      expect(a.stats()).toEqual(base)
      a.check()

      // Freed memory is handed out again, at the same place.
      const p = a.alloc(100)
      a.free(p)
      expect(a.alloc(100)).toBe(p)
      a.free(p)
      expect(a.alloc(40)).toBe(p)
      a.free(p)

      // A hole between live blocks is reused by a request that fits it.
      const x = a.alloc(1000)
      const y = a.alloc(1000)
      const z = a.alloc(1000)
      const w = a.alloc(64) // keeps z away from the free tail
      a.free(y)
      expect(a.alloc(900)).toBe(y)

      // Immediate coalescing with either neighbour.
      a.free(x)
      a.free(z)
      expect(a.stats().freeBlocks).toBe(3) // x, z, the tail
      a.free(y) // joins x on its left and z on its right
      expect(a.stats().freeBlocks).toBe(2)
      expect(blocksOf(mem).map((b) => b.free)).toEqual([true, false, true])
      a.check()
      a.free(w)
      expect(a.stats()).toEqual(base)
      expect(blocksOf(mem)).toEqual([{ h: FIRST_HEADER, size: base.free, free: true }])
      a.check()
    })
  })

  it('coalesces back to one block in every freeing order', () => {
    const mem = plainMemory(64 << 10)
    Allocator.format(mem)
    const a = new Allocator(mem)
    const base = a.stats()
    expect(base).toEqual(emptyStats(mem))
    // All 24 orders of freeing four adjacent blocks, with the tail after them free.
    const orders: number[][] = []
    const permute = (rest: number[], acc: number[]) => (rest.length === 0 ? orders.push(acc) : rest.forEach((r, i) => permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, r])))
    permute([0, 1, 2, 3], [])
    expect(orders.length).toBe(24)
    for (const order of orders) {
      const ps = [a.alloc(10), a.alloc(300), a.alloc(20), a.alloc(5000)]
      for (const i of order) {
        a.free(ps[i]!)
        a.check()
      }
      expect(a.stats()).toEqual(base)
    }
  })

  it('fills to ERR_SHM_FULL without writing a byte on failure, and drains back to the baseline, many times', () => {
    withHeap(256 << 10, (a, mem) => {
      const base = a.stats()
      const rnd = prng(7)
      for (let round = 0; round < 40; round++) {
        const live: number[] = []
        let failures = 0
        for (;;) {
          const st = a.stats()
          if (st.largestFree === 0) break
          let size = rnd() < 0.9 ? Math.floor(rnd() * 2000) : Math.floor(rnd() * 40_000)
          if (size > st.largestFree) {
            if (failures++ < 3) {
              expectFullUnchanged(a, mem, size)
              continue
            }
            size = Math.floor(rnd() * (st.largestFree + 1))
          }
          // Whatever fits the largest free block must succeed, fragmented or not.
          live.push(a.alloc(size))
        }
        const full = a.stats()
        expect(full.free).toBe(0)
        expect(full.freeBlocks).toBe(0)
        expect(full.allocations).toBe(live.length)
        expectFullUnchanged(a, mem, 0)
        expectFullUnchanged(a, mem, mem.size)
        expectFullUnchanged(a, mem, 2 ** 32) // the largest valid request
        if (round % 8 === 0) a.check()

        // Partly drained, a huge request still writes nothing.
        shuffle(live, rnd)
        for (const p of live.splice(0, live.length >> 1)) a.free(p)
        expectFullUnchanged(a, mem, (256 << 10) - 100)
        expectFullUnchanged(a, mem, a.stats().largestFree + 1)

        for (const p of live) a.free(p)
        expect(a.stats()).toEqual(base)
      }
      a.check()
    })
  })

  it('rejects invalid sizes with ERR_INVALID_ARGUMENT and writes nothing', () => {
    withHeap(64 << 10, (a, mem) => {
      a.alloc(100)
      const before = Buffer.from(mem.bytes)
      for (const bad of [-1, -16, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 32 + 1, 2 ** 53, '16' as unknown as number]) {
        const err = shmError(() => a.alloc(bad))
        expect(err.code).toBe('ERR_INVALID_ARGUMENT')
        expect(err.message).toMatch(/integer from 0 to 4 GiB/)
      }
      expect(sameBytes(mem.bytes, before)).toBe(true)
      a.check()
    })
  })

  it('survives 1,000,000 random alloc/free operations with consistent stats and no leak', () => {
    withHeap(8 << 20, (a, mem) => {
      const base = a.stats()
      const w = mem.words
      const rnd = prng(12345)
      const offsets: number[] = []
      const ids: number[] = []
      const usables: number[] = []
      let used = 0
      let nextId = 1
      let fulls = 0
      let largeAllocs = 0
      const ops = 1_000_000
      for (let op = 1; op <= ops; op++) {
        if (offsets.length > 0 && (rnd() < 0.45 || offsets.length >= 4000)) {
          const k = Math.floor(rnd() * offsets.length)
          const p = offsets[k]!
          const u = usables[k]!
          // Tags at both ends of every block: an overlapping allocation would have overwritten one.
          if (w[p >>> 2] !== ids[k] || w[(p + u - 4) >>> 2] !== ids[k]) throw new Error(`block ${p} (id ${ids[k]}) was overwritten at op ${op}`)
          a.free(p)
          used -= u + 8
          const last = offsets.length - 1
          offsets[k] = offsets[last]!
          ids[k] = ids[last]!
          usables[k] = usables[last]!
          offsets.pop()
          ids.pop()
          usables.pop()
        } else {
          const r = rnd()
          const size = r < 0.9 ? Math.floor(rnd() * 128) : r < 0.995 ? Math.floor(rnd() * 4096) : 65536 + Math.floor(rnd() * 1024 * 1024)
          let p: number
          try {
            p = a.alloc(size)
          } catch (err) {
            if ((err as ShmError).code !== 'ERR_SHM_FULL') throw err
            const largest = a.stats().largestFree
            if (size <= largest) throw new Error(`alloc(${size}) failed at op ${op} although the largest free block holds ${largest}`)
            fulls++
            continue
          }
          if (size >= 65536) largeAllocs++
          const u = a.usableSize(p)
          if (p % 16 !== 0 || u < size || u > size + 15) throw new Error(`alloc(${size}) returned ${p} with ${u} usable bytes`)
          const id = nextId++
          w[p >>> 2] = id
          w[(p + u - 4) >>> 2] = id
          offsets.push(p)
          ids.push(id)
          usables.push(u)
          used += u + 8
        }
        if ((op & 1023) === 0) {
          const s = a.stats()
          if (s.used !== used || s.allocations !== offsets.length || s.used + s.free !== base.free || s.largestFree > s.free) {
            throw new Error(`stats drifted at op ${op}: ${JSON.stringify(s)}, expected used ${used} in ${offsets.length} allocations`)
          }
        }
        if (op % 100_000 === 0) a.check()
      }
      // The run must have exercised the full path and large blocks, not only small churn.
      expect(fulls).toBeGreaterThan(0)
      expect(largeAllocs).toBeGreaterThan(100)
      a.check()
      for (const p of offsets) a.free(p)
      expect(a.stats()).toEqual(base)
      a.check()
    })
  })

  it('handles offsets and sizes above 2 GiB (u32 offsets in a 4 GiB heap)', () => {
    // Pages of a fresh ArrayBuffer are only committed when touched: this stays small.
    const mem = plainMemory(2 ** 32)
    Allocator.format(mem)
    const a = new Allocator(mem)
    const base = a.stats()
    expect(base).toEqual(emptyStats(mem))
    const big = a.alloc(2 ** 31 + 100) // its end, and everything after it, lies above 2 GiB
    expect(a.usableSize(big)).toBeGreaterThanOrEqual(2 ** 31 + 100)
    const rnd = prng(5)
    const live: number[] = []
    for (let i = 0; i < 2000; i++) {
      if (live.length > 0 && rnd() < 0.4) {
        const p = live.splice(Math.floor(rnd() * live.length), 1)[0]!
        expect(mem.words[p >>> 2]).toBe(p | 0)
        a.free(p)
      } else {
        const p = a.alloc(rnd() < 0.1 ? Math.floor(rnd() * 2 ** 26) : Math.floor(rnd() * 1000))
        expect(p).toBeGreaterThan(2 ** 31)
        mem.words[p >>> 2] = p
        live.push(p)
      }
    }
    a.check()
    // (Not expectFullUnchanged: copying 4 GiB would commit it all. The root and the stats must hold still.)
    const root = mem.words.slice(16, 452)
    const stats = a.stats()
    expect(shmError(() => a.alloc(2 ** 31)).code).toBe('ERR_SHM_FULL')
    expect(mem.words.slice(16, 452)).toEqual(root)
    expect(a.stats()).toEqual(stats)
    a.free(big)
    const second = a.alloc(2 ** 31 - 4096) // now fits in the freed low half
    expect(second).toBe(FIRST_HEADER + 8)
    a.free(second)
    for (const p of live) a.free(p)
    expect(a.stats()).toEqual(base)
    a.check()
  })

  it('refuses bad offsets and double frees with ERR_INVALID_ARGUMENT, changing nothing', () => {
    withHeap(64 << 10, (a, mem) => {
      const base = a.stats()
      const p = a.alloc(100)
      const q = a.alloc(200)
      const r = a.alloc(1000)
      const tail = r + a.usableSize(r) + 8 // payload of the free block after r
      // Forged headers inside r's payload: A (payload r + 208) claims r's header as its
      // neighbour, B (payload r + 512) claims A; A is refused by its left neighbour,
      // B only by its right one.
      mem.words[(r + 200) >>> 2] = r - 8
      mem.words[(r + 204) >>> 2] = 304
      mem.words[(r + 504) >>> 2] = r + 200
      mem.words[(r + 508) >>> 2] = 32

      const expectRefused = (offset: number, why: RegExp) => {
        const before = Buffer.from(mem.bytes)
        for (const call of [() => a.free(offset), () => a.usableSize(offset)]) {
          const err = shmError(call)
          expect(err.code).toBe('ERR_INVALID_ARGUMENT')
          expect(err.message).toMatch(why)
        }
        expect(sameBytes(mem.bytes, before)).toBe(true)
        a.check()
      }
      for (const bad of [-16, -1, 0, 8, HEAP_START - 16, FIRST_HEADER, mem.size, mem.size + 16, 2 ** 32, 2 ** 40]) expectRefused(bad, /outside the heap|non-negative integer/)
      for (const bad of [1.5, Number.NaN, Infinity, '4112' as unknown as number]) expectRefused(bad, /not a non-negative integer/)
      for (const bad of [p + 1, p + 8, q - 8, r + 4]) expectRefused(bad, /16-byte aligned/)
      for (const bad of [p + 16, p + 32, q - 16, q + 64, r + 208, r + 512]) expectRefused(bad, /not the start of an allocated block/)
      expectRefused(tail, /already free \(double free\)/)
      expectRefused(tail + 1024, /not the start of an allocated block|already free/)

      a.free(q)
      expectRefused(q, /double free/)
      a.free(p) // merges with q's free block, leaving q's header stale inside it
      expectRefused(p, /double free/)
      expectRefused(q, /double free/)
      a.free(r) // and now everything is one block again
      expectRefused(r, /double free/)
      expectRefused(q, /double free/)
      expect(a.stats()).toEqual(base)
      a.check()
    })
  })

  it('check() reports corrupted headers, links, bitmaps, counters and interrupted operations as ERR_SHM_CORRUPT', () => {
    withHeap(256 << 10, (a, mem) => {
      const rnd = prng(99)
      const live: number[] = []
      for (let i = 0; i < 200; i++) live.push(a.alloc(Math.floor(rnd() * 600)))
      shuffle(live, rnd)
      for (const p of live.splice(0, 80)) a.free(p)
      a.check()
      const blocks = blocksOf(mem)
      const used = blocks.filter((b) => !b.free)
      const free = blocks.filter((b) => b.free)
      expect(free.length).toBeGreaterThan(20)
      const pristine = Buffer.from(mem.bytes)

      const expectCorrupt = (what: string, mutate: () => void, why?: RegExp) => {
        mutate()
        let err: ShmError | undefined
        try {
          a.check()
        } catch (e) {
          err = e as ShmError
        }
        if (err === undefined) throw new Error(`check() did not notice: ${what}`)
        expect(err).toBeInstanceOf(ShmError)
        expect(err.code).toBe('ERR_SHM_CORRUPT')
        if (why) expect(err.message).toMatch(why)
        mem.bytes.set(pristine)
        a.check()
      }
      const u = used[10]!.h
      const f = free[5]!.h
      expectCorrupt('size of a used block +16', () => (mem.bytes[u + 4]! ^= 0x10), /previous-block link|size/)
      expectCorrupt('size high byte', () => (mem.bytes[u + 7]! ^= 0x01), /size/)
      expectCorrupt('reserved bit', () => (mem.bytes[u + 4]! |= 0x04), /reserved header bits/)
      expectCorrupt('previous-block link', () => (mem.bytes[u]! ^= 0x20), /previous-block link/)
      expectCorrupt('used block marked free', () => (mem.bytes[u + 4]! |= 1), /no free list|adjacent free/)
      expectCorrupt('free block marked used', () => (mem.bytes[f + 4]! &= ~1), /not a free block|counter/)
      expectCorrupt('free-list link into a used block', () => (mem.words[(f + 8) >>> 2] = u))
      expectCorrupt('free-list back link', () => (mem.words[(f + 12) >>> 2] = u), /back link|not a free block/)
      expectCorrupt('second-level bitmap', () => (mem.words[26 + 1] = mem.words[26 + 1]! ^ 0x8), /bitmap/)
      expectCorrupt('first-level bitmap', () => (mem.words[25] = mem.words[25]! ^ (1 << 20)), /bitmap/)
      expectCorrupt('used counter', () => (mem.words[21] = mem.words[21]! + 16), /counter "used bytes"/)
      expectCorrupt('allocation counter', () => (mem.words[23] = mem.words[23]! - 1), /counter "allocations"/)
      expectCorrupt('process died inside alloc', () => ((mem.words[19] = 1), (mem.words[20] = u)), /alloc on block \d+ was interrupted/)
      expectCorrupt('root magic', () => (mem.words[16] = 0), /magic/)
      expectCorrupt('sentinel', () => (mem.words[((mem.size - 8) >>> 2) + 1] = 64), /sentinel/)

      // Any single-byte change in a block header (or a free block's links) is caught.
      for (let i = 0; i < 400; i++) {
        const b = blocks[Math.floor(rnd() * blocks.length)]!
        const at = b.h + Math.floor(rnd() * (b.free ? 16 : 8))
        const flip = 1 + Math.floor(rnd() * 255)
        expectCorrupt(`byte ${at} (block ${b.h}, ${b.free ? 'free' : 'used'}) ^= ${flip}`, () => (mem.bytes[at]! ^= flip))
      }
    })
  })

  it('shares one heap across processes: a child checks, frees and allocates, the parent sees it all', async () => {
    const shm = SharedMemory.create({ name: uniqueName('allocx'), size: 1 << 20 })
    try {
      const bytes = shm.segment.bytes
      // The creator already formatted the heap and allocated its channel directory in it.
      const a = new Allocator(shm.segment)
      a.check()
      const base = a.stats()
      const blocks = Array.from({ length: 200 }, (_, i) => {
        const size = 1 + ((i * 7919) % 5000)
        const b = { offset: a.alloc(size), size, id: i }
        for (let j = 0; j < size; j++) bytes[b.offset + j] = patternByte(b.id, j)
        return b
      })
      const child = startChild('allocator-peer.ts', [shm.name])
      expect(await child.next()).toBe('ready')
      child.send({ blocks, newCount: 150 })
      type Block = { offset: number; size: number; id: number }
      const reply = await child.next<{ mismatches: number; tooSmall: number; kept: Block[]; added: Block[]; stats: AllocatorStats }>()
      expect(await child.exited).toBe(0)
      expect(reply.mismatches).toBe(0)
      expect(reply.tooSmall).toBe(0)
      expect(reply.kept.length).toBe(100)
      expect(reply.added.length).toBe(150)

      a.check()
      expect(a.stats()).toEqual(reply.stats)
      expect(a.stats().allocations).toBe(base.allocations + 100 + 150)
      let mismatches = 0
      for (const b of [...reply.kept, ...reply.added]) {
        expect(a.usableSize(b.offset)).toBeGreaterThanOrEqual(b.size)
        for (let j = 0; j < b.size; j++) if (bytes[b.offset + j] !== patternByte(b.id, j)) mismatches++
      }
      expect(mismatches).toBe(0)
      for (const b of [...reply.kept, ...reply.added]) a.free(b.offset)
      expect(a.stats()).toEqual(base)
      a.check()
    } finally {
      shm.close()
    }
  })
})

/** Same as test/children/allocator-peer.ts. */
function patternByte(id: number, j: number): number {
  return (id * 131 + j * 7 + (j >>> 8)) & 255
}

describe('allocator free-list walks', () => {
  it('a free list turned into a cycle is ERR_SHM_CORRUPT after as many steps as blocks fit, not a hang', () => {
    withHeap(1 << 20, (a, mem) => {
      const largest = a.stats().largestFree
      // The fresh heap is one free block; point its next-free link at itself.
      mem.words[(FIRST_HEADER + 8) >>> 2] = FIRST_HEADER
      const stats = shmError(() => a.stats())
      expect(stats.code).toBe('ERR_SHM_CORRUPT')
      expect(stats.message).toMatch(/free list .* is longer than the \d+ blocks of its class that fit in the heap/)
      // A request that fits no free block walks the largest class: the same refusal, not ERR_SHM_FULL after 2^26 steps.
      expect(shmError(() => a.alloc(largest + 16)).code).toBe('ERR_SHM_CORRUPT')
    })
  })
})
