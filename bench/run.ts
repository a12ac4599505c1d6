// Runs every bench scenario (each bench/*.ts file that exports `run`, see
// bench/lib/scenario.ts) and prints one table per scenario, with the machine it
// ran on. A new scenario is a new file here; helpers and peer processes go in
// bench/lib/, because every other file in bench/ is imported as a scenario.
//   npm run bench                      all scenarios, full length
//   npm run bench -- --quick           a short run of all of them
//   npm run bench -- roundtrip         only scenarios whose file name contains "roundtrip"
//   npm run bench -- --json out.json   also write the raw figures as JSON
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describeMachine, formatMachine } from './lib/machine'
import type { BenchRow, ScenarioModule } from './lib/scenario'
import { formatFigure, renderTable } from './lib/stats'

interface Args {
  quick: boolean
  json?: string
  filters: string[]
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, filters: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--quick') args.quick = true
    else if (a === '--json') {
      const file = argv[++i]
      if (file === undefined) throw new Error('--json needs a file name')
      args.json = file
    } else if (a === '--help' || a === '-h') {
      console.log('usage: tsx bench/run.ts [--quick] [--json file] [scenario-name-part ...]')
      process.exit(0)
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a} (known: --quick, --json <file>)`)
    else args.filters.push(a)
  }
  return args
}

/** Scenario files: bench/*.ts except this runner, in name order. */
function scenarioFiles(filters: string[]): string[] {
  return fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== path.basename(__filename))
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const machine = describeMachine()
  const files = scenarioFiles(args.filters)
  if (files.length === 0) throw new Error(`no bench scenario matches ${args.filters.join(', ')}`)
  console.log(`interprocess-objects bench${args.quick ? ' (quick: short runs, noisier numbers)' : ''}`)
  console.log(`machine: ${formatMachine(machine)}`)
  console.log(`date:    ${new Date().toISOString()}`)
  const results: Array<{ scenario: string; title: string; ms: number; rows: BenchRow[] }> = []
  let failed = 0
  for (const file of files) {
    const scenario = path.basename(file, '.ts')
    const mod = (await import(path.join(__dirname, file))) as Partial<ScenarioModule>
    if (typeof mod.run !== 'function') continue
    const heading = mod.title ?? scenario
    console.log(`\n## ${heading}`)
    const started = performance.now()
    try {
      const rows = await mod.run({ quick: args.quick })
      const ms = performance.now() - started
      console.log(table(rows))
      for (const note of mod.notes ?? []) console.log(`  ${note}`)
      console.log(`  (${scenario}: ${(ms / 1000).toFixed(1)} s)`)
      results.push({ scenario, title: heading, ms, rows })
    } catch (err) {
      failed++
      console.error(`  ${scenario} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    }
  }
  if (args.json) {
    fs.writeFileSync(args.json, JSON.stringify({ machine, quick: args.quick, date: new Date().toISOString(), results }, null, 2))
    console.log(`\nwrote ${args.json}`)
  }
  if (failed > 0) process.exitCode = 1
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
})
