// What the numbers were measured on: printed with every report, because the same
// bench differs several-fold between a laptop and a 2-core virtual machine, and
// between a quiet machine and one shared with other work (the load average).
import * as fs from 'node:fs'
import * as os from 'node:os'

export interface Machine {
  /** CPU model as the OS reports it (a VM may hide most of it). */
  cpu: string
  /** Clock, cache and whether the kernel runs under a hypervisor, from /proc/cpuinfo where there is one. */
  cpuDetails?: string
  cores: number
  memoryBytes: number
  platform: string
  arch: string
  kernel: string
  node: string
  v8: string
  /** 1-, 5- and 15-minute load averages when the run started: other work on the machine skews every figure. */
  loadAverage: number[]
}

export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100)
}

function cpuDetails(): string | undefined {
  let text: string
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8')
  } catch {
    return undefined
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim()
  const parts: string[] = []
  const mhz = Number(field('cpu MHz'))
  if (mhz > 0) parts.push(`${(mhz / 1000).toFixed(2)} GHz`)
  const cache = field('cache size')
  if (cache) parts.push(`${cache} cache per core`)
  const flags = field('flags') ?? ''
  parts.push(/\bhypervisor\b/.test(flags) ? 'virtual machine (hypervisor flag set)' : 'no hypervisor flag')
  return parts.join(', ')
}

export function describeMachine(): Machine {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim().replace(/\s+/g, ' ') ?? 'unknown CPU',
    cpuDetails: cpuDetails(),
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryBytes: os.totalmem(),
    platform: os.platform(),
    arch: os.arch(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAverage: loadAverage(),
  }
}

export function formatMachine(m: Machine): string {
  const gib = (m.memoryBytes / 2 ** 30).toFixed(1)
  return `${m.cpu}${m.cpuDetails ? ` (${m.cpuDetails})` : ''}, ${m.cores} cores, ${gib} GiB RAM; ${m.kernel} (${m.platform}/${m.arch}); Node ${m.node}, V8 ${m.v8}; load average ${m.loadAverage.join(' / ')}`
}
