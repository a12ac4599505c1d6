// What the numbers were measured on: printed with every report, because the same
// bench differs several-fold between a laptop and a 2-core virtual machine.
import * as os from 'node:os'

export interface Machine {
  cpu: string
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

export function describeMachine(): Machine {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim().replace(/\s+/g, ' ') ?? 'unknown CPU',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryBytes: os.totalmem(),
    platform: os.platform(),
    arch: os.arch(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

export function formatMachine(m: Machine): string {
  const gib = (m.memoryBytes / 2 ** 30).toFixed(1)
  return `${m.cpu}, ${m.cores} cores, ${gib} GiB RAM; ${m.kernel} (${m.platform}/${m.arch}); Node ${m.node}, V8 ${m.v8}; load average ${m.loadAverage.join(' / ')}`
}
