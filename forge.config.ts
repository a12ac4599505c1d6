// Electron Forge configuration of the demo app (demo/electron/). `npm start` runs
// `electron-forge start --app-path demo/electron/.build`: the generateAssets hook below
// bundles the demo with esbuild first, then Electron starts .build/main.js.
//
// Native addon: it is a Node-API module, so the same binary loads in Electron without a
// rebuild for Electron's ABI; @electron/rebuild is still installed for apps whose other
// dependencies need it, and auto-unpack-natives keeps the .node file out of the asar
// archive (a shared library cannot be loaded from inside it): build/Release/*.node and
// prebuilds/*/*.node land in resources/app.asar.unpacked, where the bundled loader looks
// first (core/addon_path.ts; docs/packaging.md).
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { ForgeConfig } from '@electron-forge/shared-types'
import { MakerZIP } from '@electron-forge/maker-zip'
import { AutoUnpackNativesPlugin } from '@electron-forge/plugin-auto-unpack-natives'
import { FusesPlugin } from '@electron-forge/plugin-fuses'
import { FuseV1Options, FuseVersion } from '@electron/fuses'
import { buildDemo } from './demo/electron/build'

const config: ForgeConfig = {
  packagerConfig: {
    name: 'interprocess-objects-demo',
    asar: true,
    // Ship the built demo, the library sources it was bundled from are not needed.
    ignore: [/^\/(test|bench|docs|e2e|test-results|\.ci|native|core|main|preload|renderer|utility|cli)\//, /^\/demo\/(?!electron\/\.build)/, /^\/build\/(?!Release\/)/],
  },
  // Node-API: nothing to rebuild for Electron's ABI (see above). List modules here if
  // your app adds native dependencies that are not Node-API.
  rebuildConfig: { onlyModules: [] },
  makers: [new MakerZIP({}, ['linux', 'darwin', 'win32'])],
  plugins: [
    new AutoUnpackNativesPlugin({}),
    new FusesPlugin({
      version: FuseVersion.V1,
      [FuseV1Options.RunAsNode]: false,
      [FuseV1Options.EnableCookieEncryption]: true,
      // Playwright's _electron.launch drives the app through --inspect and
      // --remote-debugging-port and may pass NODE_OPTIONS: keep both enabled.
      [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: true,
      [FuseV1Options.EnableNodeCliInspectArguments]: true,
      [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: false,
      [FuseV1Options.OnlyLoadAppFromAsar]: false,
    }),
  ],
  hooks: {
    generateAssets: async () => {
      await buildDemo()
    },
    // The library's package.json "main" is the library; the packaged app starts the demo.
    packageAfterCopy: async (_config, buildPath) => {
      const file = path.join(buildPath, 'package.json')
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
      pkg.main = 'demo/electron/.build/main.js'
      fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n')
    },
  },
}

export default config
