// Segment sizes and the space behind them (issue "Reliability II", items 2 and 3):
// every bad size is ERR_INVALID_ARGUMENT before any OS call, with nothing left in
// /dev/shm; a SharedArrayBuffer that cannot be allocated is a ShmError and removes
// what the create made; a segment that does not fit its tmpfs is ERR_SHM_OS (ENOSPC),
// not a SIGBUS later; an oversized, undersized or foreign OS object is ERR_SHM_CORRUPT
// (or ERR_SHM_VERSION) on open; a segment truncated under us is caught by check().
import { execFileSync, fork, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { SharedMemory } from 'interprocess-objects'
import { Header, LAYOUT_VERSION, MAGIC, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE } from '../core/layout'
import { native } from '../core/native'
import { childrenDir, uniqueName } from './helpers/processes'
import { cleanUpAfterEach } from './helpers/cleanup'
import { held, shmError, shmFile } from './helpers/segments'

const isLinux = process.platform === 'linux'
const page = native.pageSize
const GiB = 2 ** 30

/** Segments a test opened and names it used; closed and removed after each test. */
const { opened, names } = cleanUpAfterEach()

function freshName(prefix = 'size'): string {
  const name = uniqueName(prefix)
  names.push(name)
  return name
}

describe('sizes are checked before any OS call', () => {
  const tooLarge = [MAX_SEGMENT_SIZE + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + page, 5 * GiB, 16 * GiB, 128 * GiB, 2 ** 40, 2 ** 50, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE]
  const notIntegers = [NaN, Infinity, -Infinity, 1.5, MIN_SEGMENT_SIZE + 0.5, 5 * GiB + 0.5]
  const tooSmall = [0, -0, 1, 100, page, MIN_SEGMENT_SIZE - 1, -1, -MIN_SEGMENT_SIZE, -(2 ** 40)]
  const cases: Array<[string, unknown, RegExp]> = [
    ...tooLarge.map((size): [string, unknown, RegExp] => ['too large', size, /at most 4294901760 bytes \(4 GiB − 64 KiB/]),
    ...notIntegers.map((size): [string, unknown, RegExp] => ['not an integer', size, /integer of at least 16384 bytes/]),
    ...tooSmall.map((size): [string, unknown, RegExp] => ['too small', size, /at least 16384 bytes/]),
    ['missing', undefined, /got undefined/],
  ]

  for (const call of ['create', 'openOrCreate'] as const) {
    it.each(cases)(`${call}: %s (%s) is ERR_INVALID_ARGUMENT naming the limit, and leaves no file`, (_what, size, message) => {
      const name = freshName(call === 'create' ? 'bad' : 'badoc')
      const err = shmError(() => SharedMemory[call]({ name, size } as never))
      expect(err.code).toBe('ERR_INVALID_ARGUMENT')
      expect(err.message).toMatch(message)
      expect(err.message).toMatch(/4294901760/) // the limit is named whatever was wrong
      if (isLinux) expect(fs.existsSync(shmFile(name))).toBe(false)
      expect(shmError(() => SharedMemory.open({ name })).code).toBe('ERR_SHM_NOT_FOUND')
    })
  }

  it('the message shows a large size in GiB', () => {
    const err = shmError(() => SharedMemory.create({ name: freshName(), size: 5 * GiB }))
    expect(err.message).toMatch(/got 5368709120 \(5 GiB\)/)
  })

  it('the limits are whole pages and agree with the addon', () => {
    expect(native.maxSegmentSize).toBe(MAX_SEGMENT_SIZE)
    expect(MAX_SEGMENT_SIZE % page).toBe(0)
    expect(MAX_SEGMENT_SIZE % 65536).toBe(0)
    expect(MAX_SEGMENT_SIZE).toBeLessThan(2 ** 32)
  })

  it('the smallest size works, and sizes round up to whole pages', () => {
    const a = SharedMemory.create({ name: freshName(), size: MIN_SEGMENT_SIZE })
    opened.push(a)
    expect(a.size).toBe(Math.ceil(MIN_SEGMENT_SIZE / page) * page)
    const b = SharedMemory.create({ name: freshName(), size: MIN_SEGMENT_SIZE + 1 })
    opened.push(b)
    expect(b.size).toBe(Math.ceil((MIN_SEGMENT_SIZE + 1) / page) * page)
    expect(b.bytes.length).toBe(b.size)
    b.access((tx) => expect(tx.copy(tx.put({ x: 1 }))).toEqual({ x: 1 }))
  })

  it('the addon refuses what the JS layer would have refused, with RangeError', () => {
    const osName = `/ipo-${freshName()}`
    for (const size of [MAX_SEGMENT_SIZE + page, 2 ** 32, 2 ** 40]) expect(() => native.open(osName, size, 0, false)).toThrow(RangeError)
    expect(() => native.open(osName, page * 4, 0, false, 'nope' as never)).toThrow(TypeError)
  })
})

describe('the SharedArrayBuffer cannot be allocated', () => {
  const original = globalThis.SharedArrayBuffer
  function withSharedArrayBuffer<T>(replacement: unknown, fn: () => T): T {
    ;(globalThis as { SharedArrayBuffer: unknown }).SharedArrayBuffer = replacement
    try {
      return fn()
    } finally {
      globalThis.SharedArrayBuffer = original
    }
  }
  const failing = class {
    constructor() {
      throw new RangeError('Array buffer allocation failed')
    }
  }

  it.runIf(isLinux)('create and openOrCreate: ERR_SHM_OS, the file they made is removed, nothing held', () => {
    for (const call of ['create', 'openOrCreate'] as const) {
      const name = freshName()
      const err = withSharedArrayBuffer(failing, () => shmError(() => SharedMemory[call]({ name, size: 1 << 20 })))
      expect(err.code).toBe('ERR_SHM_OS')
      expect(err.message).toMatch(new RegExp(`could not allocate a SharedArrayBuffer of ${(1 << 20) + page} \\(1\\.\\d+ MiB\\)`))
      expect(err.message).toMatch(/Array buffer allocation failed/)
      expect(fs.existsSync(shmFile(name))).toBe(false)
      expect(held(name)).toEqual({ fds: 0, maps: 0 })
    }
  })

  it.runIf(isLinux)('open: ERR_SHM_OS, the segment is untouched and still opens afterwards', () => {
    const name = freshName()
    const shm = SharedMemory.create({ name, size: 1 << 20 })
    opened.push(shm)
    shm.access((tx) => tx.putMessage('still here'))
    const before = held(name)
    const err = withSharedArrayBuffer(failing, () => shmError(() => SharedMemory.open({ name })))
    expect(err.code).toBe('ERR_SHM_OS')
    expect(held(name)).toEqual(before)
    expect(fs.existsSync(shmFile(name))).toBe(true)
    const peer = SharedMemory.open({ name })
    expect(peer.access((tx) => tx.takeMessage())).toBe('still here')
    peer.close()
  })

  it('where the global is missing, a shared WebAssembly memory provides the constructor', () => {
    const shm = withSharedArrayBuffer(undefined, () => SharedMemory.create({ name: freshName(), size: 1 << 20 }))
    opened.push(shm)
    expect(shm.buffer).toBeInstanceOf(original)
    expect(shm.access((tx) => tx.copy(tx.put([1, 'two'])))).toEqual([1, 'two'])
  })

  it.runIf(isLinux && fs.existsSync('/usr/bin/prlimit'))('for real: with the address space capped, a 1 GiB create is ERR_SHM_OS and leaves nothing', async () => {
    const name = freshName()
    const child = fork(path.join(childrenDir, 'sizes-child.ts'), ['alloc-fail', name], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before reporting`))))
    const next = (): Promise<Record<string, unknown>> => Promise.race([new Promise<Record<string, unknown>>((resolve) => child.once('message', (m) => resolve(m as Record<string, unknown>))), exited])
    const { vmSize } = (await next()) as { vmSize: number }
    // Room for what the process already has plus 512 MiB (V8 needs some to run on):
    // not for the 1 GiB window.
    execFileSync('prlimit', ['--pid', String(child.pid), `--as=${vmSize + (512 << 20)}`])
    child.send('go')
    const result = await next()
    await exited.catch(() => undefined)
    const created = result.created as { code: string; message: string; shmError: boolean }
    expect(created.shmError, JSON.stringify(result)).toBe(true)
    expect(created.code).toBe('ERR_SHM_OS')
    expect(created.message).toMatch(/could not allocate a SharedArrayBuffer/)
    expect(result.afterCreate).toEqual({ exists: false, fds: 0, maps: 0 })
  })
})

// Needs root (or user namespaces) for a private mount of a 1 MiB tmpfs on /dev/shm.
const canUnshare = isLinux && process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0

describe('space is reserved at create (fallocate)', () => {
  it.runIf(canUnshare)('a segment that does not fit a 1 MiB tmpfs is ERR_SHM_OS naming ENOSPC and the size; nothing is left behind', () => {
    const name = uniqueName('nospc')
    const script = path.join(childrenDir, 'sizes-child.ts')
    const out = execFileSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" --import tsx "$@"', process.execPath, script, 'enospc', name], { encoding: 'utf8', timeout: 60_000 })
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, any>
    expect(r.mounts).toMatch(/^tmpfs \/dev\/shm tmpfs .*size=1024k/)
    for (const attempt of [r.big, r.orCreate]) {
      expect(attempt.shmError, JSON.stringify(attempt)).toBe(true)
      expect(attempt.code).toBe('ERR_SHM_OS')
      expect(attempt.message).toMatch(/ENOSPC/)
      expect(attempt.message).toMatch(/4194304 bytes \(4\.0 MiB\) did not fit/)
      expect(attempt.message).toMatch(/bytes \(1\.0 MiB\) are free/)
    }
    // The largest legal size passes the size check and fails only for space.
    expect(r.largest.code).toBe('ERR_SHM_OS')
    expect(r.largest.message).toMatch(new RegExp(`ENOSPC.*${MAX_SEGMENT_SIZE} bytes`))
    expect(r.afterBig).toEqual({ files: [], fds: 0, maps: 0 })
    expect(r.worked).toEqual({ fits: [1, 2, 3] })
    expect(r.second.code).toBe('ERR_SHM_OS')
    expect(r.second.message).toMatch(/ENOSPC/)
    expect(r.afterSecond).toEqual({ files: [`ipo-${name}`], fds: 0, maps: 0 })
    expect(r.atEnd).toEqual([])
  })
})

describe('open refuses OS objects that are not segments of this library', () => {
  function foreign(size: number, header?: (v: DataView) => void): string {
    const name = freshName('alien')
    const fd = fs.openSync(shmFile(name), 'w', 0o600)
    try {
      fs.ftruncateSync(fd, size) // sparse: costs no memory
      if (header) {
        const bytes = new Uint8Array(64)
        header(new DataView(bytes.buffer))
        fs.writeSync(fd, bytes, 0, bytes.length, 0)
      }
    } finally {
      fs.closeSync(fd)
    }
    return name
  }

  it.runIf(isLinux)('a sparse 5 GiB file is ERR_SHM_CORRUPT (not a RangeError), from open and openOrCreate; nothing held, file kept', () => {
    for (const size of [5 * GiB, 2 ** 32, MAX_SEGMENT_SIZE + page]) {
      const name = foreign(size)
      for (const call of [() => SharedMemory.open({ name }), () => SharedMemory.openOrCreate({ name, size: 1 << 20 })]) {
        const err = shmError(call)
        expect(err.code).toBe('ERR_SHM_CORRUPT')
        expect(err.message).toContain(`has ${size} bytes, more than the largest segment (${MAX_SEGMENT_SIZE} bytes)`)
        expect(held(name)).toEqual({ fds: 0, maps: 0 })
      }
      expect(fs.statSync(shmFile(name)).size).toBe(size) // not ours to remove
    }
  })

  it.runIf(isLinux)('a wrong magic is ERR_SHM_CORRUPT at once, without waiting for readiness', () => {
    const name = foreign(1 << 20, (v) => v.setUint32(Header.Magic, 0xdeadbeef, true))
    const t0 = performance.now()
    const err = shmError(() => SharedMemory.open({ name, readyTimeoutMs: 10_000 }))
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(err.code).toBe('ERR_SHM_CORRUPT')
    expect(err.message).toMatch(/magic 0xdeadbeef/)
    expect(held(name)).toEqual({ fds: 0, maps: 0 })
  })

  it.runIf(isLinux)('another layout version is ERR_SHM_VERSION', () => {
    const name = foreign(1 << 20, (v) => {
      v.setUint32(Header.Magic, MAGIC, true)
      v.setUint32(Header.Version, LAYOUT_VERSION + 100, true)
      v.setUint32(Header.Ready, 1, true)
    })
    const err = shmError(() => SharedMemory.open({ name }))
    expect(err.code).toBe('ERR_SHM_VERSION')
    expect(held(name)).toEqual({ fds: 0, maps: 0 })
  })

  it.runIf(isLinux)('smaller than any segment, or not whole pages, is ERR_SHM_CORRUPT', () => {
    const small = foreign(page)
    expect(shmError(() => SharedMemory.open({ name: small })).message).toMatch(/less than any segment/)
    const ragged = foreign(1000)
    const err = shmError(() => SharedMemory.open({ name: ragged, readyTimeoutMs: 50 }))
    expect(err.code).toBe('ERR_SHM_CORRUPT')
    expect(err.message).toMatch(/not a whole number of pages/)
    expect(held(small)).toEqual({ fds: 0, maps: 0 })
    expect(held(ragged)).toEqual({ fds: 0, maps: 0 })
  })
})

describe('a segment truncated while mapped', () => {
  it.runIf(isLinux)('check() says ERR_SHM_CORRUPT (truncated) without touching the lost pages', () => {
    const name = freshName()
    const shm = SharedMemory.create({ name, size: 1 << 20 })
    shm.check()
    fs.truncateSync(shmFile(name), 1 << 19)
    const err = shmError(() => shm.check())
    expect(err.code).toBe('ERR_SHM_CORRUPT')
    expect(err.message).toMatch(/truncated to 524288 bytes while mapped \(1048576 bytes mapped\)/)
    expect(err.message).toMatch(/SIGBUS/)
    shm.close() // touches nothing either
    expect(held(name)).toEqual({ fds: 0, maps: 0 })
  })

  it.runIf(isLinux)('touching a lost page kills the process with SIGBUS (the documented remaining case)', () => {
    const name = freshName()
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(childrenDir, 'sizes-child.ts'), 'sigbus', name], { encoding: 'utf8', timeout: 60_000 })
    expect(r.signal).toBe('SIGBUS')
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!).check).toMatch(/^ERR_SHM_CORRUPT: .*truncated to 0 bytes/)
  })
})
