// One view per record per process, generations across processes, and the references
// a process holds through its views (released by close, and after it dies).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SharedMemory, defineStruct, registerClass } from 'interprocess-objects'
import { startChild, startThread, uniqueName, type Child } from './helpers/processes'
import { afterCollection, shmError } from './helpers/segments'

const opened: SharedMemory[] = []
const children: Child[] = []
afterEach(() => {
  for (const c of children.splice(0)) c.proc.kill('SIGKILL')
  for (const s of opened.splice(0)) if (!s.closed) s.close()
})

function create(size = 1 << 20): SharedMemory {
  const shm = SharedMemory.create({ name: uniqueName('views'), size })
  opened.push(shm)
  return shm
}

async function peer(shm: SharedMemory, execArgv: string[] = []): Promise<Child> {
  const child = startChild('views-peer.ts', [shm.name], execArgv)
  children.push(child)
  expect(await child.next()).toBe('ready')
  return child
}

async function ask<T>(child: Child, step: string): Promise<T> {
  child.send(step)
  return child.next<T>()
}

describe('identity', () => {
  it('one view object per record: nested reads, shared references, cycles, put of a view, takeMessage of the same record twice', () => {
    const shm = create()
    shm.access((tx) => {
      const s = { n: 1 }
      const v = tx.put({ a: s, b: s, list: [s], self: null as unknown })
      v.self = v
      expect(v.a).toBe(v.a)
      expect(v.a).toBe(v.b)
      expect(v.list[0]).toBe(v.a)
      expect(v.self).toBe(v)
      expect(v.list.indexOf(v.a)).toBe(0)
      expect(v.list.includes(v.b)).toBe(true)
      expect(() => JSON.stringify(v)).toThrow(/circular/i)
      expect(tx.put(v)).toBe(v) // the same record, now owned twice
      tx.destroy(v)
      v.self = null // break the cycle, or it keeps itself alive
      tx.putMessage(v.a, { channel: 'twice' })
      tx.putMessage(v.a, { channel: 'twice' })
      const first = tx.takeMessage({ channel: 'twice' })
      const second = tx.takeMessage({ channel: 'twice' })
      expect(first).toBe(v.a)
      expect(second).toBe(first)
      tx.destroy(first) // each take owns one reference: two destroys, then none left
      tx.destroy(second)
      expect(shmError(() => tx.destroy(first)).code).toBe('ERR_INVALID_ARGUMENT')
      tx.destroy(v)
    })
    expect(shm.check().clean).toBe(true)
  })

  it('a put result is the one view of its record wherever it is shared later: stored, put again, sent by reference, in a later turn', async () => {
    const shm = create()
    const Pair = defineStruct({ a: 'int32', b: 'int32' }, 'ViewsPair')
    class Tagged {
      constructor(public label = 'x') {}
    }
    registerClass(Tagged)
    const round = (): void => {
      const cyclic: { self?: unknown; n: number } = { n: 1 }
      cyclic.self = cyclic
      const made = [() => ({ k: 1 }), () => [1, 2], () => new Map([['k', 1]]), () => new Set([1]), () => new Float64Array([1.5]), () => Pair.view(new Uint8Array(Pair.byteLength)), () => new Tagged(), () => cyclic]
      const { root, results } = shm.access((tx) => ({ root: tx.put({ box: [] as unknown[] }), results: made.map((make) => tx.put(make())) }))
      const held = results.length
      shm.access((tx) => {
        const c = results[held - 1] as typeof cyclic
        expect(c.self).toBe(c) // a cycle given to put reaches the result itself
        results.forEach((v, i) => {
          root.box.push(v)
          expect(root.box[i]).toBe(v)
          expect(tx.put(v)).toBe(v)
          tx.destroy(v)
          tx.putMessage({ wrapped: v }, { channel: 'self' })
          const wrapped = (tx.takeMessage({ channel: 'self' }) as { wrapped: unknown }).wrapped
          expect(wrapped).toBe(v)
          tx.destroy(wrapped) // a value received by reference owns a reference, as a take result does
          tx.putMessage(v, { channel: 'self' })
          const taken = tx.takeMessage({ channel: 'self' })
          expect(taken).toBe(v)
          tx.destroy(taken)
        })
        // Owned once each (put); the box and the cycle hold the rest.
        for (const v of results) tx.destroy(v)
        c.self = null
        for (const v of results) expect(shmError(() => tx.destroy(v)).code).toBe('ERR_INVALID_ARGUMENT')
        tx.destroy(root)
      })
    }
    round()
    // The channel and this handle's list of held references stay; the TypedArray's record
    // goes once its view is collected (it was read out of the box: core/view_holds.ts).
    await afterCollection(() => false, 100)
    const warm = shm.stats().used
    round()
    await afterCollection(() => shm.stats().used === warm)
    expect(shm.stats().used).toBe(warm)
    expect(shm.check().clean).toBe(true)
  })

  it('a Map or Set view used as a Map key, and TypedArrays read twice, are the same object', () => {
    const shm = create()
    shm.access((tx) => {
      const v = tx.put({ m: new Map([['k', [1]]]), bytes: new Uint8Array([1, 2]) })
      const seen = new Map([[v.m, 'found']])
      expect(seen.get(v.m)).toBe('found')
      expect(v.m.get('k')).toBe(v.m.get('k'))
      expect(v.bytes).toBe(v.bytes)
      tx.destroy(v)
    })
  })

  it('byte views and loans are plain platform objects: what the library keeps on them is invisible and cannot be overwritten', () => {
    const shm = create()
    const ch = shm.channel<Uint8Array>('bytes')
    try {
      const loan = ch.loan(16).fill(5)
      shm.access((tx) => {
        const v = tx.put({ bytes: new Uint8Array([1, 2]), floats: new Float64Array(2) })
        for (const view of [v.bytes, v.floats, loan]) {
          expect(Object.getPrototypeOf(view)).toBe(view instanceof Uint8Array ? Uint8Array.prototype : Float64Array.prototype)
          expect(Object.getOwnPropertySymbols(view)).toEqual([])
          expect(Reflect.ownKeys(view).every((k) => typeof k === 'string' && /^\d+$/.test(k))).toBe(true)
        }
        // Still known for what they are: put again, the TypedArray shares its record (the same view comes back).
        const w = tx.put({ again: v.bytes })
        expect(w.again).toBe(v.bytes)
        tx.destroy(w)
        tx.destroy(v)
      })
      ch.send(loan)
      const got = ch.tryReceive()!
      expect(got).toBe(loan)
      ch.release(got)
      expect(shmError(() => ch.release(got)).code).toBe('ERR_SHM_STALE')
    } finally {
      ch.close()
    }
  })
})

describe('reordering methods change the shared array in one step', () => {
  it('a value that cannot be stored leaves the array as it was; fill stores one object; sort orders as on a plain array', () => {
    const shm = create()
    const baseline = shm.stats().used
    shm.access((tx) => {
      const a = tx.put<unknown[]>([1, 2])
      expect(shmError(() => a.unshift(() => 1)).code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(shmError(() => a.splice(1, 1, 'x', Symbol('s'))).code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(shmError(() => a.fill(Symbol('s') as never)).code).toBe('ERR_UNSUPPORTED_TYPE')
      expect(tx.copy(a)).toEqual([1, 2])
      expect(a.splice(1, 1, 'y', 'z')).toEqual([2])
      expect(tx.copy(a)).toEqual([1, 'y', 'z'])
      const f = tx.put([0, 0, 0])
      f.fill({ x: 1 } as never)
      expect(f[0]).toBe(f[2])
      const plain = [3, undefined, 1, , 'b', 10, { k: 1 }]
      const sorted = tx.put(plain.slice())
      const object = sorted[6]
      sorted.sort()
      expect(tx.copy(sorted)).toEqual(plain.slice().sort())
      expect(sorted[3]).toBe(object) // moved, not copied ('[object Object]' sorts before 'b')
      const byKey = tx.put<unknown[]>([{ k: 2 }, { k: 1 }, { k: 3 }])
      // A comparator that resizes the array: the sort is refused (its own pushes stay).
      expect(shmError(() => byKey.sort(() => (byKey.push(0), 0))).code).toBe('ERR_INVALID_ARGUMENT')
      expect(tx.copy(byKey)).toEqual([{ k: 2 }, { k: 1 }, { k: 3 }, 0, 0])
      byKey.length = 3
      byKey.sort((p, q) => (p as { k: number }).k - (q as { k: number }).k)
      expect(tx.copy(byKey)).toEqual([{ k: 1 }, { k: 2 }, { k: 3 }])
      const shifted = byKey.shift()
      expect(tx.copy(shifted)).toEqual({ k: 1 }) // readable for the rest of the turn
      const copied = tx.put([{ a: 1 }, 2, 3])
      copied.copyWithin(1, 0, 1)
      expect(copied[1]).toBe(copied[0])
      for (const v of [a, f, sorted, byKey, copied]) tx.destroy(v)
    })
    expect(shm.stats().used).toBe(baseline)
    expect(shm.check().clean).toBe(true)
  })

  it('a TypedArray or struct reachable twice is stored once and comes back as one object (view and copy)', () => {
    const shm = create()
    const Point = defineStruct({ x: 'float64', y: 'float64' }, 'ViewsPoint')
    shm.access((tx) => {
      const t = new Float64Array([1, 2])
      const p = Point.view(new Uint8Array(Point.byteLength))
      const v = tx.put({ a: t, b: t, p, q: p })
      expect(v.a).toBe(v.b)
      expect(v.p).toBe(v.q)
      const c = tx.copy(v)
      expect(c.a).toBe(c.b)
      expect(c.p).toBe(c.q)
      tx.destroy(v)
    })
  })
})

describe('generations: a view of a freed record throws ERR_SHM_STALE, never reads reused memory', () => {
  it('in this process, after the turn that freed it (moves inside one turn keep it)', () => {
    const shm = create()
    const { root, old } = shm.access((tx) => {
      const root = tx.put({ child: { id: 'first' }, list: [{ k: 1 }, { k: 2 }] })
      const old = root.child
      root.child = { id: 'second' } // frees the first child … at the end of this turn
      expect(old.id).toBe('first')
      root.list.reverse()
      expect(tx.copy(root.list)).toEqual([{ k: 2 }, { k: 1 }])
      return { root, old }
    })
    shm.access((tx) => {
      tx.put({ id: 'reuses the memory' })
      expect(shmError(() => old.id).code).toBe('ERR_SHM_STALE')
      expect(shmError(() => tx.copy(old)).code).toBe('ERR_SHM_STALE')
      expect(shmError(() => tx.put({ again: old })).code).toBe('ERR_SHM_STALE')
      expect(root.child.id).toBe('second')
      tx.destroy(root)
    })
    expect(shm.check().clean).toBe(true)
  })

  it('in the other process: its nested view goes stale; its TypedArray keeps its bytes until it is collected there', async () => {
    const shm = create()
    const sent = shm.access((tx) => {
      const root = tx.put<{ child: unknown; bytes: unknown }>({ child: { a: 1 }, bytes: new Float64Array([1, 2, 3]) })
      tx.putMessage(root, { channel: 'views' }) // by reference: the peer takes it
      return root
    })
    const child = await peer(shm, ['--expose-gc'])
    expect(await ask(child, 'take-root')).toEqual({ child: 1, same: true, bytes: 2 })
    const withBytes = shm.stats().used
    // Replaced here: the record the peer's nested view stands for is freed; the
    // TypedArray's is not — the peer's view of it holds it (its element reads cannot be checked).
    shm.access((tx) => {
      sent.child = 'gone'
      sent.bytes = null
      tx.destroy(tx.put({ a: 'reuse', b: new Float64Array([7, 7, 7]) }))
    })
    expect(await ask(child, 'read-child')).toEqual({ code: 'ERR_SHM_STALE' })
    expect(await ask(child, 'copy-bytes')).toEqual({ ok: [1, 2, 3] })
    shm.access((tx) => tx.destroy(tx.put(new Float64Array([9, 9, 9]))))
    expect(await ask(child, 'read-bytes')).toEqual([1, 2, 3])
    const pinned = shm.stats().used
    expect(pinned).toBeGreaterThan(withBytes - 200)
    // Once the peer can no longer reach its TypedArray (nor the root view it took), it gives them back.
    expect(await ask(child, 'drop-bytes')).toBe('dropped')
    await vi.waitFor(() => expect(shm.stats().used).toBeLessThan(pinned), { timeout: 10_000 })
    expect(shm.check().clean).toBe(true)
  })
})

describe('TypedArrays read out of containers hold their records', () => {
  it('a full heap makes the processes that hold them collect: this one at once, the others at their next turn', async () => {
    const shm = create(4 << 20)
    const child = await peer(shm)
    const frame = (): Float64Array => new Float64Array(64 * 1024) // 512 KiB
    // Six frames in a list, sent by reference: the peer reads each (holding it) and drops them.
    shm.access((tx) => {
      const list = tx.put([1, 2, 3, 4, 5, 6].map(() => frame()))
      tx.putMessage(list, { channel: 'frames' })
      tx.destroy(list) // the peer's take owns it now
    })
    expect(await ask(child, 'read-frames')).toBe(0)
    // The list is gone in the peer; only its views hold the six frames now (3 MiB of 4).
    const full = shmError(() => shm.access((tx) => tx.put([frame(), frame()])))
    expect(full.code).toBe('ERR_SHM_FULL')
    expect(full.message).toMatch(/asked to give back those they no longer reach at their next turn: retry then/)
    expect(await ask(child, 'turn')).toBe('turned')
    // The peer collected at the start of that turn: the frames are back in the heap.
    const two = shm.access((tx) => tx.put([frame(), frame()]))
    shm.access((tx) => tx.destroy(two))
    expect(shm.check().clean).toBe(true)
  })

  it('in one process, an allocation that finds the heap full collects the views it no longer reaches first', async () => {
    const shm = create(4 << 20)
    const state = shm.access((tx) => tx.put({ frame: new Float64Array(128 * 1024) })) // 1 MiB
    for (let i = 0; i < 24; i++) {
      // Read (held by the view), then replaced: without the collection, the fourth round would not fit.
      shm.access((tx) => {
        expect(state.frame[0]).toBe(i === 0 ? 0 : i - 1)
        state.frame = new Float64Array(128 * 1024).fill(i)
      })
      await new Promise((resolve) => setImmediate(resolve))
    }
    shm.access((tx) => tx.destroy(state))
    expect(shm.check().clean).toBe(true)
  })
})

describe('references held through views', () => {
  it('close() drops the references of the views a process never destroyed', async () => {
    const shm = create()
    const baseline = shm.stats().used
    const child = await peer(shm)
    expect(await ask(child, 'put-and-hold')).toBe('closed')
    expect(shm.stats().used).toBe(baseline)
    expect(shm.check().clean).toBe(true)
  })

  it('what a terminated worker thread held is released when the next handle registers (its process lives on)', async () => {
    const shm = create()
    const baseline = shm.stats().used
    const worker = startThread('thread-stall.ts', { name: shm.name, mode: 'views' })
    expect(await new Promise((resolve) => worker.once('message', resolve))).toBe('stalled')
    expect(shm.stats().used).toBeGreaterThan(baseline + 6000)
    await worker.terminate()
    // A new handle holds its first view: it sweeps the slot of the handle whose thread ended.
    const other = SharedMemory.open({ name: shm.name })
    opened.push(other)
    other.access((tx) => tx.destroy(tx.put({ x: 1 })))
    expect(shm.stats().used).toBe(baseline)
    expect(shm.check().clean).toBe(true)
  })

  it('what a killed process held is released when the next process registers', async () => {
    const shm = create()
    const baseline = shm.stats().used
    const child = await peer(shm)
    expect(await ask(child, 'hold-and-wait')).toBe('holding')
    expect(shm.stats().used).toBeGreaterThan(baseline + 6000)
    child.proc.kill('SIGKILL')
    await child.exited
    // A new handle holds its first view: it sweeps the dead process's slot first.
    const other = SharedMemory.open({ name: shm.name })
    opened.push(other)
    other.access((tx) => tx.destroy(tx.put({ x: 1 })))
    expect(shm.stats().used).toBe(baseline)
    expect(shm.check().clean).toBe(true)
  })
})
