// Who to wake when a channel gets a message or frees a slot. Receivers sleep in one
// of two ways: an event loop (await ch.receive()) is listed in the channel's sleeper
// table by its notifier address (core/notifier.ts) and woken by one datagram that
// libuv sees directly, one hop; a blocked thread (receiveSync, a full ring's send,
// and async waits where no notifier or table entry is left) sleeps on the channel's
// futex word. A sender pays for neither unless someone sleeps: it reads two counters.
//
// No wake is lost: a sleeper registers (seq-cst) before it looks at the ring one last
// time, and a sender looks at the registrations (seq-cst) after it published, so at
// least one of them sees the other.
import { Chan, CHANNEL_SLEEPERS } from './records'
import { notifyProcess } from './notifier'
import type { Segment } from './segment'

const ALL = 0x7fffffff
const enum Sleeper {
  Pid = 0,
  Nonce = 4,
  /** 1 while the loop sleeps and no wake is on its way: the sender that clears it sends the one datagram. */
  Armed = 8,
  Size = 12,
}

/** An entry being emptied: no one may take it until its pid is cleared. (Nonces are never -1.) */
const BUSY = -1

const word = (ch: number, k: number, field: Sleeper): number => (ch + Chan.SleeperTable + k * Sleeper.Size + field) >>> 2

/** After a publish on channel `ch`: wakes its sleeping receivers. */
export function wakeReceivers(segment: Segment, ch: number): void {
  const i32 = segment.words
  if (Atomics.load(i32, (ch + Chan.Sleepers) >>> 2) !== 0) notifySleepers(i32, ch)
  if (Atomics.load(i32, (ch + Chan.FutexWaiters) >>> 2) !== 0) {
    Atomics.add(i32, (ch + Chan.Signal) >>> 2, 1)
    segment.wake(ch + Chan.Signal, ALL)
  }
}

/** After a receive freed a slot of channel `ch`: wakes senders waiting for room. */
export function wakeSenders(segment: Segment, ch: number): void {
  const i32 = segment.words
  if (Atomics.load(i32, (ch + Chan.SpaceWaiters) >>> 2) !== 0) {
    Atomics.add(i32, (ch + Chan.SpaceSignal) >>> 2, 1)
    segment.wake(ch + Chan.SpaceSignal, ALL)
  }
}

function notifySleepers(i32: Int32Array, ch: number): void {
  for (let k = 0; k < CHANNEL_SLEEPERS; k++) {
    const nonce = Atomics.load(i32, word(ch, k, Sleeper.Nonce))
    if (nonce === 0 || nonce === BUSY) continue
    const pid = Atomics.load(i32, word(ch, k, Sleeper.Pid))
    if (pid === 0) continue
    // One datagram per sleep: a loop that was woken and has not slept again gets none.
    if (Atomics.compareExchange(i32, word(ch, k, Sleeper.Armed), 1, 0) !== 1) continue
    if (notifyProcess(pid, nonce >>> 0) !== 'gone') continue
    // Its event loop is gone (the process died, or its thread ended without withdrawing):
    // free the entry, unless someone else took it meanwhile.
    if (Atomics.load(i32, word(ch, k, Sleeper.Pid)) === pid) empty(i32, ch, k, nonce)
  }
}

/** Lists this event loop in the channel's sleeper table: the entry's index, or -1 when the table is full. */
export function addSleeper(i32: Int32Array, ch: number, pid: number, nonce: number): number {
  for (let k = 0; k < CHANNEL_SLEEPERS; k++) {
    if (Atomics.compareExchange(i32, word(ch, k, Sleeper.Nonce), 0, nonce | 0) !== 0) continue
    Atomics.store(i32, word(ch, k, Sleeper.Armed), 0)
    Atomics.store(i32, word(ch, k, Sleeper.Pid), pid)
    Atomics.add(i32, (ch + Chan.Sleepers) >>> 2, 1)
    return k
  }
  return -1
}

/**
 * Entry `k`'s loop is about to sleep: the next publish sends it a datagram. Call it,
 * then look at the ring once more (what came before is seen there, what comes after wakes).
 */
export function arm(i32: Int32Array, ch: number, k: number): void {
  Atomics.store(i32, word(ch, k, Sleeper.Armed), 1)
}

/** True while entry `k` still lists this event loop (a sender frees entries whose loop it could not reach). */
export function stillListed(i32: Int32Array, ch: number, k: number, nonce: number): boolean {
  return Atomics.load(i32, word(ch, k, Sleeper.Nonce)) === (nonce | 0)
}

export function removeSleeper(i32: Int32Array, ch: number, k: number, nonce: number): void {
  empty(i32, ch, k, nonce | 0)
}

/** Empties entry `k` if it still holds `nonce`: marked BUSY while its pid is cleared, so no one takes it half-empty. */
function empty(i32: Int32Array, ch: number, k: number, nonce: number): void {
  if (Atomics.compareExchange(i32, word(ch, k, Sleeper.Nonce), nonce, BUSY) !== nonce) return
  Atomics.store(i32, word(ch, k, Sleeper.Pid), 0)
  Atomics.store(i32, word(ch, k, Sleeper.Nonce), 0)
  Atomics.sub(i32, (ch + Chan.Sleepers) >>> 2, 1)
}
