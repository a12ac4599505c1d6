// `interprocess-objects rm <name>… [--force]` and `rm --stale [--prefix p] [--force]`:
// removes segment names. Removing a name never hurts a process that has the
// segment mapped (it keeps its memory until it closes), but nobody can open the
// segment any more; so a segment whose creator is alive, or (with --stale) that a
// live process still maps, is only removed with --force. An object under our name
// prefix that is not a valid segment (a leftover: too short, wrong magic, truncated,
// a FIFO, a symbolic link…) is removed only by name and with --force; rm --stale
// leaves it alone. Names that are not this library's are never touched.
import * as fs from 'node:fs'
import { SharedMemory } from '../core/shared_memory'
import { flag, parseCommand, stringValue, UsageError, type CommandSpec } from './args'
import { describeState, listAll, lookAt, printable, readSegment, type Leftover, type SegmentInfo } from './segments'

export const rmSpec: CommandSpec = {
  name: 'rm',
  synopsis: ['rm <name>... [--force] [--dry-run]', 'rm --stale [--prefix <p>] [--force] [--dry-run]'],
  summary: 'remove segments: named ones (a live creator\'s, or a leftover that is not a valid segment, only with --force), or every stale one',
  details: [
    'rm <name>... removes those segment names. It refuses a segment whose creator is alive, and a name that is not a valid segment (see ls), unless --force. Processes that map a removed segment keep their memory until they close it; only new opens fail.',
    'rm --stale removes every segment whose creator is dead and that no live process maps (--force: also those still mapped). It never removes names that are not valid segments.',
  ],
  options: {
    force: { type: 'boolean', help: 'remove a live creator\'s segment or a leftover (by name); with --stale, also segments still mapped' },
    stale: { type: 'boolean', help: 'remove every segment whose creator is dead' },
    prefix: { type: 'string', value: 'p', help: 'with --stale: only names starting with <p>' },
    'dry-run': { type: 'boolean', help: 'say what would be removed, remove nothing' },
  },
}

export function rm(argv: readonly string[]): number {
  const args = parseCommand(argv, rmSpec)
  if (args === null) return 0
  const force = flag(args, 'force')
  const dryRun = flag(args, 'dry-run')
  if (flag(args, 'stale')) {
    if (args.positionals.length > 0) throw new UsageError(`rm --stale takes no names (got ${args.positionals.join(' ')}); filter with --prefix`, rmSpec)
    return removeStale(stringValue(args, 'prefix') ?? '', force, dryRun)
  }
  if (stringValue(args, 'prefix') !== undefined) throw new UsageError('rm: --prefix only goes with --stale', rmSpec)
  if (args.positionals.length === 0) throw new UsageError('rm needs segment names, or --stale', rmSpec)
  let failed = 0
  for (const name of args.positionals) {
    const lookup = readSegment(name)
    if (lookup.kind === 'missing') {
      process.stderr.write(`rm: no segment named "${name}"\n`)
      failed++
      continue
    }
    if (lookup.kind === 'invalid') {
      if (!removeLeftover(lookup.leftover, force, dryRun)) failed++
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
  const { segments, invalid } = listAll(prefix)
  const dead = segments.filter((s) => !s.creatorAlive)
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
  if (dead.length === 0) process.stdout.write(`no segments with a dead creator${prefix === '' ? '' : ` named ${printable(prefix)}*`}\n`)
  else process.stdout.write(`${dryRun ? 'would remove' : 'removed'} ${removed} stale segment(s)\n`)
  if (invalid.length > 0) {
    process.stdout.write(`left ${invalid.length} name(s) that are not a valid segment alone (${invalid.slice(0, 8).map((l) => printable(l.name)).join(', ')}${invalid.length > 8 ? ', …' : ''}): see \`interprocess-objects ls\`; remove one with \`rm --force <name>\`\n`)
  }
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

/**
 * A name under our prefix that is not a valid segment: removed only with --force,
 * and only if it is still the same object (device and inode) right before unlinking.
 * A symbolic link is removed itself, never what it points to.
 */
function removeLeftover(l: Leftover, force: boolean, dryRun: boolean): boolean {
  const what = `"${printable(l.name)}" is not a valid segment (${l.reason})`
  if (!l.removable) {
    process.stderr.write(`rm: ${what}; rm does not remove ${l.type === 'directory' ? 'directories' : 'it'}: remove it yourself if it is yours\n`)
    return false
  }
  if (!force) {
    process.stderr.write(`rm: ${what}; not touched: pass --force to remove the name anyway\n`)
    return false
  }
  const users = l.attachedPids ?? []
  const note = users.length > 0 ? `; pid(s) ${users.join(', ')} keep their mapping until they close it` : ''
  if (dryRun) {
    process.stdout.write(`would remove ${printable(l.name)} (not a valid segment: ${l.reason})${note}\n`)
    return true
  }
  try {
    if (l.path === null) {
      // macOS: no file to compare; the name is all there is.
      SharedMemory.unlink(l.name)
    } else {
      const now = lookAt(l.name)
      if (now === null) {
        process.stderr.write(`rm: "${printable(l.name)}" was removed by another process meanwhile\n`)
        return false
      }
      if (l.identity === null || now.dev !== l.identity.dev || now.ino !== l.identity.ino) {
        process.stderr.write(`rm: "${printable(l.name)}" changed while looking at it (replaced by another process); not touched\n`)
        return false
      }
      fs.unlinkSync(l.path) // unlink(2): a symbolic link goes, its target stays
    }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ENOENT' || code === 'ERR_SHM_NOT_FOUND') {
      process.stderr.write(`rm: "${printable(l.name)}" was removed by another process meanwhile\n`)
      return false
    }
    if (code === 'EPERM' || code === 'EACCES') {
      process.stderr.write(`rm: cannot remove "${printable(l.name)}": ${(err as Error).message} (owner uid ${l.uid ?? 'unknown'}: only the owner or root may remove it)\n`)
      return false
    }
    throw err
  }
  process.stdout.write(`removed ${printable(l.name)} (not a valid segment: ${l.reason})${note}\n`)
  return true
}
