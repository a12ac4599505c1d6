// The addon is found wherever users put the package: an app in a temp directory outside
// the repo, with node_modules/interprocess-objects laid out as `npm install` leaves it
// (package.json, dist/ compiled from these sources, prebuilds/linux-x64 made by
// prebuildify, no build/), bundled by esbuild, webpack 5 and vite 8 the way Electron
// Forge's templates bundle main, then run with plain node. Also: the error when no
// package can be found, the asar layout auto-unpack-natives leaves, and the demo's
// own bundles (demo/electron/build.ts).
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { builtinModules } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADDON_ENV, addonCandidates, asarUnpacked, findAddon, packageRootAbove, type AddonSearch } from '../core/addon_path'
import { uniqueName } from './helpers/processes'

const repo = path.join(__dirname, '..')
const repoModules = path.join(repo, 'node_modules')
const tuple = `${process.platform}-${process.arch}`

let tmp: string
let app: string
let pkg: string
let prebuild: string
const timings: Record<string, number | string> = {}

async function timed<T>(label: string, f: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now()
  try {
    return await f()
  } finally {
    timings[label] = Math.round(performance.now() - t0)
  }
}

/** The environment of the bundled apps: no override, and no way back into the repo. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  if (!(ADDON_ENV in extra)) delete env[ADDON_ENV]
  delete env.NODE_OPTIONS
  delete env.NODE_PATH
  return env
}

/** Runs `node script` from `cwd` (default: a directory with no package around it). */
function runNode(script: string, options: { cwd?: string; env?: Record<string, string>; args?: string[] } = {}) {
  const r = spawnSync(process.execPath, [script, ...(options.args ?? [])], { cwd: options.cwd ?? tmp, env: childEnv(options.env), encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function nodedir(): string | undefined {
  // node-gyp (run by prebuildify) takes the headers from npm's nodedir when one is
  // configured (offline machines); otherwise it downloads them.
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir
  try {
    const dir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim()
    return dir && dir !== 'undefined' && fs.existsSync(dir) ? dir : undefined
  } catch {
    return undefined
  }
}

/** Files under `dir` (recursively) whose names end with `ext`. */
function files(dir: string, ext: string): string[] {
  if (!fs.existsSync(dir)) return []
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).map((f) => path.join(dir, f)).filter((f) => f.endsWith(ext) && fs.statSync(f).isFile())
}

/** Every output is newer than every input (tsc and prebuildify rewrite all they make). */
function fresh(outputs: string[], inputs: string[]): boolean {
  if (outputs.length === 0) return false
  const oldest = Math.min(...outputs.map((f) => fs.statSync(f).mtimeMs))
  return inputs.every((f) => fs.statSync(f).mtimeMs <= oldest)
}

// What a user writes in main.ts: the package by its public names.
const appMain = `
import { SharedMemory } from 'interprocess-objects'
import { WorkerPool } from 'interprocess-objects/main'

const name = process.argv[2]
const shm = SharedMemory.create({ name, size: 1 << 20 })
let got
try {
  shm.access((tx) => { tx.putMessage({ hello: 'from a bundle', n: 42 }) })
  got = shm.access((tx) => tx.takeMessage({ copy: true }))
} finally {
  shm.close()
  try { SharedMemory.unlink(name) } catch {}
}
console.log(JSON.stringify({ got, pool: typeof WorkerPool.start }))
`

beforeAll(async () => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ipo-bundling-')))
  app = path.join(tmp, 'app')
  pkg = path.join(app, 'node_modules', 'interprocess-objects')
  fs.mkdirSync(path.join(app, 'src'), { recursive: true })
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0', private: true, main: '.vite/build/main.js' }, null, 2))
  fs.writeFileSync(path.join(app, 'src', 'main.js'), appMain)

  // The package as installed from a tarball built by `npm pack` (prepack: build + prebuilds).
  fs.mkdirSync(pkg, { recursive: true })
  for (const f of ['package.json', 'binding.gyp']) fs.copyFileSync(path.join(repo, f), path.join(pkg, f))
  fs.cpSync(path.join(repo, 'native'), path.join(pkg, 'native'), { recursive: true })
  // Its dependencies, hoisted beside it the way npm installs them.
  for (const dep of ['node-gyp-build', 'node-addon-api']) fs.symlinkSync(path.join(repoModules, dep), path.join(app, 'node_modules', dep), 'dir')
  // dist/ and the prebuild: the repo's own when they are newer than every source they
  // come from (`npm run build`, `npm run build:prebuilds`), else made here the same way.
  const distSources = ['core', 'main', 'preload', 'renderer', 'utility', 'cli'].flatMap((d) => files(path.join(repo, d), '.ts'))
  if (fresh(files(path.join(repo, 'dist'), '.js'), distSources)) {
    fs.cpSync(path.join(repo, 'dist'), path.join(pkg, 'dist'), { recursive: true })
    timings['dist/'] = "the repo's (fresh)"
  } else {
    await timed('tsc (dist/)', () => {
      // The emit of `npm run build` (type-checked by `npm run typecheck`; no .d.ts needed here).
      const tsc = path.join(repoModules, 'typescript', 'bin', 'tsc')
      spawnSync(process.execPath, [tsc, '-p', path.join(repo, 'tsconfig.build.json'), '--outDir', path.join(pkg, 'dist'), '--noCheck', '--declaration', 'false', '--sourceMap', 'false'], { cwd: repo, encoding: 'utf8' })
    })
  }
  expect(fs.existsSync(path.join(pkg, 'dist', 'core', 'index.js')), 'dist/core/index.js').toBe(true)
  const repoPrebuilds = path.join(repo, 'prebuilds', tuple)
  if (fresh(files(repoPrebuilds, '.node'), [...files(path.join(repo, 'native'), ''), path.join(repo, 'binding.gyp')])) {
    fs.cpSync(repoPrebuilds, path.join(pkg, 'prebuilds', tuple), { recursive: true })
    timings['prebuild'] = "the repo's (fresh)"
  } else {
    await timed('prebuildify --napi --strip', () => {
      const dir = nodedir()
      const r = spawnSync(process.execPath, [path.join(repoModules, 'prebuildify', 'bin.js'), '--napi', '--strip'], {
        cwd: pkg,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${path.join(repoModules, '.bin')}${path.delimiter}${process.env.PATH}`, ...(dir ? { npm_config_nodedir: dir } : {}) },
      })
      if (r.status !== 0) throw new Error(`prebuildify failed:\n${r.stdout}\n${r.stderr}`)
    })
    // Installed from the registry there is no build/: only the prebuild.
    fs.rmSync(path.join(pkg, 'build'), { recursive: true, force: true })
  }
  const prebuilds = fs.readdirSync(path.join(pkg, 'prebuilds', tuple)).filter((f) => f.endsWith('.node'))
  expect(prebuilds).toEqual(['interprocess-objects.node'])
  prebuild = path.join(pkg, 'prebuilds', tuple, prebuilds[0]!)
}, 180_000)

afterAll(() => {
  console.log(`bundling test timings (ms): ${JSON.stringify(timings)}`)
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

function expectRan(bundle: string, label: string): void {
  const r = runNode(bundle, { args: [uniqueName('bndl')] })
  expect(r.stderr, `${label} stderr`).not.toContain('ERR_ADDON_NOT_FOUND')
  expect(r.status, `${label} exit; stderr: ${r.stderr}`).toBe(0)
  expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ got: { hello: 'from a bundle', n: 42 }, pool: 'function' })
}

describe('the installed package', () => {
  it('loads its prebuild unbundled (node-gyp-build picks prebuilds/<platform>-<arch>)', () => {
    const probe = path.join(app, 'unbundled.js')
    fs.writeFileSync(probe, appMain.replace(/^import \{ (\w+) \} from '([^']+)'$/gm, "const { $1 } = require('$2')"))
    expectRan(probe, 'unbundled')
  })

  it('finds the package quickly: the search is a walk up and a readdir', () => {
    const search: AddonSearch = { dirname: path.join(pkg, 'dist', 'core'), cwd: '/', env: {}, platform: process.platform, arch: process.arch }
    const t0 = performance.now()
    expect(findAddon(search, (f) => f).file).toBe(prebuild)
    const unbundled = performance.now() - t0
    const t1 = performance.now()
    expect(findAddon({ ...search, dirname: path.join(app, '.vite', 'build') }, (f) => f).file).toBe(prebuild)
    const bundled = performance.now() - t1
    timings['search, unbundled'] = +unbundled.toFixed(2)
    timings['search, from a bundle'] = +bundled.toFixed(2)
    // Generous bounds (a loaded 2-core machine): no spawning, no scanning of trees.
    expect(unbundled).toBeLessThan(500)
    expect(bundled).toBeLessThan(500)
  })
})

describe('bundled with the package inside the bundle (not external)', () => {
  it('esbuild (platform node, bundle everything)', async () => {
    const { build } = await import('esbuild')
    const outfile = path.join(app, 'dist-esbuild', 'main.js')
    await timed('esbuild', () => build({ entryPoints: [path.join(app, 'src', 'main.js')], absWorkingDir: app, bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile, logLevel: 'silent' }))
    expect(fs.readFileSync(outfile, 'utf8')).toContain('ERR_ADDON_NOT_FOUND') // the loader is in the bundle
    expectRan(outfile, 'esbuild')
  })

  it('webpack 5 (target node, through its Node API)', async () => {
    const { webpack } = await import('webpack')
    const outDir = path.join(app, '.webpack', 'main')
    const stats = await timed('webpack', () =>
      new Promise<import('webpack').Stats>((resolve, reject) => {
        webpack(
          {
            mode: 'production',
            target: 'node',
            context: app,
            entry: './src/main.js',
            output: { path: outDir, filename: 'index.js' },
            // Every Electron main config leaves `electron` to the runtime (Forge's webpack
            // plugin builds main with target 'electron-main', which does this).
            externals: { electron: 'commonjs electron' },
            optimization: { minimize: false },
            infrastructureLogging: { level: 'error' },
          },
          (err, s) => (err || !s ? reject(err ?? new Error('no stats')) : resolve(s)),
        )
      }),
    )
    expect(stats.hasErrors(), stats.toString('errors-only')).toBe(false)
    expect(fs.readFileSync(path.join(outDir, 'index.js'), 'utf8')).toContain('ERR_ADDON_NOT_FOUND')
    expectRan(path.join(outDir, 'index.js'), 'webpack')
  })

  it('vite 8 (lib mode, cjs, node conditions: what Forge\'s vite plugin does for main)', async () => {
    const { build } = await import('vite')
    // @electron-forge/plugin-vite's main config: lib entry, [name].js, cjs, outDir
    // .vite/build, electron and the Node builtins external, resolve.conditions ['node'].
    await timed('vite', () =>
      build({
        configFile: false,
        root: app,
        logLevel: 'silent',
        mode: 'production',
        build: {
          outDir: '.vite/build',
          emptyOutDir: false,
          copyPublicDir: false,
          minify: true,
          lib: { entry: path.join(app, 'src', 'main.js'), fileName: () => '[name].js', formats: ['cjs'] },
          rollupOptions: { external: ['electron', 'electron/main', ...builtinModules.flatMap((m) => [m, `node:${m}`])] },
        },
        resolve: { conditions: ['node'], mainFields: ['module', 'jsnext:main', 'jsnext'] },
      }),
    )
    const out = path.join(app, '.vite', 'build', 'main.js')
    expect(fs.readFileSync(out, 'utf8')).not.toMatch(/require\(["']interprocess-objects/)
    expectRan(out, 'vite')
  })

  it('vite 8 (ssr build, ES module output, noExternal: no __dirname in the bundle)', async () => {
    const { build } = await import('vite')
    await timed('vite ssr esm', () =>
      build({
        configFile: false,
        root: app,
        logLevel: 'silent',
        build: { outDir: '.vite/ssr', emptyOutDir: false, ssr: path.join(app, 'src', 'main.js'), rollupOptions: { output: { format: 'es', entryFileNames: '[name].mjs' } } },
        ssr: { noExternal: true },
      }),
    )
    const out = path.join(app, '.vite', 'ssr', 'main.mjs')
    expect(fs.readFileSync(out, 'utf8')).not.toMatch(/from ["']interprocess-objects/)
    expectRan(out, 'vite ssr esm')
  })

  it('a bundle with no package around it fails with ERR_ADDON_NOT_FOUND and says what to do', () => {
    const lonely = path.join(tmp, 'lonely')
    fs.mkdirSync(lonely, { recursive: true })
    fs.copyFileSync(path.join(app, 'dist-esbuild', 'main.js'), path.join(lonely, 'main.js'))
    const r = runNode(path.join(lonely, 'main.js'), { cwd: lonely, args: [uniqueName('bndl')] })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('ERR_ADDON_NOT_FOUND')
    expect(r.stderr).toContain(`above ${lonely}: no interprocess-objects package`)
    expect(r.stderr).toContain(`require.resolve('interprocess-objects/package.json') from ${lonely}: not found`)
    expect(r.stderr).toContain("mark 'interprocess-objects' external in your bundler (esbuild: external, webpack: externals, vite: build.rollupOptions.external / ssr.external)")
    expect(r.stderr).toContain('npm rebuild interprocess-objects')
    expect(r.stderr).toContain(`a prebuild for ${tuple}`)
    expect(r.stderr).toContain(ADDON_ENV)

    // …and INTERPROCESS_OBJECTS_ADDON makes the same bundle run.
    const ok = runNode(path.join(lonely, 'main.js'), { cwd: lonely, args: [uniqueName('bndl')], env: { [ADDON_ENV]: prebuild } })
    expect(ok.status, ok.stderr).toBe(0)
    // A wrong override fails instead of searching elsewhere.
    const wrong = runNode(path.join(app, 'dist-esbuild', 'main.js'), { args: [uniqueName('bndl')], env: { [ADDON_ENV]: path.join(tmp, 'missing.node') } })
    expect(wrong.status).not.toBe(0)
    expect(wrong.stderr).toContain(`${ADDON_ENV} is set, so nothing else was searched`)
  })

  it('a package installed with --ignore-scripts (no build, no prebuild) names npm rebuild', () => {
    const bare = path.join(tmp, 'bare')
    const barePkg = path.join(bare, 'node_modules', 'interprocess-objects')
    fs.mkdirSync(barePkg, { recursive: true })
    fs.copyFileSync(path.join(pkg, 'package.json'), path.join(barePkg, 'package.json'))
    fs.cpSync(path.join(pkg, 'dist'), path.join(barePkg, 'dist'), { recursive: true })
    fs.symlinkSync(path.join(repoModules, 'node-gyp-build'), path.join(bare, 'node_modules', 'node-gyp-build'), 'dir')
    const probe = path.join(bare, 'main.js')
    fs.writeFileSync(probe, "require('interprocess-objects')\n")
    const r = runNode(probe, { cwd: bare })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('ERR_ADDON_NOT_FOUND')
    expect(r.stderr).toContain(`${barePkg} (the package around ${path.join(barePkg, 'dist', 'core')}): no build/Release, build/Debug or prebuilds/${tuple} addon in it`)
    expect(r.stderr).toContain('npm rebuild interprocess-objects')
  })
})

describe('packaged Electron app: app.asar with auto-unpack-natives', () => {
  let resources: string
  beforeAll(async () => {
    const { createPackageWithOptions } = await import('@electron/asar')
    const src = path.join(tmp, 'asar-src')
    const inApp = path.join(src, 'node_modules', 'interprocess-objects')
    fs.mkdirSync(inApp, { recursive: true })
    fs.writeFileSync(path.join(src, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0', main: '.vite/build/main.js' }))
    fs.cpSync(path.join(app, '.vite'), path.join(src, '.vite'), { recursive: true })
    for (const f of ['package.json', 'dist', 'prebuilds']) fs.cpSync(path.join(pkg, f), path.join(inApp, f), { recursive: true })
    resources = path.join(tmp, 'resources')
    fs.mkdirSync(resources)
    // What @electron-forge/plugin-auto-unpack-natives asks electron-packager for.
    await timed('asar pack', () => createPackageWithOptions(src, path.join(resources, 'app.asar'), { unpack: '*.node' }))
  })

  const unpackedAddon = () => path.join(resources, 'app.asar.unpacked', 'node_modules', 'interprocess-objects', 'prebuilds', tuple, 'interprocess-objects.node')

  it('maps paths inside app.asar to app.asar.unpacked', () => {
    const inside = path.join(resources, 'app.asar', 'node_modules', 'interprocess-objects', 'dist', 'core')
    expect(asarUnpacked(inside)).toBe(path.join(resources, 'app.asar.unpacked', 'node_modules', 'interprocess-objects', 'dist', 'core'))
    expect(asarUnpacked(path.join(resources, 'app.asar'))).toBe(path.join(resources, 'app.asar.unpacked'))
    expect(asarUnpacked('C:\\app\\resources\\app.asar\\node_modules\\x')).toBe('C:\\app\\resources\\app.asar.unpacked\\node_modules\\x')
    expect(asarUnpacked(path.join(resources, 'app.asar.unpacked', 'x'))).toBeUndefined()
    expect(asarUnpacked('/opt/my.asarx/y')).toBeUndefined()
    // Plain Node cannot read inside the archive: the package root comes from the path.
    expect(packageRootAbove(inside)).toBe(path.join(resources, 'app.asar', 'node_modules', 'interprocess-objects'))
  })

  it('the unbundled package inside app.asar loads the unpacked addon', () => {
    const search: AddonSearch = { dirname: path.join(resources, 'app.asar', 'node_modules', 'interprocess-objects', 'dist', 'core'), cwd: '/', env: {}, resourcesPath: resources, platform: process.platform, arch: process.arch }
    const first = addonCandidates(search).next().value
    expect(first).toMatchObject({ kind: 'package', path: path.join(resources, 'app.asar.unpacked', 'node_modules', 'interprocess-objects') })
    expect(fs.existsSync(unpackedAddon())).toBe(true)
    expect(findAddon(search, (f) => f).file).toBe(unpackedAddon())
  })

  it('a bundle inside app.asar finds it through process.resourcesPath', () => {
    const search: AddonSearch = { dirname: path.join(resources, 'app.asar', '.vite', 'build'), cwd: '/', env: {}, resourcesPath: resources, platform: process.platform, arch: process.arch }
    const found = findAddon(search, (f) => f)
    expect(found.file).toBe(unpackedAddon())
  })

  it('a bundle in an app without node_modules finds the copy extraResource made', () => {
    // Packagers that keep only the bundles (older Forge vite/webpack plugins) drop
    // node_modules; packagerConfig.extraResource: ['node_modules/interprocess-objects']
    // copies the package to resources/interprocess-objects.
    const bare = path.join(tmp, 'resources-extra')
    fs.mkdirSync(path.join(bare, 'interprocess-objects'), { recursive: true })
    fs.cpSync(path.join(pkg, 'prebuilds'), path.join(bare, 'interprocess-objects', 'prebuilds'), { recursive: true })
    const search: AddonSearch = { dirname: path.join(bare, 'app.asar', '.vite', 'build'), cwd: '/', env: {}, resourcesPath: bare, platform: process.platform, arch: process.arch }
    expect(findAddon(search, (f) => f).file).toBe(path.join(bare, 'interprocess-objects', 'prebuilds', tuple, 'interprocess-objects.node'))
  })

  it('the unpacked .node file loads', () => {
    const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(unpackedAddon())}); console.log(typeof m.open, typeof m.pageSize)`], { encoding: 'utf8', env: childEnv() })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('function number')
  })
})

describe('the Forge demo (demo/electron/build.ts)', () => {
  it('bundles main, preload and the frame worker with the SDK inside, and the worker bundle finds the addon', async () => {
    const { buildDemo } = await import('../demo/electron/build')
    const dir = await timed('buildDemo', () => buildDemo())
    for (const f of ['main.js', 'preload.js', 'frame-worker.js']) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8')
      expect(text, f).toContain('ERR_ADDON_NOT_FOUND') // the loader is bundled…
      expect(text, f).not.toMatch(/require\(["']node-gyp-build["']\)/) // …and node-gyp-build too
    }
    // Plain node runs the worker bundle up to serveTasks(), which needs a pool: the
    // imports, and with them the addon, loaded.
    const alone = runNode(path.join(dir, 'frame-worker.js'))
    expect(alone.stderr).not.toContain('ERR_ADDON_NOT_FOUND')
    expect(alone.stderr).toContain('not started by a WorkerPool')
    // Started by a pool, it connects to the pool's segment.
    const { WorkerPool } = await import('interprocess-objects/main')
    const pool = await timed('pool with the bundled frame worker', () => WorkerPool.start({ script: path.join(dir, 'frame-worker.js'), workers: 1, segmentSize: 4 << 20 }))
    try {
      expect(pool.stats().ready).toBe(1)
    } finally {
      await pool.close()
    }
  })
})
