// Results: what workers put on the results channel — "ready" when one connects, "done"
// with a task's outcome — taken in one turn and settled on the callers' promises.
import { restoreViews, reviveError, takeAll, type DoneMessage, type ToPool } from '../../common/task_protocol'
import { abortedError } from './errors'
import type { PoolState } from './state'

/** Takes every message on the results channel and acts on it. */
export async function drainResults(s: PoolState): Promise<void> {
  const messages = await s.shm.accessAsync((tx) => takeAll<ToPool>(tx, s.results), { wait: s.o.wait })
  for (const m of messages) {
    if (m.t === 'ready') onReady(s, m.worker, m.generation, m.names)
    else onDone(s, m)
  }
  if (messages.length > 0) s.kick()
}

function onReady(s: PoolState, index: number, generation: number, names: string[]): void {
  const w = s.workers[index]
  if (w === undefined || w.generation !== generation || w.state !== 'starting') return
  w.state = 'ready'
  w.startFailures = 0
  s.knownNames ??= new Set(names)
  w.ready.resolve()
}

function onDone(s: PoolState, m: DoneMessage): void {
  const task = s.inFlight.get(m.id)
  if (task === undefined) return // its worker was declared dead meanwhile
  s.release(task)
  if (task.settled) return // cancelled: nobody waits for it
  switch (m.outcome) {
    case 'ok': {
      let value: unknown
      try {
        value = restoreViews(m.value, s.shm)
      } catch (err) {
        s.counters.failed++
        return s.settle(task, false, err)
      }
      s.counters.completed++
      return s.settle(task, true, value)
    }
    case 'error':
      s.counters.failed++
      return s.settle(task, false, reviveError(m.error!))
    case 'thrown':
      s.counters.failed++
      return s.settle(task, false, m.value)
    case 'skipped':
      s.counters.cancelled++
      return s.settle(task, false, abortedError(task.name, task.id, undefined))
  }
}
