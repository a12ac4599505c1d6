// The README example, as the two files under examples/ that users run: the worker may
// start first (it waits for the segment), and nothing is left behind but the two
// channels' queue records.
import * as path from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { SharedMemory } from 'interprocess-objects'
import { uniqueName } from './helpers/processes'

const run = promisify(execFile)
const examples = path.join(__dirname, '..', 'examples')
const example = (file: string, name: string) => run(process.execPath, ['--import', 'tsx', path.join(examples, file), name], { cwd: path.join(__dirname, '..'), timeout: 60_000 })

/** Bytes that two empty channels occupy, measured through the public API. */
function twoChannelsBytes(): number {
  using shm = SharedMemory.create({ name: uniqueName('exc'), size: 1 << 20 })
  const before = shm.stats().used
  shm.access((tx) => {
    for (const channel of ['a', 'b']) {
      tx.putMessage(0, { channel })
      tx.takeMessage({ channel })
    }
  })
  return shm.stats().used - before
}

describe('examples/owner.mts + examples/worker.mts (the README example)', () => {
  for (const order of ['worker first', 'owner first'] as const) {
    it(`exchange a live Map, ${order}; nothing leaks and the name is gone`, async () => {
      const name = uniqueName('ex')
      const [first, second] = order === 'worker first' ? ['worker.mts', 'owner.mts'] : ['owner.mts', 'worker.mts']
      const a = example(first, name)
      await new Promise((r) => setTimeout(r, 300))
      const b = example(second, name)
      const [owner, worker] = order === 'worker first' ? [await b, await a] : [await a, await b]
      expect(worker.stdout).toContain('worker: updated the scores')
      expect(owner.stdout).toContain('owner: the worker says "updated bob"')
      expect(owner.stdout).toContain('owner: bob = 2')
      expect(owner.stdout).toContain(`owner: ${twoChannelsBytes()} bytes in use beyond the fresh segment`)
      expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
    })
  }
})
