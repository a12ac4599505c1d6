// The worker script of test/offload.test.ts. The test imports only the type of
// `handlers`; this file runs in the worker processes the pool starts.
import { setTimeout as delay } from 'node:timers/promises'
import { serveTasks, type TaskContext } from 'interprocess-objects/utility'

export const handlers = {
  echo: (id: number) => id,

  add: (x: { a: number; b: number }) => x.a + x.b,

  describe: (o: { name: string; tags: Set<string>; when: Date; nested: { list: number[] }; big: bigint }) => ({
    upper: o.name.toUpperCase(),
    tags: [...o.tags].sort(),
    year: o.when.getUTCFullYear(),
    sum: o.nested.list.reduce((a, b) => a + b, 0),
    counts: new Map(o.nested.list.map((n) => [n, n * n])),
    big: o.big * 2n,
  }),

  /** Zero-copy both ways: reads `src` and writes `out` where they lie in the segment, returns `out`. */
  scale: (x: { src: Float64Array; out: Float64Array; factor: number }, ctx: TaskContext) => {
    const { src, out, factor } = x
    for (let i = 0; i < src.length; i++) out[i] = src[i]! * factor
    return { out, mapped: src.buffer === ctx.shm.buffer && out.buffer === ctx.shm.buffer }
  },

  /**
   * Raw views of the segment's bytes (no records: subarrays of shm.bytes, views made by
   * hand over shm.buffer) arrive as views of the same bytes: writes here are seen there.
   */
  fillRaw: (x: { bytes: Uint8Array; doubles: Float64Array; buf: Buffer; dv: DataView }, ctx: TaskContext) => {
    const base = ctx.shm.bytes.byteOffset
    const place = (v: ArrayBufferView) => (v.buffer === ctx.shm.buffer ? v.byteOffset - base : -1)
    x.bytes.fill(7)
    x.doubles.fill(1.5)
    x.buf.write('hi', 0, 'latin1')
    x.dv.setInt32(0, -5, true)
    return {
      offsets: [place(x.bytes), place(x.doubles), place(x.buf), place(x.dv)],
      kinds: [x.bytes.constructor.name, x.doubles.constructor.name, Buffer.isBuffer(x.buf), x.dv.constructor.name],
      // Sent back, they reach the caller as views of the same bytes too.
      bytes: x.bytes,
      dv: x.dv,
    }
  },

  /** A TypedArray that is not in the segment arrives as a copy; so does a new one returned. */
  histogram: (bytes: Uint8Array) => {
    const h = new Uint32Array(4)
    for (const b of bytes) h[b & 3]! += 1
    return h
  },

  fail: (message: string) => {
    const err = new TypeError(message) as TypeError & { code: string; detail: { n: number } }
    err.code = 'E_CUSTOM'
    err.detail = { n: 7 }
    throw err
  },

  failAsync: async (message: string) => {
    await delay(5)
    throw new RangeError(message)
  },

  throwString: () => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw 'a plain string'
  },

  sleep: async (ms: number, ctx: TaskContext) => {
    await delay(ms, undefined, { signal: ctx.signal })
    return `slept ${ms} ms in worker ${ctx.workerIndex}`
  },

  /** Counts its calls in a shared Int32Array, to prove a task ran (or did not). */
  mark: (x: { cells: Int32Array; i: number }) => {
    Atomics.add(x.cells, x.i, 1)
    return x.i
  },

  /** Waits for ctx.signal; records that it saw it in `seen[0]` (1). */
  waitForCancel: (x: { seen: Int32Array }, ctx: TaskContext) =>
    new Promise<string>((resolve) => {
      Atomics.store(x.seen, 1, 1) // started
      ctx.signal.addEventListener('abort', () => {
        Atomics.store(x.seen, 0, 1)
        resolve('noticed')
      })
    }),

  /** Spins synchronously until ctx.cancelled; records it in `seen[0]` (2). */
  spinUntilCancelled: (x: { seen: Int32Array }, ctx: TaskContext) => {
    Atomics.store(x.seen, 1, 1)
    const until = Date.now() + 20_000
    while (!ctx.cancelled && Date.now() < until) {
      // a long synchronous computation that polls
    }
    Atomics.store(x.seen, 0, ctx.signal.aborted ? 2 : 3)
    ctx.throwIfCancelled()
    return 'never cancelled'
  },

  pid: () => process.pid,

  /** Puts a new array in the segment and returns it: the caller owns it then. */
  putSquares: (n: number, ctx: TaskContext) => ctx.shm.access((tx) => tx.put(Float64Array.from({ length: n }, (_, i) => i * i))),

  crash: (code: number) => {
    process.exit(code)
  },

  killSelf: () => {
    process.kill(process.pid, 'SIGKILL')
  },

  unshareable: () => ({ fn: () => 1 }),

  /** A large string result (for the segment-full tests). */
  repeat: (x: { text: string; times: number }) => x.text.repeat(x.times),

  /** Takes a large input, returns its length. */
  measure: (text: string) => text.length,
}

void serveTasks(handlers)
