// Runs every bench scenario (each bench/*.ts file that exports `run`, see
// bench/lib/scenario.ts) and prints one table per scenario, with the machine it
// ran on. A new scenario is a new file here; helpers and peer processes go in
// bench/lib/, because every other file in bench/ is imported as a scenario.
//   npm run bench                      all scenarios, full length
//   npm run bench -- --quick           a short run of all of them (under a minute)
//   npm run bench -- roundtrip         only scenarios whose file name contains "roundtrip"
//   npm run bench -- --json out.json   also write the raw figures as JSON
//   npm run bench -- --doc docs/benchmarks.md
//                                      also render the figures as docs/benchmarks.md
//   npm run bench:docs                 = npm run bench -- --write-docs: a full run of every
//                                      scenario, saved to build/bench.json and rendered as
//                                      docs/benchmarks.md (check `uptime` first: the load
//                                      average is printed in the document, but it skews it)
//   npm run bench -- --from out.json --doc docs/benchmarks.md
//                                      render a saved run without measuring again
// `npm run bench` first compiles core/ and bench/ with tsc (tsconfig.bench.json)
// into build/bench-js/ and runs this file from there: tsx cannot inline const
// enums across files, so under tsx the core runs several times slower than the
// tsc output users get.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describeMachine, formatMachine, loadAverage } from './lib/machine'
import { compiled } from './lib/processes'
import { renderMarkdown, type BenchReport, type ScenarioResult } from './lib/report'
import type { BenchRow, ScenarioModule } from './lib/scenario'
import { formatFigure, renderTable } from './lib/stats'

interface Args {
  quick: boolean
  json?: string
  doc?: string
  from?: string
  filters: string[]
  writeDocs?: boolean
}

const USAGE = 'usage: npm run bench -- [--quick] [--json file] [--doc file.md] [--from saved.json] [--write-docs] [scenario-name-part ...]'
const DOCS = 'docs/benchmarks.md'
const SAVED = 'build/bench.json'

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, filters: [] }
  const value = (i: number, option: string) => {
    const v = argv[i]
    if (v === undefined || v.startsWith('-')) throw new Error(`${option} needs a file name (${USAGE})`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--quick') args.quick = true
    else if (a === '--json') args.json = value(++i, a)
    else if (a === '--doc') args.doc = value(++i, a)
    else if (a === '--from') args.from = value(++i, a)
    else if (a === '--write-docs') {
      args.json ??= SAVED
      args.doc = DOCS
      args.writeDocs = true
    }
    else if (a === '--help' || a === '-h') {
      console.log(USAGE)
      process.exit(0)
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a} (${USAGE})`)
    else args.filters.push(a)
  }
  if (args.from !== undefined && args.doc === undefined) throw new Error('--from renders a saved run: give --doc <file.md> too')
  if (args.writeDocs && (args.quick || args.filters.length > 0)) {
    throw new Error(`--write-docs renders ${DOCS} from one full run of every scenario: drop --quick and the scenario names (or use --doc <file.md> for a partial document)`)
  }
  return args
}

/** Scenario files: bench/*.ts (bench/*.js when compiled) except this runner, in name order. */
function scenarioFiles(filters: string[]): string[] {
  const ext = path.extname(__filename)
  return fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts') && f !== path.basename(__filename))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort()
}

function table(rows: BenchRow[]): string {
  const columns: string[] = []
  for (const row of rows) for (const label of Object.keys(row.figures)) if (!columns.includes(label)) columns.push(label)
  const hasNotes = rows.some((r) => r.note !== undefined)
  const header = ['case', ...columns, ...(hasNotes ? ['note'] : [])]
  const body = rows.map((r) => [r.case, ...columns.map((c) => (r.figures[c] ? formatFigure(r.figures[c]!) : '')), ...(hasNotes ? [r.note ?? ''] : [])])
  return renderTable(header, body)
}

function writeFile(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  fs.writeFileSync(file, text)
  console.log(`wrote ${file}`)
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  if (args.from !== undefined) {
    writeFile(args.doc!, renderMarkdown(JSON.parse(fs.readFileSync(args.from, 'utf8')) as BenchReport))
    return
  }
  const machine = describeMachine()
  const files = scenarioFiles(args.filters)
  if (files.length === 0) throw new Error(`no bench scenario matches ${args.filters.join(', ')}`)
  console.log(`interprocess-objects bench${args.quick ? ' (quick: short runs, noisier numbers)' : ''}`)
  console.log(`machine: ${formatMachine(machine)}`)
  const date = new Date().toISOString()
  console.log(`date:    ${date}`)
  if (machine.loadAverage[0]! > 1.5) {
    console.log(`WARNING: load average ${machine.loadAverage[0]} over the last minute: other work on this ${machine.cores}-core machine will skew the figures (see \`uptime\`; a quieter moment gives truer numbers).`)
  }
  if (!compiled) {
    console.log('WARNING: running the TypeScript sources through tsx: const enums are not inlined, so core figures are several times too low. Use `npm run bench`.')
  }
  const results: ScenarioResult[] = []
  let failed = 0
  const allStarted = performance.now()
  for (const file of files) {
    const scenario = path.basename(file, path.extname(file))
    const mod = (await import(path.join(__dirname, file))) as Partial<ScenarioModule>
    if (typeof mod.run !== 'function') continue
    const heading = mod.title ?? scenario
    console.log(`\n## ${heading}`)
    const started = performance.now()
    const load = loadAverage()
    try {
      const rows = await mod.run({ quick: args.quick })
      const ms = performance.now() - started
      console.log(table(rows))
      const notes = typeof mod.notes === 'function' ? mod.notes({ quick: args.quick }) : mod.notes
      for (const note of notes ?? []) console.log(`  ${note}`)
      const checks = mod.checks?.(rows) ?? []
      for (const c of checks) console.log(`  target ${c.na ? 'n/a  ' : c.met ? 'met  ' : 'SHORT'}  ${c.target}: ${c.measured}`)
      console.log(`  (${scenario}: ${(ms / 1000).toFixed(1)} s; load average ${load.join(' / ')} at its start)`)
      results.push({ scenario, title: heading, about: mod.about, notes, ms, rows, checks, loadAverage: load })
    } catch (err) {
      failed++
      console.error(`  ${scenario} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    }
  }
  const totalMs = performance.now() - allStarted
  console.log(`\ntotal: ${(totalMs / 1000).toFixed(1)} s`)
  const report: BenchReport = {
    machine,
    quick: args.quick,
    compiled,
    date,
    endLoadAverage: loadAverage(),
    totalMs,
    results,
  }
  if (args.json) writeFile(args.json, JSON.stringify(report, null, 2))
  if (args.writeDocs && failed > 0) console.error(`${failed} scenario(s) failed: ${DOCS} left as it was (the figures are in ${args.json})`)
  else if (args.doc) writeFile(args.doc, renderMarkdown(report))
  if (failed > 0) process.exitCode = 1
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  })
  // A scenario that left a handle open must not keep the runner alive.
  .finally(() => setTimeout(() => process.exit(), 100).unref())
