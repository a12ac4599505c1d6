// `interprocess-objects rm <name>… [--force]` and `rm --stale [--prefix p] [--force]`:
// removes segment names. Removing a name never hurts a process that has the
// segment mapped (it keeps its memory until it closes), but nobody can open the
// segment any more; so a segment whose creator is alive, or (with --stale) that a
// live process still maps, is only removed with --force. Names whose header lacks
// our magic are never touched.
import { SharedMemory } from '../core/shared_memory'
import { parseArgs, UsageError } from './args'
import { describeState, listSegments, readSegment, type SegmentInfo } from './segments'

export const rmUsage = [
  'rm <name>... [--force]            remove segments; refuses one whose creator is alive unless --force',
  'rm --stale [--prefix <p>] [--force] [--dry-run]',
  '                                  remove every segment whose creator is dead and that no live process maps',
  '                                  (--force: also those still mapped)',
].join('\n')

export function rm(argv: readonly string[]): number {
  const args = parseArgs(argv, { switches: ['force', 'stale', 'dry-run'], values: ['prefix'] }, 'rm')
  const force = args.switches.has('force')
  const dryRun = args.switches.has('dry-run')
  if (args.switches.has('stale')) {
    if (args.positionals.length > 0) throw new UsageError(`rm --stale takes no names (got ${args.positionals.join(' ')}); filter with --prefix`)
    return removeStale(args.values.get('prefix') ?? '', force, dryRun)
  }
  if (args.values.has('prefix')) throw new UsageError('rm: --prefix only goes with --stale')
  if (args.positionals.length === 0) throw new UsageError('rm needs segment names, or --stale')
  let failed = 0
  for (const name of args.positionals) {
    const lookup = readSegment(name)
    if (lookup.kind === 'missing') {
      process.stderr.write(`rm: no segment named "${name}"\n`)
      failed++
      continue
    }
    if (lookup.kind === 'foreign') {
      process.stderr.write(`rm: "${name}" is not an interprocess-objects segment (${lookup.reason}); not touched\n`)
      failed++
      continue
    }
    const info = lookup.info
    if (info.creatorAlive && !force) {
      process.stderr.write(`rm: "${name}" belongs to a running process (creator pid ${info.creatorPid}); close it there, or pass --force to remove the name anyway\n`)
      failed++
      continue
    }
    if (!remove(info, dryRun)) failed++
  }
  return failed === 0 ? 0 : 1
}

function removeStale(prefix: string, force: boolean, dryRun: boolean): number {
  const dead = listSegments(prefix).filter((s) => !s.creatorAlive)
  let failed = 0
  let removed = 0
  for (const info of dead) {
    const users = info.attachedPids ?? []
    if (users.length > 0 && !force) {
      process.stdout.write(`kept ${info.name}: its creator (pid ${info.creatorPid}) is dead but pid(s) ${users.join(', ')} still map it; pass --force to remove the name anyway\n`)
      continue
    }
    if (remove(info, dryRun)) removed++
    else failed++
  }
  if (dead.length === 0) process.stdout.write(`no segments with a dead creator${prefix === '' ? '' : ` named ${prefix}*`}\n`)
  else process.stdout.write(`${dryRun ? 'would remove' : 'removed'} ${removed} stale segment(s)\n`)
  return failed === 0 ? 0 : 1
}

/** Unlinks `info`'s name unless it now names another segment (re-created meanwhile). */
function remove(info: SegmentInfo, dryRun: boolean): boolean {
  const again = readSegment(info.name, null)
  if (again.kind !== 'segment' || again.info.instanceId !== info.instanceId) {
    process.stderr.write(`rm: "${info.name}" changed while looking at it (removed or re-created by another process); not touched\n`)
    return false
  }
  const users = info.attachedPids ?? []
  const note = users.length > 0 ? `; pid(s) ${users.join(', ')} keep their mapping until they close it` : ''
  const what = `${info.name} (creator pid ${info.creatorPid}, ${describeState(info)})`
  if (dryRun) {
    process.stdout.write(`would remove ${what}${note}\n`)
    return true
  }
  try {
    SharedMemory.unlink(info.name)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_SHM_NOT_FOUND') throw err
    process.stderr.write(`rm: "${info.name}" was removed by another process meanwhile\n`)
    return false
  }
  process.stdout.write(`removed ${what}${note}\n`)
  return true
}
