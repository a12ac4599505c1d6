// The other process of test/notifier.test.ts. The notifier is internal, so this imports it
// from the sources. Modes (argv[2]):
//   notify <pid> <nonce> <count>  sends `count` wakes; reports the outcomes (process.send
//                                 when forked with IPC, else one JSON line on stdout)
//   listen keep|unref             opens its notifier, says { pid, nonce }, and listens with
//                                 keepAlive true/false; the first wake: says 'woken' and
//                                 unsubscribes. Listens to no IPC message, so only the
//                                 notifier can keep it alive.
//   throwing                      like listen keep, with a first listener that throws and a
//                                 second that says 'second ran'; reports the uncaught
//                                 exception as { uncaught: message }, then unsubscribes both
//   raw-throw                     the addon's notifier with an onWake that throws: reports
//                                 { uncaught: message } and closes the notifier
//   echo <pid> <nonce>            on each wake, wakes (pid, nonce) back; answers each IPC
//                                 message with itself; 'stop' ends it
// Run as a worker_thread instead, it opens the thread's own notifier, posts { pid, nonce }
// and listens with keepAlive: each wake posts 'woken'; with workerData 'once' it then
// unsubscribes, and having nothing else to do the thread ends by itself.
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { localNotifier, notifyProcess, type NotifyOutcome } from '../../core/notifier'
import { native } from '../../core/native'

const [mode, ...args] = isMainThread ? process.argv.slice(2) : ['worker']
const say = (m: unknown): void => {
  process.send!(m)
}

function address(): { pid: number; nonce: number } {
  const n = localNotifier()
  if (!n) throw new Error('no notifier on this platform')
  return { pid: n.pid, nonce: n.nonce }
}

switch (mode) {
  case 'notify': {
    const [pid, nonce, count] = args.map(Number) as [number, number, number]
    const outcomes: NotifyOutcome[] = []
    for (let i = 0; i < count; i++) outcomes.push(notifyProcess(pid, nonce))
    if (process.send) say(outcomes)
    else process.stdout.write(JSON.stringify(outcomes) + '\n')
    break
  }
  case 'listen': {
    say(address())
    const unlisten = localNotifier()!.listen(() => {
      say('woken')
      unlisten()
    }, args[0] === 'keep')
    break
  }
  case 'throwing': {
    say(address())
    const n = localNotifier()!
    const first = n.listen(() => {
      throw new Error('listener failed')
    }, true)
    const second = n.listen(() => say('second ran'), false)
    process.on('uncaughtException', (err) => {
      say({ uncaught: err.message })
      first()
      second()
    })
    break
  }
  case 'raw-throw': {
    const nonce = native.notifierOpen(() => {
      throw new Error('onWake failed')
    })
    native.notifierRef(true)
    say({ pid: process.pid, nonce })
    process.on('uncaughtException', (err) => {
      say({ uncaught: err.message })
      native.notifierClose()
    })
    break
  }
  case 'echo': {
    const [pid, nonce] = args.map(Number) as [number, number]
    say(address())
    const unlisten = localNotifier()!.listen(() => notifyProcess(pid, nonce), true)
    process.on('message', (m) => {
      if (m !== 'stop') return say(m)
      unlisten()
      process.disconnect()
    })
    break
  }
  case 'worker': {
    parentPort!.postMessage(address())
    const unlisten = localNotifier()!.listen(() => {
      parentPort!.postMessage('woken')
      if (workerData === 'once') unlisten()
    }, true)
    break
  }
  default:
    throw new Error(`notifier-peer: unknown mode ${String(mode)}`)
}
