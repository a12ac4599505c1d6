// The published .d.ts files describe Electron's objects structurally, so a project
// without the `electron` package type-checks (test/consumer.test.ts). This file keeps
// those shapes honest against the real electron.d.ts: the assertions are checked by
// `npm run typecheck` (part of `npm test`), the runtime part by vitest.
import type * as Electron from 'electron'
import { expect, expectTypeOf, it } from 'vitest'
import { SharedObjectsHost, type BaseWebPreferences, type QuitEvents, type UtilityProcessLike, type UtilityProcessModule, type WindowWebPreferences } from 'interprocess-objects/main'
import { uniqueName } from './helpers/processes'

it("Electron's utilityProcess, app and WebPreferences fit the SDK's structural types, both ways where it matters", () => {
  expectTypeOf<typeof Electron.utilityProcess>().toExtend<UtilityProcessModule>()
  expectTypeOf<Electron.UtilityProcess>().toExtend<UtilityProcessLike>()
  expectTypeOf<Electron.App>().toExtend<QuitEvents>()
  expectTypeOf<Electron.WebPreferences>().toExtend<BaseWebPreferences>()
  expectTypeOf<WindowWebPreferences<Electron.WebPreferences>>().toExtend<Electron.WebPreferences>()

  const host = SharedObjectsHost.create({ prefix: 'et', segments: { s: { size: 1 << 20, name: uniqueName('et'), regions: { r: 64 } } } })
  try {
    const base: Electron.WebPreferences = { preload: '/app/preload.js', spellcheck: false, additionalArguments: ['--keep'] }
    const prefs: Electron.WebPreferences = host.webPreferences({ s: { regions: { r: 'read' } } }, base)
    expect(prefs).toMatchObject({ preload: '/app/preload.js', spellcheck: false, sandbox: false, nodeIntegration: false, contextIsolation: true })
    expect(prefs.additionalArguments?.[0]).toBe('--keep')
    expect(prefs.additionalArguments?.[1]).toMatch(/^--ipo-grants=/)
  } finally {
    host.close()
  }
})
