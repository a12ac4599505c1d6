#!/usr/bin/env node
// `interprocess-objects`: find, remove and check shared-memory segments.
//   ls      list segments and whether their creator still runs (and leftovers)
//   rm      remove segments (stale ones with --stale, leftovers with --force)
//   check   check (and repair) a segment's heap
// --help/-h (also after a command, or `help <command>`), --version/-v.
// Exit codes: 0 done, 1 refused or found broken, 2 wrong usage.
import { ShmError } from '../core/errors'
import { commandHelp, overview, packageVersion, parseGlobal, PROGRAM, UsageError, type CommandSpec } from './args'
import { check, checkSpec } from './check'
import { ls, lsSpec } from './ls'
import { rm, rmSpec } from './rm'

interface Command {
  spec: CommandSpec
  run: (argv: readonly string[]) => number
}

const commands: Record<string, Command> = {
  ls: { spec: lsSpec, run: ls },
  rm: { spec: rmSpec, run: rm },
  check: { spec: checkSpec, run: check },
}

export const usage = overview(Object.values(commands).map((c) => c.spec))

export function main(argv: readonly string[]): number {
  // Global options come before the command; everything after it is the command's.
  let at = argv.findIndex((a) => !a.startsWith('-') || a === '-')
  if (at < 0) at = argv.length
  const commandName = argv[at]
  try {
    const global = parseGlobal(argv.slice(0, at))
    if (global.version) {
      process.stdout.write(`${packageVersion()}\n`)
      return 0
    }
    if (global.help) {
      process.stdout.write(usage)
      return 0
    }
    if (commandName === undefined) throw new UsageError('no command given')
    if (commandName === 'help') {
      const topic = argv[at + 1]
      if (topic === undefined) {
        process.stdout.write(usage)
        return 0
      }
      const command = Object.hasOwn(commands, topic) ? commands[topic] : undefined
      if (command === undefined) throw new UsageError(`help: unknown command "${topic}" (commands: ${Object.keys(commands).join(', ')})`)
      process.stdout.write(commandHelp(command.spec))
      return 0
    }
    const command = Object.hasOwn(commands, commandName) ? commands[commandName] : undefined
    if (command === undefined) throw new UsageError(`unknown command "${commandName}" (commands: ${Object.keys(commands).join(', ')})`)
    return command.run(argv.slice(at + 1))
  } catch (err) {
    if (err instanceof UsageError) {
      const help = err.command === undefined ? `run \`${PROGRAM} --help\` for usage` : `usage: ${err.command.synopsis.map((s) => `${PROGRAM} ${s}`).join('\n       ')}\nrun \`${PROGRAM} ${err.command.name} --help\` for more`
      process.stderr.write(`${PROGRAM}: ${err.message}\n${help}\n`)
      return 2
    }
    if (err instanceof ShmError) {
      process.stderr.write(`${PROGRAM} ${commandName ?? ''}: ${err.message} (${err.code})\n`)
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
