// Loan operations as test/loan-model.test.ts runs them, in this process or in its peer
// (test/children/loan-peer.ts): one side of the model test, with the views it holds.
import { ShmError, type Channel, type SharedMemory } from 'interprocess-objects'

export type LoanOp =
  | { op: 'lend'; id: number; size: number; fill: number }
  | { op: 'send'; id: number }
  | { op: 'copy'; id: number; size: number; fill: number }
  | { op: 'receive' }
  | { op: 'release'; id: number }
  | { op: 'reuse'; id: number }

/** A message on channel "loans": a loan, or a Uint8Array copied into a frame too long for the ring. */
type Message = { id: number; fill: number; loan: Uint8Array } | { id: number; fill: number; copy: Uint8Array }

export type LoanResult =
  | { ok: true; got?: { id: number; kind: 'loan' | 'copy'; length: number; intact: boolean }; none?: true }
  | { ok: false; code: string }

export class LoanSide {
  readonly ch: Channel<Message>
  /** The views this side holds by id: lent here, or received. Kept after release or send (for 'reuse'). */
  private readonly views = new Map<number, Uint8Array>()
  private readonly fills = new Map<number, number>()

  constructor(readonly shm: SharedMemory) {
    this.ch = shm.channel<Message>('loans', { capacity: 16 })
  }

  run(o: LoanOp): LoanResult {
    try {
      switch (o.op) {
        case 'lend': {
          const view = this.ch.loan(o.size)
          view.fill(o.fill)
          this.views.set(o.id, view)
          this.fills.set(o.id, o.fill)
          return { ok: true }
        }
        case 'send': {
          const sent = this.ch.trySend({ id: o.id, fill: this.fills.get(o.id)!, loan: this.views.get(o.id)! })
          return sent === true ? { ok: true } : { ok: false, code: sent }
        }
        case 'copy': {
          const sent = this.ch.trySend({ id: o.id, fill: o.fill, copy: new Uint8Array(o.size).fill(o.fill) })
          return sent === true ? { ok: true } : { ok: false, code: sent }
        }
        case 'receive': {
          const m = this.ch.tryReceive()
          if (m === undefined) return { ok: true, none: true }
          const bytes = 'loan' in m ? m.loan : m.copy
          let intact = true
          for (let k = 0; k < bytes.length && intact; k++) intact = bytes[k] === m.fill
          if ('loan' in m) {
            this.views.set(m.id, m.loan)
            this.fills.set(m.id, m.fill)
          }
          return { ok: true, got: { id: m.id, kind: 'loan' in m ? 'loan' : 'copy', length: bytes.length, intact } }
        }
        case 'release':
          this.ch.release(this.views.get(o.id)!)
          return { ok: true }
        case 'reuse': {
          // A loan this side no longer holds (sent or released): every API use is refused.
          const view = this.views.get(o.id)!
          const codes = [codeOf(() => this.ch.release(view)), codeOf(() => this.ch.send({ id: o.id, fill: 0, loan: view }))]
          return codes[0] === codes[1] ? { ok: false, code: codes[0]! } : { ok: false, code: codes.join(' / ') }
        }
      }
    } catch (err) {
      return { ok: false, code: err instanceof ShmError ? err.code : String(err) }
    }
  }
}

function codeOf(fn: () => void): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return err instanceof ShmError ? err.code : String(err)
  }
}
