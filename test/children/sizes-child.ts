// Runs one size or space scenario for test/sizes.test.ts in a process of its own and
// prints one JSON line with what it saw. Modes:
//   enospc      inside a private 1 MiB tmpfs on /dev/shm (the test starts us under
//               `unshare -m`): segments that do not fit fail with ENOSPC, leave nothing.
//   alloc-fail  the parent caps our address space (prlimit) after we report VmSize, to
//               less than a 1 GiB SharedArrayBuffer needs: its allocation fails.
//   sigbus      truncates its own segment's OS object, then touches a lost page.
import * as fs from 'node:fs'
import { SharedMemory, ShmError } from 'interprocess-objects'
import { MAX_SEGMENT_SIZE } from '../../core/layout'
import { held, shmFile } from '../helpers/segments'

const [mode, name] = process.argv.slice(2) as [string, string]

function attempt(fn: () => SharedMemory): { code?: string; message?: string; shmError?: boolean; ok?: true } {
  try {
    fn().close()
    return { ok: true }
  } catch (err) {
    return { code: (err as ShmError).code, message: (err as Error).message, shmError: err instanceof ShmError }
  }
}

function report(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

if (mode === 'enospc') {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1] === '/dev/shm').pop() ?? ''
  const big = attempt(() => SharedMemory.create({ name, size: 4 << 20 }))
  const afterBig = { files: fs.readdirSync('/dev/shm'), ...held(name) }
  const orCreate = attempt(() => SharedMemory.openOrCreate({ name, size: 4 << 20 }))
  const largest = attempt(() => SharedMemory.create({ name, size: MAX_SEGMENT_SIZE }))
  // One that fits works, and then takes the room a second one would need.
  const small = SharedMemory.create({ name, size: 512 << 10 })
  const worked = small.access((tx) => tx.copy(tx.put({ fits: [1, 2, 3] })))
  const second = attempt(() => SharedMemory.create({ name: `${name}b`, size: 1 << 20 }))
  const afterSecond = { files: fs.readdirSync('/dev/shm'), ...held(`${name}b`) }
  small.check()
  small.close()
  report({ mounts, big, afterBig, orCreate, largest, worked, second, afterSecond, atEnd: fs.readdirSync('/dev/shm') })
} else if (mode === 'alloc-fail') {
  // Let start-up work finish first (tsx instantiates WebAssembly lazily, and newer
  // Node reserves gigabytes of address space for it).
  setTimeout(() => {
    const status = fs.readFileSync('/proc/self/status', 'utf8')
    const vmSize = Number(/VmSize:\s+(\d+) kB/.exec(status)![1]) * 1024
    process.send!({ vmSize })
    process.once('message', () => {
      const created = attempt(() => SharedMemory.create({ name, size: 1 << 30 }))
      const afterCreate = { exists: fs.existsSync(shmFile(name)), ...held(name) }
      process.send!({ created, afterCreate }, () => process.disconnect())
    })
  }, 500)
} else if (mode === 'sigbus') {
  const shm = SharedMemory.create({ name, size: 1 << 20 })
  fs.truncateSync(shmFile(name), 0)
  let check = ''
  try {
    shm.check()
  } catch (err) {
    check = `${(err as ShmError).code}: ${(err as Error).message}`
  }
  report({ check })
  // The documented remaining case: a page past the new end of the file.
  shm.bytes[shm.size - 1] = 1
  report({ survived: true })
}
