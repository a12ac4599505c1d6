// tx.destroy frees only what the caller owns: a value returned by tx.put or
// tx.takeMessage, once. A view read out of a container or a message, or the view that
// putMessage returns, borrows its record; destroying it used to free memory its parent
// (or the queue) still pointed to, and the segment then read as corrupt everywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { uniqueName } from './helpers/processes'
import { shmError } from './helpers/segments'

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

  it('refuses nested views (objects, arrays, Maps, TypedArrays) and leaves the parent whole', () => {
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
    expect(shm.stats().used).toBe(used)
  })

  it("refuses the view putMessage returns (the queued message owns it); the taker's view is the one to destroy", () => {
    shm.access((tx) => {
      const sent = tx.putMessage({ n: 1, inner: [1, 2] }, { channel: 'own' })
      refused(() => tx.destroy(sent))
      refused(() => tx.destroy(sent.inner))
    })
    shm.access((tx) => {
      const taken = tx.takeMessage<{ n: number; inner: number[] }>({ channel: 'own' })
      expect(tx.copy(taken)).toEqual({ n: 1, inner: [1, 2] })
      refused(() => tx.destroy(taken.inner))
      const inner = taken.inner
      tx.destroy(taken)
      // Its view was read in this turn: the inner array lasts until the turn ends.
      expect([...inner]).toEqual([1, 2])
    })
    const used = shm.stats().used
    expect(shm.check().clean).toBe(true)
    shm.access((tx) => {
      tx.putMessage('again', { channel: 'own' })
      expect(tx.takeMessage({ channel: 'own' })).toBe('again')
      expect(tx.stats().used).toBe(used)
    })
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
