// Takes the turn, tells the parent, then holds it for `ms` milliseconds — or,
// with "die", kills itself while holding it.
import { SharedMemory } from 'interprocess-objects'

const [name, msArg, how] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const sleeper = new Int32Array(new SharedArrayBuffer(4))
shm.access(() => {
  process.send!('holding')
  Atomics.wait(sleeper, 0, 0, Number(msArg))
  if (how === 'die') process.kill(process.pid, 'SIGKILL')
})
shm.close()
