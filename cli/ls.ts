// `interprocess-objects ls [--prefix p] [--json]`: every segment of this library,
// with its creator and whether that process still runs, then every other object
// under our name prefix, listed as not a valid segment with the reason.
import { flag, parseCommand, stringValue, UsageError, type CommandSpec } from './args'
import { formatBytes } from './format'
import { describeState, jsonText, listAll, printable, SHM_DIR, type Leftover, type SegmentInfo } from './segments'

export const lsSpec: CommandSpec = {
  name: 'ls',
  synopsis: ['ls [--prefix <p>] [--json]'],
  summary: 'list segments: name, creator pid, alive/dead, size, created, attached pids; and names that are not valid segments',
  details: [
    'Lists every segment whose header has this library\'s magic, and every other object named with the library\'s prefix (too short, wrong magic, truncated, a FIFO, a socket, a symbolic link, a directory, a device) as "not a valid segment" with the reason. Nothing is opened except regular files, and those without waiting.',
  ],
  options: {
    prefix: { type: 'string', value: 'p', help: 'only names starting with <p>' },
    json: { type: 'boolean', help: 'print a JSON array: segments (valid: true) and leftovers (valid: false, reason)' },
  },
}

export function ls(argv: readonly string[]): number {
  const args = parseCommand(argv, lsSpec)
  if (args === null) return 0
  if (args.positionals.length > 0) throw new UsageError(`ls takes no names (got ${args.positionals.join(' ')}); filter with --prefix`, lsSpec)
  const prefix = stringValue(args, 'prefix') ?? ''
  const { segments, invalid } = listAll(prefix)
  if (flag(args, 'json')) {
    const entries = [...segments.map(toJson), ...invalid.map(leftoverJson)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    process.stdout.write(`${jsonText(entries)}\n`)
    return 0
  }
  if (segments.length === 0) {
    process.stdout.write(`no interprocess-objects segments${prefix === '' ? '' : ` named ${printable(prefix)}*`} in ${SHM_DIR}\n`)
  } else {
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
    writeTable(rows)
    const stale = segments.filter((s) => !s.creatorAlive).length
    if (stale > 0) process.stdout.write(`\n${stale} segment(s) with a dead creator: remove them with \`interprocess-objects rm --stale\`\n`)
  }
  if (invalid.length > 0) {
    process.stdout.write(`\n${invalid.length} name(s) that are not a valid segment (rm --stale leaves them; remove one with \`interprocess-objects rm --force <name>\`):\n`)
    writeTable(invalid.map((l) => [`  ${printable(l.name)}`, `not a valid segment: ${l.reason}${describeUsers(l)}`]))
  }
  return 0
}

function writeTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  for (const r of rows) process.stdout.write(`${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}\n`)
}

function describeUsers(l: Leftover): string {
  return l.attachedPids !== null && l.attachedPids.length > 0 ? `; mapped by pid(s) ${l.attachedPids.join(', ')}` : ''
}

/** The JSON form of a segment: dates as ISO strings. */
export function toJson(s: SegmentInfo): Record<string, unknown> & { name: string } {
  return { ...s, valid: true, createdAt: s.createdAt === null ? null : s.createdAt.toISOString() }
}

/** The JSON form of a leftover. */
export function leftoverJson(l: Leftover): Record<string, unknown> & { name: string } {
  return { name: l.name, valid: false, reason: l.reason, type: l.type, path: l.path, size: l.size, uid: l.uid, attachedPids: l.attachedPids, removable: l.removable }
}
