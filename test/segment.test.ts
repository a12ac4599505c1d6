// The segment layer against real OS objects and real processes: naming, header
// validation, visibility of writes across processes, the cross-process futex,
// pid liveness, use after close, who unlinks, and that mappings are given back.
import * as fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { Header, LAYOUT_VERSION, MAGIC } from '../core/layout'
import { native } from '../core/native'
import { startChild, uniqueName } from './helpers/processes'
import { cleanUpAfterEach } from './helpers/cleanup'

const SIZE = 1 << 20
const isLinux = process.platform === 'linux'
const page = native.pageSize

/** Segments a test opened and names it used; closed and removed after each test. */
const { opened, names } = cleanUpAfterEach()

function track(shm: SharedMemory): SharedMemory {
  opened.push(shm)
  return shm
}

function freshName(prefix = 'seg'): string {
  const name = uniqueName(prefix)
  names.push(name)
  return name
}

function create(size = SIZE, extra: { prefault?: boolean; unlinkOnExit?: boolean } = {}): SharedMemory {
  return track(SharedMemory.create({ name: freshName(), size, ...extra }))
}

function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

/** Asserts `fn` throws a ShmError with `code` (and `message` in its text) and returns it. */
function throwsShm(fn: () => unknown, code: string, message?: string | RegExp): ShmError {
  const err = caught(fn)
  expect(err).toBeInstanceOf(ShmError)
  expect((err as ShmError).code).toBe(code)
  if (message !== undefined) expect((err as ShmError).message).toMatch(message)
  return err as ShmError
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The internal segment id, for calling the addon directly. */
function idOf(shm: SharedMemory): number {
  return (shm.segment as unknown as { id: number }).id
}

/** Same formula as test/children/segment-peer.ts. */
function childValue(i: number): number {
  if (i === 0) return -0
  if (i === 1) return Number.MAX_VALUE
  if (i === 2) return Number.MIN_VALUE
  if (i === 3) return -Infinity
  return Math.sin(i) * 10 ** ((i % 600) - 300)
}

/**
 * Resolves once the process's main thread sleeps in the kernel's futex wait
 * (Linux /proc/<pid>/wchan). Elsewhere, or if wchan is hidden, waits a while.
 */
async function asleepInFutex(pid: number): Promise<boolean> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    let wchan: string
    try {
      wchan = fs.readFileSync(`/proc/${pid}/wchan`, 'utf8')
    } catch {
      break
    }
    if (wchan === '0' || wchan === '') break
    if (wchan.startsWith('futex')) return true
    await sleep(2)
  }
  await sleep(300)
  return false
}

describe('create, open, openOrCreate', () => {
  it('creates a segment that another handle opens, with the same size and bytes', () => {
    const a = create()
    expect(a.created).toBe(true)
    expect(a.size).toBe(SIZE)
    expect(a.bytes.length).toBe(SIZE)
    expect(a.creatorPid).toBe(process.pid)
    const b = track(SharedMemory.open({ name: a.name }))
    expect(b.created).toBe(false)
    expect(b.size).toBe(SIZE)
    expect(b.creatorPid).toBe(process.pid)
    a.bytes[SIZE - 1] = 0x5a
    expect(b.bytes[SIZE - 1]).toBe(0x5a)
  })

  it('openOrCreate says whether it created', () => {
    const name = freshName()
    const first = track(SharedMemory.openOrCreate({ name, size: SIZE }))
    expect(first.created).toBe(true)
    const second = track(SharedMemory.openOrCreate({ name, size: SIZE }))
    expect(second.created).toBe(false)
    expect(second.size).toBe(SIZE)
    first.bytes[70_000] = 7
    expect(second.bytes[70_000]).toBe(7)
  })

  it('rounds the size up to whole pages', () => {
    const shm = create(16 * 1024 + 1)
    expect(shm.size).toBe(Math.ceil((16 * 1024 + 1) / page) * page)
    expect(shm.size % page).toBe(0)
    expect(shm.bytes.length).toBe(shm.size)
    expect(track(SharedMemory.open({ name: shm.name })).size).toBe(shm.size)
  })

  it('places the segment within one page of the buffer start', () => {
    const shm = create()
    expect(shm.bytes.byteOffset).toBeLessThan(page)
    expect(shm.buffer.byteLength).toBeGreaterThanOrEqual(shm.bytes.byteOffset + shm.size)
    expect(shm.buffer).toBe(shm.bytes.buffer)
  })

  it('refuses a taken name and a missing one', () => {
    const shm = create()
    throwsShm(() => SharedMemory.create({ name: shm.name, size: SIZE }), 'ERR_SHM_EXISTS', /already exists/)
    throwsShm(() => SharedMemory.open({ name: freshName('none') }), 'ERR_SHM_NOT_FOUND', /create it first/)
    throwsShm(() => SharedMemory.unlink(freshName('none')), 'ERR_SHM_NOT_FOUND')
  })

  it('checks names', () => {
    const ok = (uniqueName('n') + 'x'.repeat(26)).slice(0, 26)
    names.push(ok)
    track(SharedMemory.create({ name: ok, size: SIZE }))
    const bad: unknown[] = ['a'.repeat(27), 'a/b', '/abc', '..', '.', 'has space', '', 'tab\t', 'ünï']
    for (const name of bad) {
      throwsShm(() => SharedMemory.create({ name: name as string, size: SIZE }), 'ERR_INVALID_NAME')
      throwsShm(() => SharedMemory.open({ name: name as string }), 'ERR_INVALID_NAME')
      throwsShm(() => SharedMemory.unlink(name as string), 'ERR_INVALID_NAME')
    }
    throwsShm(() => SharedMemory.create({ name: 'a'.repeat(27), size: SIZE }), 'ERR_INVALID_NAME', /1 to 26/)
    throwsShm(() => SharedMemory.create({ name: 'a/b', size: SIZE }), 'ERR_INVALID_NAME', /no '\/'/)
    // A name that is not a string at all.
    throwsShm(() => SharedMemory.unlink(42 as never), 'ERR_INVALID_NAME', /must be a string/)
    throwsShm(() => SharedMemory.open({} as never), 'ERR_INVALID_NAME', /must be a string/)
    throwsShm(() => SharedMemory.create({ size: SIZE } as never), 'ERR_INVALID_NAME')
    throwsShm(() => SharedMemory.create({ name: 42, size: SIZE } as never), 'ERR_INVALID_NAME', /must be a string/)
    throwsShm(() => SharedMemory.openOrCreate({ name: null, size: SIZE } as never), 'ERR_INVALID_NAME', /must be a string/)
  })

  it('checks options and says which one was meant', () => {
    const name = freshName()
    throwsShm(() => SharedMemory.create({ name, size: SIZE, prefualt: true } as never), 'ERR_INVALID_ARGUMENT', /did you mean "prefault"/)
    throwsShm(() => SharedMemory.create({ name, size: SIZE, unlinkOnexit: false } as never), 'ERR_INVALID_ARGUMENT', /did you mean "unlinkOnExit"/)
    throwsShm(() => SharedMemory.open({ name, readyTimeout: 5 } as never), 'ERR_INVALID_ARGUMENT', /did you mean "readyTimeoutMs"/)
    throwsShm(() => SharedMemory.openOrCreate({ name, sise: SIZE } as never), 'ERR_INVALID_ARGUMENT', /did you mean "size"/)
    throwsShm(() => SharedMemory.create({ name, size: '1MB' } as never), 'ERR_INVALID_ARGUMENT', /"size" must be a number/)
    throwsShm(() => SharedMemory.create({ name, size: SIZE, prefault: 1 } as never), 'ERR_INVALID_ARGUMENT', /"prefault" must be a boolean/)
    throwsShm(() => SharedMemory.create(null as never), 'ERR_INVALID_ARGUMENT', /options object/)
    throwsShm(() => SharedMemory.open('name' as never), 'ERR_INVALID_ARGUMENT', /options object/)
    throwsShm(() => SharedMemory.create({ name } as never), 'ERR_INVALID_ARGUMENT', /size/)
    // Nothing was created by any of the above.
    throwsShm(() => SharedMemory.open({ name }), 'ERR_SHM_NOT_FOUND')
  })

  it('refuses sizes too small to hold the header and a heap, and non-integers', () => {
    const name = freshName()
    throwsShm(() => SharedMemory.create({ name, size: 100 }), 'ERR_INVALID_ARGUMENT', /at least 16384/)
    throwsShm(() => SharedMemory.create({ name, size: 0 }), 'ERR_INVALID_ARGUMENT')
    throwsShm(() => SharedMemory.create({ name, size: -SIZE }), 'ERR_INVALID_ARGUMENT')
    throwsShm(() => SharedMemory.create({ name, size: SIZE + 0.5 }), 'ERR_INVALID_ARGUMENT')
    throwsShm(() => SharedMemory.create({ name, size: NaN }), 'ERR_INVALID_ARGUMENT')
    throwsShm(() => SharedMemory.create({ name, size: Infinity }), 'ERR_INVALID_ARGUMENT')
    throwsShm(() => SharedMemory.open({ name }), 'ERR_SHM_NOT_FOUND')
  })

  it.runIf(isLinux)('creates the OS object with mode 0600', () => {
    const shm = create()
    const st = fs.statSync(`/dev/shm/ipo-${shm.name}`)
    expect(st.mode & 0o777).toBe(0o600)
    expect(st.size).toBe(SIZE)
  })

  it('prefault maps a segment that reads and writes normally', () => {
    const shm = create(8 << 20, { prefault: true })
    const peer = track(SharedMemory.open({ name: shm.name }))
    const f64 = new Float64Array(shm.buffer, shm.bytes.byteOffset + 8192, 1000)
    for (let i = 0; i < f64.length; i++) f64[i] = i * 1.5
    const seen = new Float64Array(peer.buffer, peer.bytes.byteOffset + 8192, 1000)
    expect(seen[999]).toBe(999 * 1.5)
    shm.bytes[shm.size - 1] = 9
    expect(peer.bytes[peer.size - 1]).toBe(9)
  })
})

describe('header validation', () => {
  it('refuses a wrong magic, naming the value found', () => {
    const shm = create()
    const writer = track(SharedMemory.open({ name: shm.name }))
    writer.segment.view.setUint32(Header.Magic, 0xdeadbeef, true)
    throwsShm(() => SharedMemory.open({ name: shm.name }), 'ERR_SHM_CORRUPT', /0xdeadbeef/)
    writer.segment.view.setUint32(Header.Magic, MAGIC, true)
    track(SharedMemory.open({ name: shm.name }))
  })

  it('refuses another layout version', () => {
    const shm = create()
    const writer = track(SharedMemory.open({ name: shm.name }))
    writer.segment.view.setUint32(Header.Version, LAYOUT_VERSION + 1, true)
    throwsShm(() => SharedMemory.open({ name: shm.name }), 'ERR_SHM_VERSION', new RegExp(`version ${LAYOUT_VERSION + 1}`))
    writer.segment.view.setUint32(Header.Version, LAYOUT_VERSION, true)
    track(SharedMemory.open({ name: shm.name }))
  })

  it('refuses a header whose size disagrees with the OS object', () => {
    const shm = create()
    const writer = track(SharedMemory.open({ name: shm.name }))
    writer.segment.view.setBigUint64(Header.Size, BigInt(SIZE * 2), true)
    throwsShm(() => SharedMemory.open({ name: shm.name }), 'ERR_SHM_CORRUPT', new RegExp(`${SIZE * 2} bytes`))
    // openOrCreate opens (the name exists), so it validates the same way.
    throwsShm(() => SharedMemory.openOrCreate({ name: shm.name, size: SIZE }), 'ERR_SHM_CORRUPT')
  })

  it('waits readyTimeoutMs for a segment never marked ready, then names its creator', () => {
    const shm = create()
    const writer = track(SharedMemory.open({ name: shm.name }))
    Atomics.store(writer.segment.words, Header.Ready >> 2, 0)
    const started = performance.now()
    throwsShm(() => SharedMemory.open({ name: shm.name, readyTimeoutMs: 300 }), 'ERR_SHM_CORRUPT', new RegExp(`never marked ready.*pid ${process.pid}, alive`))
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    // Once the creator marks it ready, opening works.
    Atomics.store(writer.segment.words, Header.Ready >> 2, 1)
    track(SharedMemory.open({ name: shm.name, readyTimeoutMs: 0 }))
  })

  it('an opener waiting for ready proceeds as soon as the creator publishes', async () => {
    const shm = create()
    const writer = track(SharedMemory.open({ name: shm.name }))
    Atomics.store(writer.segment.words, Header.Ready >> 2, 0)
    const waiter = startChild('segment-waiter.ts', [shm.name, '8192', '0', '5000', 'announce'])
    expect(await waiter.next()).toBe('opening')
    await sleep(300)
    Atomics.store(writer.segment.words, Header.Ready >> 2, 1)
    // The child got past the ready wait and sleeps on the word now.
    expect(await waiter.next()).toBe('waiting')
    Atomics.store(shm.segment.words, 8192 >> 2, 1)
    shm.segment.wake(8192, 1)
    const report = await waiter.next<{ value: number; openMs: number }>()
    expect(report.value).toBe(1)
    expect(report.openMs).toBeGreaterThan(200)
    expect(report.openMs).toBeLessThan(10_000)
    expect(await waiter.exited).toBe(0)
  })

  it.runIf(isLinux)('reports an empty OS object under our prefix as not ours', () => {
    const name = freshName()
    fs.writeFileSync(`/dev/shm/ipo-${name}`, '', { mode: 0o600 })
    throwsShm(() => SharedMemory.open({ name, readyTimeoutMs: 50 }), 'ERR_SHM_CORRUPT', new RegExp(`SharedMemory.unlink\\("${name}"\\)`))
    throwsShm(() => SharedMemory.create({ name, size: SIZE }), 'ERR_SHM_EXISTS')
    SharedMemory.unlink(name)
    expect(fs.existsSync(`/dev/shm/ipo-${name}`)).toBe(false)
  })
})

describe('two processes', () => {
  it('see each other’s writes through shm.buffer', async () => {
    const shm = create()
    const offset = 8192
    const count = 4096
    const child = startChild('segment-peer.ts', [shm.name, String(offset), String(count)])
    expect(await child.next()).toBe('written')
    const values = new Float64Array(shm.buffer, shm.bytes.byteOffset + offset, count)
    let mismatches = 0
    for (let i = 0; i < count; i++) if (!Object.is(values[i], childValue(i))) mismatches++
    expect(mismatches).toBe(0)
    expect(Object.is(values[0], -0)).toBe(true)
    for (let i = 0; i < count; i++) values[i] = -childValue(i) / 2
    child.send('answered')
    expect(await child.next()).toEqual({ mismatches: 0 })
    expect(await child.exited).toBe(0)
  })

  it('futex: a waiting process sleeps until another changes the word and wakes it', async () => {
    const shm = create()
    const offset = 8192
    Atomics.store(shm.segment.words, offset >> 2, 0)
    const child = startChild('segment-waiter.ts', [shm.name, String(offset), '0', '20000'])
    expect(await child.next()).toBe('waiting')
    const confirmed = await asleepInFutex(child.proc.pid!)
    Atomics.store(shm.segment.words, offset >> 2, 1)
    const woken = shm.segment.wake(offset, 1)
    if (confirmed) expect(woken).toBe(1)
    const report = await child.next<{ result: string; value: number; elapsedMs: number }>()
    expect(report.result).toBe('ok')
    expect(report.value).toBe(1)
    expect(report.elapsedMs).toBeLessThan(20000)
    expect(await child.exited).toBe(0)
  })

  it('futex: a wait with nobody waking it times out in the other process', async () => {
    const shm = create()
    const child = startChild('segment-waiter.ts', [shm.name, '8192', '0', '150'])
    expect(await child.next()).toBe('waiting')
    const report = await child.next<{ result: string; elapsedMs: number }>()
    expect(report.result).toBe('timed-out')
    expect(report.elapsedMs).toBeGreaterThanOrEqual(140)
    expect(await child.exited).toBe(0)
  })

  it('futex: timed-out and not-equal outcomes, and wake with no waiter', () => {
    const shm = create()
    const words = shm.segment.words
    Atomics.store(words, 8192 >> 2, 5)
    const started = performance.now()
    expect(shm.segment.wait(8192, 5, 50)).toBe('timed-out')
    expect(performance.now() - started).toBeGreaterThanOrEqual(45)
    expect(shm.segment.wait(8192, 5, 0)).toBe('timed-out')
    expect(shm.segment.wait(8192, 6, 10_000)).toBe('not-equal')
    Atomics.store(words, 8192 >> 2, -1)
    expect(shm.segment.wait(8192, -1, 1)).toBe('timed-out')
    expect(shm.segment.wait(8192, 0xffffffff, 1)).toBe('timed-out')
    expect(shm.segment.wake(8192, 1)).toBe(0)
  })

  it('futex: wake(offset, 0) wakes nobody, like Atomics.notify', async () => {
    const shm = create()
    const child = startChild('segment-waiter.ts', [shm.name, '8192', '0', '20000'])
    expect(await child.next()).toBe('waiting')
    const confirmed = await asleepInFutex(child.proc.pid!)
    expect(shm.segment.wake(8192, 0)).toBe(0)
    Atomics.store(shm.segment.words, 8192 >> 2, 1)
    const woken = shm.segment.wake(8192, 1)
    if (confirmed) expect(woken).toBe(1)
    expect(await child.next()).toMatchObject({ result: 'ok', value: 1 })
    expect(await child.exited).toBe(0)
  })

  it('processAlive: this process yes, an exited child no', async () => {
    expect(native.processAlive(process.pid)).toBe(true)
    expect(native.processAlive(process.ppid)).toBe(true)
    const shm = create()
    const child = startChild('segment-waiter.ts', [shm.name, '8192', '0', '1'])
    const pid = child.proc.pid!
    expect(native.processAlive(pid)).toBe(true)
    expect(await child.exited).toBe(0)
    expect(native.processAlive(pid)).toBe(false)
    expect(native.processAlive(0)).toBe(false)
    expect(native.processAlive(-1)).toBe(false)
    expect(native.processAlive(2 ** 40)).toBe(false)
  })
})

describe('shm.copyBytes', () => {
  it('copies into and out of the segment, and refuses views outside it, of other lengths, or after close', () => {
    const shm = create()
    const at = 8192
    const inSegment = new Uint8Array(shm.buffer, shm.bytes.byteOffset + at, 64 * 1024) // the bulk path
    const mine = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff)
    shm.copyBytes(inSegment, mine)
    expect(shm.bytes.subarray(at, at + mine.length)).toEqual(mine)
    const back = new Float64Array(mine.length / 8)
    shm.copyBytes(back, inSegment)
    expect(new Uint8Array(back.buffer)).toEqual(mine)
    shm.copyBytes(shm.bytes.subarray(0, 16), shm.bytes.subarray(at, at + 16)) // both inside: a move
    expect(shm.bytes.subarray(0, 16)).toEqual(mine.subarray(0, 16))

    const refused = (fn: () => void, pattern: RegExp) => throwsShm(fn, 'ERR_INVALID_ARGUMENT', pattern)
    refused(() => shm.copyBytes(new Uint8Array(4), new Uint8Array(4)), /neither view lies in segment/)
    refused(() => shm.copyBytes(mine.subarray(0, 8), inSegment.subarray(0, 16)), /8 bytes, source 16/)
    refused(() => shm.copyBytes(mine, 'x' as never), /two TypedArrays or DataViews/)
    const spare = new Uint8Array(shm.buffer, shm.bytes.byteOffset + shm.size, 8) // the page after the segment
    refused(() => shm.copyBytes(spare, mine.subarray(0, 8)), /outside the segment/)
    shm.close()
    throwsShm(() => shm.copyBytes(inSegment, mine), 'ERR_SHM_CLOSED')
  })
})

describe('native argument checks', () => {
  it('wait and wake take a 4-byte aligned offset inside the segment', () => {
    const shm = create()
    const id = idOf(shm)
    const last = SIZE - 4
    const at = (offset: number) => Atomics.load(shm.segment.words, offset >> 2)
    expect(native.wait(id, last, at(last), 0)).toBe('timed-out')
    expect(native.wait(id, 0, at(0) + 1, 0)).toBe('not-equal')
    for (const offset of [2, 4097, -4, -1, SIZE, SIZE - 2, SIZE + 4, 2 ** 53, 4.5, Infinity]) {
      expect(() => native.wait(id, offset, 0, 0)).toThrow(RangeError)
      expect(() => native.wake(id, offset, 1)).toThrow(RangeError)
    }
    expect(() => native.wait(id, NaN, 0, 0)).toThrow(RangeError)
    expect(() => native.wake(id, NaN, 1)).toThrow(RangeError)
    expect(() => native.wait(id, '8' as never, 0, 0)).toThrow(TypeError)
    expect(() => native.wait(id, 8, 'x' as never, 0)).toThrow(TypeError)
    expect(() => native.wait(id, 8, NaN, 0)).toThrow(RangeError)
    expect(() => native.wait(id, 8, 0, NaN)).toThrow(RangeError)
    expect(() => native.wake(id, 8, undefined as never)).toThrow(TypeError)
    expect(() => native.wake(id, 8, -1)).toThrow(RangeError)
    for (const expected of [Infinity, -Infinity, 1.5, 2 ** 32, -(2 ** 31) - 1]) {
      expect(() => native.wait(id, 8, expected, 0)).toThrow(RangeError)
    }
    expect(() => (native.wait as (...a: unknown[]) => unknown)(id)).toThrow(TypeError)
  })

  it('copy takes a TypedArray or DataView whose bytes lie inside the segment, both ways', () => {
    const shm = create()
    const id = idOf(shm)
    const src = new Float64Array(8192).map((_, i) => i * 1.5) // 64 KiB: the bulk path
    native.copy(id, SIZE - src.byteLength, src, true)
    expect(new Float64Array(shm.buffer, shm.bytes.byteOffset + SIZE - src.byteLength, src.length)).toEqual(src)
    const back = new BigInt64Array(src.length)
    native.copy(id, SIZE - src.byteLength, back, false)
    expect(new Float64Array(back.buffer)).toEqual(src)
    const dv = new DataView(new ArrayBuffer(16))
    native.copy(id, 0, dv, false)
    expect(dv.getUint32(0, true)).toBe(shm.bytes[0]! | (shm.bytes[1]! << 8) | (shm.bytes[2]! << 16) | (shm.bytes[3]! << 24))
    for (const offset of [-1, 1.5, SIZE - src.byteLength + 1, SIZE, 2 ** 53, Infinity]) {
      expect(() => native.copy(id, offset, src, true)).toThrow(RangeError)
    }
    expect(() => native.copy(id, NaN, src, true)).toThrow(RangeError)
    for (const view of [new ArrayBuffer(8), [1, 2], 'bytes', undefined]) {
      expect(() => native.copy(id, 0, view as never, true)).toThrow(TypeError)
    }
  })

  it('refuses unknown segment ids as closed', () => {
    for (const id of [0, 999_999, 1.5, -1, 2 ** 32 + 1, Infinity]) {
      const err = caught(() => native.wait(id, 0, 0, 0))
      expect(err).toBeInstanceOf(ShmError)
      expect((err as ShmError).code).toBe('ERR_SHM_CLOSED')
    }
    expect(() => native.close('1' as never)).toThrow(TypeError)
  })

  it('open checks the OS name, size and mode', () => {
    const name = freshName()
    const osName = `/ipo-${name}`
    expect(() => native.open(name, page * 4, 0, false)).toThrow(TypeError) // no leading '/'
    expect(() => native.open(`/${'x'.repeat(31)}`, page * 4, 0, false)).toThrow(TypeError)
    expect(() => native.open('/a b', page * 4, 0, false)).toThrow(TypeError)
    expect(() => native.open(osName, page * 4 + 1, 0, false)).toThrow(RangeError)
    expect(() => native.open(osName, 0, 0, false)).toThrow(RangeError)
    expect(() => native.open(osName, page * 4, 7 as never, false)).toThrow(RangeError)
    expect(() => native.open(osName, NaN, 0, false)).toThrow(RangeError)
    throwsShm(() => native.open(osName, 0, 1, false), 'ERR_SHM_NOT_FOUND')
    throwsShm(() => native.unlink(osName), 'ERR_SHM_NOT_FOUND')
  })

  it('processAlive checks its argument', () => {
    expect(() => native.processAlive('1' as never)).toThrow(TypeError)
    expect(() => native.processAlive(1.5)).toThrow(RangeError)
    expect(() => native.processAlive(NaN)).toThrow(RangeError)
  })
})

describe('after close', () => {
  it('bytes and buffer throw, old views read zeros and their writes reach nobody, close twice is harmless', () => {
    const shm = SharedMemory.create({ name: freshName(), size: SIZE })
    const peer = SharedMemory.open({ name: shm.name })
    const before = shm.bytes
    const f64 = new Float64Array(shm.buffer, shm.bytes.byteOffset + 8192, 16)
    before[100] = 1
    f64[0] = 2.5
    expect(peer.bytes[100]).toBe(1)
    shm.close()
    expect(shm.closed).toBe(true)
    throwsShm(() => shm.bytes, 'ERR_SHM_CLOSED', /closed/)
    throwsShm(() => shm.buffer, 'ERR_SHM_CLOSED')
    throwsShm(() => shm.creatorPid, 'ERR_SHM_CLOSED')
    // The buffer is a SharedArrayBuffer (it cannot be detached): close() maps anonymous
    // memory over the window, so old views keep their length and read zeros.
    expect(before.length).toBe(SIZE)
    expect(before[100]).toBe(0)
    expect(f64[0]).toBe(0)
    before[100] = 3 // lands in this process's private pages, not in the segment
    expect(peer.bytes[100]).toBe(1)
    expect(new Float64Array(peer.buffer, peer.bytes.byteOffset + 8192, 1)[0]).toBe(2.5)
    shm.close()
    shm.close()
    expect(shm.closed).toBe(true)
    peer.close()
  })

  it('wait and wake refuse a closed segment', () => {
    const shm = SharedMemory.create({ name: freshName(), size: SIZE })
    const id = idOf(shm)
    shm.close()
    throwsShm(() => shm.segment.wait(8192, 0, 10), 'ERR_SHM_CLOSED')
    throwsShm(() => shm.segment.wake(8192, 1), 'ERR_SHM_CLOSED')
    // The addon itself refuses the stale id too.
    throwsShm(() => native.wait(id, 8192, 0, 10), 'ERR_SHM_CLOSED')
    throwsShm(() => native.wake(id, 8192, 1), 'ERR_SHM_CLOSED')
    throwsShm(() => native.close(id), 'ERR_SHM_CLOSED')
  })

  it('closing one handle leaves the other handles of the same process working', () => {
    const a = create()
    const b = SharedMemory.open({ name: a.name })
    b.close()
    a.bytes[5000] = 11
    const c = track(SharedMemory.open({ name: a.name }))
    expect(c.bytes[5000]).toBe(11)
  })
})

describe('lifetime', () => {
  it('the creator’s close removes the name; openers keep their mapping', () => {
    const name = freshName()
    const creator = SharedMemory.create({ name, size: SIZE })
    const opener = track(SharedMemory.open({ name }))
    creator.bytes[9000] = 77
    creator.close()
    throwsShm(() => SharedMemory.open({ name }), 'ERR_SHM_NOT_FOUND')
    expect(opener.bytes[9000]).toBe(77)
    opener.bytes[9001] = 78
    expect(opener.bytes[9001]).toBe(78)
    if (isLinux) expect(fs.existsSync(`/dev/shm/ipo-${name}`)).toBe(false)
    // The name is free again: a new, independent segment can take it.
    const next = track(SharedMemory.create({ name, size: SIZE }))
    expect(next.bytes[9000]).toBe(0)
    expect(opener.bytes[9000]).toBe(77)
  })

  it('a creator’s close leaves the name alone once it belongs to a newer segment', () => {
    const name = freshName()
    const old = SharedMemory.create({ name, size: SIZE })
    SharedMemory.unlink(name) // e.g. a stale-segment cleanup
    const newer = track(SharedMemory.create({ name, size: SIZE }))
    newer.bytes[9000] = 3
    old.close()
    const peer = track(SharedMemory.open({ name }))
    expect(peer.bytes[9000]).toBe(3)
  })

  it('an opener’s close does not remove the name', () => {
    const shm = create()
    SharedMemory.open({ name: shm.name }).close()
    track(SharedMemory.open({ name: shm.name })).close()
    expect(track(SharedMemory.open({ name: shm.name })).size).toBe(SIZE)
  })

  it('unlinkOnExit: false keeps the name after the creator closes', () => {
    const name = freshName()
    const creator = SharedMemory.create({ name, size: SIZE, unlinkOnExit: false })
    creator.bytes[9000] = 5
    creator.close()
    const again = SharedMemory.open({ name })
    expect(again.bytes[9000]).toBe(5)
    again.close()
    SharedMemory.unlink(name)
    throwsShm(() => SharedMemory.open({ name }), 'ERR_SHM_NOT_FOUND')
  })

  for (const how of ['natural', 'exit'] as const) {
    it(`a creator that ends without close (${how}) removes the name on exit`, async () => {
      const name = freshName()
      const child = startChild('segment-creator.ts', [name, how])
      const report = await child.next<{ pid: number; size: number }>()
      expect(report.size).toBe(64 * 1024)
      expect(await child.exited).toBe(0)
      throwsShm(() => SharedMemory.open({ name }), 'ERR_SHM_NOT_FOUND')
    })
  }

  it('1000 create/open/close/unlink cycles of 64 MiB give the memory back', async () => {
    const name = freshName('cyc')
    const cycles = 1000
    const child = startChild('segment-cycles.ts', [name, String(cycles), String(64 << 20)], ['--expose-gc'])
    const report = await child.next<{ cycles: number; sawWrite: number; sawFresh: number; rssAt100: number; rssEnd: number; ms: number }>()
    expect(await child.exited).toBe(0)
    expect(report.cycles).toBe(cycles)
    expect(report.sawWrite).toBe(cycles)
    expect(report.sawFresh).toBe(cycles)
    const growthMiB = (report.rssEnd - report.rssAt100) / 2 ** 20
    expect(growthMiB).toBeLessThan(64)
    throwsShm(() => SharedMemory.open({ name }), 'ERR_SHM_NOT_FOUND')
  }, 180_000)
})
