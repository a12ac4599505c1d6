// The `interprocess-objects` CLI run as a user runs it: a child process
// (`node --import tsx cli/index.ts …` from the repository root, so the sources just
// changed), its exit code, stdout and stderr. Covers the argument parsing (--help,
// --version, unknown options), ls/rm/check on real segments, and hostile objects
// planted under the library's name prefix in /dev/shm: a FIFO owned by another uid
// (which used to hang ls and rm --stale in open()), a symbolic link to a real
// segment, a socket, a directory, a device, and files that are too short, have a
// wrong magic, are truncated, or have a name the library never creates.
//
// No timing assertions: every CLI run is killed after 60 s, so a hang fails the test
// instead of hanging the run.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { SharedMemory } from 'interprocess-objects'
import { describe, expect, it } from 'vitest'
import { cli } from './helpers/cli'
import { startChild } from './helpers/processes'
import { shmFile } from './helpers/segments'

const root = path.join(__dirname, '..')
const linux = process.platform === 'linux' && fs.existsSync('/dev/shm')
const NOBODY = 65534

/** Exists, without following a symbolic link. */
function present(file: string): boolean {
  try {
    fs.lstatSync(file)
    return true
  } catch {
    return false
  }
}

describe('CLI arguments', () => {
  it('--help, -h, <command> --help and help <command> print usage and exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await cli(...args)
      expect(r.code, args.join(' ')).toBe(0)
      expect(r.stdout).toContain('usage: interprocess-objects <command>')
      for (const c of ['ls [--prefix <p>]', 'rm <name>...', 'rm --stale', 'check <name>', '--version']) expect(r.stdout).toContain(c)
    }
    let r = await cli('rm', '--help')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('usage: interprocess-objects rm <name>...')
    expect(r.stdout).toContain('--dry-run')
    expect(r.stdout).toContain('-h, --help')
    r = await cli('ls', '-h')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('usage: interprocess-objects ls')
    r = await cli('help', 'check')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('usage: interprocess-objects check <name>')
    // --help wins over the rest: nothing is checked or removed.
    r = await cli('check', 'no-such-segment', '--help')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('usage: interprocess-objects check')
  }, 120_000)

  it('--version and -v print the version in package.json', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }
    for (const flag of ['--version', '-v']) {
      const r = await cli(flag)
      expect(r.code).toBe(0)
      expect(r.stdout.trim()).toBe(pkg.version)
    }
  }, 60_000)

  it('an unknown option, a missing or unexpected value, no command or an unknown one: exit 2 naming the problem', async () => {
    const cases: Array<[string[], string]> = [
      [['ls', '--bogus'], 'unknown option --bogus'],
      [['rm', '--stale', '--frce'], 'unknown option --frce'],
      [['check', 'x', '-q'], 'unknown option -q'],
      [['--bogus'], 'unknown option --bogus'],
      [['ls', '--prefix'], '--prefix needs a value'],
      [['rm', '--force=yes', 'x'], '--force takes no value'],
      [['check', 'x', '--timeout', 'soon'], '--timeout must be a number'],
      [['ls', 'extra'], 'ls takes no names'],
      [[], 'no command given'],
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['rm', '../../tmp/x'], 'ERR_INVALID_NAME'],
    ]
    for (const [args, message] of cases) {
      const r = await cli(...args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr, args.join(' ')).toContain(message)
    }
  }, 240_000)
})

describe.runIf(linux)('CLI on real segments and hostile objects in /dev/shm', () => {
  it('ls, rm and check on real segments: a live creator, a SIGKILLed one, a missing name', async () => {
    const prefix = `cl-${randomBytes(3).toString('hex')}-`
    const live = `${prefix}live`
    const stale = `${prefix}stale`
    const creator = startChild('reliability-creator.ts', [stale, String(64 * 1024)])
    const { pid: stalePid } = await creator.next<{ pid: number }>()
    creator.proc.kill('SIGKILL')
    await creator.exited
    const own = SharedMemory.create({ name: live, size: 128 * 1024 })
    try {
      let r = await cli('ls', '--prefix', prefix)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`${live}\\s+${process.pid}\\s+alive\\s+128 KiB`))
      expect(r.stdout).toMatch(new RegExp(`${stale}\\s+${stalePid}\\s+dead\\s+64 KiB`))
      expect(r.stdout).toContain('rm --stale')
      expect(r.stdout).not.toContain('not a valid segment')
      r = await cli('ls', '--prefix', prefix, '--json')
      expect(r.code).toBe(0)
      const listed = JSON.parse(r.stdout) as Array<Record<string, unknown>>
      expect(listed.map((s) => s.name)).toEqual([live, stale])
      expect(listed[0]).toMatchObject({ valid: true, creatorPid: process.pid, creatorAlive: true, size: 128 * 1024, attachedPids: [process.pid] })
      expect(listed[1]).toMatchObject({ valid: true, creatorPid: stalePid, creatorAlive: false, size: 64 * 1024, attachedPids: [] })

      r = await cli('check', stale)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`${stale}: ok`)
      expect(r.stdout).toContain(`creator pid ${stalePid} (dead)`)
      // The loan pool is reported once a loan made it.
      const bulk = own.channel<Uint8Array>('bulk')
      const held = bulk.loan(1000)
      r = await cli('check', live)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/loan pool: 1 of 256 entries used, 1 loan\(s\) held, 0 in messages, /)
      bulk.release(held)
      bulk.close()

      // rm refuses a live creator's segment and a missing name.
      r = await cli('rm', live, `${prefix}none`)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`creator pid ${process.pid}`)
      expect(r.stderr).toContain(`no segment named "${prefix}none"`)
      expect(present(shmFile(live))).toBe(true)

      // rm --stale: dry run, then the dead creator's segment goes, the live one stays.
      r = await cli('rm', '--stale', '--prefix', prefix, '--dry-run')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`would remove ${stale}`)
      expect(present(shmFile(stale))).toBe(true)
      r = await cli('rm', '--stale', '--prefix', prefix)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`removed ${stale} (creator pid ${stalePid}, dead)`)
      expect(present(shmFile(stale))).toBe(false)
      expect(present(shmFile(live))).toBe(true)

      // --force removes a live creator's name; the creator keeps its mapping.
      r = await cli('rm', '--force', live)
      expect(r.code).toBe(0)
      expect(present(shmFile(live))).toBe(false)
      own.access((tx) => tx.putMessage('still mapped'))
      expect(own.access((tx) => tx.takeMessage())).toBe('still mapped')
      r = await cli('check', live)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('ERR_SHM_NOT_FOUND')
    } finally {
      own.close()
      fs.rmSync(shmFile(stale), { force: true })
      fs.rmSync(shmFile(live), { force: true })
    }
  }, 240_000)

  it('a FIFO of another uid, a symbolic link, a socket, a directory, a device and junk files: listed as not a valid segment, never opened as one, removed only by name with --force', async () => {
    const prefix = `ch-${randomBytes(3).toString('hex')}-`
    const names = {
      live: `${prefix}live`,
      fifo: `${prefix}fifo`,
      link: `${prefix}link`,
      sock: `${prefix}sock`,
      dir: `${prefix}dir`,
      dev: `${prefix}dev`,
      empty: `${prefix}empty`,
      short: `${prefix}short`,
      junk: `${prefix}junk`,
      trunc: `${prefix}trunc`,
    }
    // Names the library never creates: too long, and one holding a terminal escape.
    const longName = `${prefix}${'x'.repeat(30)}`
    const escName = `${prefix}e\x1b[31m`
    const planted = [...Object.values(names), longName, escName].map(shmFile)
    const own = SharedMemory.create({ name: names.live, size: 64 * 1024 })
    let server: net.Server | undefined
    try {
      execFileSync('mkfifo', [shmFile(names.fifo)])
      fs.chownSync(shmFile(names.fifo), NOBODY, NOBODY)
      expect(fs.lstatSync(shmFile(names.fifo)).isFIFO()).toBe(true)
      expect(fs.lstatSync(shmFile(names.fifo)).uid).toBe(NOBODY)
      fs.symlinkSync(shmFile(names.live), shmFile(names.link)) // points at a valid segment
      server = net.createServer()
      await new Promise<void>((resolve) => server!.listen(shmFile(names.sock), resolve))
      fs.mkdirSync(shmFile(names.dir))
      let haveDevice = true
      try {
        execFileSync('mknod', [shmFile(names.dev), 'c', '1', '3'], { stdio: 'ignore' }) // like /dev/null
      } catch {
        haveDevice = false // no CAP_MKNOD here
      }
      fs.writeFileSync(shmFile(names.empty), Buffer.alloc(0))
      fs.writeFileSync(shmFile(names.short), Buffer.alloc(10, 1))
      fs.writeFileSync(shmFile(names.junk), Buffer.alloc(8192, 7))
      fs.writeFileSync(shmFile(names.trunc), fs.readFileSync(shmFile(names.live)).subarray(0, 4096)) // our header, 4 KiB of 64
      fs.writeFileSync(shmFile(longName), Buffer.alloc(4096))
      fs.writeFileSync(shmFile(escName), Buffer.alloc(4096))

      const expected: Record<string, string> = {
        [names.fifo]: `it is a FIFO (named pipe), not a regular file (owner uid ${NOBODY})`,
        [names.link]: 'it is a symbolic link, not a regular file',
        [names.sock]: 'it is a socket, not a regular file',
        [names.dir]: 'it is a directory, not a regular file',
        [names.empty]: 'it is empty (0 bytes)',
        [names.short]: 'it holds 10 byte(s), less than a header',
        [names.junk]: 'wrong magic 0x7070707',
        [names.trunc]: `truncated: its header says ${64 * 1024} bytes, the object has 4096`,
        [longName]: 'its name is not one this library creates',
      }
      if (haveDevice) expected[names.dev] = 'it is a character device, not a regular file'

      // ls finishes (it used to block forever in open() on the FIFO) and lists them all.
      let r = await cli('ls', '--prefix', prefix)
      expect(r.hung).toBe(false)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(new RegExp(`${names.live}\\s+${process.pid}\\s+alive\\s+64 KiB`))
      for (const [name, reason] of Object.entries(expected)) {
        const line = r.stdout.split('\n').find((l) => l.trim().startsWith(`${name} `))
        expect(line, name).toBeDefined()
        expect(line, name).toContain(`not a valid segment: ${reason}`)
      }
      // A hostile name is printed escaped, never as a raw terminal escape.
      expect(r.stdout).not.toContain('\x1b')
      expect(r.stdout).toContain(`${prefix}e\\x1b[31m`)
      expect(r.stdout).toContain('rm --force <name>')

      r = await cli('ls', '--prefix', prefix, '--json')
      expect(r.hung).toBe(false)
      expect(r.code).toBe(0)
      const listed = JSON.parse(r.stdout) as Array<{ name: string; valid: boolean; type?: string; reason?: string; uid?: number }>
      const byName = new Map(listed.map((e) => [e.name, e]))
      expect(byName.get(names.live)).toMatchObject({ valid: true })
      expect(byName.get(names.fifo)).toMatchObject({ valid: false, type: 'fifo', uid: NOBODY })
      expect(byName.get(names.link)).toMatchObject({ valid: false, type: 'symlink' })
      expect(byName.get(names.sock)).toMatchObject({ valid: false, type: 'socket' })
      expect(byName.get(names.dir)).toMatchObject({ valid: false, type: 'directory' })
      expect(byName.get(names.junk)).toMatchObject({ valid: false, type: 'file' })
      expect(byName.get(escName)).toMatchObject({ valid: false })
      expect(listed.filter((e) => !e.valid)).toHaveLength(Object.keys(expected).length + 1)

      // rm --stale finishes too, removes none of them, and says it left them alone.
      r = await cli('rm', '--stale', '--prefix', prefix)
      expect(r.hung).toBe(false)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`left ${Object.keys(expected).length + 1} name(s) that are not a valid segment alone`)
      for (const file of planted) expect(present(file), file).toBe(true)

      // check refuses what is not a regular file, without opening it.
      r = await cli('check', names.fifo)
      expect(r.hung).toBe(false)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain(`${names.fifo}: not a valid segment (it is a FIFO`)
      r = await cli('check', names.link)
      expect(r.code).toBe(1)
      expect(r.stdout).toContain('symbolic link')

      // rm without --force refuses each leftover; nothing is removed.
      const removable = [names.fifo, names.link, names.sock, names.empty, names.short, names.junk, names.trunc, ...(haveDevice ? [names.dev] : [])]
      r = await cli('rm', ...removable)
      expect(r.hung).toBe(false)
      expect(r.code).toBe(1)
      for (const name of removable) expect(r.stderr).toContain(`rm: "${name}" is not a valid segment`)
      expect(r.stderr).toContain('pass --force to remove the name anyway')
      for (const file of planted) expect(present(file), file).toBe(true)

      // --dry-run --force says what it would do and does nothing.
      r = await cli('rm', '--force', '--dry-run', names.fifo)
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`would remove ${names.fifo} (not a valid segment: it is a FIFO`)
      expect(present(shmFile(names.fifo))).toBe(true)

      // rm --force removes them by name; the symbolic link goes, the segment it points at stays.
      r = await cli('rm', '--force', ...removable)
      expect(r.hung).toBe(false)
      expect(r.code).toBe(0)
      for (const name of removable) {
        expect(r.stdout).toContain(`removed ${name} (not a valid segment`)
        expect(present(shmFile(name)), name).toBe(false)
      }
      expect(present(shmFile(names.live))).toBe(true)
      own.access((tx) => tx.putMessage('intact'))
      expect(own.access((tx) => tx.takeMessage())).toBe('intact')

      // Never: a directory (even with --force), a name the library cannot have created.
      r = await cli('rm', '--force', names.dir)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('rm does not remove directories')
      expect(present(shmFile(names.dir))).toBe(true)
      r = await cli('rm', '--force', longName)
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('ERR_INVALID_NAME')
      expect(present(shmFile(longName))).toBe(true)

      // What is left: the live segment and the two leftovers rm does not touch.
      r = await cli('ls', '--prefix', prefix, '--json')
      expect((JSON.parse(r.stdout) as Array<{ name: string }>).map((e) => e.name).sort()).toEqual([names.dir, escName, longName, names.live].sort())
    } finally {
      own.close()
      await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())))
      for (const file of planted) fs.rmSync(file, { force: true, recursive: true })
    }
  }, 300_000)
})
