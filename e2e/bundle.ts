// Bundles browser code with esbuild for tests: platform 'browser', so an import of a
// Node module anywhere in the graph fails the build instead of reaching a page.
import { build } from 'esbuild'
import * as path from 'node:path'

// The package's "browser" export condition, from the sources (tsconfig's paths would
// otherwise send 'interprocess-objects' to the Node entry).
const browserEntry = path.join(__dirname, '..', 'core', 'browser.ts')

export interface BrowserBundleOptions {
  /** Extra esbuild `define`s. */
  define?: Record<string, string>
}

/** One IIFE script for `entry`, as text. */
export async function bundleForBrowser(entry: string, options: BrowserBundleOptions = {}): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
    define: options.define,
    plugins: [{ name: 'browser-entry', setup: (b) => b.onResolve({ filter: /^interprocess-objects$/ }, () => ({ path: browserEntry })) }],
  })
  return result.outputFiles[0]!.text
}
