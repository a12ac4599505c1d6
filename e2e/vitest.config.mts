// `npm run test:electron`: the Playwright Electron e2e (skipped, by name, without an
// Electron binary). `npm test` runs it too, through the root vitest.config.mts.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['e2e/**/*.spec.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
