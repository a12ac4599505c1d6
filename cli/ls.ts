// `interprocess-objects ls [--prefix p] [--json]`: every segment of this library,
// with its creator and whether that process still runs.
import { parseArgs, UsageError } from './args'
import { describeState, formatBytes, listSegments, SHM_DIR, type SegmentInfo } from './segments'

export const lsUsage = 'ls [--prefix <p>] [--json]        list segments: name, creator pid, alive/dead, size, created, attached pids'

export function ls(argv: readonly string[]): number {
  const args = parseArgs(argv, { switches: ['json'], values: ['prefix'] }, 'ls')
  if (args.positionals.length > 0) throw new UsageError(`ls takes no names (got ${args.positionals.join(' ')}); filter with --prefix`)
  const prefix = args.values.get('prefix') ?? ''
  const segments = listSegments(prefix)
  if (args.switches.has('json')) {
    process.stdout.write(`${JSON.stringify(segments.map(toJson), null, 2)}\n`)
    return 0
  }
  if (segments.length === 0) {
    process.stdout.write(`no interprocess-objects segments${prefix === '' ? '' : ` named ${prefix}*`} in ${SHM_DIR}\n`)
    return 0
  }
  const rows = [['NAME', 'CREATOR', 'STATE', 'SIZE', 'CREATED', 'ATTACHED']]
  for (const s of segments) {
    rows.push([
      s.name,
      String(s.creatorPid),
      describeState(s),
      formatBytes(s.size),
      s.createdAt === null ? '-' : s.createdAt.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      s.attachedPids === null ? '?' : s.attachedPids.length === 0 ? '-' : s.attachedPids.join(','),
    ])
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  for (const r of rows) process.stdout.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`)
  const stale = segments.filter((s) => !s.creatorAlive).length
  if (stale > 0) process.stdout.write(`\n${stale} segment(s) with a dead creator: remove them with \`interprocess-objects rm --stale\`\n`)
  return 0
}

/** The JSON form: dates as ISO strings. */
export function toJson(s: SegmentInfo): Record<string, unknown> {
  return { ...s, createdAt: s.createdAt === null ? null : s.createdAt.toISOString() }
}
