// Opens a segment, says 'ready', takes the turn (sync access, or accessAsync with
// "async") within the given timeout and reports what it saw: how long it waited, the
// recovery (if it took the turn over) and whether the heap checked out.
import { SharedMemory, ShmError } from 'interprocess-objects'

const [name, timeoutArg, how] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
process.send!('ready')
const started = Date.now()
const report = (at: number) => {
  const r = shm.lastRecovery
  return { ok: true, pid: process.pid, waitedMs: at - started, at, recovery: r === null ? null : { deadOwnerPid: r.deadOwnerPid, clean: r.report.clean } }
}
const fail = (err: unknown) => ({ ok: false, code: err instanceof ShmError ? err.code : String(err), waitedMs: Date.now() - started })
const send = (m: unknown): Promise<void> => new Promise((resolve) => process.send!(m, () => resolve()))
async function main(): Promise<void> {
  let result: unknown
  try {
    const at = how === 'async' ? await shm.accessAsync(() => Date.now(), { timeoutMs: Number(timeoutArg) }) : shm.access(() => Date.now(), { timeoutMs: Number(timeoutArg) })
    result = report(at)
    shm.check()
  } catch (err) {
    result = fail(err)
  }
  await send(result)
  shm.close()
}
void main()
