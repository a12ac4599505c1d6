// The native peer packages (shm-typed-array, @markusjx/shared_memory) live in
// bench/peers/, a package of their own that the benchmarks install the first time
// they need it. Their builds (node-gyp, cmake-js) must not make the project's own
// `npm ci` fragile, and users of the library must never get them.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'

/** bench/peers/ in the source tree, found from here whether this file runs compiled (build/bench-js/bench/lib) or not. */
function peersDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'bench', 'peers')
    if (fs.existsSync(path.join(candidate, 'package.json')) && !dir.includes(`${path.sep}build${path.sep}`)) return candidate
    if (path.dirname(dir) === dir) throw new Error('bench: bench/peers/package.json not found above ' + __dirname)
  }
}

const dir = peersDir()
const requireFromPeers = createRequire(path.join(dir, 'package.json'))
let installError: string | undefined
let installed = false

/** Installs bench/peers once per process if its node_modules is missing; the reason if that failed. */
function ensureInstalled(): string | undefined {
  if (installed || installError !== undefined) return installError
  if (!fs.existsSync(path.join(dir, 'node_modules'))) {
    console.log('bench: installing the native peer packages into bench/peers (first run only)…')
    try {
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 })
    } catch (err) {
      const stderr = String((err as { stderr?: Buffer }).stderr ?? '')
      const line = stderr.split('\n').find((l) => /error/i.test(l)) ?? (err as Error).message.split('\n')[0]
      installError = `could not be installed: ${line!.trim()}`
      return installError
    }
  }
  installed = true
  return undefined
}

/** Why `name` cannot be used in this run, or undefined when it can. */
export function peerUnavailable(name: string): string | undefined {
  const why = ensureInstalled()
  if (why !== undefined) return why
  try {
    requireFromPeers(name)
    return undefined
  } catch (err) {
    return `not installable here: ${(err as Error).message.split('\n')[0]}`
  }
}

/** The peer package `name` from bench/peers (call peerUnavailable first). */
export function requirePeer<T>(name: string): T {
  return requireFromPeers(name) as T
}
