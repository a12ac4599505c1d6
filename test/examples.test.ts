// The README example, as the two files under examples/ that users run: the worker may
// start first (it waits for the segment), and nothing is left behind: the Map is
// destroyed, the messages were copies or references taken over, and both channels are
// freed when their last handles close.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { SharedMemory } from 'interprocess-objects'
import { uniqueName } from './helpers/processes'
import { shmFile } from './helpers/segments'

const run = promisify(execFile)
const examples = path.join(__dirname, '..', 'examples')
const example = (file: string, name: string) => run(process.execPath, ['--import', 'tsx', path.join(examples, file), name], { cwd: path.join(__dirname, '..'), timeout: 60_000 })

/**
 * Bytes a segment of the examples' size has in use once a channel was made and freed
 * again (its own bookkeeping, and the channel directory's table, which stays), measured
 * through the public API.
 */
function bookkeepingBytes(): number {
  using shm = SharedMemory.create({ name: uniqueName('exc'), size: 1 << 20 })
  shm.channel('a').close()
  return shm.stats().used
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
      expect(owner.stdout).toContain(`owner: ${bookkeepingBytes()} bytes in use: the Map, the messages and both channels are freed`)
      expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
    })
  }
})

describe("the README's example, as written", () => {
  /** The README code block whose first line is `first`. */
  function block(readme: string, first: string): string {
    const start = readme.indexOf('```ts\n' + first)
    expect(start, `README has a block starting ${first}`).toBeGreaterThanOrEqual(0)
    const body = readme.slice(start + '```ts\n'.length)
    return body.slice(0, body.indexOf('```'))
  }

  it('runs: process B updates the Map process A shared, and A frees it', async () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
    const name = uniqueName('rd')
    // Only the segment's name changes ('my-app' could collide with another run).
    const owner = block(readme, '// owner.mts').replaceAll("'my-app'", `'${name}'`)
    const worker = block(readme, '// worker.mts').replaceAll("'my-app'", `'${name}'`)
    expect(owner).toContain(`'${name}'`)
    expect(worker).toContain(`'${name}'`)
    // Under test/, so that tsx maps the package's name to its sources as for the children.
    const dir = fs.mkdtempSync(path.join(__dirname, '.readme-'))
    try {
      fs.writeFileSync(path.join(dir, 'owner.mts'), owner)
      fs.writeFileSync(path.join(dir, 'worker.mts'), worker)
      const runOne = (file: string) => run(process.execPath, ['--import', 'tsx', path.join(dir, file)], { cwd: path.join(__dirname, '..'), timeout: 60_000 })
      const a = runOne('owner.mts')
      // The README's worker opens the segment without retrying: start it once A made it.
      let failed: unknown
      a.catch((err: unknown) => (failed = err))
      while (!fs.existsSync(shmFile(name)) && failed === undefined) await sleep(20)
      const b = runOne('worker.mts')
      const [ownerOut, workerOut] = [await a, await b]
      expect(ownerOut.stdout).toBe('done\n2\n')
      expect(workerOut.stdout).toBe('')
      expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
