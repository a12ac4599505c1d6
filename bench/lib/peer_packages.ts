// The native peer packages (shm-typed-array, @markusjx/shared_memory) live in
// bench/peers/, a private package with its own package-lock.json that the
// benchmarks install the first time they need it (`npm install --prefix
// bench/peers`). They are not in the root package.json: their builds (node-gyp,
// cmake-js) must not make the project's own `npm ci` fragile, and users of the
// library must never get them. bench/peers/node_modules/ is git-ignored.
// A peer that cannot be installed or loaded is reported as "not available:
// <reason>" in its row; it never stops the run.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'

/** bench/peers/ in the source tree, found from here whether this file runs compiled (build/bench-js/bench/lib) or not. */
function peersDir(): string | undefined {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'bench', 'peers')
    if (fs.existsSync(path.join(candidate, 'package.json')) && !dir.includes(`${path.sep}build${path.sep}`)) return candidate
    if (path.dirname(dir) === dir) return undefined
  }
}

const dir = peersDir()
const requireFromPeers = dir === undefined ? undefined : createRequire(path.join(dir, 'package.json'))
/** undefined: not tried in this process; '': installed; otherwise why it failed. */
let installOutcome: string | undefined

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => /err/i.test(l) && !/nodedir/.test(l)) ??
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '' && !/nodedir/.test(l)) ??
    ''
  )
}

/** Runs `npm install --prefix bench/peers` once per process (the lock file pins the versions); '' on success, else why not. */
function install(): string {
  if (installOutcome !== undefined) return installOutcome
  if (dir === undefined) return (installOutcome = 'bench/peers/package.json not found')
  console.log('bench: installing the native peer packages into bench/peers (npm install --prefix bench/peers; first run only, ~20 s)…')
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    execFileSync(npm, ['install', '--prefix', dir, '--no-audit', '--no-fund'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 600_000,
      shell: process.platform === 'win32',
    })
    installOutcome = ''
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string; code?: string }
    installOutcome = `npm install --prefix bench/peers failed: ${firstLine(String(e.stderr ?? '')) || firstLine(e.message) || e.code || 'unknown error'}`
  }
  return installOutcome
}

/** Why `name` cannot be used in this run ("not available: …"), or undefined when it can. */
export function peerUnavailable(name: string): string | undefined {
  if (requireFromPeers === undefined) return 'not available: bench/peers/package.json not found'
  if (!fs.existsSync(path.join(dir!, 'node_modules'))) {
    const why = install()
    if (why !== '') return `not available: ${why}`
  }
  try {
    requireFromPeers(name)
    return undefined
  } catch (first) {
    // node_modules exists but lacks this package (or its build): install once, then try again.
    const why = install()
    if (why !== '') return `not available: ${why}`
    try {
      requireFromPeers(name)
      return undefined
    } catch (err) {
      return `not available: ${(err as Error).message.split('\n')[0] ?? String(first)}`
    }
  }
}

/** The peer package `name` from bench/peers (call peerUnavailable first). */
export function requirePeer<T>(name: string): T {
  if (requireFromPeers === undefined) throw new Error('bench: bench/peers/package.json not found')
  return requireFromPeers(name) as T
}
