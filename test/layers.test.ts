// The layering of DESIGN.md, checked on the sources: a layer imports only the layers
// below it (common/ below everything; the renderer, which runs in the page, only
// common/). farm-studio draws the same graph; this makes a wrong arrow fail `npm test`.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { expect, it } from 'vitest'

const root = path.resolve(__dirname, '..')

/** What each layer may import besides itself. */
const allowed: Record<string, readonly string[]> = {
  common: [],
  core: ['common'],
  utility: ['common', 'core'],
  main: ['common', 'core', 'utility'],
  preload: ['common', 'core'],
  renderer: ['common'],
  cli: ['common', 'core', 'main', 'utility'],
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : []
  })
}

it('every layer imports only the layers below it, and the renderer only common/', () => {
  const offenders: string[] = []
  let checked = 0
  for (const [layer, below] of Object.entries(allowed)) {
    for (const file of sources(path.join(root, layer))) {
      const text = fs.readFileSync(file, 'utf8')
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/g)) {
        checked++
        const target = path.relative(root, path.resolve(path.dirname(file), m[1]!)).split(path.sep)[0]!
        if (target !== layer && !below.includes(target)) offenders.push(`${path.relative(root, file)} imports ${m[1]} (${target}/)`)
      }
    }
  }
  expect(checked).toBeGreaterThan(100)
  expect(offenders).toEqual([])
})
