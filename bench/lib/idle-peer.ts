// One idle waiter for bench/idle.ts: waits for one message on its own channel (or,
// for "baseline", for the parent's IPC message) and reports the CPU time this
// whole process used while it waited, from process.cpuUsage() (every thread:
// the addon's waiter threads count too).
//   idle-peer.ts receive|receive-sync|wait|wait-sync|wait-low-latency|poll <segment> <channel>
//   idle-peer.ts baseline
import { SharedMemory } from 'interprocess-objects'

const [mode, name, channel] = process.argv.slice(2)

let cpu0: NodeJS.CpuUsage
let t0: number

function start(): void {
  t0 = performance.now()
  cpu0 = process.cpuUsage()
}

function finish(): void {
  const cpu = process.cpuUsage(cpu0)
  const wallMs = performance.now() - t0
  process.send!({ cpuMs: (cpu.user + cpu.system) / 1e3, userMs: cpu.user / 1e3, systemMs: cpu.system / 1e3, wallMs }, () => process.disconnect())
}

async function main(): Promise<void> {
  if (mode === 'baseline') {
    // Nothing but the event loop and the IPC channel.
    process.once('message', finish)
    process.send!('ready')
    start()
    return
  }
  const shm = SharedMemory.open({ name: name! })
  // Open the channel once before measuring, as a long-lived waiter would have.
  const ch = shm.channel(channel!)
  shm.access((tx) => tx.hasMessages({ channel }))
  process.send!('ready')
  start()
  switch (mode) {
    case 'receive':
      await ch.receive()
      break
    case 'receive-sync':
      ch.receiveSync()
      break
    case 'wait':
      await shm.waitForMessage({ channel })
      break
    case 'wait-low-latency':
      await shm.waitForMessage({ channel, wait: 'low-latency' })
      break
    case 'wait-sync':
      shm.waitForMessageSync({ channel })
      break
    case 'poll':
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (shm.access((tx) => tx.hasMessages({ channel }))) {
            clearInterval(timer)
            resolve()
          }
        }, 1)
      })
      break
    default:
      throw new Error(`idle-peer: unknown mode ${String(mode)}`)
  }
  finish()
}

main().catch((err: unknown) => {
  console.error('idle peer:', err)
  process.exit(1)
})
