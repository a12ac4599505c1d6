import { describe, expect, it } from 'vitest'
import { SharedMemory, ShmError, registerClass, MappedMap, MappedSet, defineStruct, StructArray, utf8, enableV8Fallback } from 'interprocess-objects'
import { runChild, uniqueName } from './helpers/processes'
import { Point } from './children/shared-classes'
import { afterCollection } from './helpers/segments'

registerClass(Point)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof ShmError ? err.code : `not a ShmError: ${String(err)}`
  }
  return undefined
}

function withSegment(fn: (shm: SharedMemory) => void | Promise<void>, size = 1 << 20) {
  return async () => {
    const shm = SharedMemory.create({ name: uniqueName('cont'), size })
    try {
      await fn(shm)
    } finally {
      shm.close()
    }
  }
}

describe('mapped containers', () => {
  it('arrays behave like arrays over shared memory', withSegment((shm) => {
    shm.access((tx) => {
      const a = tx.put([1, 'two', { three: 3 }])
      expect(Array.isArray(a)).toBe(true)
      expect(a.length).toBe(3)
      expect(a[1]).toBe('two')
      expect(a.push(4, 5)).toBe(5)
      expect(a.pop()).toBe(5)
      a[6] = 'far'
      expect(a.length).toBe(7)
      expect(5 in a).toBe(false)
      expect(a.slice(0, 2)).toEqual([1, 'two'])
      expect(Array.from(a, (x) => typeof x)).toEqual(['number', 'string', 'object', 'number', 'undefined', 'undefined', 'string'])
      expect(a.map((x) => typeof x)).toEqual(['number', 'string', 'object', 'number', , , 'string'])
      expect(a.indexOf(4)).toBe(3)
      a.length = 2
      expect([...a]).toEqual([1, 'two'])
      expect(JSON.stringify(a)).toBe('[1,"two"]')
      for (let i = 0; i < 1000; i++) a.push(i)
      expect(a[1001]).toBe(999)
      tx.destroy(a)
    })
  }))

  it('objects read, write, add and delete keys', withSegment((shm) => {
    shm.access((tx) => {
      const o = tx.put({ a: 1, b: { c: [1, 2] } } as Record<string, unknown>)
      expect(o.a).toBe(1)
      o.a = 'changed'
      o.added = 42
      delete o.b
      expect(Object.keys(o)).toEqual(['a', 'added'])
      expect({ ...o }).toEqual({ a: 'changed', added: 42 })
      expect('added' in o).toBe(true)
      expect(JSON.stringify(o)).toBe('{"a":"changed","added":42}')
      tx.destroy(o)
    })
  }))

  it('Map and Set have the Map/Set surface with deterministic hashing', withSegment((shm) => {
    shm.access((tx) => {
      const m = tx.put(new Map<unknown, unknown>([['x', 1], [2, 'two']]))
      expect(m).toBeInstanceOf(MappedMap)
      expect(m.get('x')).toBe(1)
      expect(m.get(2)).toBe('two')
      expect(m.has('2')).toBe(false)
      for (let i = 0; i < 500; i++) m.set(`k${i}`, i)
      expect(m.size).toBe(502)
      expect(m.get('k499')).toBe(499)
      expect(m.delete('k0')).toBe(true)
      expect(m.delete('k0')).toBe(false)
      expect([...m.keys()].slice(0, 3)).toEqual(['x', 2, 'k1'])
      const s = tx.put(new Set(['a', 1]))
      expect(s).toBeInstanceOf(MappedSet)
      s.add('b').add('a')
      expect([...s]).toEqual(['a', 1, 'b'])
      s.clear()
      expect(s.size).toBe(0)
      tx.destroy(m)
      tx.destroy(s)
    })
  }))

  it('TypedArrays come back zero-copy and bufferOf shows the same bytes', withSegment((shm) => {
    shm.access((tx) => {
      const f = tx.put(new Float64Array([1, 2, 3]))
      expect(f).toBeInstanceOf(Float64Array)
      expect(f.buffer).toBe(shm.buffer)
      const bytes = tx.bufferOf(f)
      f[0] = 1.5
      expect(new Float64Array(bytes.buffer, bytes.byteOffset, 3)[0]).toBe(1.5)
      expect(bytes.byteOffset % 16).toBe(shm.bytes.byteOffset % 16)
      const big = tx.put(new BigInt64Array([1n]))
      expect(big[0]).toBe(1n)
      expect(codeOf(() => tx.bufferOf(f.subarray(1)))).toBe('ERR_INVALID_ARGUMENT')
      tx.destroy(f)
    })
  }))

  it('mapped values refuse to work outside a turn', withSegment((shm) => {
    const { a, m } = shm.access((tx) => ({ a: tx.put([1]), m: tx.put(new Map([[1, 1]])) }))
    expect(codeOf(() => a[0])).toBe('ERR_SHM_NO_TURN')
    expect(codeOf(() => m.get(1))).toBe('ERR_SHM_NO_TURN')
    expect(shm.access(() => a[0])).toBe(1) // usable again in a later turn
    let leaked: { put(v: unknown): unknown } | undefined
    shm.access((tx) => {
      leaked = tx
    })
    expect(codeOf(() => leaked!.put([1]))).toBe('ERR_SHM_NO_TURN')
  }))

  it('refuses nested and async turns with clear errors', withSegment((shm) => {
    expect(codeOf(() => shm.access(() => shm.access(() => 1)))).toBe('ERR_SHM_REENTRANT')
    expect(codeOf(() => shm.access(async () => 1))).toBe('ERR_INVALID_ARGUMENT')
    expect(shm.access(() => 2)).toBe(2) // the turn was released
  }))

  it('registered class instances keep their methods, which write to shared fields', withSegment((shm) => {
    shm.access((tx) => {
      const p = tx.put(new Point(1, 2))
      expect(p).toBeInstanceOf(Point)
      p.moveBy(2)
      expect(p.x).toBe(3)
      expect(tx.copy(p)).toEqual(new Point(3, 2))
    })
  }))

  it('struct views go into the segment zero-copy and share like other mapped values', withSegment((shm) => {
    const Vec = defineStruct({ x: 'float64', y: 'float64', label: utf8(8) }, 'ContainerVec')
    shm.access((tx) => {
      const local = Vec.view(new Uint8Array(Vec.byteLength))
      local.x = 1.5
      local.label = 'here'
      const v = tx.put(local)
      expect(tx.bufferOf(v).buffer).toBe(shm.buffer)
      v.x += 1
      expect(local.x).toBe(1.5) // the put copied it in; the view is the shared copy
      const holder = tx.put({ v })
      expect(holder.v.x).toBe(2.5)
      holder.v.y = 7 // the same record, reached through the object
      expect(v.y).toBe(7)
      expect(tx.copy(holder).v.toJSON()).toEqual({ x: 2.5, y: 7, label: 'here' })
      // Columnar data: a StructArray over a zero-copy Uint8Array in the segment.
      const n = 100
      const bytes = tx.put(new Uint8Array(StructArray.byteLength(Vec, n)))
      const rows = new StructArray(Vec, bytes, 0, n)
      rows.at(42).x = 42
      expect(rows.column('x')[42]).toBe(42)
      tx.destroy(holder)
      tx.destroy(v)
      tx.destroy(bytes)
    })
    expect(() => shm.access((tx) => tx.put(Vec.view(new Uint8Array(Vec.byteLength)))).x).toThrow(ShmError)
  }))

  it('stores unknown classes with v8.serialize only when asked', withSegment((shm) => {
    class Opaque {
      secret = 41
    }
    shm.access((tx) => {
      expect(codeOf(() => tx.putMessage(new Opaque()))).toBe('ERR_UNSUPPORTED_TYPE')
      enableV8Fallback()
      try {
        tx.putMessage({ o: new Opaque() })
        const back = tx.takeMessage<{ o: { secret: number } }>()
        expect(back.o.secret).toBe(41) // its fields survive, its prototype does not
        expect(back.o).not.toBeInstanceOf(Opaque)
        // A message is a copy: it holds nothing in the segment to destroy.
        expect(codeOf(() => tx.destroy(back))).toBe('ERR_INVALID_ARGUMENT')
        const stored = tx.put({ o: new Opaque() })
        expect(stored.o.secret).toBe(41)
        expect(stored.o).not.toBeInstanceOf(Opaque)
        tx.destroy(stored)
      } finally {
        enableV8Fallback(false)
      }
    })
  }))

  it('another process sees and changes the same containers', withSegment(async (shm) => {
    const name = shm.name
    // The in-turn forms keep a handle on each channel they used until close: open both
    // before the baseline, so that it counts their rings.
    const used = shm.access((tx) => {
      for (const channel of ['state', 'back']) {
        tx.putMessage(channel, { channel })
        expect(tx.takeMessage({ channel })).toBe(channel)
      }
      return tx.stats().used
    })
    // A tx.put result travels by reference: the child gets the live view of the same records.
    const mine = shm.access((tx) => {
      const state = tx.put({ list: [1, 2, 3], tags: new Set(['a', 'b']), scores: new Map([['bob', 1]]), point: new Point(3, 4), bytes: new Float64Array([0, 1]), note: 'n' })
      tx.putMessage(state, { channel: 'state' })
      return state
    })
    const { code, messages } = await runChild('containers-peer.ts', [name])
    expect(code).toBe(0)
    expect(messages[0]).toEqual({ list: [1, 2, 3], tags: ['a', 'b'], scores: [['bob', 1]], norm: 5, bytes: [0, 1], note: 'n' })
    const list = shm.access((tx) => {
      // The view put before the child ran now shows the child's writes.
      expect([...mine.list]).toEqual([100, 2, 3, 4])
      expect([...mine.tags]).toEqual(['b', 'from-child'])
      expect(mine.scores.get('bob')).toBe(11)
      expect(mine.point.x).toBe(13)
      expect(mine.bytes[1]).toBe(42.5)
      expect(mine.note).toBe('changed by child')
      // The child sent its view back (and destroyed its own): the same records again, owned here.
      const back = tx.takeMessage<typeof mine>({ channel: 'back' })
      expect(back.note).toBe('changed by child')
      back.note = 'changed through the view sent back'
      expect(mine.note).toBe('changed through the view sent back')
      const list = mine.list // borrowed: valid while the record lives
      tx.destroy(back)
      expect([...list]).toEqual([100, 2, 3, 4]) // `mine` still holds it
      tx.destroy(mine)
      return list
    })
    // The last reference went: the records are freed (what they held at the end of that turn).
    shm.access(() => expect(codeOf(() => list.length)).toBe('ERR_SHM_STALE'))
    // All but mine.bytes, read above: that TypedArray holds its record until it is collected.
    await afterCollection(() => shm.stats().used === used)
    expect(shm.stats().used).toBe(used)
  }))
})
