// The CLI as users run it, from the sources: `interprocess-objects <args>` in a child
// process, killed after a minute so a hang fails the test instead of stalling the run.
import { execFile } from 'node:child_process'
import * as path from 'node:path'

const root = path.join(__dirname, '..', '..')

export interface CliRun {
  code: number
  stdout: string
  stderr: string
  /** Killed after the timeout: the CLI hung. */
  hung: boolean
}

export function cli(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(root, 'cli', 'index.ts'), ...args], { cwd: root, timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; killed?: boolean }) | null
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : -1
      resolve({ code, stdout, stderr, hung: e?.killed === true })
    })
  })
}
