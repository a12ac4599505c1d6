// Supervision: start workers, watch the results channel while the pool lives, notice a
// worker's exit (fail the task it was running, put back the ones it never started,
// restart it, or declare the pool broken), and shut everything down on close.
import { CONFIG_ENV, SLOT_WORDS, SlotFlag, SlotWord, type ToWorker, type WorkerConfig } from '../../common/task_protocol'
import type { WorkerExit, WorkerHandle } from '../hosts'
import { describeExit, WorkerExitError } from './errors'
import { drainResults, dropMessage, onResult } from './results'
import type { PoolState } from './state'
import { deferred, type Task, type Worker } from './types'

/** A worker that exits before it connects this many times in a row is not started again. */
const MAX_START_FAILURES = 3

export function startWorker(s: PoolState, w: Worker): void {
  w.generation++
  w.state = 'starting'
  w.ready = deferred()
  const config: WorkerConfig = {
    segment: s.shm.name,
    prefix: s.prefix,
    worker: w.index,
    generation: w.generation,
    slotTable: s.slotTable.byteOffset - s.shm.bytes.byteOffset,
    slotCount: s.workers.length * s.perWorker,
    concurrency: s.o.concurrency,
    wait: s.o.wait,
    fullTimeoutMs: s.o.fullTimeoutMs,
  }
  const generation = w.generation
  let handle: WorkerHandle
  try {
    handle = s.host.start({
      script: s.script,
      args: s.o.args,
      env: { ...s.o.env, [CONFIG_ENV]: JSON.stringify(config) },
      execArgv: s.o.execArgv,
      name: `offload worker ${w.index}`,
    })
  } catch (err) {
    w.handle = undefined
    void onExit(s, w, generation, { code: null, signal: null, error: err as Error })
    return
  }
  w.handle = handle
  void handle.exited.then((exit) => onExit(s, w, generation, exit))
}

/** Results taken at once after a wait before the pump dispatches (the rest come on its next round). */
const BATCH = 256

/** The pool's one wait on the results channel, until the pool closes; an error there shuts the pool down. */
export async function pump(s: PoolState): Promise<void> {
  const results = s.results
  try {
    while (!s.closing) {
      const first = await results.receive({ wait: s.o.wait, signal: s.pumpStop.signal })
      if (s.closing) {
        dropMessage(s, first)
        return
      }
      onResult(s, first)
      for (let n = 1; n < BATCH && !s.closing; n++) {
        const m = results.tryReceive()
        if (m === undefined) break
        onResult(s, m)
      }
      s.kick()
    }
  } catch (err) {
    if (!s.closing) void shutdown(s, err)
  }
}

async function onExit(s: PoolState, w: Worker, generation: number, exit: WorkerExit): Promise<void> {
  if (w.generation !== generation || w.state === 'dead' || w.state === 'failed') return
  const wasReady = w.state === 'ready'
  w.state = 'dead'
  const who = `worker ${w.index}${w.handle?.pid !== undefined ? ` (pid ${w.handle.pid})` : ''}`
  if (!wasReady) {
    w.ready.reject(new WorkerExitError(`WorkerPool: ${who} ${describeExit(exit)} before it connected; check that ${s.script} runs and calls serveTasks() (a .ts script needs execArgv such as ['--import', 'tsx'])`, { index: w.index, pid: w.handle?.pid }, exit))
  }
  if (s.closing) return
  const untaken = new Set<number>()
  try {
    // Results it put before it died still count; tasks still in its inbox never reached it.
    drainResults(s)
    for (;;) {
      const m = w.inbox.tryReceive()
      if (m === undefined) break
      if (m.t === 'task') untaken.add(m.id)
      dropMessage(s, m) // it goes again as a new message
    }
  } catch (err) {
    if (!s.closing) void shutdown(s, err)
    return
  }
  if (s.closing) return
  const back: Task[] = []
  for (const task of [...w.tasks.values()]) {
    const flags = Atomics.load(s.slotTable, task.slot * SLOT_WORDS + SlotWord.Flags)
    const started = !untaken.has(task.id) && (flags & SlotFlag.Started) !== 0
    s.release(task)
    if (task.settled) continue
    if (started) {
      s.counters.crashed++
      s.settle(task, false, new WorkerExitError(
        `${who} ${describeExit(exit)} while running task "${task.name}" (#${task.id}); the pool ${s.o.restart ? 'restarts the worker' : 'does not restart workers (restart: false)'}`,
        { index: w.index, pid: w.handle?.pid }, exit,
      ))
    } else back.push(task)
  }
  // Tasks it never started go first in line again, in their order.
  for (let i = back.length - 1; i >= 0; i--) {
    const task = back[i]!
    task.worker = undefined
    s.admission.putBack(task)
  }
  if (!wasReady) w.startFailures++
  if (s.starting) return // start() fails and closes the pool
  if (s.o.restart && w.startFailures < MAX_START_FAILURES) {
    s.counters.restarts++
    startWorker(s, w)
  } else {
    w.state = 'failed'
    if (!s.workers.some((x) => x.state === 'ready' || x.state === 'starting')) {
      const why = w.startFailures >= MAX_START_FAILURES
        ? `the worker script ${s.script} failed to start ${w.startFailures} times in a row (last: ${describeExit(exit)})`
        : `every worker has exited and restart is off (last: ${who} ${describeExit(exit)})`
      s.broken = new WorkerExitError(`WorkerPool: no worker left: ${why}`, { index: w.index, pid: w.handle?.pid }, exit)
      s.failPending(s.broken)
    }
  }
  s.kick()
}

/** Stops the workers (asking first, killing after stopTimeoutMs) and closes or cleans the segment. */
export async function shutdown(s: PoolState, reason: unknown): Promise<void> {
  if (s.closing) return s.closed
  s.closing = true
  s.closed ??= (async () => {
    s.dispatcher.stop()
    // Handlers that poll ctx.cancelled stop now rather than at the kill.
    if (!s.shm.closed) for (const t of s.inFlight.values()) Atomics.or(s.slotTable, t.slot * SLOT_WORDS + SlotWord.Flags, SlotFlag.Cancel)
    s.failPending(reason)
    const live = s.workers.filter((w) => w.handle !== undefined && w.state !== 'dead' && w.state !== 'failed')
    // Ask politely through the segment; fall back to the process channel.
    for (const w of live) {
      let asked = false
      if (!s.shm.closed) {
        try {
          asked = w.inbox.trySend({ t: 'stop' } satisfies ToWorker) === true
        } catch {
          // fall through
        }
      }
      if (!asked) w.handle!.postMessage({ t: 'stop' })
    }
    const exits = live.map((w) => w.handle!.exited)
    let timer: ReturnType<typeof setTimeout> | undefined
    const allExited = Promise.all(exits).then(() => true)
    const late = await Promise.race([allExited, new Promise<false>((r) => (timer = setTimeout(() => r(false), s.o.stopTimeoutMs)))])
    clearTimeout(timer)
    if (!late) {
      for (const w of live) w.handle!.kill(true)
      await allExited
    }
    for (const w of s.workers) if (w.state !== 'failed') w.state = 'dead'
    s.pumpStop.abort()
    await s.pumpDone
    if (s.shm.closed) return
    const channels = [s.results, ...s.workers.map((w) => w.inbox)]
    const closeChannels = (): void => {
      for (const ch of channels) {
        try {
          ch.close()
        } catch {
          // Best effort: a damaged segment is reported where it is used.
        }
      }
    }
    if (s.ownsSegment) {
      closeChannels()
      s.shm.close()
      return
    }
    // A segment we were lent: free what the pool put there. Emptied, the channels go with
    // their last handle (the workers closed theirs when they stopped).
    try {
      for (const ch of channels) {
        for (let m = ch.tryReceive(); m !== undefined; m = ch.tryReceive()) dropMessage(s, m)
      }
    } catch {
      // Best effort: the segment's owner may be tearing it down too.
    }
    await s.pendingReleases()
    closeChannels()
    try {
      await s.shm.accessAsync((tx) => tx.destroy(s.slotTable), { wait: s.o.wait, timeoutMs: 5000 })
    } catch {
      // Best effort, as above.
    }
  })()
  return s.closed
}
