#!/usr/bin/env node
// `interprocess-objects`: find, remove and check shared-memory segments.
//   ls      list segments and whether their creator still runs
//   rm      remove segments (stale ones with --stale)
//   check   check (and repair) a segment's heap
// Exit codes: 0 done, 1 refused or found broken, 2 wrong usage.
import { ShmError } from '../core/errors'
import { UsageError } from './args'
import { check, checkUsage } from './check'
import { ls, lsUsage } from './ls'
import { rm, rmUsage } from './rm'

const commands: Record<string, (argv: readonly string[]) => number> = { ls, rm, check }

export const usage = `usage: interprocess-objects <command> [options]

${lsUsage}
${rmUsage}
${checkUsage}

Only segments whose header carries this library's magic are listed or touched.
`

export function main(argv: readonly string[]): number {
  const [command, ...rest] = argv
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage)
    return command === undefined ? 2 : 0
  }
  const run = commands[command]
  try {
    if (run === undefined) throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(commands).join(', ')})`)
    return run(rest)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`interprocess-objects: ${err.message}\n\n${usage}`)
      return 2
    }
    if (err instanceof ShmError) {
      process.stderr.write(`interprocess-objects ${command}: ${err.message} (${err.code})\n`)
      return err.code === 'ERR_INVALID_NAME' || err.code === 'ERR_INVALID_ARGUMENT' ? 2 : 1
    }
    throw err
  }
}

if (require.main === module) {
  // `interprocess-objects ls | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
  })
  process.exitCode = main(process.argv.slice(2))
}
