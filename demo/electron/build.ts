// Bundles the Electron demo into demo/electron/.build/ with esbuild: main, preload and
// the frame worker for Node, the page for the browser. Run by `npm run demo:build`, by
// forge.config.ts before `electron-forge start`/`package`, and by the e2e test.
//
// Bundled the way a user's app is (Electron Forge's esbuild/webpack/vite setups): only
// `electron` stays external, the SDK (imported by its public names, resolved here by
// tsconfig.json's "paths" to the sources) and node-gyp-build go into the bundle. The
// bundled loader (core/addon_path.ts) finds the addon from .build/ by walking up to the
// package.json named interprocess-objects (this repo: build/Release or prebuilds/);
// packaged, that is resources/app.asar, whose .node files auto-unpack-natives has moved
// to app.asar.unpacked, where the loader looks first.
import { build, type Plugin } from 'esbuild'
import * as fs from 'node:fs'
import * as path from 'node:path'

export const demoDir = __dirname
export const buildDir = path.join(demoDir, '.build')

const browserEntry: Plugin = {
  name: 'interprocess-objects-browser-entry',
  setup(b) {
    b.onResolve({ filter: /^interprocess-objects$/ }, () => ({ path: path.join(demoDir, '..', '..', 'core', 'browser.ts') }))
  },
}

export async function buildDemo(): Promise<string> {
  fs.mkdirSync(buildDir, { recursive: true })
  const node = {
    bundle: true,
    platform: 'node' as const,
    format: 'cjs' as const,
    target: 'node20',
    external: ['electron'],
    tsconfig: path.join(demoDir, '..', '..', 'tsconfig.json'),
    logLevel: 'warning' as const,
    sourcemap: 'inline' as const,
  }
  await Promise.all([
    build({ ...node, entryPoints: [path.join(demoDir, 'main.ts')], outfile: path.join(buildDir, 'main.js') }),
    build({ ...node, entryPoints: [path.join(demoDir, 'preload.ts')], outfile: path.join(buildDir, 'preload.js') }),
    build({ ...node, entryPoints: [path.join(demoDir, 'frame-worker.ts')], outfile: path.join(buildDir, 'frame-worker.js') }),
    build({
      entryPoints: [path.join(demoDir, 'page.ts')],
      // The package's "browser" export condition, from the sources (tsconfig's paths send
      // 'interprocess-objects' to the Node entry, which loads the addon).
      plugins: [browserEntry],
      outfile: path.join(buildDir, 'renderer.js'),
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'chrome120',
      logLevel: 'warning',
    }),
  ])
  fs.copyFileSync(path.join(demoDir, 'index.html'), path.join(buildDir, 'index.html'))
  // `electron demo/electron/.build` starts main.js.
  fs.writeFileSync(path.join(buildDir, 'package.json'), JSON.stringify({ name: 'interprocess-objects-demo', version: '0.1.0', private: true, main: 'main.js' }, null, 2) + '\n')
  return buildDir
}

if (require.main === module) {
  buildDemo().then(
    (dir) => console.log(`demo built in ${path.relative(process.cwd(), dir)}`),
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    },
  )
}
