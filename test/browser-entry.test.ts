// `import … from 'interprocess-objects'` in code bundled for the web (the package's
// "browser" export condition): the schema language works with no Node module in the
// bundle, and a Node-only name fails on use with a message that names the bundler setting.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as vm from 'node:vm'
import { expect, it } from 'vitest'
import { bundleForBrowser } from '../e2e/bundle'

/** `source` as a page file, bundled for the browser as an app's bundler would. */
async function bundlePage(source: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipo-browser-'))
  try {
    const entry = path.join(dir, 'page.ts')
    fs.writeFileSync(entry, source)
    return await bundleForBrowser(entry)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

it('bundles for the browser without the addon; defineStruct works, SharedMemory says how to fix the bundle', async () => {
  const code = await bundlePage(
    `import { defineStruct, SharedMemory } from 'interprocess-objects'
     const P = defineStruct({ x: 'uint32' }, 'P')
     const p = P.view(new Uint8Array(P.byteLength)); p.x = 7
     let error = ''
     try { SharedMemory.create({ name: 'x', size: 1 }) } catch (err) { error = (err as { code: string }).code + ': ' + (err as Error).message }
     ;(globalThis as Record<string, unknown>).result = { x: p.x, error, named: String(SharedMemory.name) }`,
  )
  expect(code).not.toMatch(/node-gyp-build|node:fs/)
  const sandbox: { result?: { x: number; error: string; named: string }; TextEncoder: typeof TextEncoder; TextDecoder: typeof TextDecoder } = { TextEncoder, TextDecoder }
  vm.runInNewContext(code, sandbox)
  expect(sandbox.result!.x).toBe(7)
  expect(sandbox.result!.named).toBe('SharedMemory')
  expect(sandbox.result!.error).toMatch(/^ERR_ADDON_NOT_FOUND: SharedMemory needs Node .*"browser" export condition.*resolve\.conditions/)
})

it('utf8 struct fields over a SharedArrayBuffer decode where TextDecoder refuses shared views (as browsers do)', async () => {
  const code = await bundlePage(
    `import { defineStruct, utf8 } from 'interprocess-objects'
     const T = defineStruct({ short: utf8(8), long: utf8(64) }, 'Text')
     const t = T.view(new Uint8Array(new SharedArrayBuffer(T.byteLength)))
     t.short = 'hi'
     t.long = 'a longer text with ünïcödé, past the ASCII fast path'
     ;(globalThis as Record<string, unknown>).result = [t.short, t.long]`,
  )
  const context = vm.createContext({ TextEncoder, BaseDecoder: TextDecoder })
  // The browsers' rule, in the page's own realm: a view of a SharedArrayBuffer is refused.
  vm.runInContext(
    `globalThis.TextDecoder = class extends BaseDecoder {
       decode(input, options) {
         if (input && input.buffer instanceof SharedArrayBuffer) throw new TypeError("The provided ArrayBufferView value must not be shared.")
         return super.decode(input, options)
       }
     }`,
    context,
  )
  vm.runInContext(code, context)
  expect(context.result).toEqual(['hi', 'a longer text with ünïcödé, past the ASCII fast path'])
})
