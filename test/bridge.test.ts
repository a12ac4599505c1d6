// The Electron bridge without Electron: main's SharedObjectsHost creates a real segment,
// a real child process (the "utility worker") writes into it, the real preload code
// (exposeSharedObjects) runs against an emulation of contextBridge on vm contexts, and
// the real renderer client — bundled for the browser — runs in the emulated main world.
import { EventEmitter } from 'node:events'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SharedMemory, StructArray } from 'interprocess-objects'
import { SharedObjectsHost, type GrantSpec } from 'interprocess-objects/main'
import { exposeSharedObjects, parseBridgeError, type BridgeApi, type Exposed } from 'interprocess-objects/preload'
// White-box: how the host hands grants to the preload is internal to the package.
import { grantsFromArgv } from '../preload/grants'
import { GRANTS_SWITCH } from '../common/bridge_protocol'
import { columnLayout, connect } from 'interprocess-objects/renderer'
import { bundleForBrowser } from '../e2e/bundle'
import { createContextBridgeEmulation, type ContextBridgeEmulation } from './helpers/context_bridge'
import { startChild, type Child } from './helpers/processes'
import { PARTICLES, Particle, SAMPLES, Stats, regions } from './children/bridge-schema'

const windowSpec: GrantSpec = {
  data: {
    regions: { stats: 'readwrite', samples: 'read', table: 'readwrite' },
    channels: { toRenderer: 'take', fromRenderer: 'put' },
  },
}

function errorOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn()
  } catch (err) {
    return err as { code?: string; message: string }
  }
  throw new Error('expected an error, nothing was thrown')
}

async function rejectionOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p
  } catch (err) {
    return err as { code?: string; message: string }
  }
  throw new Error('expected a rejection, the promise resolved')
}

describe('contextBridge emulation follows the documented copy rules', () => {
  const em = createContextBridgeEmulation()
  const MainArrayBuffer = em.run<ArrayBufferConstructor>('ArrayBuffer')
  const MainObject = em.run<ObjectConstructor>('Object')

  it('copies TypedArrays into the other world, with their whole buffer', () => {
    const backing = new Uint8Array(64)
    const view = backing.subarray(8, 12)
    const copy = em.toMainWorld(view) as Uint8Array
    expect(copy).not.toBe(view)
    expect(copy.buffer).toBeInstanceOf(MainArrayBuffer)
    expect(copy.buffer.byteLength).toBe(64) // the serializer copies the backing buffer
    expect([copy.byteOffset, copy.length]).toEqual([8, 4])
    copy[0] = 9
    expect(view[0]).toBe(0)
  })

  it('throws for SharedArrayBuffer and Proxies, drops prototypes and symbols, keeps only error messages', () => {
    expect(errorOf(() => em.toMainWorld(new SharedArrayBuffer(8))).message).toMatch(/could not be cloned/)
    expect(errorOf(() => em.toMainWorld(new Int32Array(new SharedArrayBuffer(8)))).message).toMatch(/could not be cloned/)
    expect(errorOf(() => em.toMainWorld(new Map([['p', new Proxy({}, {})]]))).message).toMatch(/could not be cloned/)
    class Point {
      x = 1
      norm(): number {
        return this.x
      }
    }
    const p = em.toMainWorld(new Point()) as Record<string, unknown>
    expect(Object.getPrototypeOf(p)).toBe(MainObject.prototype)
    expect(p.x).toBe(1)
    expect(p.norm).toBeUndefined()
    expect(em.toMainWorld({ s: Symbol('x') })).toEqual({ s: undefined })
    const err = Object.assign(new Error('boom'), { code: 'ERR_X' })
    const copied = em.toMainWorld(err) as Error & { code?: string }
    expect(copied.message).toBe('boom')
    expect(copied.code).toBeUndefined()
  })

  it('proxies functions and promises; a thrown error reaches the caller as its message', async () => {
    const fn = (a: { n: number }) => {
      if (a.n < 0) throw Object.assign(new Error('ERR_NEG: negative'), { code: 'ERR_NEG' })
      return Promise.resolve({ doubled: a.n * 2 })
    }
    const proxied = em.toMainWorld(fn) as typeof fn
    expect(proxied).not.toBe(fn)
    expect(em.toIsolatedWorld(proxied)).toBe(fn) // sent back: the original
    const res = proxied({ n: 21 })
    expect(res).toBeInstanceOf(em.run<PromiseConstructor>('Promise'))
    expect(await res).toEqual({ doubled: 42 })
    const thrown = errorOf(() => proxied({ n: -1 }))
    expect(thrown.message).toBe('ERR_NEG: negative')
    expect(thrown.code).toBeUndefined()
    expect(parseBridgeError(thrown)).toEqual({ code: 'ERR_NEG', message: 'negative' })
  })

  it('deep-freezes what is exposed and refuses to overwrite a global', () => {
    em.contextBridge.exposeInMainWorld('api', { nested: { f: () => 1 }, list: [1] })
    expect(em.run('Object.isFrozen(window.api.nested) && Object.isFrozen(window.api.list)')).toBe(true)
    expect(em.run('window.api.nested.f()')).toBe(1)
    expect(() => em.contextBridge.exposeInMainWorld('api', {})).toThrow(/existing property/)
  })
})

describe('SharedObjectsHost (main process, no Electron needed)', () => {
  it('creates segments and regions, grants per window, and unlinks on quit', () => {
    const host = SharedObjectsHost.create({
      prefix: 'hst',
      segments: { data: { size: 1 << 20, regions, channels: ['toRenderer', 'fromRenderer'] }, other: { size: 1 << 16, regions: { keys: 32 } } },
    })
    const app = new EventEmitter()
    host.closeOnQuit(app)
    const names = host.aliases.map((a) => host.segment(a).name)
    try {
      const stats = host.region('data', 'stats')
      expect(stats.offset % 16).toBe(0)
      expect(stats.byteLength).toBe(Stats.byteLength)
      expect(stats.bytes.buffer).toBe(host.segment('data').buffer)
      expect(stats.bump()).toBe(1)
      expect(stats.counter()).toBe(1)
      // Regions come from the segment heap: they do not overlap.
      const spans = ['stats', 'samples', 'table'].map((r) => host.region('data', r)).sort((a, b) => a.offset - b.offset)
      for (let i = 1; i < spans.length; i++) expect(spans[i]!.offset).toBeGreaterThanOrEqual(spans[i - 1]!.offset + spans[i - 1]!.byteLength)

      const prefs = host.webPreferences(windowSpec, { preload: '/app/preload.js', additionalArguments: ['--keep'] })
      expect(prefs).toMatchObject({ preload: '/app/preload.js', sandbox: false, contextIsolation: true, nodeIntegration: false })
      expect(prefs.additionalArguments?.[0]).toBe('--keep')
      const grants = grantsFromArgv(['electron', ...(prefs.additionalArguments ?? [])])!
      expect(Object.keys(grants.segments)).toEqual(['data']) // "other" was not granted
      expect(grants.segments.data!.name).toBe(host.segment('data').name)
      expect(grants.segments.data!.regions.samples).toMatchObject({ access: 'read', byteLength: SAMPLES * 4 })
      expect(grants.segments.data!.channels).toEqual({ toRenderer: 'take', fromRenderer: 'put' })
      expect(host.webPreferences(windowSpec, {}, { direct: true }).contextIsolation).toBe(false)
      expect(grantsFromArgv(host.webPreferences(windowSpec, {}, { direct: true }).additionalArguments!)!.mode).toBe('direct')

      expect(() => host.grants({ data: { regions: { nope: 'read' } } })).toThrow(/no region "nope"/)
      expect(() => host.grants({ data: { channels: { secret: 'take' } } })).toThrow(/not declared/)
      expect(() => host.grants({ missing: {} })).toThrow(/no segment "missing"/)
      expect(() => host.webPreferences(windowSpec, { nodeIntegration: true })).toThrow(/nodeIntegration/)
      const manifest = host.manifest()
      expect(Object.keys(manifest.segments)).toEqual(['data', 'other'])
      expect(manifest.segments.other!.regions.keys!.access).toBe('readwrite')
    } finally {
      app.emit('will-quit')
    }
    expect(host.closed).toBe(true)
    for (const name of names) expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
  })
})

describe('preload + renderer through the emulated contextBridge, against a real segment and child process', () => {
  let host: SharedObjectsHost
  let child: Child
  let em: ContextBridgeEmulation
  let exposed: Exposed
  const opened: string[] = []

  beforeAll(async () => {
    host = SharedObjectsHost.create({
      prefix: 'brg',
      segments: {
        data: { size: 1 << 20, regions, channels: ['toRenderer', 'fromRenderer'] },
        secret: { size: 1 << 16, regions: { keys: 64 }, channels: ['admin'] },
      },
    })
    const prefs = host.webPreferences(windowSpec, { preload: 'preload.js' })
    em = createContextBridgeEmulation()
    exposed = exposeSharedObjects({
      argv: ['electron', '.', ...prefs.additionalArguments!],
      contextBridge: em.contextBridge,
      contextIsolated: true,
      global: {},
      open: (name) => {
        opened.push(name)
        return SharedMemory.open({ name })
      },
    })
    em.run(await bundleForBrowser(path.join(__dirname, 'children', 'bridge-renderer.ts')), 'bridge-renderer.js')
    child = startChild('bridge-peer.ts', [JSON.stringify(host.manifest())])
    expect(await child.next()).toEqual({ ready: true })
    child.send({ op: 'write' })
    expect(await child.next()).toEqual({ done: 'write' })
  })

  afterAll(async () => {
    child?.send({ op: 'exit' })
    await child?.exited
    exposed?.close()
    host?.close()
  })

  it('reads what the child wrote: struct fields, nested structs, arrays, counters', () => {
    const seen = em.run<Record<string, unknown>>(`{
      const c = IPO.connect()
      const stats = c.region('data', 'stats').struct(IPO.Stats)
      ;({
        mode: c.mode,
        segments: c.segments,
        frame: stats.frame, fps: stats.fps, big: stats.big, ok: stats.ok, name: stats.name,
        pos: [stats.pos.x, stats.pos.y],
        history: Array.from(stats.history.slice()),
        historyIsF32: stats.history.slice() instanceof Float32Array,
        id1: stats.ids[1], idsLength: stats.ids.length, idAt: stats.ids.at(-1),
        json: stats.toJSON(),
        counter: c.region('data', 'stats').counter(),
      })
    }`)
    expect(seen).toEqual({
      mode: 'bridge',
      segments: ['data'],
      frame: 7,
      fps: 59.5,
      big: -(2n ** 40n),
      ok: true,
      name: 'child héé',
      pos: [1.25, -2],
      history: [1, 2, 3, 4.5],
      historyIsF32: true,
      id1: 20,
      idsLength: 3,
      idAt: 30,
      json: { frame: 7, fps: 59.5, big: -(2n ** 40n), ok: true, name: 'child héé', pos: { x: 1.25, y: -2 }, history: [1, 2, 3, 4.5], ids: [10, 20, 30] },
      counter: 1,
    })
    // Only the granted segment was ever mapped by the preload.
    expect(opened).toEqual([host.segment('data').name])
  })

  it('reads typed arrays and StructArray tables element-wise and in bulk', () => {
    const seen = em.run<Record<string, unknown>>(`{
      const c = IPO.connect()
      const samples = c.region('data', 'samples').array('float32', 0, IPO.SAMPLES)
      const table = c.region('data', 'table').structArray(IPO.Particle, 0, IPO.PARTICLES)
      const all = samples.slice()
      ;({
        s3: samples[3], s1023: samples.at(-1), len: samples.length, sum: all.reduce((a, b) => a + b, 0),
        row2: { x: table.at(2).x, mass: table.at(2).mass, id: table.at(2).id, alive: table.at(2).alive, label: table.at(2).label },
        ids: Array.from(table.column('id').slice()),
        rows: table.toArray().map((r) => r.label),
        iterated: [...table].length,
      })
    }`)
    expect(seen).toEqual({
      s3: 1.5,
      s1023: 511.5,
      len: SAMPLES,
      sum: (0.5 * (SAMPLES - 1) * SAMPLES) / 2,
      row2: { x: 2.25, mass: 20, id: 102, alive: true, label: 'p2' },
      ids: [100, 101, 102, 103, 104, 105, 106, 107],
      rows: ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'],
      iterated: PARTICLES,
    })
  })

  it('writes back through the bridge and the child sees it; messages go both ways as copies', async () => {
    const taken = await em.run<Promise<unknown[]>>(`
      (async () => {
        const c = IPO.connect()
        const stats = c.region('data', 'stats').struct(IPO.Stats)
        stats.frame = 8
        stats.fps = 60.25
        stats.name = 'renderer'
        stats.pos.y = 3.5
        stats.history[2] = -1
        c.region('data', 'stats').bump()
        const table = c.region('data', 'table').structArray(IPO.Particle, 0, IPO.PARTICLES)
        table.at(5).label = 'r5'
        table.column('x').set([9.5, 8.5], 0)
        const inbox = c.channel('data', 'toRenderer')
        const out = c.channel('data', 'fromRenderer')
        const got = []
        while (inbox.count() > 0) got.push(await inbox.take())
        await out.put({ from: 'renderer', values: [1, 2], bytes: new Uint8Array([7, 8]) })
        return got
      })()
    `)
    const [hello, floats, map] = taken as [Record<string, unknown>, Float64Array, Map<string, number>]
    expect(hello).toEqual({ kind: 'hello', list: [1, 2, 3], nested: { a: 'b' }, when: new Date(0), big: 12n })
    expect(Object.getPrototypeOf(hello)).toBe(em.run('Object.prototype'))
    expect(floats).toBeInstanceOf(em.run<Float64ArrayConstructor>('Float64Array'))
    expect(Array.from(floats)).toEqual([1.5, 2.5])
    expect(map).toBeInstanceOf(em.run<MapConstructor>('Map'))
    expect([...map]).toEqual([['a', 1]])

    child.send({ op: 'report' })
    const report = await child.next<Record<string, unknown>>()
    expect(report.stats).toEqual({ frame: 8, fps: 60.25, name: 'renderer', posY: 3.5, history: [1, 2, -1, 4.5], big: String(-(2n ** 40n)) })
    expect((report.rows as Array<{ x: number; label: string }>).map((r) => r.x).slice(0, 3)).toEqual([9.5, 8.5, 2.25])
    expect((report.rows as Array<{ label: string }>)[5]!.label).toBe('r5')
    expect(report.statsCounter).toBe(2)
    expect(report.messages).toEqual([{ from: 'renderer', values: [1, 2], bytes: { 0: 7, 1: 8 } }])
  })

  it('waits for messages without polling, and times out with a code', async () => {
    const waiting = em.run<Promise<unknown>>(`IPO.connect().channel('data', 'toRenderer').next(5000)`)
    await host.segment('data').accessAsync((tx) => tx.putMessage('late', { channel: 'toRenderer' }))
    expect(await waiting).toBe('late')
    const timedOut = await rejectionOf(em.run<Promise<unknown>>(`IPO.connect().channel('data', 'toRenderer').wait(30)`))
    expect(timedOut.code).toBe('ERR_TIMEOUT')
    const empty = await rejectionOf(em.run<Promise<unknown>>(`IPO.connect().channel('data', 'toRenderer').take()`))
    expect(empty.code).toBe('ERR_NO_MESSAGES')
  })

  it('sees counters advance without reading the data', async () => {
    const before = em.run<number>(`IPO.connect().region('data', 'stats').counter()`)
    child.send({ op: 'bump', times: 5 })
    expect(await child.next()).toEqual({ done: 'bump' })
    expect(em.run<number>(`IPO.connect().region('data', 'stats').counter()`)).toBe(before + 5)
  })

  it('refuses what was not granted: other segments, regions, channels, writes to read-only regions, out-of-range offsets', () => {
    const secretName = host.segment('secret').name
    const codes = em.run<Record<string, string>>(`{
      const c = IPO.connect()
      const codeOf = (fn) => { try { fn(); return 'none' } catch (e) { return e.code + (e instanceof IPO.ShmError ? '' : ' (not a ShmError)') } }
      ;({
        secret: codeOf(() => c.region('secret', 'keys')),
        byRealName: codeOf(() => c.region(${JSON.stringify(secretName)}, 'keys')),
        region: codeOf(() => c.region('data', 'nope')),
        channel: codeOf(() => c.channel('secret', 'admin')),
        wrongWay: codeOf(() => c.channel('data', 'fromRenderer').count()),
        readOnly: codeOf(() => { c.region('data', 'samples').array('float32', 0, 4)[0] = 1 }),
        readOnlyWrite: codeOf(() => c.region('data', 'samples').write(0, new Uint8Array(4))),
        outOfRange: codeOf(() => c.region('data', 'stats').read(0, 1 << 20)),
        negative: codeOf(() => c.region('data', 'stats').get('uint8', -1)),
        fraction: codeOf(() => c.region('data', 'stats').get('float64', 0.5)),
        badHandle: (() => { try { window.sharedObjects.getFloat64(999, 0); return 'none' } catch (e) { return IPO.parseBridgeError(e).code } })(),
        tooLong: codeOf(() => { c.region('data', 'stats').struct(IPO.Stats).name = 'x'.repeat(17) }),
        structOutside: codeOf(() => c.region('data', 'stats').struct(IPO.Stats, 8)),
      })
    }`)
    expect(codes).toEqual({
      secret: 'ERR_NOT_GRANTED',
      byRealName: 'ERR_NOT_GRANTED',
      region: 'ERR_NOT_GRANTED',
      channel: 'ERR_NOT_GRANTED',
      wrongWay: 'ERR_NOT_GRANTED',
      readOnly: 'ERR_SHM_READONLY',
      readOnlyWrite: 'ERR_SHM_READONLY',
      outOfRange: 'ERR_OUT_OF_RANGE',
      negative: 'ERR_OUT_OF_RANGE',
      fraction: 'ERR_OUT_OF_RANGE',
      badHandle: 'ERR_INVALID_ARGUMENT',
      tooLong: 'ERR_INVALID_ARGUMENT',
      structOutside: 'ERR_OUT_OF_RANGE',
    })
    expect(opened).not.toContain(secretName)
    const rejected = em.run<Promise<unknown>>(`window.sharedObjects.putMessage('secret', 'admin', 'let me in')`)
    return expect(rejected).rejects.toThrow(/^ERR_NOT_GRANTED: /)
  })

  it('copies rather than shares: a read is a detached copy, the page never holds segment memory', () => {
    const stats = host.region('data', 'stats')
    const result = em.run<{ first: number; again: number; bufferBytes: number; isMainBuffer: boolean; frozen: boolean }>(`{
      const r = IPO.connect().region('data', 'stats')
      const a = r.read(0, 16)
      const first = a[0]
      a[0] ^= 0xff
      ;({ first, again: r.read(0, 16)[0], bufferBytes: a.buffer.byteLength, isMainBuffer: a.buffer instanceof ArrayBuffer, frozen: Object.isFrozen(window.sharedObjects) })
    }`)
    expect(result.again).toBe(result.first)
    expect(stats.bytes[0]).toBe(result.first)
    expect(result.bufferBytes).toBe(16) // a fresh buffer, not a window on the segment
    expect(result.isMainBuffer).toBe(true)
    expect(result.frozen).toBe(true)
    // Nothing reachable from the page is backed by the segment's buffer.
    const shared = host.segment('data').buffer
    const api = em.window.sharedObjects as Record<string, unknown>
    for (const v of Object.values(api)) expect(v).not.toBe(shared)
    expect(typeof api.bytes).toBe('undefined') // direct-mode accessors are not exposed in bridge mode
  })
})

describe('direct mode (contextIsolation: false): real shared memory, zero-copy', () => {
  it('hands the page core views over the segment itself', () => {
    const host = SharedObjectsHost.create({ prefix: 'dir', segments: { data: { size: 1 << 20, regions } } })
    const page: Record<string, unknown> = {}
    try {
      const prefs = host.webPreferences({ data: { regions: { stats: 'readwrite', table: 'read' } } }, {}, { direct: true })
      expect(() => exposeSharedObjects({ argv: prefs.additionalArguments!, contextIsolated: true, global: page })).toThrow(/needs contextIsolation: false/)
      const exposed = exposeSharedObjects({ argv: prefs.additionalArguments!, contextIsolated: false, global: page })
      const c = connect({ api: page.sharedObjects as BridgeApi })
      expect(c.mode).toBe('direct')
      const region = c.region('data', 'stats')
      expect(region.live).toBe(true)
      const stats = region.struct(Stats)
      stats.fps = 30.5
      expect(Stats.view(host.region('data', 'stats').bytes).fps).toBe(30.5) // same memory, no call
      // The preload mapped the segment itself (another mapping of the same pages): a write
      // through either is visible through the other at once.
      host.region('data', 'stats').bytes[0] = 0x5a
      expect(region.bytes()[0]).toBe(0x5a)
      region.bytes()[1] = 0xa5
      expect(host.region('data', 'stats').bytes[1]).toBe(0xa5)
      host.region('data', 'stats').bump()
      expect(region.counter()).toBe(1)
      const table = c.region('data', 'table').structArray(Particle, 0, PARTICLES)
      expect(table instanceof StructArray).toBe(true)
      exposed.close()
    } finally {
      host.close()
    }
  })

  it('refuses bridge mode in a window without isolation', () => {
    const host = SharedObjectsHost.create({ prefix: 'dir', segments: { data: { size: 1 << 16, regions: { a: 8 } } } })
    try {
      const prefs = host.webPreferences({ data: { regions: { a: 'read' } } })
      expect(() => exposeSharedObjects({ argv: prefs.additionalArguments!, contextIsolated: false, global: {} })).toThrow(/contextIsolation: false/)
      expect(() => exposeSharedObjects({ argv: [], contextBridge: { exposeInMainWorld() {} } })).toThrow(/ERR_NOT_GRANTED: .*--ipo-grants=/)
      expect(() => exposeSharedObjects({ argv: prefs.additionalArguments!, contextIsolated: false, global: {} })).toThrow(expect.objectContaining({ name: 'ShmError', code: 'ERR_INVALID_ARGUMENT' }))
      expect(() => exposeSharedObjects({ argv: [`${GRANTS_SWITCH}{nope`], contextBridge: { exposeInMainWorld() {} } })).toThrow(/no valid JSON/)
    } finally {
      host.close()
    }
  })
})

describe('renderer column layout', () => {
  it('matches core StructArray column offsets', () => {
    const bytes = new Uint8Array(StructArray.byteLength(Particle, 7) + 64)
    const arr = new StructArray(Particle, bytes, 0, 7)
    const { offsets, byteLength } = columnLayout(Particle, 7)
    expect(byteLength).toBe(StructArray.byteLength(Particle, 7))
    expect(offsets[0]).toBe(arr.column('x').byteOffset)
    expect(offsets[1]).toBe(arr.column('mass').byteOffset)
    expect(offsets[2]).toBe(arr.column('id').byteOffset)
  })

  it('segment names are unique per host', () => {
    const a = SharedObjectsHost.create({ segments: { x: { size: 1 << 16 } } })
    const b = SharedObjectsHost.create({ segments: { x: { size: 1 << 16 } } })
    try {
      expect(a.segment('x').name).not.toBe(b.segment('x').name)
      expect(a.segment('x').name.length).toBeLessThanOrEqual(26)
    } finally {
      a.close()
      b.close()
    }
  })
})

