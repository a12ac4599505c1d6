// Hands shm.access / shm.accessAsync async callbacks and callbacks that return
// promises, then waits for stray rejections. Node ends a process on an unhandled
// rejection (exit code 1), so exiting 0 means none escaped. Reports what it saw.
import { SharedMemory, ShmError } from 'interprocess-objects'

const shm = SharedMemory.create({ name: process.argv[2]!, size: 1 << 20 })
const seen: Record<string, unknown> = {}
let ran = 0

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return err instanceof ShmError ? err.code : `not a ShmError: ${String(err)}`
  }
  return 'no error'
}

async function codeOfAsync(p: () => Promise<unknown>): Promise<string> {
  try {
    await p()
  } catch (err) {
    return err instanceof ShmError ? err.code : `not a ShmError: ${String(err)}`
  }
  return 'no error'
}

async function main(): Promise<void> {
  // async functions: refused before they run (nothing put, nothing left to reject)
  seen.asyncArrow = codeOf(() =>
    shm.access(async (tx) => {
      ran++
      tx.putMessage('before the await')
      await null
      tx.putMessage('after the await')
    }),
  )
  seen.asyncMethod = codeOf(() => shm.access({ async run() { ran++ } }.run))
  seen.asyncBound = codeOf(() => shm.access((async () => { ran++ }).bind(null)))
  seen.asyncGenerator = codeOf(() => shm.access(async function* () { ran++ } as never))
  seen.accessAsyncAsync = await codeOfAsync(() => shm.accessAsync(async (tx) => { ran++; tx.putMessage('x'); await null }))
  seen.message = (() => {
    try {
      shm.access(async () => {})
    } catch (err) {
      return (err as Error).message
    }
  })()

  // plain functions that return promises: run, then refused; their rejections are dropped
  seen.continuation = codeOf(() =>
    shm.access((tx) =>
      (async () => {
        await null
        tx.put([1]) // outside the turn: ERR_SHM_NO_TURN, a rejection nobody handles
      })(),
    ),
  )
  seen.rejected = codeOf(() => shm.access(() => Promise.reject(new Error('boom'))))
  seen.rejectsLater = codeOf(() => shm.access(() => new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 20))))
  seen.thenable = codeOf(() => shm.access(() => ({ then: (_: unknown, reject: (e: Error) => void) => setTimeout(() => reject(new Error('thenable')), 10) })))
  seen.throwingThen = codeOf(() => shm.access(() => ({ then() { throw new Error('then throws') } })))
  seen.accessAsyncPlain = await codeOfAsync(() => shm.accessAsync(() => Promise.reject(new Error('async boom'))))
  seen.accessAsyncContinuation = await codeOfAsync(() => shm.accessAsync((tx) => (async () => { await null; tx.put([2]) })()))

  // a mapped view returned from the turn is a value, not a thenable
  seen.mappedResult = shm.access((tx) => {
    const o = tx.put({ then: 1 })
    return typeof o === 'object' && o.then === 1 ? 'returned' : 'lost'
  })
  seen.queued = shm.access((tx) => tx.messageCount())
  seen.ran = ran
  // Time for every stray rejection above to surface (the late ones at 10–20 ms).
  await new Promise((resolve) => setTimeout(resolve, 150))
  process.send!(seen)
  shm.close()
}

void main()
