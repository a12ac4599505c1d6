import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: the addon and real segments are per process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
