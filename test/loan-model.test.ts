// The loan pool (core/loan_pool.ts) against a plain model, in two processes: random
// sequences of loan, send, copy (a frame too long for the ring, in a pool array),
// receive, release, reuse of a loan no longer held, and SIGKILL of the second process.
// Every result is compared with the model (FIFO order, bytes intact, ERR_CHANNEL_FULL,
// ERR_SHM_STALE), shm.check() is compared with it every few operations, and at the end
// every loan is back in the pool and nothing else is left in use.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { SharedMemory } from 'interprocess-objects'
import { LoanSide, type LoanOp, type LoanResult } from './helpers/loan-ops'
import { startChild, uniqueName, type Child } from './helpers/processes'
import { inUse, withLoanPool } from './helpers/segments'

const RUNS = Number(process.env.IPO_LOAN_RUNS ?? 25)
const CAPACITY = 16
const SIZES = [0, 1, 1000, 4096, 4097, 9000, 70_000]

type Side = 0 | 1
type Holder = Side | 'flight' | 'gone' | 'dead'
interface Loan {
  holder: Holder
  size: number
  fill: number
  /** Sides that held it at some time (their views of it can be reused). */
  seen: Set<Side>
}
interface Queued {
  id: number
  kind: 'loan' | 'copy'
  size: number
  fill: number
}

const step = fc.record({ side: fc.constantFrom<Side>(0, 1), kind: fc.nat(99), pick: fc.nat(), size: fc.nat(SIZES.length - 1) })

describe('loan pool model', () => {
  it(`${RUNS} random sequences of loans, long copies, receives, releases, misuse and a SIGKILL, in two processes`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 120 }), async (steps) => {
        const shm = SharedMemory.create({ name: uniqueName('loanmodel'), size: 16 << 20 })
        let peer: Child | undefined
        try {
          withLoanPool(shm)
          const here = new LoanSide(shm)
          const startPeer = async (): Promise<Child> => {
            const child = startChild('loan-peer.ts', [shm.name])
            expect(await child.next()).toBe('ready')
            return child
          }
          peer = await startPeer()
          // (With the peer's handle registered: its channel handle is listed in the segment.)
          const baseline = inUse(shm)
          const run = async (side: Side, op: LoanOp): Promise<LoanResult> => {
            if (side === 0) return here.run(op)
            peer!.send(op)
            return peer!.next<LoanResult>()
          }
          const loans = new Map<number, Loan>()
          const queue: Queued[] = []
          let nextId = 1
          const log: string[] = []
          const fail = (why: string): never => {
            throw new Error(`${why}\nsteps:\n${log.join('\n')}`)
          }
          const expectResult = (got: LoanResult, want: LoanResult, what: string): void => {
            if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: got ${JSON.stringify(got)}, the model says ${JSON.stringify(want)}`)
          }
          const held = (side: Side): number[] => [...loans].filter(([, l]) => l.holder === side).map(([id]) => id)
          const checkCounts = (): void => {
            const report = shm.check().loans
            const holding = [...loans.values()].filter((l) => l.holder === 0 || l.holder === 1 || l.holder === 'dead').length
            const flying = queue.length
            if (report.held !== holding || report.inFlight !== flying) fail(`check() says ${report.held} held, ${report.inFlight} in flight; the model ${holding} and ${flying}`)
          }

          for (const [n, s] of steps.entries()) {
            const side = s.side
            const k = s.kind
            if (k < 25) {
              const id = nextId++
              const size = SIZES[s.size]!
              const fill = id & 0xff
              log.push(`${side}: lend #${id} (${size} B)`)
              expectResult(await run(side, { op: 'lend', id, size, fill }), { ok: true }, `lend #${id}`)
              loans.set(id, { holder: side, size, fill, seen: new Set([side]) })
            } else if (k < 45) {
              const mine = held(side)
              if (mine.length === 0) continue
              const id = mine[s.pick % mine.length]!
              log.push(`${side}: send #${id}`)
              const full = queue.length >= CAPACITY
              expectResult(await run(side, { op: 'send', id }), full ? { ok: false, code: 'ERR_CHANNEL_FULL' } : { ok: true }, `send #${id}`)
              if (!full) {
                const loan = loans.get(id)!
                loan.holder = 'flight'
                queue.push({ id, kind: 'loan', size: loan.size, fill: loan.fill })
              }
            } else if (k < 52) {
              const id = nextId++
              const size = 2000 + (s.pick % 30_000)
              log.push(`${side}: copy #${id} (${size} B)`)
              const full = queue.length >= CAPACITY
              expectResult(await run(side, { op: 'copy', id, size, fill: id & 0xff }), full ? { ok: false, code: 'ERR_CHANNEL_FULL' } : { ok: true }, `copy #${id}`)
              if (!full) queue.push({ id, kind: 'copy', size, fill: id & 0xff })
            } else if (k < 75) {
              log.push(`${side}: receive`)
              const head = queue.shift()
              const want: LoanResult = head === undefined ? { ok: true, none: true } : { ok: true, got: { id: head.id, kind: head.kind, length: head.size, intact: true } }
              expectResult(await run(side, { op: 'receive' }), want, 'receive')
              if (head?.kind === 'loan') {
                const loan = loans.get(head.id)!
                loan.holder = side
                loan.seen.add(side)
              }
            } else if (k < 92) {
              const mine = held(side)
              if (mine.length === 0) continue
              const id = mine[s.pick % mine.length]!
              log.push(`${side}: release #${id}`)
              expectResult(await run(side, { op: 'release', id }), { ok: true }, `release #${id}`)
              loans.get(id)!.holder = 'gone'
            } else if (k < 98) {
              const old = [...loans].filter(([, l]) => l.seen.has(side) && l.holder !== side).map(([id]) => id)
              if (old.length === 0) continue
              const id = old[s.pick % old.length]!
              log.push(`${side}: reuse #${id}`)
              expectResult(await run(side, { op: 'reuse', id }), { ok: false, code: 'ERR_SHM_STALE' }, `reuse #${id}`)
            } else {
              // The second process is killed: what it held stays held (by a dead pid) until
              // a loan finds the pool otherwise full; what it sent stays queued, intact.
              log.push('1: SIGKILL')
              peer.proc.kill('SIGKILL')
              await peer.exited
              for (const loan of loans.values()) {
                if (loan.holder === 1) loan.holder = 'dead'
                loan.seen.delete(1)
              }
              peer = await startPeer()
            }
            if (n % 8 === 0) checkCounts()
          }
          checkCounts()

          // Drain and give everything back; loans of a dead process come back once the
          // pool is otherwise full (every other entry lent here).
          while (queue.length > 0) {
            const head = queue.shift()!
            expectResult(here.run({ op: 'receive' }), { ok: true, got: { id: head.id, kind: head.kind, length: head.size, intact: true } }, 'drain')
            if (head.kind === 'loan') loans.get(head.id)!.holder = 0
          }
          for (const side of [0, 1] as const) for (const id of held(side)) expectResult(await run(side, { op: 'release', id }), { ok: true }, `release #${id}`)
          if ([...loans.values()].some((l) => l.holder === 'dead')) {
            const filler: number[] = []
            for (let id = 1_000_000; ; id++) {
              const r = here.run({ op: 'lend', id, size: 1, fill: 0 })
              if (!r.ok) break
              filler.push(id)
            }
            expect(filler.length).toBe(256)
            for (const id of filler) here.run({ op: 'release', id })
          }
          const report = shm.check().loans
          expect(report).toMatchObject({ held: 0, inFlight: 0 })
          expect(inUse(shm)).toBe(baseline)
        } finally {
          peer?.proc.kill('SIGKILL')
          await peer?.exited
          shm.close()
        }
      }),
      { numRuns: RUNS },
    )
  }, 300_000)
})
