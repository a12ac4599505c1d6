// The one error class of the SDK. Every layer — core, workers, main, the preload bridge
// and the page — throws ShmError with a code from this one list, so the same failure
// reaches the user as the same class and code whatever process it happened in.
// No imports: the page's bundle includes this file.

/** Every failure this library reports on purpose. The message says what to do. */
export type ShmErrorCode =
  // segments and the shared heap (core)
  | 'ERR_SHM_EXISTS'
  | 'ERR_SHM_NOT_FOUND'
  | 'ERR_SHM_CORRUPT'
  | 'ERR_SHM_STALE'
  | 'ERR_SHM_VERSION'
  | 'ERR_SHM_FULL'
  | 'ERR_SHM_CLOSED'
  | 'ERR_SHM_NO_TURN'
  | 'ERR_SHM_OS'
  | 'ERR_SHM_REENTRANT'
  /** A write to something that may only be read: a frozen value, or a region granted 'read'. */
  | 'ERR_SHM_READONLY'
  | 'ERR_NO_MESSAGES'
  /** trySend on a channel whose ring is full (send waits instead). */
  | 'ERR_CHANNEL_FULL'
  | 'ERR_UNSUPPORTED_TYPE'
  | 'ERR_INVALID_NAME'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_ADDON_NOT_FOUND'
  // offload (main's WorkerPool)
  | 'ERR_WORKER_EXITED'
  // the Electron bridge (preload and page)
  /** The window was not granted that segment, region or channel (or not that way). */
  | 'ERR_NOT_GRANTED'
  /** An offset, length or index outside the region, array or struct array it addresses. */
  | 'ERR_OUT_OF_RANGE'
  /** Preload and page come from different versions of this package. */
  | 'ERR_BRIDGE_VERSION'
  /** The page found no bridge: the preload did not call exposeSharedObjects. */
  | 'ERR_NO_BRIDGE'
  /** Something the bridge threw that carried no code of its own (the message says what). */
  | 'ERR_BRIDGE'

// A record, not a list, so the compiler insists on every code of the union, and on no other.
const CODES: { readonly [C in ShmErrorCode]: true } = {
  ERR_SHM_EXISTS: true, ERR_SHM_NOT_FOUND: true, ERR_SHM_CORRUPT: true, ERR_SHM_STALE: true, ERR_SHM_VERSION: true, ERR_SHM_FULL: true,
  ERR_SHM_CLOSED: true, ERR_SHM_NO_TURN: true, ERR_SHM_OS: true, ERR_SHM_REENTRANT: true, ERR_SHM_READONLY: true, ERR_NO_MESSAGES: true, ERR_CHANNEL_FULL: true,
  ERR_UNSUPPORTED_TYPE: true, ERR_INVALID_NAME: true, ERR_INVALID_ARGUMENT: true, ERR_TIMEOUT: true, ERR_ABORTED: true, ERR_ADDON_NOT_FOUND: true,
  ERR_WORKER_EXITED: true, ERR_NOT_GRANTED: true, ERR_OUT_OF_RANGE: true, ERR_BRIDGE_VERSION: true, ERR_NO_BRIDGE: true, ERR_BRIDGE: true,
}

/** Every code, for checks of codes that arrive as strings (across contextBridge, from a worker). */
export const SHM_ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(CODES))

export class ShmError extends Error {
  readonly code: ShmErrorCode

  constructor(code: ShmErrorCode, message: string) {
    super(message)
    this.name = 'ShmError'
    this.code = code
  }
}

/** Where the damage was found: each names what to do about it. */
const CORRUPT_SCOPES = {
  heap: ['shared heap is inconsistent', 'run shm.check() for a full report, or recreate the segment'],
  allocator: ['shared heap allocator is inconsistent', 'the segment was overwritten or a process died while allocating: recreate the segment'],
  check: ['shared heap check failed', 'recreate the segment (its data cannot be trusted)'],
} as const

/** ERR_SHM_CORRUPT: the segment's bytes contradict themselves (`detail` names the record and field). */
export function corrupt(detail: string, scope: keyof typeof CORRUPT_SCOPES = 'heap'): ShmError {
  const [what, advice] = CORRUPT_SCOPES[scope]
  return new ShmError('ERR_SHM_CORRUPT', `${what}: ${detail}; ${advice}`)
}
