// Command-line arguments, parsed by node:util's parseArgs in strict mode: an unknown
// option, a missing value or a value given to a switch is a usage error (exit 2) that
// names the option, never a silent no-op. Each command describes its options once;
// the same description drives parsing and its --help text.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseArgs } from 'node:util'

export const PROGRAM = 'interprocess-objects'

/** A mistake in how the CLI was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  /** The command whose usage to print (the overview when undefined). */
  constructor(
    message: string,
    readonly command?: CommandSpec,
  ) {
    super(message)
  }
}

export interface OptionSpec {
  type: 'boolean' | 'string'
  short?: string
  /** Placeholder for the value of a string option, in the help text. */
  value?: string
  help: string
}

export interface CommandSpec {
  name: string
  /** Synopsis lines, without the program name. */
  synopsis: readonly string[]
  /** One line for the overview. */
  summary: string
  /** Paragraphs for the command's --help. */
  details: readonly string[]
  options: Readonly<Record<string, OptionSpec>>
}

export interface ParsedArgs {
  positionals: string[]
  values: Record<string, string | boolean | undefined>
}

const helpOption: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' }

/**
 * Parses a command's arguments; null when --help/-h was given (the help is printed
 * then, and the command does nothing else).
 */
export function parseCommand(argv: readonly string[], spec: CommandSpec): ParsedArgs | null {
  const options = { ...spec.options, help: helpOption }
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, o.short === undefined ? { type: o.type } : { type: o.type, short: o.short }])),
      strict: true,
      allowPositionals: true,
    })
  } catch (err) {
    throw new UsageError(`${spec.name}: ${describeParseError(err, options)}`, spec)
  }
  if (parsed.values.help === true) {
    process.stdout.write(commandHelp(spec))
    return null
  }
  return { positionals: parsed.positionals, values: parsed.values }
}

/** Global options (before the command): --help/-h, --version/-v. */
export function parseGlobal(argv: readonly string[]): { help: boolean; version: boolean } {
  const options = { help: helpOption, version: { type: 'boolean', short: 'v', help: 'print the version' } as OptionSpec }
  try {
    const { values } = parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } }, strict: true, allowPositionals: false })
    return { help: values.help === true, version: values.version === true }
  } catch (err) {
    throw new UsageError(describeParseError(err, options))
  }
}

function describeParseError(err: unknown, options: Readonly<Record<string, OptionSpec>>): string {
  const { code, message } = err as { code?: string; message?: string }
  const quoted = /'([^']*)'/.exec(message ?? '')?.[1]
  const known = Object.entries(options)
    .map(([name, o]) => (o.short === undefined ? `--${name}` : `--${name}/-${o.short}`))
    .join(', ')
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? '(?)'} (known: ${known})`
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = quoted?.split(' ')[0] ?? '(?)'
      if (/does not take an argument/.test(message ?? '')) return `${option} takes no value`
      return `${option} needs a value${/ambiguous/.test(message ?? '') ? ` (to pass one starting with '-', write ${option}=<value>)` : ''}`
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${quoted ?? ''}`.trimEnd()
    default:
      if (err instanceof Error) return err.message
      throw err
  }
}

/** A string option's value, if given. */
export function stringValue(args: ParsedArgs, option: string): string | undefined {
  const v = args.values[option]
  return typeof v === 'string' ? v : undefined
}

/** Whether a switch was given. */
export function flag(args: ParsedArgs, option: string): boolean {
  return args.values[option] === true
}

/** An option value that must be a non-negative number (of milliseconds). */
export function numberValue(args: ParsedArgs, option: string, fallback: number, spec: CommandSpec): number {
  const raw = stringValue(args, option)
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${spec.name}: --${option} must be a number of milliseconds, got "${raw}"`, spec)
  return n
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const rows = Object.entries(options).map(([name, o]) => [`${o.short === undefined ? '    ' : `-${o.short}, `}--${name}${o.value === undefined ? '' : ` <${o.value}>`}`, o.help] as const)
  const width = Math.max(...rows.map(([left]) => left.length))
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`)
}

/** Words of `text` in lines of at most 80 characters, each starting with `indent`. */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > 80) {
      lines.push(indent + line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(indent + line)
  return lines
}

/** `<command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const usage = spec.synopsis.map((s, i) => `${i === 0 ? 'usage: ' : '       '}${PROGRAM} ${s}`)
  return `${[...usage, '', ...wrap(spec.summary, ''), ...spec.details.flatMap((d) => ['', ...wrap(d, '')]), '', 'options:', ...optionLines({ ...spec.options, help: helpOption })].join('\n')}\n`
}

/** The overview: every command's synopsis and summary, global options, exit codes. */
export function overview(commands: readonly CommandSpec[]): string {
  const lines = [`usage: ${PROGRAM} <command> [options]`, `       ${PROGRAM} <command> --help`, `       ${PROGRAM} --version`, '', 'commands:']
  for (const c of commands) {
    lines.push(...c.synopsis.map((s) => `  ${s}`), ...wrap(c.summary, '      '))
  }
  lines.push(
    '',
    'options:',
    ...optionLines({ help: helpOption, version: { type: 'boolean', short: 'v', help: 'print the version' } }),
    '',
    'Only names of this library (ipo-* in /dev/shm on Linux) are looked at; segments',
    "are recognized by their header's magic, anything else there is listed as not a valid",
    'segment and removed only by name with rm --force.',
    '',
    'exit codes: 0 done, 1 refused / not found / broken, 2 wrong usage',
  )
  return `${lines.join('\n')}\n`
}

/**
 * This package's version, from its package.json: the nearest one named
 * interprocess-objects above this file (cli/ when run from the sources, dist/cli/
 * when built, node_modules/interprocess-objects/dist/cli/ when installed).
 */
export function packageVersion(): string {
  const here = typeof __dirname === 'string' ? __dirname : path.dirname(process.argv[1] ?? '.')
  for (let dir = path.resolve(here); ; ) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === PROGRAM && typeof pkg.version === 'string') return pkg.version
    } catch {
      // no package.json here, or not readable JSON: keep looking upwards
    }
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`cannot find the package.json of ${PROGRAM} above ${here}`)
    dir = up
  }
}
