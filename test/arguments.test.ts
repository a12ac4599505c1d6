// Every public function of every entry point, called with wrong types, NaN, negative,
// huge and missing values: each throws (or rejects with) an error whose code is
// ERR_INVALID_ARGUMENT (ERR_INVALID_NAME for segment names) and whose message names the
// argument — never a TypeError or RangeError from deep inside, never a hang — and a call
// that fails creates nothing.
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SharedMemory, StructArray, array, defineStruct, registerClass, utf8 } from 'interprocess-objects'
import { ElectronHost, NodeHost, SharedObjectsHost, WorkerPool } from 'interprocess-objects/main'
import { createBridge, exposeSharedObjects, regionBytes, regionCounter } from 'interprocess-objects/preload'
import { columnLayout, connect } from 'interprocess-objects/renderer'
import { serveTasks } from 'interprocess-objects/utility'
import { childrenDir, uniqueName } from './helpers/processes'

type Case = readonly [label: string, call: () => unknown, code: string, names: RegExp]

const bad = (v: unknown) => v as never
const workerScript = path.join(childrenDir, 'offload-worker.ts')

async function outcome(call: () => unknown): Promise<{ code?: unknown; message: string; name: string } | 'no error'> {
  try {
    await call()
    return 'no error'
  } catch (err) {
    const e = err as { code?: unknown; message: string; name: string }
    return { code: e.code, message: e.message, name: e.name }
  }
}

describe('argument checks of every entry point', () => {
  let shm: SharedMemory
  const P = defineStruct({ x: 'uint8' }, 'ArgP')
  beforeAll(() => {
    shm = SharedMemory.create({ name: uniqueName('arg'), size: 1 << 20 })
  })
  afterAll(() => shm?.close())

  const cases = (): Case[] => [
    // interprocess-objects
    ['SharedMemory.create()', () => SharedMemory.create(bad(undefined)), 'ERR_INVALID_ARGUMENT', /options object/],
    ['SharedMemory.create({ name })', () => SharedMemory.create(bad({ name: uniqueName('a') })), 'ERR_INVALID_ARGUMENT', /size/],
    ['SharedMemory.create({ size: NaN })', () => SharedMemory.create({ name: uniqueName('a'), size: NaN }), 'ERR_INVALID_ARGUMENT', /size/],
    ['SharedMemory.create({ size: -1 })', () => SharedMemory.create({ name: uniqueName('a'), size: -1 }), 'ERR_INVALID_ARGUMENT', /size/],
    ['SharedMemory.create({ size: 2**53 })', () => SharedMemory.create({ name: uniqueName('a'), size: 2 ** 53 }), 'ERR_INVALID_ARGUMENT', /size/],
    ['SharedMemory.create({ name: 5 })', () => SharedMemory.create({ name: bad(5), size: 1 << 20 }), 'ERR_INVALID_NAME', /name/],
    ['SharedMemory.create({ prefualt })', () => SharedMemory.create(bad({ name: uniqueName('a'), size: 1 << 20, prefualt: true })), 'ERR_INVALID_ARGUMENT', /prefault/],
    ['SharedMemory.open({})', () => SharedMemory.open(bad({})), 'ERR_INVALID_NAME', /name/],
    ['SharedMemory.open({ readyTimeoutMs: -1 })', () => SharedMemory.open({ name: uniqueName('a'), readyTimeoutMs: -1 }), 'ERR_INVALID_ARGUMENT', /readyTimeoutMs/],
    ['SharedMemory.openOrCreate({ readyTimeoutMs: NaN })', () => SharedMemory.openOrCreate({ name: uniqueName('a'), size: 1 << 20, readyTimeoutMs: NaN }), 'ERR_INVALID_ARGUMENT', /readyTimeoutMs/],
    ['SharedMemory.unlink(5)', () => SharedMemory.unlink(bad(5)), 'ERR_INVALID_NAME', /name/],
    ['shm.access(42)', () => shm.access(bad(42)), 'ERR_INVALID_ARGUMENT', /fn must be a function/],
    ['shm.access(fn, { timeoutMs: NaN })', () => shm.access(() => 1, { timeoutMs: NaN }), 'ERR_INVALID_ARGUMENT', /timeoutMs/],
    ['shm.access(fn, { timeoutMs: -1 })', () => shm.access(() => 1, { timeoutMs: -1 }), 'ERR_INVALID_ARGUMENT', /timeoutMs/],
    ['shm.access(fn, { wait: "fast" })', () => shm.access(() => 1, { wait: bad('fast') }), 'ERR_INVALID_ARGUMENT', /wait/],
    ['shm.access(fn, 5)', () => shm.access(() => 1, bad(5)), 'ERR_INVALID_ARGUMENT', /options object/],
    ["shm.accessAsync('x')", () => shm.accessAsync(bad('x')), 'ERR_INVALID_ARGUMENT', /fn must be a function/],
    ['shm.accessAsync(fn, { signal: 1 })', () => shm.accessAsync(() => 1, { signal: bad(1) }), 'ERR_INVALID_ARGUMENT', /signal/],
    ['shm.accessAsync(fn, { timeoutMs: NaN })', () => shm.accessAsync(() => 1, { timeoutMs: NaN }), 'ERR_INVALID_ARGUMENT', /timeoutMs/],
    ['shm.waitForMessage({ timeoutMs: NaN })', () => shm.waitForMessage({ timeoutMs: NaN }), 'ERR_INVALID_ARGUMENT', /timeoutMs/],
    ['shm.waitForMessage({ channel: 5 })', () => shm.waitForMessage({ channel: bad(5) }), 'ERR_INVALID_ARGUMENT', /channel/],
    ['shm.waitForMessage(null)', () => shm.waitForMessage(bad(null)), 'ERR_INVALID_ARGUMENT', /options object/],
    ['shm.waitForMessageSync({ timeoutMs: -5 })', () => shm.waitForMessageSync({ timeoutMs: -5 }), 'ERR_INVALID_ARGUMENT', /timeoutMs/],
    ["shm.check({ repair: 'yes' })", () => shm.check({ repair: bad('yes') }), 'ERR_INVALID_ARGUMENT', /repair/],
    ['tx.putMessage(1, { channel: 5 })', () => shm.access((tx) => tx.putMessage(1, { channel: bad(5) })), 'ERR_INVALID_ARGUMENT', /channel/],
    ['tx.takeMessage({ copy: 1 })', () => shm.access((tx) => tx.takeMessage({ copy: bad(1) })), 'ERR_INVALID_ARGUMENT', /copy/],
    ['tx.destroy({})', () => shm.access((tx) => tx.destroy({})), 'ERR_INVALID_ARGUMENT', /tx\.destroy/],
    ['tx.bufferOf(5)', () => shm.access((tx) => tx.bufferOf(bad(5))), 'ERR_INVALID_ARGUMENT', /tx\.bufferOf/],
    ['tx.put(function)', () => shm.access((tx) => tx.put(() => 1)), 'ERR_UNSUPPORTED_TYPE', /function/],
    ['tx.put(symbol)', () => shm.access((tx) => tx.put(Symbol('s'))), 'ERR_UNSUPPORTED_TYPE', /symbol/],
    ['defineStruct(5)', () => defineStruct(bad(5), 'x'), 'ERR_INVALID_ARGUMENT', /schema/],
    ["defineStruct({ x: 'u9' })", () => defineStruct(bad({ x: 'u9' }), 'ArgY'), 'ERR_INVALID_ARGUMENT', /ArgY\.x/],
    ['utf8(-1)', () => utf8(-1), 'ERR_INVALID_ARGUMENT', /utf8\(n\)/],
    ['utf8(NaN)', () => utf8(NaN), 'ERR_INVALID_ARGUMENT', /utf8\(n\)/],
    ["array('int8', -1)", () => array('int8', -1), 'ERR_INVALID_ARGUMENT', /array\(type, n\)/],
    ["array('zz', 2)", () => array(bad('zz'), 2), 'ERR_INVALID_ARGUMENT', /type/],
    ['registerClass(5)', () => registerClass(bad(5)), 'ERR_INVALID_ARGUMENT', /registerClass/],
    ['new StructArray(P, bytes, -1, 1)', () => new StructArray(P, new Uint8Array(8), -1, 1), 'ERR_INVALID_ARGUMENT', /byteOffset/],
    ['P.view(5)', () => P.view(bad(5)), 'ERR_INVALID_ARGUMENT', /bytes/],
    // interprocess-objects/main
    ['WorkerPool.start()', () => WorkerPool.start(bad(undefined)), 'ERR_INVALID_ARGUMENT', /options object/],
    ['WorkerPool.start({ script: 5 })', () => WorkerPool.start({ script: bad(5) }), 'ERR_INVALID_ARGUMENT', /script/],
    ['WorkerPool.start({ workers: 0 })', () => WorkerPool.start({ script: workerScript, workers: 0 }), 'ERR_INVALID_ARGUMENT', /workers/],
    ['WorkerPool.start({ workers: NaN })', () => WorkerPool.start({ script: workerScript, workers: NaN }), 'ERR_INVALID_ARGUMENT', /workers/],
    ['WorkerPool.start({ workers: 1e9 })', () => WorkerPool.start({ script: workerScript, workers: 1e9 }), 'ERR_INVALID_ARGUMENT', /workers/],
    ['SharedObjectsHost.create()', () => SharedObjectsHost.create(bad(undefined)), 'ERR_INVALID_ARGUMENT', /segments/],
    ['SharedObjectsHost.create({ segments: 5 })', () => SharedObjectsHost.create({ segments: bad(5) }), 'ERR_INVALID_ARGUMENT', /segments/],
    ['new NodeHost(5)', () => new NodeHost(bad(5)), 'ERR_INVALID_ARGUMENT', /NodeHost/],
    ["new NodeHost({ stdio: 'loud' })", () => new NodeHost({ stdio: bad('loud') }), 'ERR_INVALID_ARGUMENT', /stdio/],
    ['new ElectronHost(5)', () => new ElectronHost(bad(5)), 'ERR_INVALID_ARGUMENT', /ElectronHost/],
    ['new ElectronHost({ utilityProcess: {} })', () => new ElectronHost({ utilityProcess: bad({}) }), 'ERR_INVALID_ARGUMENT', /utilityProcess/],
    // interprocess-objects/preload
    ['exposeSharedObjects(5)', () => exposeSharedObjects(bad(5)), 'ERR_INVALID_ARGUMENT', /options/],
    ['createBridge(5)', () => createBridge(bad(5)), 'ERR_INVALID_ARGUMENT', /grants/i],
    ['regionBytes(5, 5)', () => regionBytes(bad(5), bad(5)), 'ERR_INVALID_ARGUMENT', /shm/],
    ['regionBytes(shm, huge grant)', () => regionBytes(shm, bad({ offset: 2 ** 40, byteLength: 8 })), 'ERR_INVALID_ARGUMENT', /range/],
    ['regionCounter(null, null)', () => regionCounter(bad(null), bad(null)), 'ERR_INVALID_ARGUMENT', /shm/],
    ['regionCounter(shm, NaN offset)', () => regionCounter(shm, bad({ counterOffset: NaN })), 'ERR_INVALID_ARGUMENT', /range/],
    // interprocess-objects/renderer
    ['connect(5)', () => connect(bad(5)), 'ERR_INVALID_ARGUMENT', /options/],
    ['columnLayout(5, 2)', () => columnLayout(bad(5), 2), 'ERR_INVALID_ARGUMENT', /type/],
    ['columnLayout(P, -1)', () => columnLayout(P, -1), 'ERR_INVALID_ARGUMENT', /length/],
    // interprocess-objects/utility
    ['serveTasks(5)', () => serveTasks(bad(5)), 'ERR_INVALID_ARGUMENT', /handler/],
  ]

  it('each bad call fails with the documented code and names the argument', async () => {
    const wrong: string[] = []
    for (const [label, call, code, names] of cases()) {
      const got = await outcome(call)
      if (got === 'no error') wrong.push(`${label}: no error`)
      else if (got.code !== code || !names.test(got.message)) wrong.push(`${label}: ${got.name} ${String(got.code)}: ${got.message}`)
    }
    expect(wrong).toEqual([])
  })

  it('tx.copy of a value that is not mapped (a message taken from a channel is a copy already) returns it as it is', () => {
    const plain = { a: [1] }
    expect(shm.access((tx) => tx.copy(plain))).toBe(plain)
  })

  it('a failed call creates nothing: no segment, no channel', async () => {
    const name = uniqueName('argn')
    await outcome(() => SharedMemory.create({ name, size: -1 }))
    await outcome(() => SharedMemory.openOrCreate({ name, size: 1 << 20, readyTimeoutMs: NaN }))
    expect(() => SharedMemory.open({ name })).toThrow(expect.objectContaining({ code: 'ERR_SHM_NOT_FOUND' }))
    await outcome(() => shm.access((tx) => tx.putMessage(() => 1, { channel: 'never-made' })))
    expect(shm.check().channels.map((c) => c.name)).not.toContain('never-made')
  })

  it('waiting on a closed segment is ERR_SHM_CLOSED, also on a channel used before', async () => {
    const s = SharedMemory.create({ name: uniqueName('argc'), size: 1 << 20 })
    s.access((tx) => tx.putMessage(1, { channel: 'c' }))
    await s.waitForMessage({ channel: 'c' })
    s.close()
    for (const call of [() => s.waitForMessage({ channel: 'c' }), () => s.waitForMessageSync({ channel: 'c' }), () => s.access(() => 1), () => s.accessAsync(() => 1)]) {
      expect(await outcome(call)).toMatchObject({ code: 'ERR_SHM_CLOSED' })
    }
  })
})
