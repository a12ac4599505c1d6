import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // e2e/*.spec.ts: the Electron e2e, reported as skipped (with the reason) where no binary exists.
    include: ['test/**/*.test.ts', 'e2e/**/*.spec.ts'],
    // Each file in its own process: the addon and real segments are per process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
