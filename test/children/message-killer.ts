// Kills itself (SIGKILL) at one chosen point inside a turn that core/messages.ts takes
// for a message with references and a Frame record: argv[3] is phase:method:nth, the
// nth call of `method` while Messages `phase` runs. Phases: 'prepare' (a send: the
// references are retained, the Frame record written), 'read' (a receive: the slot
// freed, the references taken over, the Frame record freed), 'abandon' (a trySend that
// found the ring full: the references released, the Frame record freed).
// For 'read' the parent has queued the message on channel "k"; for 'prepare' and
// 'abandon' this process sends its own values by reference (the parent has filled the
// ring for 'abandon'). Exits 0, after sending { survived }, when the point never came.
import { SharedMemory } from 'interprocess-objects'
import { Heap } from '../../core/heap'
import { Holders } from '../../core/holders'
import { Messages } from '../../core/messages'
import { InternalKind } from '../../core/records'
import { Ring } from '../../core/ring'
import { FrameEncoder } from '../../core/values/frame'

const [name, point] = process.argv.slice(2)
const [wantPhase, wantMethod, nthArg] = point!.split(':') as [string, string, string]
const nth = Number(nthArg)
let phase = ''
let calls = 0

type Proto = Record<string, (...args: unknown[]) => unknown>

/** While `method` of `proto` runs, phase is `name`. */
function phaseOf(proto: object, method: string): void {
  const p = proto as Proto
  const original = p[method]!
  p[method] = function (this: unknown, ...args: unknown[]) {
    const outer = phase
    phase = method
    try {
      return original.apply(this, args)
    } finally {
      phase = outer
    }
  }
}

/** The chosen call of `method` kills this process before it does anything. */
function killAt(proto: object, method: string, counts: (args: unknown[]) => boolean = () => true): void {
  const p = proto as Proto
  const original = p[method]!
  p[method] = function (this: unknown, ...args: unknown[]) {
    if (phase === wantPhase && method === wantMethod && counts(args) && ++calls === nth) process.kill(process.pid, 'SIGKILL')
    return original.apply(this, args)
  }
}

for (const m of ['prepare', 'read', 'abandon']) phaseOf(Messages.prototype, m)
killAt(Heap.prototype, 'retain')
killAt(Heap.prototype, 'unretain')
killAt(Heap.prototype, 'allocRecord', (args) => args[0] === InternalKind.Frame)
killAt(Heap.prototype, 'freeRecord')
killAt(FrameEncoder.prototype, 'writeTo')
killAt(Ring.prototype, 'release')
killAt(Holders.prototype, 'holdWithoutTurn')
killAt(Heap.prototype, 'dropShared')

const shm = SharedMemory.open({ name: name! })
const ch = shm.channel('k')
let outcome: unknown
if (wantPhase === 'read') {
  outcome = ch.tryReceive()
} else {
  const [list, map] = shm.access((tx) => [tx.put(['child', 1]), tx.put(new Map([['child', 2]]))])
  const message = { big: 'c'.repeat(300), list, map }
  if (wantPhase === 'prepare') ch.send(message)
  else outcome = ch.trySend(message)
}
process.send!({ survived: String(outcome) }, () => {
  shm.close()
  process.exit(0)
})
