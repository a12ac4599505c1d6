// This thread's wake address: the addon's notifier (native/notifier.h). Another process
// wakes this thread's event loop directly with one datagram, notifyProcess(pid, nonce),
// and the listeners run here: one hop, where a wait served by the waiter threads takes two.
// One per thread (the main thread, each worker_thread), opened on first use.
//
// A wake means only "look again": any local process may send one, and several sent before
// the loop gets to them arrive as one. Listeners re-check what they wait for.
// Windows has no notifier: localNotifier() is null there and callers keep to the waiter threads.
import { ShmError } from './errors'
import { native } from './native'

export interface Notifier {
  /** This process's id: with `nonce`, the address other processes notify. */
  readonly pid: number
  /** This thread's notifier's nonce, 1..2^32-1. */
  readonly nonce: number
  /**
   * Calls `fn` on every wake until the returned function is called (more calls do nothing).
   * While some listener with `keepAlive` is subscribed, the notifier holds the event loop open.
   */
  listen(fn: () => void, keepAlive: boolean): () => void
  /** Holds the event loop open until the returned function is called (more calls do nothing). */
  keepAlive(): () => void
}

export type NotifyOutcome = 'sent' | 'gone' | 'failed'

const OUTCOMES: readonly NotifyOutcome[] = ['sent', 'gone', 'failed']

/** undefined: not opened yet; null: this platform has none. */
let local: { notifier: Notifier; close(): void; wakeHere(): void } | null | undefined

/** This thread's wake address, opened on first use; null where the platform has none (Windows). */
export function localNotifier(): Notifier | null {
  if (local === undefined) local = openNotifier()
  return local?.notifier ?? null
}

/**
 * Closes this thread's notifier: its address reads 'gone' from now on, its listeners are
 * dropped (they never run again) and the next localNotifier() opens one at a new nonce.
 */
export function closeLocalNotifier(): void {
  if (!local) return
  local.close()
  local = undefined
}

/**
 * Wakes the notifier at (pid, nonce) without blocking. 'sent' also when a wake is already
 * pending there; 'gone' when nobody is at that address (that process or its notifier is
 * gone: drop the registration); 'failed' otherwise. RangeError unless both are integers
 * 1..2^32-1.
 */
export function notifyProcess(pid: number, nonce: number): NotifyOutcome {
  // This thread's own address (a sender and a receiver on one event loop): no datagram
  // to itself, a send and a receive syscall and a trip through the poll phase, ~30 µs
  // of a round trip on a VM; the listeners run in this loop's next check phase instead.
  if (local && nonce === local.notifier.nonce && pid === process.pid) {
    local.wakeHere()
    return 'sent'
  }
  return OUTCOMES[native.notify(pid, nonce)]
}

interface Listener {
  fn: () => void
  keepAlive: boolean
}

function openNotifier(): { notifier: Notifier; close(): void; wakeHere(): void } | null {
  const listeners = new Set<Listener>()
  let keepAlive = 0
  let closed = false
  /** A wake of this thread by itself is pending (several arrive as one, as datagrams do). */
  let wakePending = false
  const onWake = (): void => {
    let failure: { error: unknown } | undefined
    for (const l of [...listeners]) {
      if (!listeners.has(l)) continue // unsubscribed by a listener before it in this wake
      try {
        l.fn()
      } catch (error) {
        failure ??= { error }
      }
    }
    // One throwing listener must not keep the others from their wake: report it after them.
    if (failure) {
      const { error } = failure
      queueMicrotask(() => {
        throw error
      })
    }
  }
  const nonce = native.notifierOpen(onWake)
  if (nonce === 0) return null
  const notifier: Notifier = {
    pid: process.pid,
    nonce,
    listen(fn, keep) {
      if (closed) throw new ShmError('ERR_SHM_CLOSED', 'this notifier was closed: call localNotifier() again for a new one')
      const entry: Listener = { fn, keepAlive: keep }
      listeners.add(entry)
      if (keep && keepAlive++ === 0) native.notifierRef(true)
      return () => {
        if (!listeners.delete(entry)) return
        if (entry.keepAlive && --keepAlive === 0) native.notifierRef(false)
      }
    },
    keepAlive() {
      if (closed) return () => {}
      if (keepAlive++ === 0) native.notifierRef(true)
      let held = true
      return () => {
        if (!held || closed) return
        held = false
        if (--keepAlive === 0) native.notifierRef(false)
      }
    },
  }
  return {
    notifier,
    wakeHere() {
      if (wakePending || closed) return
      wakePending = true
      setImmediate(() => {
        wakePending = false
        if (!closed) onWake()
      })
    },
    close() {
      closed = true
      listeners.clear()
      keepAlive = 0
      native.notifierClose()
    },
  }
}
