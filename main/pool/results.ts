// Results: what workers put on the results channel — "ready" when one connects, "done"
// with a task's outcome — settled on the callers' promises as they are taken (the pump
// that waits for them is in supervision.ts).
import type { SharedMemory } from '../../core'
import { reviveError, sharedValuesIn, type DoneMessage, type ToPool, type ToWorker } from '../../common/task_protocol'
import { sharedRecordOf } from '../../core/values/mapped_handle'
import { abortedError } from './errors'
import type { PoolState } from './state'
import type { Task } from './types'

/** Takes every result already on the channel (a worker exited: what it sent before still counts). */
export function drainResults(s: PoolState): void {
  let any = false
  for (;;) {
    const m = s.results.tryReceive()
    if (m === undefined) break
    onResult(s, m)
    any = true
  }
  if (any) s.kick()
}

/** Acts on one message of the results channel. */
export function onResult(s: PoolState, m: ToPool): void {
  if (m.t === 'ready') onReady(s, m.worker, m.generation, m.names)
  else onDone(s, m)
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
  if (task === undefined) {
    // Its worker was declared dead meanwhile: nobody takes what it carries.
    dropMessage(s, m)
    return
  }
  if (typeof m.runUs === 'number' && m.runUs >= 0) {
    const w = task.worker!
    w.runUs = w.runUs === Infinity ? m.runUs : w.runUs + (m.runUs - w.runUs) / 8
  }
  s.release(task)
  if (m.outcome === 'ok' || m.outcome === 'thrown') keepResult(s, task, m.value)
  if (task.settled) return // cancelled: nobody waits for it
  switch (m.outcome) {
    case 'ok':
      s.counters.completed++
      return s.settle(task, true, m.value)
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

/** True for a value of this segment that travels by reference (a tx.put result, a mapped view). */
export function isSharedIn(shm: SharedMemory): (v: object) => boolean {
  return (v) => {
    try {
      return sharedRecordOf(shm.heap, v) >= 0
    } catch {
      return false // a view of a freed record: not one the frame carried
    }
  }
}

/**
 * A result came with values of the segment, each with a reference the pool now owns:
 * the caller keeps those it did not pass in (it owns them now, as tx.put's caller
 * does); those it passed in it owns already, so the extra reference goes. When nobody
 * waits for the result (cancelled), every reference goes.
 */
function keepResult(s: PoolState, task: Task, value: unknown): void {
  const isShared = isSharedIn(s.shm)
  const shared = sharedValuesIn(value, isShared)
  if (shared.length === 0) return
  if (task.settled) return release(s, shared)
  const passed = new Set(sharedValuesIn(task.input, isShared).map((v) => sharedRecordOf(s.shm.heap, v)))
  release(s, shared.filter((v) => passed.has(sharedRecordOf(s.shm.heap, v))))
}

/** A message nobody acts on (the pool is closing, or its task is gone): the references it carried go. */
export function dropMessage(s: PoolState, m: ToPool | ToWorker): void {
  const value = m.t === 'done' ? m.value : m.t === 'task' ? m.input : undefined
  release(s, sharedValuesIn(value, isSharedIn(s.shm)))
}

/** Drops one reference owned through each view, in a turn that does not hold up the event loop. */
function release(s: PoolState, views: object[]): void {
  if (views.length === 0 || s.shm.closed) return
  const done = s.shm.accessAsync((tx) => {
    for (const v of views) {
      try {
        tx.destroy(v)
      } catch {
        // Not owned here after all (or freed): nothing to drop.
      }
    }
  }, { wait: s.o.wait }).catch(() => {
    // The segment closed meanwhile: its references went with it.
  }).finally(() => s.releasing.delete(done))
  s.releasing.add(done)
}
