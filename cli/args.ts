// Command-line arguments: positionals and --flags, checked against what each
// command knows, so a typo is a clear usage error instead of a silent no-op.

/** A mistake in how the CLI was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export interface FlagSpec {
  /** Flags that take no value (`--force`). */
  switches: readonly string[]
  /** Flags that take a value (`--prefix p` or `--prefix=p`). */
  values: readonly string[]
}

export interface ParsedArgs {
  positionals: string[]
  switches: Set<string>
  values: Map<string, string>
}

export function parseArgs(argv: readonly string[], spec: FlagSpec, command: string): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], switches: new Set(), values: new Map() }
  const known = [...spec.switches, ...spec.values].map((f) => `--${f}`)
  let onlyPositionals = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (onlyPositionals || !arg.startsWith('--')) {
      parsed.positionals.push(arg)
      continue
    }
    if (arg === '--') {
      onlyPositionals = true
      continue
    }
    const eq = arg.indexOf('=')
    const flag = arg.slice(2, eq < 0 ? undefined : eq)
    if (spec.switches.includes(flag)) {
      if (eq >= 0) throw new UsageError(`${command}: --${flag} takes no value`)
      parsed.switches.add(flag)
    } else if (spec.values.includes(flag)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i]
      if (value === undefined || value === '') throw new UsageError(`${command}: --${flag} needs a value`)
      parsed.values.set(flag, value)
    } else {
      throw new UsageError(`${command}: unknown option --${flag}${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`)
    }
  }
  return parsed
}

/** A --flag value that must be a non-negative number. */
export function numberValue(args: ParsedArgs, flag: string, fallback: number, command: string): number {
  const raw = args.values.get(flag)
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${command}: --${flag} must be a number of milliseconds, got "${raw}"`)
  return n
}
