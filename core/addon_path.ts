// Where the compiled addon is looked for; core/native.ts loads the first one found.
//
// The addon is a file inside the installed package (build/Release/*.node after a
// compile, or prebuilds/<platform>-<arch>/*.node shipped in the tarball), but the code
// that loads it is not always inside that package: bundlers (esbuild, webpack, vite —
// what Electron Forge's templates use for main and preload) copy this file into the
// app's bundle, and packaged Electron apps move .node files out of app.asar into
// app.asar.unpacked. So the search goes, first hit wins:
//
//   1. INTERPROCESS_OBJECTS_ADDON: a .node file (or a package directory). When set it is
//      the only place looked at: a wrong override fails instead of loading another copy.
//   2. The package around this file: the nearest directory above it named
//      node_modules/interprocess-objects or holding the package.json named
//      "interprocess-objects" (the sources, dist/, any unbundled install).
//   3. The package as the app resolves it: require.resolve('interprocess-objects/package.json')
//      from this file's directory (the bundle's own directory when bundled), from the
//      main script's and from process.cwd(), through module.createRequire so bundlers
//      leave the call alone.
//   4. Electron: process.resourcesPath + app.asar.unpacked/node_modules/interprocess-objects,
//      app.asar.unpacked itself (an app that is the package, like the demo),
//      app/node_modules/interprocess-objects (asar off) and interprocess-objects (a copy
//      made by packagerConfig.extraResource, for packagers that drop node_modules).
// A candidate inside an .asar archive is tried at its .asar.unpacked twin first (a shared
// library cannot be mapped from inside the archive; auto-unpack-natives puts it there).
// Inside a package directory the file is the one node-gyp-build picks: build/Release,
// build/Debug, then the best prebuilds/<platform>-<arch>/ match.
//
// Only the work up to the first hit is done: in the usual unbundled case that is one
// walk up from this directory and one readdir, once, at import.
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { ShmError } from './errors'

export const PACKAGE_NAME = 'interprocess-objects'
export const ADDON_ENV = 'INTERPROCESS_OBJECTS_ADDON'

/** What the search looks at; `currentSearch()` fills it from this process. */
export interface AddonSearch {
  /** The loading code's directory (`__dirname`: the bundle's own directory when bundled). */
  dirname?: string
  cwd: string
  /** The main script (require.main / process.argv[1]), if any. */
  mainFilename?: string
  /** Electron's process.resourcesPath. */
  resourcesPath?: string
  env: Record<string, string | undefined>
  platform: string
  arch: string
}

export interface Candidate {
  /** A directory to look into (package root), or the .node file itself. */
  kind: 'package' | 'file'
  path: string
  /** How it was found, for the error message. */
  via: string
}

export function currentSearch(): AddonSearch {
  const dirname = typeof __dirname === 'string' && path.isAbsolute(__dirname) ? __dirname : undefined
  const resourcesPath = (process as { resourcesPath?: unknown }).resourcesPath
  return {
    dirname,
    cwd: process.cwd(),
    mainFilename: mainFilename(),
    resourcesPath: typeof resourcesPath === 'string' ? resourcesPath : undefined,
    env: process.env,
    platform: process.platform,
    arch: process.arch,
  }
}

function mainFilename(): string | undefined {
  // createRequire's require.main is the process's main module; a bundler-rewritten
  // `require.main` (webpack) would be the bundle's own module object instead.
  try {
    const main = createRequire(path.join(process.cwd(), 'noop.js')).main
    if (main?.filename) return main.filename
  } catch {
    // fall through
  }
  const script = process.argv[1]
  return script && path.isAbsolute(script) ? script : undefined
}

/**
 * `…/app.asar/…` → `…/app.asar.unpacked/…` (any `<name>.asar` path segment), or
 * undefined when the path is not inside an archive.
 */
export function asarUnpacked(p: string): string | undefined {
  const m = /\.asar(?=[\\/]|$)/.exec(p)
  if (!m) return undefined
  return p.slice(0, m.index) + '.asar.unpacked' + p.slice(m.index + m[0].length)
}

function readPackageName(dir: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name as string | undefined
  } catch {
    return undefined
  }
}

/**
 * The package root at or above `dir`: a directory named node_modules/interprocess-objects
 * (decided from the path alone, so it also works for paths inside an asar archive that
 * plain Node cannot read), or one whose package.json is named "interprocess-objects".
 */
export function packageRootAbove(dir: string): string | undefined {
  let current = path.resolve(dir)
  for (;;) {
    if (path.basename(current) === PACKAGE_NAME && path.basename(path.dirname(current)) === 'node_modules') return current
    if (readPackageName(current) === PACKAGE_NAME) return current
    const parent = path.dirname(current)
    if (parent === current) return undefined
    current = parent
  }
}

/** The package directory as Node resolves `interprocess-objects` from `dir`, if it does. */
export function resolvePackageFrom(dir: string): string | undefined {
  try {
    // A path computed at run time: bundlers neither follow nor rewrite this require.
    const req = createRequire(path.join(dir, '__interprocess-objects-resolve__.js'))
    return path.dirname(req.resolve(`${PACKAGE_NAME}/package.json`))
  } catch {
    return undefined
  }
}

/**
 * The candidates in search order (lazily: later ones are computed only if needed).
 * `note` hears about the places that yielded no candidate.
 */
export function* addonCandidates(search: AddonSearch, note: (line: string) => void = () => {}): Generator<Candidate> {
  const override = search.env[ADDON_ENV]
  if (override) {
    const p = path.resolve(search.cwd, override)
    yield { kind: p.endsWith('.node') ? 'file' : 'package', path: p, via: `${ADDON_ENV}=${override}` }
    return
  }
  const seen = new Set<string>()
  function* withUnpacked(kind: Candidate['kind'], p: string, via: string): Generator<Candidate> {
    const unpacked = asarUnpacked(p)
    for (const q of unpacked ? [unpacked, p] : [p]) {
      if (seen.has(q)) continue
      seen.add(q)
      yield { kind, path: q, via: q === unpacked ? `${via}, unpacked from the asar archive` : via }
    }
  }
  if (search.dirname) {
    const root = packageRootAbove(search.dirname)
    if (root) yield* withUnpacked('package', root, `the package around ${search.dirname}`)
    else note(`above ${search.dirname}: no ${PACKAGE_NAME} package (this code was bundled, or copied out of it)`)
  } else {
    note('this code has no __dirname (an ES module bundle): the package around it was not searched')
  }
  const bases = [search.dirname, search.mainFilename && path.dirname(search.mainFilename), search.cwd]
  for (const base of new Set(bases.filter((b): b is string => !!b))) {
    const root = resolvePackageFrom(base)
    if (root) yield* withUnpacked('package', root, `require.resolve('${PACKAGE_NAME}') from ${base}`)
    else note(`require.resolve('${PACKAGE_NAME}/package.json') from ${base}: not found`)
  }
  if (search.resourcesPath) {
    const r = search.resourcesPath
    yield* withUnpacked('package', path.join(r, 'app.asar.unpacked', 'node_modules', PACKAGE_NAME), 'Electron resources (app.asar.unpacked)')
    yield* withUnpacked('package', path.join(r, 'app.asar.unpacked'), 'Electron resources (the app is the package)')
    yield* withUnpacked('package', path.join(r, 'app', 'node_modules', PACKAGE_NAME), 'Electron resources (no asar)')
    yield* withUnpacked('package', path.join(r, PACKAGE_NAME), "Electron resources (packagerConfig.extraResource: ['node_modules/interprocess-objects'])")
  }
}

/** The addon file node-gyp-build would pick inside package directory `root`, if any. */
export function addonFileIn(root: string): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string }
    return nodeGypBuild.path(root)
  } catch {
    return undefined
  }
}

/**
 * Loads the addon with `load` from the first candidate that holds one. Throws
 * ShmError ERR_ADDON_NOT_FOUND listing every place looked at and the fixes.
 */
export function findAddon<T>(search: AddonSearch, load: (file: string) => T): { value: T; file: string } {
  const looked: string[] = []
  const tuple = `${search.platform}-${search.arch}`
  for (const c of addonCandidates(search, (line) => looked.push(line))) {
    let file: string | undefined
    if (c.kind === 'file') {
      file = fs.existsSync(c.path) ? c.path : undefined
      if (!file) looked.push(`${c.path} (${c.via}): no such file`)
    } else {
      file = addonFileIn(c.path)
      if (!file) {
        const what = fs.existsSync(c.path) ? `no build/Release, build/Debug or prebuilds/${tuple} addon in it` : 'no such directory'
        looked.push(`${c.path} (${c.via}): ${what}`)
      }
    }
    if (!file) continue
    try {
      return { value: load(file), file }
    } catch (err) {
      looked.push(`${file} (${c.via}): found, but it did not load: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  throw new ShmError('ERR_ADDON_NOT_FOUND', notFoundMessage(search, looked))
}

function notFoundMessage(search: AddonSearch, looked: string[]): string {
  const tuple = `${search.platform}-${search.arch}`
  const lines = [`interprocess-objects: its native addon was not found for ${tuple} (Node-API; one binary serves every Node >= 20 and Electron).`]
  lines.push(search.env[ADDON_ENV] ? `${ADDON_ENV} is set, so nothing else was searched:` : 'Looked in:')
  for (const l of looked) lines.push(`  - ${l}`)
  lines.push(
    'Fixes:',
    `  - npm rebuild ${PACKAGE_NAME}: compiles the addon (needs a C++ toolchain: Python 3 and make + g++/clang, Xcode command line tools, or Visual Studio Build Tools); also the fix when its install script did not run (npm install --ignore-scripts; pnpm, or npm's allowScripts, without ${PACKAGE_NAME} allowed to build)`,
    `  - or install a version of ${PACKAGE_NAME} that ships a prebuild for ${tuple} (prebuilds/${tuple}/*.node)`,
    `  - when your main/preload code is bundled: mark '${PACKAGE_NAME}' external in your bundler (esbuild: external, webpack: externals, vite: build.rollupOptions.external / ssr.external) so it loads from node_modules, and ship node_modules/${PACKAGE_NAME} with the app (Electron Forge: keep the AutoUnpackNativesPlugin; a packager that drops node_modules: extraResource ['node_modules/${PACKAGE_NAME}'])`,
    `  - or set ${ADDON_ENV}=/path/to/interprocess_objects.node`,
  )
  return lines.join('\n')
}
