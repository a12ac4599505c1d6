import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const source = (dir: string): string => fileURLToPath(new URL(`./${dir}/index.ts`, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests import the package by its public names; these run the sources just changed
    // (tsconfig.json's "paths" does the same for tsx children and for tsc).
    alias: [
      { find: /^interprocess-objects$/, replacement: source('core') },
      { find: /^interprocess-objects\/(main|preload|renderer|utility)$/, replacement: fileURLToPath(new URL('./$1/index.ts', import.meta.url)) },
    ],
  },
  test: {
    // e2e/*.spec.ts: the Electron e2e, reported as skipped (with the reason) where no binary exists.
    include: ['test/**/*.test.ts', 'e2e/**/*.spec.ts'],
    // Builds dist/ and the prebuilt addon once, before any test file runs.
    globalSetup: ['test/global-setup.ts'],
    // Each file in its own process: the addon and real segments are per process.
    pool: 'forks',
    // Tests that views nobody can reach give back what they held call gc() (helpers/segments.ts afterCollection).
    execArgv: ['--expose-gc'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
