// WorkerPool + serveTasks with real worker processes (Node child processes running
// test/children/offload-worker.ts through tsx) and a real segment.
import { fork } from 'node:child_process'
import { EventEmitter } from 'node:events'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { ElectronHost, NodeHost, WorkerExitError, WorkerPool, type UtilityProcessLike, type WorkerPoolOptions } from 'interprocess-objects/main'
import type { handlers } from './children/offload-worker'
import { childrenDir, uniqueName } from './helpers/processes'
// White-box: which record a mapped view stands for (to see that references balance).
import { mappedHandleOf } from '../core/values/mapped_handle'

const script = path.join(childrenDir, 'offload-worker.ts')
const tsx = ['--import', 'tsx']

function startPool(options: Partial<WorkerPoolOptions> = {}) {
  return WorkerPool.start<typeof handlers>({ script, workers: 2, execArgv: tsx, ...options })
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected the promise to reject')
}

describe('WorkerPool: results and errors', () => {
  let pool: WorkerPool<typeof handlers>
  beforeAll(async () => {
    pool = await startPool()
  })
  afterAll(async () => {
    await pool?.close()
  })

  it('runs tasks of several types and returns their results', async () => {
    expect(await pool.run('add', { a: 2, b: 40 })).toBe(42)
    expect(await pool.run('echo', 7)).toBe(7)
    const when = new Date(Date.UTC(2024, 5, 1))
    const d = await pool.run('describe', { name: 'ada', tags: new Set(['y', 'x']), when, nested: { list: [1, 2, 3] }, big: 2n ** 70n })
    expect(d).toEqual({ upper: 'ADA', tags: ['x', 'y'], year: 2024, sum: 6, counts: new Map([[1, 1], [2, 4], [3, 9]]), big: 2n ** 71n })
    // A TypedArray outside the segment goes in as a copy; a new one comes back as a copy.
    const h = await pool.run('histogram', Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]))
    expect(h).toBeInstanceOf(Uint32Array)
    expect([...h]).toEqual([3, 2, 2, 2])
    expect(h.buffer).not.toBe(pool.shm.buffer)
    // Types come from the worker's handlers.
    expectTypeOf(pool.run('add', { a: 1, b: 2 })).resolves.toEqualTypeOf<number>()
    expectTypeOf(pool.run('histogram', new Uint8Array(1))).resolves.toEqualTypeOf<Uint32Array<ArrayBuffer>>()
    expectTypeOf(pool.run('sleep', 1)).resolves.toEqualTypeOf<string>()
    expectTypeOf(pool.run('pid')).resolves.toEqualTypeOf<number>()
    // @ts-expect-error: 'add' takes {a, b}
    expectTypeOf(() => pool.run('add', 'x')).toBeFunction()
    // @ts-expect-error: no such task
    expectTypeOf(() => pool.run('nope', 1)).toBeFunction()
  })

  it('passes TypedArrays that lie in the segment without copying, both ways', async () => {
    const n = 100_000
    const [src, out] = pool.shm.access((tx) => [tx.put(Float64Array.from({ length: n }, (_, i) => i)), tx.put(new Float64Array(n))])
    const r = await pool.run('scale', { src: src!, out: out!, factor: 0.5 })
    expect(r.mapped).toBe(true) // the worker got views over the segment
    expect(r.out.buffer).toBe(pool.shm.buffer) // and the result is a view over our segment…
    expect(r.out.byteOffset).toBe(out!.byteOffset) // …over the very same bytes
    expect(out![n - 1]).toBe((n - 1) / 2)
    expect(out![12345]).toBe(12345 / 2)
    // The worker held src and out only for the task, and the caller holds no extra
    // reference for out coming back: destroying what it put frees both records.
    const records = [mappedHandleOf(src!)!.ref, mappedHandleOf(out!)!.ref]
    pool.shm.access((tx) => {
      tx.destroy(src)
      tx.destroy(out)
    })
    await vi.waitFor(() => expect(records.map((r) => pool.shm.heap.generationOf(r)), 'both records to be freed').toEqual([0, 0]), { timeout: 10_000 })
  })

  it('passes raw views of the segment (subarrays of shm.bytes) as views of the same bytes, both ways', async () => {
    const shm = pool.shm
    // A region of the segment that is not a record: the middle of a record's bytes.
    const region = shm.access((tx) => tx.put(new Uint8Array(256)))
    const at = region.byteOffset - shm.bytes.byteOffset
    const bytes = shm.bytes.subarray(at + 8, at + 40)
    const doubles = new Float64Array(shm.buffer, shm.bytes.byteOffset + at + 64, 4)
    const buf = Buffer.from(shm.buffer, shm.bytes.byteOffset + at + 100, 8)
    const dv = new DataView(shm.buffer, shm.bytes.byteOffset + at + 128, 16)
    const r = await pool.run('fillRaw', { bytes, doubles, buf, dv })
    // The worker got views of the very same bytes, of the same kinds…
    expect(r.offsets).toEqual([at + 8, at + 64, at + 100, at + 128])
    expect(r.kinds).toEqual(['Uint8Array', 'Float64Array', true, 'DataView'])
    // …and what it wrote is here, without a copy either way.
    expect([...bytes]).toEqual(Array(32).fill(7))
    expect([...doubles]).toEqual([1.5, 1.5, 1.5, 1.5])
    expect(buf.toString('latin1', 0, 2)).toBe('hi')
    expect(dv.getInt32(0, true)).toBe(-5)
    expect(region[8]).toBe(7)
    expect(region[7]).toBe(0)
    // Sent back, they are views of the same bytes here too.
    expect(r.bytes).toBeInstanceOf(Uint8Array)
    expect(r.bytes.buffer).toBe(shm.buffer)
    expect(r.bytes.byteOffset).toBe(bytes.byteOffset)
    expect(r.bytes.length).toBe(32)
    expect(r.dv).toBeInstanceOf(DataView)
    expect(r.dv.buffer).toBe(shm.buffer)
    expect(r.dv.byteOffset).toBe(dv.byteOffset)
    r.bytes[0] = 9
    expect(region[8]).toBe(9)
    shm.access((tx) => tx.destroy(region))
  })

  it('hands a value the handler put in the segment and returned to the caller, who owns it', async () => {
    const squares = await pool.run('putSquares', 1000)
    expect(squares).toBeInstanceOf(Float64Array)
    expect(squares.buffer).toBe(pool.shm.buffer)
    expect(squares[999]).toBe(999 * 999)
    const record = mappedHandleOf(squares)!.ref
    // The worker let go of its own reference once the result was sent: the caller's is the last.
    pool.shm.access((tx) => tx.destroy(squares))
    await vi.waitFor(() => expect(pool.shm.heap.generationOf(record), 'the record to be freed').toBe(0), { timeout: 10_000 })
  })

  it('re-throws handler errors with name, message, stack and own fields', async () => {
    const err = await rejection(pool.run('fail', 'bad input'))
    expect(err).toBeInstanceOf(TypeError)
    expect(err.name).toBe('TypeError')
    expect(err.message).toBe('bad input')
    expect(err.stack).toMatch(/offload-worker\.ts/) // the worker's stack
    expect((err as TypeError & { code: string }).code).toBe('E_CUSTOM')
    expect((err as TypeError & { detail: unknown }).detail).toEqual({ n: 7 })

    const asyncErr = await rejection(pool.run('failAsync', 'too far'))
    expect(asyncErr).toBeInstanceOf(RangeError)
    expect(asyncErr.message).toBe('too far')

    expect(await rejection(pool.run('throwString'))).toBe('a plain string')

    const unshareable = await rejection(pool.run('unshareable'))
    expect(unshareable).toBeInstanceOf(ShmError)
    expect((unshareable as ShmError).code).toBe('ERR_UNSUPPORTED_TYPE')
    expect(unshareable.message).toMatch(/cannot be sent back/)
  })

  it('async handlers', async () => {
    expect(await pool.run('sleep', 20)).toMatch(/^slept 20 ms in worker [01]$/)
  })

  it('an unknown task name is a clear error', async () => {
    const untyped = pool as unknown as WorkerPool
    const err = await rejection(untyped.run('resize', 1))
    expect(err).toBeInstanceOf(ShmError)
    expect((err as ShmError).code).toBe('ERR_INVALID_ARGUMENT')
    expect(err.message).toMatch(/unknown task "resize": offload-worker\.ts serves "echo", "add"/)
    // Nothing went wrong for the pool.
    expect(await pool.run('add', { a: 1, b: 1 })).toBe(2)
  })

  it('rejects inputs that cannot be shared, alone', async () => {
    const err = await rejection(pool.run('echo', (() => 1) as unknown as number))
    expect((err as ShmError).code).toBe('ERR_UNSUPPORTED_TYPE')
    expect(await pool.run('echo', 3)).toBe(3)
  })
})

describe('WorkerPool: crashes', () => {
  it('a worker that exits fails its task; the pool restarts it and the segment stays usable', async () => {
    const pool = await startPool()
    try {
      const before = pool.workerInfo().map((w) => w.pid)
      const others = Array.from({ length: 40 }, (_, i) => pool.run('sleep', 1 + (i % 3)).then(() => i))
      const err = await rejection(pool.run('crash', 3))
      expect(err).toBeInstanceOf(WorkerExitError)
      expect(err).toBeInstanceOf(ShmError)
      expect((err as ShmError).code).toBe('ERR_WORKER_EXITED')
      expect(err.message).toMatch(/worker [01] \(pid \d+\) exited with code 3 while running task "crash"/)
      expect((err as WorkerExitError).exitCode).toBe(3)
      // Every other task completes: the dead worker's unstarted ones went to the queue again.
      expect((await Promise.all(others.map((p) => p.catch((e: Error) => e.message)))).filter((r) => typeof r !== 'number')).toEqual([])

      const killed = await rejection(pool.run('killSelf'))
      expect(killed).toBeInstanceOf(WorkerExitError)
      expect(killed.message).toMatch(/was killed by SIGKILL while running task "killSelf"/)

      await vi.waitFor(() => expect(pool.stats().ready === 2, 'both workers to be back').toBe(true), { timeout: 10_000 })
      const s = pool.stats()
      expect(s.restarts).toBe(2)
      expect(s.crashed).toBe(2)
      expect(pool.workerInfo().map((w) => w.pid)).not.toEqual(before)
      // Later tasks run, on fresh workers, and the segment still works.
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => pool.run('echo', i)))
      expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i))
      pool.shm.access((tx) => {
        tx.putMessage({ still: 'fine' }, { channel: 'check' })
        expect(tx.takeMessage({ channel: 'check' })).toEqual({ still: 'fine' })
      })
      pool.shm.heap.allocator.check()
    } finally {
      await pool.close()
    }
  })

  it('tasks waiting in a worker that dies are not lost: they run on its successor', async () => {
    // One worker that takes 3 tasks ahead: the crash task runs, the 3 behind it never start.
    const pool = await startPool({ workers: 1, prefetch: 3 })
    try {
      const cells = pool.shm.access((tx) => tx.put(new Int32Array(4)))
      const crash = pool.run('crash', 9)
      const marks = [0, 1, 2].map((i) => pool.run('mark', { cells, i }))
      expect(await rejection(crash)).toBeInstanceOf(WorkerExitError)
      expect(await Promise.all(marks)).toEqual([0, 1, 2])
      expect([...cells]).toEqual([1, 1, 1, 0]) // each ran exactly once
      expect(pool.stats().restarts).toBe(1)
    } finally {
      await pool.close()
    }
  })

  it("prefetch 'auto' (the default) sends one task ahead until tasks are known to be short, then up to 32, and one again after a long one", async () => {
    const pool = await startPool({ workers: 1 })
    try {
      const cells = pool.shm.access((tx) => tx.put(new Int32Array(64)))
      const placed = async (running: number, queued: number) =>
        vi.waitFor(() => expect({ running: pool.stats().running, queued: pool.stats().queued }).toEqual({ running, queued }), { timeout: 10_000 })
      // Nothing known yet: the sleeping task runs, one is sent ahead, the rest wait in the pool.
      let busy = pool.run('sleep', 300)
      let marks = [0, 1, 2].map((i) => pool.run('mark', { cells, i }))
      await placed(2, 2)
      await busy
      await Promise.all(marks)
      // The sleep taught it long tasks; short ones teach it back.
      for (let i = 0; i < 60; i++) await pool.run('mark', { cells, i: 3 })
      busy = pool.run('sleep', 300)
      marks = Array.from({ length: 10 }, (_, i) => pool.run('mark', { cells, i: 4 + i }))
      await placed(11, 0)
      await busy
      await Promise.all(marks)
      // A 300 ms task weighs enough in the running mean: one ahead again.
      busy = pool.run('sleep', 300)
      marks = [0, 1, 2].map((i) => pool.run('mark', { cells, i: 20 + i }))
      await placed(2, 2)
      await busy
      await Promise.all(marks)
      expect(cells[3]).toBe(60)
    } finally {
      await pool.close()
    }
  })

  it('start() fails clearly when the script cannot start', async () => {
    const name = uniqueName('wpbad')
    // Without tsx, Node cannot load the .ts worker: it exits with code 1 (its stderr is muted here).
    const err = await rejection(WorkerPool.start({ script, workers: 1, execArgv: [], segmentName: name, host: new NodeHost({ stdio: 'ignore' }) }))
    expect(err).toBeInstanceOf(ShmError)
    expect(err.message).toMatch(/worker 0 .*exited with code 1 before it connected.*execArgv/)
    expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
    await expect(WorkerPool.start({ script: path.join(childrenDir, 'no-such-worker.ts') })).rejects.toThrow(/does not exist/)
    await expect(WorkerPool.start({ script, wokers: 2 } as never)).rejects.toThrow(/did you mean "workers"/)
  })
})

describe('WorkerPool: cancellation', () => {
  it('cancels before start: the task never runs', async () => {
    const pool = await startPool({ workers: 1, prefetch: 1 })
    try {
      const cells = pool.shm.access((tx) => tx.put(new Int32Array(4)))
      // Already aborted: rejected at once.
      const pre = await rejection(pool.run('mark', { cells, i: 0 }, { signal: AbortSignal.abort() }))
      expect((pre as ShmError).code).toBe('ERR_ABORTED')
      // The worker is busy; one task is sent ahead to it (prefetch), one waits in the pool.
      const busy = pool.run('sleep', 300)
      const ahead = new AbortController()
      const queued = new AbortController()
      const sentAhead = pool.run('mark', { cells, i: 1 }, { signal: ahead.signal })
      const inQueue = pool.run('mark', { cells, i: 2 }, { signal: queued.signal })
      await vi.waitFor(() => expect(pool.stats().running === 2 && pool.stats().queued === 1, 'the tasks to be placed').toBe(true), { timeout: 10_000 })
      ahead.abort()
      queued.abort(new Error('user changed their mind'))
      const e1 = await rejection(sentAhead)
      const e2 = await rejection(inQueue)
      expect((e1 as ShmError).code).toBe('ERR_ABORTED')
      expect((e2 as ShmError).code).toBe('ERR_ABORTED')
      expect(e2.message).toMatch(/task "mark" \(#\d+\) was cancelled: user changed their mind/)
      expect(await busy).toMatch(/slept 300/)
      expect(await pool.run('mark', { cells, i: 3 })).toBe(3)
      expect([...cells]).toEqual([0, 0, 0, 1])
      expect(pool.stats().cancelled).toBe(3)
    } finally {
      await pool.close()
    }
  })

  it('cancels while running: the handler sees ctx.signal (async) or ctx.cancelled (sync loop)', async () => {
    const pool = await startPool()
    try {
      const seen = pool.shm.access((tx) => tx.put(new Int32Array(2)))
      const c1 = new AbortController()
      const waiting = pool.run('waitForCancel', { seen }, { signal: c1.signal })
      await vi.waitFor(() => expect(Atomics.load(seen, 1) === 1, 'the handler to start').toBe(true), { timeout: 10_000 })
      c1.abort()
      expect(((await rejection(waiting)) as ShmError).code).toBe('ERR_ABORTED')
      await vi.waitFor(() => expect(Atomics.load(seen, 0) === 1, 'the worker to see ctx.signal abort').toBe(true), { timeout: 10_000 })

      const spun = pool.shm.access((tx) => tx.put(new Int32Array(2)))
      const c2 = new AbortController()
      const spinning = pool.run('spinUntilCancelled', { seen: spun }, { signal: c2.signal })
      await vi.waitFor(() => expect(Atomics.load(spun, 1) === 1, 'the handler to start spinning').toBe(true), { timeout: 10_000 })
      c2.abort()
      const err = await rejection(spinning)
      expect((err as ShmError).code).toBe('ERR_ABORTED')
      await vi.waitFor(() => expect(Atomics.load(spun, 0) === 2, 'the synchronous handler to notice ctx.cancelled').toBe(true), { timeout: 10_000 })

      // The workers are free again.
      await vi.waitFor(() => expect(pool.stats().running === 0, 'the cancelled tasks to finish').toBe(true), { timeout: 10_000 })
      expect(await Promise.all([pool.run('echo', 1), pool.run('echo', 2)])).toEqual([1, 2])
    } finally {
      await pool.close()
    }
  })
})

describe('WorkerPool: back-pressure and volume', () => {
  it('200 runs at once with maxQueued 4 all complete, never more than 4 queued', async () => {
    const pool = await startPool({ maxQueued: 4 })
    try {
      let maxSeen = 0
      let maxWaiting = 0
      const sample = () => {
        const s = pool.stats()
        maxSeen = Math.max(maxSeen, s.queued)
        maxWaiting = Math.max(maxWaiting, s.waiting)
      }
      const runs = Array.from({ length: 200 }, (_, i) => pool.run('sleep', 1).then(() => { sample(); return i }))
      sample()
      const timer = setInterval(sample, 1)
      const done = await Promise.all(runs)
      clearInterval(timer)
      expect(done).toEqual(Array.from({ length: 200 }, (_, i) => i))
      const s = pool.stats()
      expect(s.peakQueued).toBe(4)
      expect(maxSeen).toBeLessThanOrEqual(4)
      expect(maxWaiting).toBeGreaterThan(150)
      expect(s).toMatchObject({ queued: 0, waiting: 0, running: 0, completed: 200 })
    } finally {
      await pool.close()
    }
  })

  it('10,000 small tasks, each exactly once', async () => {
    const pool = await startPool()
    try {
      const n = 10_000
      const results = await Promise.all(Array.from({ length: n }, (_, i) => pool.run('echo', i)))
      const ids = new Set(results)
      expect(ids.size).toBe(n)
      for (let i = 0; i < n; i++) expect(results[i]).toBe(i)
      expect(pool.stats()).toMatchObject({ completed: n, failed: 0, queued: 0, running: 0 })
    } finally {
      await pool.close()
    }
  })

  it('waits for room when the segment is full instead of failing', async () => {
    // 1 MiB segment, inputs of 300 KB: at most ~3 fit at once, and 4 may be in flight.
    const pool = await startPool({ segmentSize: 1 << 20, prefetch: 1, segmentFullTimeoutMs: 500 })
    try {
      const big = 'x'.repeat(300_000)
      const lengths = await Promise.all(Array.from({ length: 16 }, () => pool.run('measure', big)))
      expect(lengths).toEqual(Array(16).fill(300_000))
      const texts = await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run('repeat', { text: String(i), times: 250_000 })))
      expect(texts.map((t) => t.length)).toEqual(Array(8).fill(250_000))
      // An input that can never fit fails once nothing else is running.
      const err = await rejection(pool.run('measure', 'y'.repeat(2 << 20)))
      expect((err as ShmError).code).toBe('ERR_SHM_FULL')
      expect(err.message).toMatch(/segmentSize/)
      expect(await pool.run('echo', 5)).toBe(5)
    } finally {
      await pool.close()
    }
  })
})

describe('WorkerPool: lifetime and hosts', () => {
  it('close() stops the workers and unlinks its segment; a lent segment stays open and clean', async () => {
    const pool = await startPool()
    const name = pool.shm.name
    const exits = pool.workerInfo().map((w) => w.pid!)
    const pending = rejection(pool.run('sleep', 10_000))
    await vi.waitFor(() => expect(pool.stats().running === 1, 'the task to be sent').toBe(true), { timeout: 10_000 })
    await pool.close()
    expect(((await pending) as ShmError).code).toBe('ERR_SHM_CLOSED')
    expect(((await rejection(pool.run('echo', 1))) as ShmError).code).toBe('ERR_SHM_CLOSED')
    for (const pid of exits) expect(() => process.kill(pid, 0)).toThrow()
    expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))

    const shm = SharedMemory.create({ name: uniqueName('wplent'), size: 4 << 20 })
    try {
      const baseline = shm.stats().used
      const lent = await startPool({ shm })
      expect(await lent.run('add', { a: 1, b: 2 })).toBe(3)
      await lent.close()
      expect(shm.closed).toBe(false)
      // The pool's channels went with their last handles, and its slot table with close.
      expect(shm.check().channels).toEqual([])
      expect(shm.stats().used - baseline).toBeLessThan(2048)
      shm.heap.allocator.check()
    } finally {
      shm.close()
    }
  })

  it('ElectronHost drives utilityProcess.fork (here a stand-in over child_process.fork)', async () => {
    const calls: Array<{ modulePath: string; args?: string[]; serviceName?: string; hasConfig: boolean }> = []
    const utilityProcess = {
      fork(modulePath: string, args?: string[], options?: { env?: Record<string, string | undefined>; execArgv?: string[]; serviceName?: string }): UtilityProcessLike {
        calls.push({ modulePath, args, serviceName: options?.serviceName, hasConfig: options?.env?.INTERPROCESS_OBJECTS_WORKER !== undefined })
        const child = fork(modulePath, args, { env: options?.env as NodeJS.ProcessEnv, execArgv: options?.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
        const events = new EventEmitter()
        child.on('exit', (code, signal) => events.emit('exit', code ?? (signal ? 128 + 9 : 0)))
        return {
          get pid() {
            return child.pid
          },
          once: (event: 'exit', listener: (code: number) => void) => events.once(event, listener),
          on: (event: 'error', listener: (type: string, location: string, report: string) => void) => events.on(event, listener),
          kill: () => child.kill(),
          postMessage: (m: unknown) => void child.send(m as never),
        }
      },
    }
    const pool = await startPool({ workers: 1, host: new ElectronHost({ utilityProcess }), args: ['--from-test'] })
    try {
      expect(await pool.run('add', { a: 20, b: 22 })).toBe(42)
      expect(await rejection(pool.run('crash', 4))).toBeInstanceOf(WorkerExitError)
      expect(await pool.run('echo', 1)).toBe(1)
      expect(calls).toHaveLength(2)
      expect(calls[0]).toEqual({ modulePath: script, args: ['--from-test'], serviceName: 'offload worker 0', hasConfig: true })
    } finally {
      await pool.close()
    }
  })
})

describe('WorkerPool and SharedMemory as disposables', () => {
  it('`await using` closes the pool and its segment at the end of the block; `using` closes a segment', async () => {
    let escaped: WorkerPool<typeof handlers> | undefined
    let name = ''
    {
      await using pool = await startPool({ workers: 1 })
      escaped = pool
      name = pool.shm.name
      expect(await pool.run('add', { a: 1, b: 2 })).toBe(3)
    }
    expect((await rejection(escaped.run('add', { a: 1, b: 2 })) as ShmError).code).toBe('ERR_SHM_CLOSED')
    expect(escaped.shm.closed).toBe(true)
    expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))

    let shmEscaped: SharedMemory | undefined
    {
      using shm = SharedMemory.create({ name: uniqueName('disp'), size: 1 << 20 })
      shmEscaped = shm
    }
    expect(shmEscaped.closed).toBe(true)
    expect(() => shmEscaped[Symbol.dispose]()).not.toThrow() // idempotent
  })
})
