// `interprocess-objects check <name> [--repair] [--json] [--timeout ms]`: opens the
// segment as a peer and runs shm.check() in a turn. Exit code 0 when the heap is
// sound (after repairs, with --repair), 1 when it is not, or when the name is not a
// segment at all (a FIFO, a symbolic link… planted under our prefix is refused
// before anything opens it).
import type { HeapReport, TurnRecovery } from '../core/check'
import { ShmError } from '../core/errors'
import { SharedMemory } from '../core/shared_memory'
import { flag, numberValue, parseCommand, UsageError, type CommandSpec } from './args'
import { formatBytes } from './format'
import { canList, jsonText, readSegment } from './segments'

export const checkSpec: CommandSpec = {
  name: 'check',
  synopsis: ['check <name> [--repair] [--json] [--timeout <ms>]'],
  summary: 'check the heap (allocator, channels, queued values); --repair fixes what an interrupted operation left',
  details: [
    'Opens the segment as a peer, waits for the turn and walks the heap. A turn held by a process that died is taken over first (and reported). Exit 1 when the heap is broken, or the name is not a valid segment.',
  ],
  options: {
    repair: { type: 'boolean', help: 'repair what an interrupted operation left (other damage is reported, not guessed at)' },
    json: { type: 'boolean', help: 'print the report as JSON' },
    timeout: { type: 'string', value: 'ms', help: 'wait at most <ms> for the turn (default 5000)' },
  },
}

export function check(argv: readonly string[]): number {
  const args = parseCommand(argv, checkSpec)
  if (args === null) return 0
  if (args.positionals.length !== 1) throw new UsageError(`check takes exactly one segment name (got ${args.positionals.length})`, checkSpec)
  const name = args.positionals[0]!
  const repair = flag(args, 'repair')
  const timeoutMs = numberValue(args, 'timeout', 5000, checkSpec)
  const json = flag(args, 'json')
  if (canList()) {
    // Something that is not even a regular file is refused before anything opens it;
    // a regular file's header is left to open(), which waits for a creator still writing it.
    const lookup = readSegment(name, null)
    if (lookup.kind === 'invalid' && lookup.leftover.type !== 'file') {
      const { reason } = lookup.leftover
      if (json) process.stdout.write(`${jsonText({ name, ok: false, valid: false, reason })}\n`)
      else process.stdout.write(`${name}: not a valid segment (${reason})\n`)
      return 1
    }
  }
  const shm = SharedMemory.open({ name, readyTimeoutMs: Math.min(timeoutMs, 2000) })
  try {
    const creator = { pid: shm.creatorPid, alive: shm.creatorAlive }
    let report: HeapReport
    try {
      report = shm.check({ repair, timeoutMs })
    } catch (err) {
      if (!(err instanceof ShmError) || err.code !== 'ERR_SHM_CORRUPT') throw err
      if (json) process.stdout.write(`${jsonText({ name, ok: false, creator, error: { code: err.code, message: err.message } })}\n`)
      else process.stdout.write(`${name}: CORRUPT\n  ${err.message}\n${repair ? '' : '  (run check --repair to fix what an interrupted operation left; other damage cannot be repaired)\n'}`)
      return 1
    }
    const recovery = shm.lastRecovery
    if (json) {
      process.stdout.write(`${JSON.stringify({ name, ok: true, creator, report, recovery: recovery === null ? null : { ...recovery, at: recovery.at.toISOString() } }, null, 2)}\n`)
    } else {
      process.stdout.write(describe(name, creator, report, recovery))
    }
    return 0
  } finally {
    shm.close()
  }
}

function describe(name: string, creator: { pid: number; alive: boolean }, r: HeapReport, recovery: TurnRecovery | null): string {
  const lines: string[] = []
  lines.push(`${name}: ${r.clean ? 'ok' : `ok after ${r.repairs.length} repair(s)`} (checked in ${r.ms.toFixed(1)} ms)`)
  lines.push(`  creator pid ${creator.pid} (${creator.alive ? 'alive' : 'dead'})`)
  if (recovery !== null) {
    lines.push(`  took the turn over from pid ${recovery.deadOwnerPid}, which died holding it; recovery: ${recovery.report.clean ? 'nothing to repair' : recovery.report.repairs.join('; ')}`)
  }
  for (const repair of r.repairs) lines.push(`  repaired: ${repair}`)
  const a = r.allocator
  lines.push(`  heap: ${formatBytes(a.used)} used in ${a.allocations} allocation(s), ${formatBytes(a.free)} free in ${a.freeBlocks} block(s), largest ${formatBytes(a.largestFree)}`)
  lines.push(`  ${r.channels.length} channel(s), ${r.records} value record(s) reachable from queued messages`)
  for (const c of r.channels) lines.push(`    ${c.name === '' ? '(default)' : c.name}: ${c.messages} message(s)${c.waiters > 0 ? `, ${c.waiters} waiter(s)` : ''}`)
  const l = r.loans
  if (l.entries > 0) lines.push(`  loan pool: ${l.entries} of 256 entries used, ${l.held} loan(s) held, ${l.inFlight} in messages, ${formatBytes(l.pooled)} kept for reuse`)
  return `${lines.join('\n')}\n`
}
