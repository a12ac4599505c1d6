// The package as users get it: `npm pack`, installed from the tarball into fresh
// projects, type-checked strictly (skipLibCheck off, node16 and bundler resolution, ESM
// and CommonJS, a browser project without Node types) with no `electron` installed, and
// run: the README example as two processes, every entry point from CommonJS, and the
// prebuilt addon after `npm install --ignore-scripts`. Every documented name (docs/api.md)
// must import, and nothing else may be exported.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const exec = promisify(execFile)
const root = path.join(__dirname, '..')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const typesNodeVersion = (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version

interface EntryNames {
  values: string[]
  types: string[]
}

/** docs/api.md: one section per entry point, one table row per exported name. */
function documentedNames(): Map<string, EntryNames> {
  const entries = new Map<string, EntryNames>()
  let current: EntryNames | undefined
  for (const line of fs.readFileSync(path.join(root, 'docs', 'api.md'), 'utf8').split('\n')) {
    const heading = /^## `(interprocess-objects(?:\/\w+)?)`$/.exec(line)
    if (heading !== null) {
      current = { values: [], types: [] }
      entries.set(heading[1]!, current)
      continue
    }
    if (line.startsWith('## ')) current = undefined
    const row = /^\| `(\w+)` \| (class|function|const|type) \|/.exec(line)
    if (row !== null && current !== undefined) (row[2] === 'type' ? current.types : current.values).push(row[1]!)
  }
  return entries
}

const documented = documentedNames()

function importsOf(entries: Iterable<string>): string {
  let n = 0
  const lines: string[] = []
  for (const entry of entries) {
    const { values, types } = documented.get(entry)!
    const alias = (name: string) => `${name} as ${name}_${n}`
    lines.push(`import { ${[...values.map(alias), ...types.map((t) => `type ${alias(t)}`)].join(', ')} } from '${entry}'`)
    lines.push(`export const values_${n} = [${values.map((v) => `${v}_${n}`).join(', ')}] as const`)
    lines.push(`export type Types_${n} = [${types.map((t) => `${t}_${n}${genericArity(t)}`).join(', ')}]`)
    n++
  }
  return lines.join('\n') + '\n'
}

/** Generic public types need their arguments when named bare. */
function genericArity(type: string): string {
  const oneArg: Record<string, string> = {
    RunArgs: '<unknown>', TaskInput: '<unknown>', TaskOutput: '<unknown>', TaskName: '<unknown>', WindowWebPreferences: '<object>',
    StructType: '<{ x: "uint8" }>', StructInstance: '<{ x: "uint8" }>', StructPlain: '<{ x: "uint8" }>', StructInit: '<{ x: "uint8" }>',
    RendererStruct: '<{ x: "uint8" }>', RendererStructArray: '<{ x: "uint8" }>', RendererFieldValue: '<"uint8">',
  }
  return oneArg[type] ?? ''
}

async function npm(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await exec('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd, timeout: 300_000, maxBuffer: 64 << 20 })
  return stdout
}

async function typecheck(project: string, tsconfig: object): Promise<void> {
  const file = path.join(project, `tsconfig.${Math.random().toString(36).slice(2)}.json`)
  fs.writeFileSync(file, JSON.stringify(tsconfig, null, 2))
  try {
    await exec(process.execPath, [tsc, '-p', file], { cwd: project, timeout: 120_000 })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string }
    throw new Error(`tsc -p ${path.basename(file)} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  } finally {
    fs.rmSync(file)
  }
}

const strict = { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', lib: ['ES2022', 'ESNext.Disposable'], types: ['node'] }

describe('the packed package, installed into fresh projects', () => {
  let work: string
  let tarball: string
  let app: string
  let files: string[]

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ipo-consumer-'))
    // dist/ and prebuilds/ were built from the sources by test/global-setup.ts; packing
    // again would rebuild them under the feet of the other test files.
    const packed = JSON.parse(await npm(root, ['pack', '--ignore-scripts', '--json', '--pack-destination', work])) as Array<{ filename: string; files: Array<{ path: string }> }>
    tarball = path.join(work, packed[0]!.filename)
    files = packed[0]!.files.map((f) => f.path)
    app = path.join(work, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }))
    await npm(app, ['install', tarball, `@types/node@${typesNodeVersion}`])
    // One import of every documented name of every entry point, as ESM and as CommonJS.
    fs.mkdirSync(path.join(app, 'src'))
    fs.writeFileSync(path.join(app, 'src', 'all.mts'), importsOf(documented.keys()))
    fs.writeFileSync(path.join(app, 'src', 'all.cts'), importsOf(documented.keys()))
  }, 600_000)

  afterAll(() => {
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  })

  it('ships what users need and nothing of the repo: LICENSE, docs, examples, the prebuilt addon, no tests, no @internal', () => {
    for (const f of ['LICENSE', 'README.md', 'package.json', 'docs/api.md', 'docs/electron.md', 'examples/owner.mts', 'examples/worker.mts', 'binding.gyp', 'dist/main/index.d.ts']) {
      expect(files, f).toContain(f)
    }
    expect(files.some((f) => /^prebuilds\/linux-x64\/.+\.node$/.test(f)), 'a linux-x64 prebuild').toBe(true)
    expect(files.filter((f) => /^(test|bench|e2e|build)\//.test(f))).toEqual([])
    const pkg = path.join(app, 'node_modules', 'interprocess-objects')
    const dts = files.filter((f) => f.endsWith('.d.ts'))
    expect(dts.length).toBeGreaterThan(10)
    for (const f of dts) expect(fs.readFileSync(path.join(pkg, f), 'utf8'), f).not.toMatch(/@internal/)
    // electron is an optional peer: not installed for a Node-only app.
    expect(fs.existsSync(path.join(app, 'node_modules', 'electron'))).toBe(false)
  })

  it('every documented name type-checks from ESM (node16 and bundler resolution), strict, skipLibCheck off, without electron', async () => {
    await typecheck(app, { compilerOptions: { ...strict, module: 'node16', moduleResolution: 'node16' }, files: ['src/all.mts'] })
    await typecheck(app, { compilerOptions: { ...strict, module: 'esnext', moduleResolution: 'bundler' }, files: ['src/all.mts'] })
  }, 240_000)

  it('the .d.ts files export exactly the documented names, values and types', () => {
    const file = path.join(app, 'src', 'all.mts')
    const { options } = ts.convertCompilerOptionsFromJson({ ...strict, module: 'node16', moduleResolution: 'node16' }, app)
    const program = ts.createProgram([file], options)
    const checker = program.getTypeChecker()
    const source = program.getSourceFile(file)!
    const seen: Record<string, string[]> = {}
    const expected: Record<string, string[]> = {}
    for (const statement of source.statements) {
      if (!ts.isImportDeclaration(statement)) continue
      const entry = (statement.moduleSpecifier as ts.StringLiteral).text
      const module = checker.getSymbolAtLocation(statement.moduleSpecifier)!
      seen[entry] = checker.getExportsOfModule(module).map((s) => s.name).sort()
      const names = documented.get(entry)!
      expected[entry] = [...names.values, ...names.types].sort()
    }
    expect(Object.keys(seen).sort()).toEqual([...documented.keys()].sort())
    expect(seen).toEqual(expected)
  })

  it('the renderer entry type-checks in a browser project (DOM, no Node types)', async () => {
    const src = path.join(app, 'page')
    fs.mkdirSync(src, { recursive: true })
    fs.writeFileSync(path.join(src, 'page.ts'), importsOf(['interprocess-objects/renderer']))
    await typecheck(app, { compilerOptions: { ...strict, lib: ['ES2022', 'DOM'], types: [], module: 'esnext', moduleResolution: 'bundler' }, files: ['page/page.ts'] })
  }, 240_000)

  it('from CommonJS: each entry point exports exactly its documented values, and a segment works', async () => {
    const entries = [...documented.keys()]
    const script = `
      const expected = ${JSON.stringify(Object.fromEntries(entries.map((e) => [e, documented.get(e)!.values.slice().sort()])))}
      const seen = {}
      for (const entry of Object.keys(expected)) seen[entry] = Object.keys(require(entry)).sort()
      const { SharedMemory } = require('interprocess-objects')
      const shm = SharedMemory.create({ name: 'cjs-' + process.pid, size: 1 << 20 })
      const got = shm.access((tx) => { tx.putMessage({ hello: 'cjs' }); return tx.takeMessage({ copy: true }) })
      shm.close()
      console.log(JSON.stringify({ expected, seen, got }))
    `
    fs.writeFileSync(path.join(app, 'check.cjs'), script)
    const { stdout } = await exec(process.execPath, ['check.cjs'], { cwd: app, timeout: 60_000 })
    const { expected, seen, got } = JSON.parse(stdout) as { expected: unknown; seen: unknown; got: unknown }
    expect(seen).toEqual(expected)
    expect(got).toEqual({ hello: 'cjs' })
    // And the same names type-check as CommonJS (.cts under node16).
    await typecheck(app, { compilerOptions: { ...strict, module: 'node16', moduleResolution: 'node16' }, files: ['src/all.cts'] })
  }, 240_000)

  it('the README example, compiled from the installed examples/, runs as two processes', async () => {
    const out = path.join(app, 'out')
    const examples = path.join(app, 'node_modules', 'interprocess-objects', 'examples')
    const tsconfig = path.join(app, 'tsconfig.examples.json')
    fs.writeFileSync(tsconfig, JSON.stringify({ compilerOptions: { ...strict, noEmit: false, module: 'node16', moduleResolution: 'node16', outDir: out, rootDir: examples }, files: [path.join(examples, 'owner.mts'), path.join(examples, 'worker.mts')] }))
    await exec(process.execPath, [tsc, '-p', tsconfig], { cwd: app, timeout: 120_000 })
    // The compiled files sit in the app, so 'interprocess-objects' resolves from its node_modules.
    const name = `cons-${process.pid}`
    const worker = exec(process.execPath, [path.join(out, 'worker.mjs'), name], { cwd: app, timeout: 60_000 })
    const owner = await exec(process.execPath, [path.join(out, 'owner.mjs'), name], { cwd: app, timeout: 60_000 })
    expect((await worker).stdout).toContain('worker: updated the scores')
    expect(owner.stdout).toContain('owner: bob = 2')
  }, 240_000)

  it('using, copyBytes, the disposers and the structural Electron types work from the installed package, strict', async () => {
    const dir = path.join(app, 'usage')
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(
      path.join(dir, 'usage.mts'),
      `import { SharedMemory } from 'interprocess-objects'
import { SharedObjectsHost, WorkerPool, type BaseWebPreferences, type WindowWebPreferences } from 'interprocess-objects/main'
let kept: SharedMemory
{
  using shm = SharedMemory.create({ name: 'use-' + process.pid, size: 1 << 20 })
  kept = shm
  const mine = new Uint8Array(8192).fill(7)
  const inSegment = new Uint8Array(shm.buffer, shm.bytes.byteOffset + 8192, mine.length)
  shm.copyBytes(inSegment, mine)
  const back = new Uint8Array(mine.length)
  shm.copyBytes(back, inSegment)
  console.log('copied', back.every((b) => b === 7))
}
console.log('closed by using', kept.closed)
const closePool: (pool: WorkerPool) => Promise<void> = (pool) => pool[Symbol.asyncDispose]()
void closePool
const host = SharedObjectsHost.create({ segments: { s: { size: 1 << 20, regions: { r: 64 } } } })
const base = { preload: '/app/preload.js', additionalArguments: ['--keep'] } satisfies BaseWebPreferences & { preload: string }
const prefs: WindowWebPreferences<typeof base> = host.webPreferences({ s: { regions: { r: 'read' } } }, base)
console.log('prefs', prefs.preload, prefs.sandbox, prefs.contextIsolation, prefs.additionalArguments.length)
host.close()
`,
    )
    const out = path.join(app, 'usage-out')
    await typecheck(app, { compilerOptions: { ...strict, noEmit: false, module: 'node16', moduleResolution: 'node16', outDir: out, rootDir: dir }, files: ['usage/usage.mts'] })
    const { stdout } = await exec(process.execPath, [path.join(out, 'usage.mjs')], { cwd: app, timeout: 60_000 })
    expect(stdout).toContain('copied true')
    expect(stdout).toContain('closed by using true')
    expect(stdout).toContain('prefs /app/preload.js false true 2')
  }, 240_000)

  it('the CLI runs from the installed package (bin: interprocess-objects)', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version
    const bin = path.join(app, 'node_modules', '.bin', 'interprocess-objects')
    expect((await exec(bin, ['--version'], { cwd: app, timeout: 60_000 })).stdout.trim()).toBe(version)
    expect((await exec(bin, ['ls', '--prefix', `none-${process.pid}-`], { cwd: app, timeout: 60_000 })).stdout).toMatch(/no interprocess-objects segments/)
  }, 120_000)

  it('npm install --ignore-scripts: the prebuilt addon loads, no compiler run', async () => {
    const bare = path.join(work, 'bare')
    fs.mkdirSync(bare)
    fs.writeFileSync(path.join(bare, 'package.json'), JSON.stringify({ name: 'bare-app', version: '1.0.0', private: true }))
    await npm(bare, ['install', '--ignore-scripts', tarball])
    const pkg = path.join(bare, 'node_modules', 'interprocess-objects')
    expect(fs.existsSync(path.join(pkg, 'build')), 'no build/ (the install script did not run)').toBe(false)
    const { stdout } = await exec(
      process.execPath,
      ['-e', `const { SharedMemory } = require('interprocess-objects'); const s = SharedMemory.create({ name: 'bare-' + process.pid, size: 1 << 20 }); console.log(s.size); s.close()`],
      { cwd: bare, timeout: 60_000 },
    )
    expect(Number(stdout.trim())).toBeGreaterThanOrEqual(1 << 20)
  }, 300_000)
})
