// tx.destroy frees only what the caller owns: a value returned by tx.put, or a live
// view tx.takeMessage returned because its sender passed it by reference, once per
// call that returned it. A view read out of a container borrows its record; destroying
// it used to free memory its parent still pointed to, and the segment then read as
// corrupt everywhere. A message sent as a plain value is a copy and owns nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { uniqueName } from './helpers/processes'
import { afterCollection, shmError } from './helpers/segments'

describe('tx.destroy and ownership', () => {
  let shm: SharedMemory
  beforeAll(() => {
    shm = SharedMemory.create({ name: uniqueName('own'), size: 1 << 20 })
  })
  afterAll(() => shm?.close())

  const refused = (fn: () => void): ShmError => {
    const err = shmError(fn)
    expect(err.code).toBe('ERR_INVALID_ARGUMENT')
    expect(err.message).toMatch(/tx\.destroy takes a value returned by tx\.put or tx\.takeMessage, once/)
    return err
  }

  it('refuses nested views (objects, arrays, Maps, TypedArrays) and leaves the parent whole', async () => {
    const used = shm.stats().used
    shm.access((tx) => {
      const parent = tx.put({ child: { a: 1 }, list: [{ b: 2 }], map: new Map([['k', new Set([1])]]), bytes: new Uint8Array([1, 2, 3]) })
      refused(() => tx.destroy(parent.child))
      refused(() => tx.destroy(parent.list))
      refused(() => tx.destroy(parent.list[0]))
      refused(() => tx.destroy(parent.map.get('k')))
      refused(() => tx.destroy(parent.bytes))
      expect(tx.copy(parent)).toEqual({ child: { a: 1 }, list: [{ b: 2 }], map: new Map([['k', new Set([1])]]), bytes: new Uint8Array([1, 2, 3]) })
      tx.destroy(parent)
      // Once: its record is gone, so the view is stale.
      const again = shmError(() => tx.destroy(parent))
      expect(again.code).toBe('ERR_SHM_STALE')
      expect(again.message).toMatch(/was freed/)
    })
    expect(shm.check().clean).toBe(true)
    // parent.bytes, read above, held its record until the view was collected.
    await afterCollection(() => shm.stats().used === used)
    expect(shm.stats().used).toBe(used)
  })

  it('a TypedArray read out of a container holds its record: its bytes outlive the container until the view is collected', async () => {
    const used = shm.stats().used
    let bytes: Uint8Array | undefined = shm.access((tx) => {
      const parent = tx.put({ bytes: new Uint8Array([1, 2, 3]) })
      const read = parent.bytes
      tx.destroy(parent)
      return read
    })
    // Another put could have reused its memory, had the view not held it.
    shm.access((tx) => tx.destroy(tx.put({ filler: new Uint8Array([9, 9, 9]) })))
    expect(Array.from(bytes!)).toEqual([1, 2, 3])
    expect(shm.access((tx) => Array.from(tx.copy(bytes!)))).toEqual([1, 2, 3])
    expect(shm.access((tx) => shmError(() => tx.destroy(bytes)).code)).toBe('ERR_INVALID_ARGUMENT') // borrowed: not the caller's to destroy
    expect(shm.stats().used).toBeGreaterThan(used)
    bytes = undefined
    await afterCollection(() => shm.stats().used === used)
    expect(shm.stats().used).toBe(used)
    expect(shm.check().clean).toBe(true)
  })

  it('a message sent as a plain value is a copy: nothing to destroy, nothing left behind', () => {
    shm.access((tx) => {
      // The in-turn forms keep a handle on the channel until close: open it first.
      tx.putMessage(0, { channel: 'own' })
      tx.takeMessage({ channel: 'own' })
    })
    const used = shm.stats().used
    shm.access((tx) => {
      expect(tx.putMessage({ n: 1, inner: [1, 2], big: 'x'.repeat(500) }, { channel: 'own' })).toBeUndefined()
    })
    shm.access((tx) => {
      const taken = tx.takeMessage<{ n: number; inner: number[] }>({ channel: 'own' })
      expect(taken).toEqual({ n: 1, inner: [1, 2], big: 'x'.repeat(500) })
      expect(tx.copy(taken)).toBe(taken)
      for (const v of [taken, taken.inner]) {
        const err = shmError(() => tx.destroy(v))
        expect(err.code).toBe('ERR_INVALID_ARGUMENT')
        expect(err.message).toMatch(/needs a value mapped from this segment/)
      }
      expect(tx.stats().used).toBe(used)
    })
    expect(shm.check().clean).toBe(true)
  })

  it('a value sent by reference gives the receiver an owned view: destroyed once, refused twice; the sender keeps its own', () => {
    const used = shm.access((tx) => {
      tx.putMessage(0, { channel: 'own' })
      tx.takeMessage({ channel: 'own' })
      return tx.stats().used
    })
    // Another handle of the segment (views and what they own are per handle).
    const receiver = SharedMemory.open({ name: shm.name })
    try {
      const sent = shm.access((tx) => {
        const put = tx.put({ n: 1, inner: [1, 2] })
        expect(tx.putMessage(put, { channel: 'own' })).toBeUndefined()
        return put
      })
      receiver.access((tx) => {
        const taken = tx.takeMessage<{ n: number; inner: number[] }>({ channel: 'own' })
        expect(tx.copy(taken)).toEqual({ n: 1, inner: [1, 2] })
        taken.n = 2 // the same record the sender put
        refused(() => tx.destroy(taken.inner))
        tx.destroy(taken)
        refused(() => tx.destroy(taken))
      })
      shm.access((tx) => {
        // The sender's put result is unaffected: still live, still its own to destroy.
        expect(tx.copy(sent)).toEqual({ n: 2, inner: [1, 2] })
        // Sent again; this time the receiver never destroys what it takes.
        tx.putMessage(sent, { channel: 'own' })
      })
      const kept = receiver.access((tx) => tx.takeMessage<{ n: number; inner: number[] }>({ channel: 'own' }))
      receiver.access((tx) => expect(tx.copy(kept)).toEqual({ n: 2, inner: [1, 2] }))
      receiver.close() // releases the reference its view held
      shm.access((tx) => {
        expect([...sent.inner]).toEqual([1, 2])
        tx.destroy(sent) // the last reference: freed now
        const again = shmError(() => tx.destroy(sent))
        expect(again.code).toBe('ERR_SHM_STALE')
      })
    } finally {
      receiver.close()
    }
    expect(shm.check().clean).toBe(true)
    expect(shm.stats().used).toBe(used)
  })

  it('a value sent by reference to this same handle comes back as the same view, owned twice', () => {
    const used = shm.stats().used
    shm.access((tx) => {
      const put = tx.put([1, 2, 3])
      tx.putMessage(put, { channel: 'own' })
      const got = tx.takeMessage<number[]>({ channel: 'own' })
      expect(got).toBe(put)
      tx.destroy(put)
      tx.destroy(got)
      expect(shmError(() => tx.destroy(got)).code).toBe('ERR_SHM_STALE')
    })
    expect(shm.check().clean).toBe(true)
    expect(shm.stats().used).toBe(used)
  })

  it('a value put twice is two references: each put result destroys its own', () => {
    shm.access((tx) => {
      const a = tx.put([1, 2, 3])
      const b = tx.put(a) // shares the record: the same view, owned twice
      expect(b).toBe(a)
      tx.destroy(a)
      expect([...b]).toEqual([1, 2, 3])
      tx.destroy(b)
    })
    expect(shm.check().clean).toBe(true)
  })
})
