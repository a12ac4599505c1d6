// docs/benchmarks.md, rendered from a run's JSON (bench/run.ts --json / --doc).
// The texts come from the scenario files (title, about, notes, checks), so the
// document says what the code measured; nothing here is edited by hand.
import type { Machine } from './machine'
import type { BenchRow, Check } from './scenario'
import { formatFigure } from './stats'

export interface ScenarioResult {
  scenario: string
  title: string
  about?: string
  notes?: string[]
  ms: number
  rows: BenchRow[]
  checks: Check[]
  /** Load averages when the scenario started. */
  loadAverage?: number[]
}

export interface BenchReport {
  machine: Machine
  quick: boolean
  compiled: boolean
  date: string
  /** Load averages when the run ended. */
  endLoadAverage?: number[]
  totalMs?: number
  results: ScenarioResult[]
}

/** The order sections appear in the document (others follow in file order). */
const ORDER = ['throughput', 'shared-dict', 'messages', 'roundtrip', 'idle', 'allocator', 'codec']

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function table(rows: BenchRow[]): string {
  const columns: string[] = []
  for (const row of rows) for (const label of Object.keys(row.figures)) if (!columns.includes(label)) columns.push(label)
  const hasNotes = rows.some((r) => r.note !== undefined && r.note !== '')
  const header = ['case', ...columns, ...(hasNotes ? ['note'] : [])]
  const align = ['---', ...columns.map(() => '---:'), ...(hasNotes ? ['---'] : [])]
  const body = rows.map((r) => [r.case, ...columns.map((c) => (r.figures[c] ? formatFigure(r.figures[c]!) : '')), ...(hasNotes ? [r.note ?? ''] : [])])
  return [header, align, ...body].map((line) => `| ${line.map(cell).join(' | ')} |`).join('\n')
}

function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .trim()
    .replace(/\s/g, '-')
}

/** A figure of one row of one scenario in this report, NaN when absent. */
function lookup(results: ScenarioResult[], scenario: string, row: string, column: string): number {
  return results.find((r) => r.scenario === scenario)?.rows.find((x) => x.case === row)?.figures[column]?.value ?? NaN
}

const GiB = 2 ** 30
const gib = (bytesPerSec: number) => (Number.isFinite(bytesPerSec) ? `${(bytesPerSec / GiB).toFixed(2)} GiB/s` : 'n/a')
const per = (x: number) => (Number.isFinite(x) ? `${Math.round(x).toLocaleString('en-US')}/s` : 'n/a')
const times = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×` : 'n/a')

/** The seed's published figures (its README), beside the nearest figures of this run. */
function seedSection(results: ScenarioResult[]): string[] {
  const tp = (row: string) => lookup(results, 'throughput', row, 'warm')
  const sdk = tp('SDK tx.put + send(view), read in place')
  const memcpy = tp('memcpy in one process (ceiling)')
  const ipc = tp('child_process IPC (advanced)')
  const uds = tp('Unix domain socket')
  const dict = (row: string, column = 'batched') => lookup(results, 'shared-dict', row, column)
  const seedSysbench = (5499.28 * 2 ** 20) / GiB
  return [
    '## The seed (InterProcessPyObjects), for context',
    "**Not a like-for-like comparison.** The seed's figures below are copied from its README: measured by its author in Python, with its own scripts, on an Intel Ivy Bridge desktop CPU with 32 GB of dual-channel DDR3, Ubuntu 20.04 under WSL2 on Windows 10. Ours are from the run above: JavaScript, a different machine, our own scenarios. Absolute numbers cannot be compared across the two; each side's ratio to a reference measured on its own machine says a little more, and even those references differ (the seed used `sysbench memory --memory-oper=write`, a write-bandwidth test, where we use a one-process memcpy).",
    '',
    '### Throughput of large messages',
    '',
    '| | the seed (its machine, Python) | this SDK (this run, Node) |',
    '|---|---|---|',
    `| shared-memory messages | InterProcessPyObjects (sync) 3.770 GiB/s | tx.put + send(view), read in place: ${gib(sdk)} |`,
    `| memory reference | sysbench memory write ${seedSysbench.toFixed(2)} GiB/s | memcpy in one process ${gib(memcpy)} |`,
    `| ratio to the reference | ${times(3.77 / seedSysbench)} | ${times(sdk / memcpy)} |`,
    `| the platform's pipe IPC | multiprocessing.Pipe 0.469 GiB/s, multiprocessing.Queue 0.669 GiB/s | child_process IPC (advanced) ${gib(ipc)} |`,
    `| ratio to pipe IPC | ${times(3.77 / 0.469)} (Pipe), ${times(3.77 / 0.669)} (Queue) | ${times(sdk / ipc)} |`,
    `| Unix domain socket | uvloop 0.966 GiB/s, asyncio 0.708 GiB/s | net.Socket ${gib(uds)} |`,
    '',
    "The seed's other rows: InterProcessPyObjects + uvloop 3.222, + asyncio 3.079, multiprocessing.shared_memory 2.685, asyncio + cengal.Streams 0.942, uvloop.Streams 0.922, asyncio.Streams 0.784 GiB/s.",
    '',
    '### Shared dict increments',
    '',
    '| the seed (its machine, Python) | increments/s | nearest here (this run) | increments/s |',
    '|---|---:|---|---:|',
    `| InterProcessPyObjects – IntEnumListStruct | 1,189,730 | struct view (defineStruct), batched | ${per(dict('struct view (defineStruct)'))} |`,
    `| InterProcessPyObjects – Dataclass | 143,091 | mapped plain object, batched | ${per(dict('mapped plain object'))} |`,
    `| InterProcessPyObjects – Dict | 44,285 | MappedMap, batched | ${per(dict('MappedMap'))} |`,
    `| multiprocessing.Manager – dict | 2,751 | child_process IPC (advanced), per request | ${per(dict('child_process IPC (advanced)', 'per request'))} |`,
    '| UltraDict | 76,214 | | |',
    '| SharedMemoryDict | 42,862 | | |',
    '',
    "The seed README also lists single operations inside its access context: `company_metrics[CompanyMetrics.employees] += 1` (an IntEnum-indexed list field) at 247,476/s and `data_dict['key1'] += 3` at 41,409/s. " +
      "Our batched column spreads one request over 9,000 increments, so it is closer to the seed's tight loops than to its per-request cost; the per-request column (one round trip between processes for 9 increments) has no counterpart in the seed's tables.",
  ]
}

export function renderMarkdown(report: BenchReport): string {
  const m = report.machine
  const results = [...report.results].sort((a, b) => rank(a.scenario) - rank(b.scenario))
  const out: string[] = []
  const p = (...lines: string[]) => out.push(...lines, '')
  p(
    '# Benchmarks',
    `<!-- Generated by \`npm run bench:docs\` (= \`npm run bench -- --write-docs\`: one full run, saved to build/bench.json, rendered here); re-render a saved run with \`npm run bench -- --from build/bench.json --doc docs/benchmarks.md\`. Do not edit by hand: the texts live in the scenario files under bench/ and in bench/lib/report.ts. -->`,
  )
  p(
    'Every figure below comes from one run of `npm run bench` on the machine described here, with every peer measured in the same run. ' +
      'Absolute numbers differ several-fold between machines (and, on this one, between a quiet and a busy minute); the ratios against the peers measured alongside are what carries over. ' +
      'Each scenario is one file in [`bench/`](../bench/). `npm run bench -- --quick` runs them all in well under a minute (noisier); `npm run bench:docs` makes the full run and rewrites this file. ' +
      'The benchmarks run the tsc-compiled JavaScript (build/bench-js), as users get it from dist/, and never run as part of `npm test`.',
  )
  p('## The machine', '')
  p(
    `| | |`,
    `|---|---|`,
    `| CPU | ${m.cpu}${m.cpuDetails ? ` (${m.cpuDetails})` : ''}, ${m.cores} cores available |`,
    `| memory | ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB |`,
    `| OS | ${m.kernel} (${m.platform}/${m.arch}) |`,
    `| runtime | Node ${m.node}, V8 ${m.v8} |`,
    `| code | ${report.compiled ? 'compiled by tsc (build/bench-js), as users get it from dist/' : '**TypeScript through tsx: const enums not inlined, figures too low**'} |`,
    `| run | ${report.quick ? '**quick** (short, noisy)' : 'full'}, started ${report.date}${report.totalMs === undefined ? '' : `, ${(report.totalMs / 60000).toFixed(1)} min`} |`,
    `| load average | ${m.loadAverage.join(' / ')} at the start${report.endLoadAverage ? `, ${report.endLoadAverage.join(' / ')} at the end` : ''} (1 / 5 / 15 min; each scenario's own is under its table) |`,
  )
  p(
    `This is a ${m.cores}-core virtual machine shared with other work: a process that spins occupies half of it, waking a sleeping process costs a trip through the hypervisor, page faults on fresh memory are expensive, and anything else running (the load average above: 1.0 means one runnable process on average, over the minute) shows up as noise, most of all in the p99 columns and in the rows that spin. ` +
      "The load average counts the benchmark's own processes too: the start figure includes the tsc compile that `npm run bench` runs first, and while a scenario runs its own peers add up to about 2 (two busy processes), so the figure under each table, taken as that scenario started, still carries the previous scenario's processes (a 1-minute average decays slowly). " +
      'Where the load was high the absolute figures are low; the ratios to the peers measured minutes apart in the same run hold better.',
  )

  const checks = results.flatMap((r) => r.checks.map((c) => ({ ...c, scenario: r })))
  if (checks.length > 0) {
    p('## Targets', '')
    p(
      '| target | measured | | scenario |',
      '|---|---|---|---|',
      ...checks.map((c) => `| ${cell(c.target)} | ${cell(c.measured)} | ${c.na ? 'n/a' : c.met ? 'met' : '**short**'} | [${c.scenario.scenario}](#${anchor(c.scenario.title)}) |`),
    )
    const short = checks.filter((c) => !c.met && !c.na)
    if (short.length > 0) p(`Why each missed target is missed: [Where we fall short](#where-we-fall-short), below the tables.`)
  }

  for (const r of results) {
    p(`## ${r.title}`)
    if (r.about) p(r.about)
    p(table(r.rows))
    if (r.notes && r.notes.length > 0) p(...r.notes.map((n) => `- ${n}`))
    p(
      `Source: [\`bench/${r.scenario}.ts\`](../bench/${r.scenario}.ts) (${(r.ms / 1000).toFixed(1)} s${r.loadAverage ? `; load average ${r.loadAverage.join(' / ')} when it started` : ''}).`,
    )
  }

  const short = checks.filter((c) => !c.met && !c.na)
  p('## Where we fall short')
  if (short.length === 0) p('Every target was met in this run.')
  for (const c of short) {
    p(`### ${c.target}`, `Measured: ${c.measured}.`)
    if (c.why) p(c.why.trim())
  }

  p(...seedSection(results))
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n'
}

function rank(scenario: string): number {
  const i = ORDER.indexOf(scenario)
  return i < 0 ? ORDER.length : i
}
