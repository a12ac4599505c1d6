// What tests ask of segments beyond the API: the OS file behind a name, what this
// process still holds of it, and the ShmError a call throws.
import * as fs from 'node:fs'
import { ShmError, type Channel, type SharedMemory, type Turn } from 'interprocess-objects'

/** The file behind segment `name` on Linux (/dev/shm, prefix 'ipo-'). */
export const shmFile = (name: string): string => `/dev/shm/ipo-${name}`

/** Open fds and mappings this process holds of segment `name` (Linux). */
export function held(name: string): { fds: number; maps: number } {
  const file = shmFile(name)
  let fds = 0
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)) fds++
    } catch {
      // closed meanwhile (the fd readdir itself used, for one)
    }
  }
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(file)).length
  return { fds, maps }
}

/** The ShmError `fn` throws; fails the test if it returns or throws something else. */
export function shmError(fn: () => unknown): ShmError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ShmError) return err
    throw err
  }
  throw new Error('expected a ShmError, the call returned')
}

/**
 * Makes the segment's loan pool now (its table is allocated at the first loan, and stays),
 * so that a baseline of inUse taken afterwards is not moved by a later loan or large frame.
 */
export function withLoanPool(shm: SharedMemory): void {
  const ch = shm.channel('loan-pool-warm-up')
  ch.release(ch.loan(1))
  ch.close()
}

/** Entries of a segment's loan pool (core/records.ts LOAN_ENTRIES). */
const LOAN_POOL_ENTRIES = 256

/**
 * Lends every entry of the segment's loan pool through `ch` (1000 bytes each): it succeeds
 * only if no entry is still held or in flight elsewhere. The caller releases them.
 */
export function lendWholePool(ch: Channel<Uint8Array>): Uint8Array[] {
  const held: Uint8Array[] = []
  for (let k = 0; k < LOAN_POOL_ENTRIES; k++) held.push(ch.loan(1000))
  return held
}

/** Bytes the segment has in use, apart from the free arrays the loan pool keeps for reuse (what a leak would grow). */
export function inUse(shm: SharedMemory | Turn): number {
  const s = shm.stats()
  return s.used - s.pooled
}

/**
 * Collects garbage until `done()` holds or `ms` have passed (10 s: on a loaded machine
 * the finalizers can take a while to get their turn; `() => false` with a short `ms`
 * just collects for that long): a view nobody can reach gives the
 * reference it held back after V8 collects it and this process's event loop runs its
 * finalizer and one turn (core/view_holds.ts). Needs --expose-gc (the vitest config
 * passes it; children that need it get it in their execArgv).
 */
export async function afterCollection(done: () => boolean, ms = 10_000): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('afterCollection needs node --expose-gc')
  const until = Date.now() + ms
  for (let round = 0; !done() && Date.now() < until; round++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, Math.min(round < 2 ? 0 : 5 * round, 50)))
  }
}
