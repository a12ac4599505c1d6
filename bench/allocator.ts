// The shared heap's allocator under churn: a pool of small live values, each
// operation destroys a random one and puts a new one in its place, with the heap
// already 10% or 90% full of fragmented filler. One process (the allocator has
// no cross-process cost beyond the turn), many operations per turn.
import { SharedMemory, type Turn } from 'interprocess-objects'
import type { AllocatorStats } from 'interprocess-objects'
import { uniqueName } from './lib/processes'
import type { BenchRow, RunOptions } from './lib/scenario'
import { opsPerSec, ratio } from './lib/stats'

export const title = 'allocator: put + destroy of small values in a 10% and a 90% full heap'
export const notes = [
  'One op = tx.destroy(a random live value of the pool) + tx.put(a new one) in its slot; 1000 ops per turn, a pool of 1000 live values.',
  'Filler: values of 16 B – 4 KiB put until the heap is 5% past the fill level, then random ones destroyed until it is back at it (so the free space is in holes).',
]
export const about = `How the shared heap's allocator (TLSF) holds up under churn. The heap is first filled with values of random sizes (16 B – 4 KiB) to 5% past the fill level, then random ones are destroyed until it is back at the fill level, so the free space is scattered in holes. Then a pool of 1000 live small values churns: each operation destroys a random one and puts a new one in its place, 1000 operations per turn. "Uint8Array(64)" is one allocation; "{ id, name, score }" is a plain object, which takes 7 allocations (its table, entries, buckets, three key strings and one string value). The V8 rows do the same with ordinary objects and garbage collection, for scale: they are not shared with anyone.

**What identity and generations cost here** (measured 2026-12-02 on the 2-core VM, AMD EPYC, against the commit before identity (2acd444), same loop of 1000 put + destroy per turn in one process, interleaved runs): every put stamps a generation and lists its reference in the segment's holder table, and every destroy takes it back. A put result enters the identity cache (a \`WeakRef\`) only once it is shared — stored in a container, put again or sent by reference — since until then no other read can reach its record; a WeakRef per put result had kept every view alive through young-generation collections. Put + destroy of a \`Uint8Array(64)\`: 744–828k/s vs 485–586k/s before identity (1.3–1.7×); of \`{ id, name, score }\`: 379–392k/s vs 291–323k/s (1.2–1.3×). (Before this change: about 0.6–0.8× and 0.5–0.9×.) Views read out of containers are cached, so reading nested values got faster: \`o.a.b\` reuses the cached view rather than building a Proxy per read.`

const POOL = 1000
const OPS_PER_TURN = 1000

/** mulberry32: the same filler layout on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Make = (i: number) => object

const smallBinary: Make = () => new Uint8Array(64)
const smallObject: Make = (i) => ({ id: i, name: 'player', score: i * 1.5 })

function fill(shm: SharedMemory, level: number, random: () => number): AllocatorStats {
  const fillers: object[] = []
  const usedFraction = (s: AllocatorStats) => s.used / s.heapBytes
  shm.access((tx) => {
    while (usedFraction(tx.stats()) < level + 0.05) {
      for (let i = 0; i < 256; i++) fillers.push(tx.put(new Uint8Array(16 + Math.floor(random() * 4080))))
    }
    while (usedFraction(tx.stats()) > level) {
      for (let i = 0; i < 64 && fillers.length > 0; i++) {
        const k = Math.floor(random() * fillers.length)
        tx.destroy(fillers[k])
        fillers[k] = fillers[fillers.length - 1]!
        fillers.pop()
      }
    }
  })
  return shm.stats()
}

function churnShared(shm: SharedMemory, make: Make, ms: number, random: () => number): number {
  const pool: unknown[] = []
  shm.access((tx) => {
    for (let i = 0; i < POOL; i++) pool.push(tx.put(make(i)))
  })
  let i = 0
  const turn = (tx: Turn) => {
    for (let k = 0; k < OPS_PER_TURN; k++) {
      const slot = Math.floor(random() * POOL)
      tx.destroy(pool[slot])
      pool[slot] = tx.put(make(i++))
    }
  }
  for (let w = 0; w < 20; w++) shm.access(turn)
  const t0 = performance.now()
  let ops = 0
  let now = t0
  do {
    shm.access(turn)
    ops += OPS_PER_TURN
    now = performance.now()
  } while (now - t0 < ms)
  shm.access((tx) => {
    for (const v of pool) tx.destroy(v)
  })
  return ops / ((now - t0) / 1e3)
}

function churnLocal(make: Make, ms: number, random: () => number): number {
  const pool: unknown[] = Array.from({ length: POOL }, (_, i) => make(i))
  let i = 0
  const turn = () => {
    for (let k = 0; k < OPS_PER_TURN; k++) pool[Math.floor(random() * POOL)] = make(i++)
  }
  for (let w = 0; w < 50; w++) turn()
  const t0 = performance.now()
  let ops = 0
  let now = t0
  do {
    turn()
    ops += OPS_PER_TURN
    now = performance.now()
  } while (now - t0 < ms)
  return ops / ((now - t0) / 1e3)
}

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const ms = opts.quick ? 250 : 2000
  const size = opts.quick ? 16 << 20 : 64 << 20
  const kinds: Array<[string, Make]> = [
    ['Uint8Array(64)', smallBinary],
    ['{ id, name, score }', smallObject],
  ]
  const rows: BenchRow[] = []
  const stats: string[] = []
  for (const [label, make] of kinds) {
    const rates: number[] = []
    for (const level of [0.1, 0.9]) {
      const shm = SharedMemory.create({ name: uniqueName('bench-alloc'), size, prefault: true })
      try {
        const random = rng(42)
        const s = fill(shm, level, random)
        if (label === kinds[0]![0]) {
          stats.push(`${Math.round(level * 100)}% fill: ${s.allocations.toLocaleString('en-US')} filler values, ${s.freeBlocks.toLocaleString('en-US')} free blocks, largest ${(s.largestFree / 1024).toFixed(0)} KiB`)
        }
        rates.push(churnShared(shm, make, ms, random))
      } finally {
        shm.close()
      }
    }
    rows.push({ case: `shared heap: ${label}`, figures: { '10% full': opsPerSec(rates[0]!), '90% full': opsPerSec(rates[1]!), '90% ÷ 10%': ratio(rates[1]! / rates[0]!) } })
  }
  for (const [label, make] of kinds) {
    const rate = churnLocal(make, ms, rng(42))
    rows.push({ case: `V8 heap (GC, not shared): ${label}`, figures: { '10% full': opsPerSec(rate) }, note: 'for scale only' })
  }
  rows[0]!.note = `${(size / 2 ** 20).toFixed(0)} MiB segment; ${stats.join('; ')}`
  return rows
}
