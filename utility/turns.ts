// Entering turns without tripping synchronous shm.access() elsewhere in the process.
//
// core's accessAsync takes the turn (the lock word and the per-thread "held" mark)
// a few microtasks before it runs its callback. Any shm.access() that runs in
// between — e.g. the caller's `await pool.run()` continuation — throws
// ERR_SHM_REENTRANT although nothing is nested. Until core closes that window
// (see the report of the offload issue), the pool and the worker open every async
// turn from a fresh macrotask: then no foreign microtask is queued while the window
// is open, because the window closes within that task's own microtasks.
import type { AccessOptions, SharedMemory, Transaction, WaitForMessageOptions } from '../core'

/** Resolves in a later macrotask (setImmediate), after every microtask queued now has run. */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** shm.accessAsync, entered from a fresh macrotask. */
export async function asyncTurn<T>(shm: SharedMemory, fn: (tx: Transaction) => T, options?: AccessOptions): Promise<T> {
  await nextMacrotask()
  return shm.accessAsync(fn, options)
}

/** shm.waitForMessage, entered from a fresh macrotask. */
export async function waitForMessageSafely(shm: SharedMemory, options: WaitForMessageOptions): Promise<void> {
  await nextMacrotask()
  return shm.waitForMessage(options)
}
