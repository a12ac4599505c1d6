// Tests, demos, examples and benchmarks use the SDK as users do: by its public names
// (interprocess-objects, interprocess-objects/main, …). A relative import into a library
// layer is allowed only for a name that no entry point exports — a white-box test of an
// internal (the allocator, the record layout, the addon binding) — so a public name can
// never be reached only by a path users cannot import.
import * as fs from 'node:fs'
import * as path from 'node:path'
import ts from 'typescript'
import { expect, it } from 'vitest'

const root = path.join(__dirname, '..')
const layers = ['core', 'main', 'preload', 'renderer', 'utility'] as const
const users = ['test', 'bench', 'demo', 'e2e', 'examples']

function publicNames(): Set<string> {
  const names = new Set<string>()
  const program = ts.createProgram(layers.map((l) => path.join(root, l, 'index.ts')), { strict: true, noEmit: true, skipLibCheck: true, types: ['node'] })
  const checker = program.getTypeChecker()
  for (const layer of layers) {
    const file = program.getSourceFile(path.join(root, layer, 'index.ts'))!
    for (const s of checker.getExportsOfModule(checker.getSymbolAtLocation(file)!)) names.add(s.name)
  }
  return names
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.')) yield* sourceFiles(full)
    else if (/\.m?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield full
  }
}

it('no test, demo, example or bench reaches a public name through a relative path', () => {
  const exported = publicNames()
  const offenders: string[] = []
  for (const dir of users) {
    for (const file of sourceFiles(path.join(root, dir))) {
      const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022)
      for (const statement of source.statements) {
        if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue
        const specifier = statement.moduleSpecifier
        if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) continue
        const target = path.relative(root, path.resolve(path.dirname(file), specifier.text))
        if (!layers.some((l) => target === l || target.startsWith(`${l}/`))) continue
        const clause = ts.isImportDeclaration(statement) ? statement.importClause : undefined
        const bindings = clause?.namedBindings
        const where = `${path.relative(root, file)}: '${specifier.text}'`
        if (bindings === undefined || !ts.isNamedImports(bindings)) {
          offenders.push(`${where} (a whole module; import the names it needs)`)
          continue
        }
        for (const element of bindings.elements) {
          const name = (element.propertyName ?? element.name).text
          if (exported.has(name)) offenders.push(`${where} imports ${name}, which the package exports: import it by the package's name`)
        }
      }
    }
  }
  expect(offenders).toEqual([])
})
