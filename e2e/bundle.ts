// Bundles browser code with esbuild for tests: platform 'browser', so an import of a
// Node module anywhere in the graph fails the build instead of reaching a page.
import { build } from 'esbuild'

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
  })
  return result.outputFiles[0]!.text
}
