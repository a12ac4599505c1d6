// Offload through a WorkerPool (main/) against the usual ways to hand work to
// another process or thread: the same two tasks — add one to a number, sum a
// Float64Array of 8 MiB — through child_process IPC and worker_threads
// postMessage. Each peer runs one worker, so the transports are compared, not
// core counts.
import { fork, type ChildProcess } from 'node:child_process'
import type { Worker } from 'node:worker_threads'
import { WorkerPool } from 'interprocess-objects/main'
import type { handlers } from './lib/offload-worker'
import { sum, type OffloadRequest, type OffloadTask } from './lib/offload-handlers'
import { nextFromWorker, peerExecArgv, scriptPath, startWorker } from './lib/processes'
import { valueOf, type BenchRow, type Check, type RunOptions } from './lib/scenario'
import { bytesPerSec, cpuMicrosSince, opsPerSec, us } from './lib/stats'

export const title = 'offload: tasks to a worker process, small and large'
export const notes = [
  'one worker in every row; "in flight" = tasks started before the first result is awaited; round trip = the mean over the one-at-a-time loop; the one-at-a-time loop and the in-flight one each run after a warm-up of their own of at least 2,000 tasks and 1 s (500 and 0.25 s in quick mode), on every transport',
  "prefetch = tasks a WorkerPool sends a worker ahead of need: 'auto' (the default) sends 1 while the worker's tasks run long (or nothing is known yet) and up to 32 while they run for less than 1 ms each; prefetch 1 is the fixed setting for long tasks",
  'caller CPU / task = user + system time of the calling process (every thread) per small task in the one-at-a-time loop: the worker process is not counted — except for worker_threads, whose worker is a thread of the caller',
  'large task: sum of a Float64Array of 8 MiB; the WorkerPool passes a view of it in the segment, the others copy it',
]
export const about = `What moving work off the main process costs. The same handlers (\`addOne(n)\`, \`sum(Float64Array)\`) run in one worker behind each transport: a \`WorkerPool\` worker (tasks and results travel through the shared segment, the worker is woken by the futex), a \`child_process.fork\` child answering over its IPC channel ('advanced' serialization, so the Float64Array survives), and a \`worker_threads\` Worker answering by \`postMessage\`. Small tasks are timed one at a time (round trip) and 64 in flight (rate); the large task passes 8 MiB, which the WorkerPool does not copy because the array already lies in the segment.`

const PAYLOAD_DOUBLES = 1 << 20
const IN_FLIGHT = 64

interface Transport {
  label: string
  call(req: OffloadTask): Promise<number>
  close(): Promise<void>
}

/** Request/response over a channel that delivers answers as `{ id, result }`. */
function correlate(send: (m: OffloadRequest) => void, onAnswer: (cb: (m: { id: number; result: number }) => void) => void) {
  let next = 0
  const pending = new Map<number, (n: number) => void>()
  onAnswer((m) => {
    pending.get(m.id)!(m.result)
    pending.delete(m.id)
  })
  return (req: OffloadTask) =>
    new Promise<number>((resolve) => {
      const id = next++
      pending.set(id, resolve)
      send({ ...req, id } as OffloadRequest)
    })
}

async function childTransport(): Promise<Transport> {
  const child: ChildProcess = fork(scriptPath('offload-ipc-peer'), [], { execArgv: peerExecArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await new Promise<void>((resolve) => child.once('message', () => resolve()))
  const call = correlate((m) => child.send(m), (cb) => child.on('message', cb as (m: unknown) => void))
  return {
    label: IPC,
    call,
    close: async () => {
      child.send('stop')
      await new Promise((resolve) => child.once('exit', resolve))
    },
  }
}

async function threadTransport(): Promise<Transport> {
  const worker: Worker = startWorker('offload-thread')
  await nextFromWorker(worker)
  const call = correlate((m) => worker.postMessage(m), (cb) => worker.on('message', cb))
  return { label: THREAD, call, close: async () => void (await worker.terminate()) }
}

const POOL = 'WorkerPool (shared memory)'
const IPC = "child_process IPC ('advanced')"
const THREAD = 'worker_threads postMessage (copy)'

async function poolTransport(prefetch: number | 'auto', local: Float64Array): Promise<Transport> {
  const pool = await WorkerPool.start<typeof handlers>({ script: scriptPath('offload-worker'), execArgv: peerExecArgv, workers: 1, host: 'node', segmentSize: 64 << 20, prefetch })
  // The large task passes an array that lies in the segment instead of the caller's copy.
  const shared = pool.shm.access((tx) => tx.put(local))
  if (prefetch === 'auto') handlerMs = medianSumMs(shared)
  return {
    label: prefetch === 'auto' ? POOL : `${POOL}, prefetch ${prefetch}`,
    call: (req) => (req.op === 'addOne' ? pool.run('addOne', req.n) : pool.run('sum', shared)),
    close: () => pool.close(),
  }
}

/** The large task's handler alone (sum over the segment's array, in this process): the median of 20, filled by the first pool. */
let handlerMs = NaN

function medianSumMs(values: Float64Array): number {
  const times: number[] = []
  for (let i = 0; i < 20; i++) {
    const start = performance.now()
    sum(values)
    times.push(performance.now() - start)
  }
  return times.sort((a, b) => a - b)[10]!
}

/** Small tasks every transport runs before it is timed, and the least time it warms up for. */
const WARM_UP = 2_000
const WARM_UP_MS = 1_000

async function measure(t: Transport, payload: Float64Array, quick: boolean): Promise<BenchRow> {
  const small = quick ? 2_000 : 20_000
  const large = quick ? 20 : 200
  // Warm up (the JIT, and the receive spin learning that answers come fast) alike for every
  // transport: at least WARM_UP tasks and WARM_UP_MS. (2,000 tasks alone left the WorkerPool's
  // first timed rounds at twice the steady-state round trip: V8 had not optimized both sides yet.)
  const warmup = quick ? WARM_UP / 4 : WARM_UP
  const warmupMs = quick ? WARM_UP_MS / 4 : WARM_UP_MS
  const warmStart = performance.now()
  for (let i = 0; i < warmup || performance.now() - warmStart < warmupMs; i++) await t.call({ op: 'addOne', n: i })
  let t0 = performance.now()
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < small; i++) {
    if ((await t.call({ op: 'addOne', n: i })) !== i + 1) throw new Error(`${t.label}: wrong answer`)
  }
  const oneAtATime = ((performance.now() - t0) * 1000) / small
  const cpuPerTask = cpuMicrosSince(cpu0) / small

  // IN_FLIGHT tasks at a time, `count` in all; the seconds it took.
  const inFlight = async (count: number): Promise<number> => {
    const start = performance.now()
    let started = 0
    const lane = async () => {
      while (started < count) {
        const n = started++
        if ((await t.call({ op: 'addOne', n })) !== n + 1) throw new Error(`${t.label}: wrong answer`)
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
    return (performance.now() - start) / 1000
  }
  // The same warm-up for the rate, whose code paths (batches, prefetch) the one-at-a-time loop
  // does not run: timed cold, the WorkerPool's first 20,000 ran at about half its steady rate.
  const rateWarmStart = performance.now()
  do await inFlight(warmup)
  while (performance.now() - rateWarmStart < warmupMs)
  const rate = small / (await inFlight(small))

  const expected = ((PAYLOAD_DOUBLES - 1) * PAYLOAD_DOUBLES) / 2
  await t.call({ op: 'sum', values: payload })
  t0 = performance.now()
  for (let i = 0; i < large; i++) {
    if ((await t.call({ op: 'sum', values: payload })) !== expected) throw new Error(`${t.label}: wrong sum`)
  }
  const largeSeconds = (performance.now() - t0) / 1000
  return {
    case: t.label,
    figures: {
      'round trip': us(oneAtATime),
      'caller CPU / task': us(cpuPerTask),
      [`tasks/s (${IN_FLIGHT} in flight)`]: opsPerSec(rate),
      '8 MiB tasks/s': opsPerSec(large / largeSeconds),
      'payload B/s': bytesPerSec((large * payload.byteLength) / largeSeconds),
    },
  }
}

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const local = Float64Array.from({ length: PAYLOAD_DOUBLES }, (_, i) => i)
  const makers = [() => poolTransport('auto', local), () => poolTransport(1, local), childTransport, threadTransport]
  const rows: BenchRow[] = []
  for (const make of makers) {
    const t = await make()
    try {
      rows.push(await measure(t, local, opts.quick))
    } finally {
      await t.close()
    }
  }
  const small = `tasks/s (${IN_FLIGHT} in flight)`
  const pool = rows[0]!
  for (const row of rows.slice(2)) {
    row.note = `WorkerPool: ${(pool.figures[small]!.value / row.figures[small]!.value).toFixed(2)}× the small-task rate, ${(pool.figures['round trip']!.value / row.figures['round trip']!.value).toFixed(2)}× the round trip, ${(pool.figures['8 MiB tasks/s']!.value / row.figures['8 MiB tasks/s']!.value).toFixed(2)}× the large-task rate`
  }
  return rows
}

export function checks(rows: BenchRow[]): Check[] {
  const pool = valueOf(rows, POOL, '8 MiB tasks/s')
  const ipc = valueOf(rows, "child_process IPC ('advanced')", '8 MiB tasks/s')
  const small = `tasks/s (${IN_FLIGHT} in flight)`
  const poolTrip = valueOf(rows, POOL, 'round trip')
  const ipcTrip = valueOf(rows, IPC, 'round trip')
  const poolRate = valueOf(rows, POOL, small)
  const ipcRate = valueOf(rows, IPC, small)
  const threadRate = valueOf(rows, THREAD, small)
  const x = (v: number) => `${v.toFixed(2)}×`
  return [
    {
      target: 'WorkerPool small task round trip ≤ 0.5× child_process IPC (default options)',
      measured: `${x(poolTrip / ipcTrip)} (${poolTrip.toFixed(1)} µs vs IPC ${ipcTrip.toFixed(1)} µs)`,
      met: poolTrip <= 0.5 * ipcTrip,
      why: 'A task goes pool → worker and its result back: two channel hops plus the pool\'s bookkeeping (admission, a slot, settling the promise). The messages scenario has the bare channel round trip of the same run; a hop the receiver does not catch spinning costs a wake-up of a sleeping process.',
    },
    {
      target: `WorkerPool small tasks, ${IN_FLIGHT} in flight: rate ≥ 2× child_process IPC and ≥ 0.5× worker_threads (default options)`,
      measured: `${x(poolRate / ipcRate)} IPC, ${x(poolRate / threadRate)} worker_threads (${Math.round(poolRate)} vs ${Math.round(ipcRate)} and ${Math.round(threadRate)} tasks/s)`,
      met: poolRate >= 2 * ipcRate && poolRate >= 0.5 * threadRate,
      why: 'Prefetch \'auto\' sends up to 32 short tasks ahead, so the worker goes from one to the next without waiting for the pool; what remains is the per-task work on both sides (encode, ring, decode, settle).',
    },
    {
      target: 'large payloads to a worker ≥ 10× child_process IPC',
      measured: `${(pool / ipc).toFixed(1)}× (${pool.toFixed(0)} vs ${ipc.toFixed(1)} tasks of 8 MiB per second)`,
      met: pool / ipc >= 10,
      why:
        (Number.isFinite(handlerMs)
          ? `The task itself bounds the WorkerPool: summing the 1M doubles of the segment's array takes ${handlerMs.toFixed(2)} ms (the handler alone, in one process, median of 20, this run), so no transport can run more than ${(1000 / handlerMs).toFixed(0)} of these tasks a second, ${(1000 / handlerMs / ipc).toFixed(1)}× child_process IPC; `
          : 'The task itself bounds the WorkerPool (the sum over 8 MiB takes about a millisecond); ') +
        `the WorkerPool ran ${(1000 / pool).toFixed(2)} ms per task in all. ` +
        'The rest is mostly two wake-ups per task, with both processes idle meanwhile: the caller sleeps through the millisecond-long task (too long to spin for) and is woken by the result, and the worker, whose wait for the next task includes that wake-up, sleeps too; waking a sleeping virtual CPU costs tens to hundreds of µs here. ' +
        `10× child_process IPC would mean ${(10 * ipc).toFixed(0)} tasks/s, ${(1000 / (10 * ipc)).toFixed(2)} ms per task including that sum. Shared memory saves the copy (child_process IPC serializes and copies 8 MiB each way), not the work.`,
    },
  ]
}
