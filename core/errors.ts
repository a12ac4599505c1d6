/** Every failure this library reports on purpose. The message says what to do. */
export type ShmErrorCode =
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
  | 'ERR_SHM_READONLY'
  | 'ERR_NO_MESSAGES'
  | 'ERR_UNSUPPORTED_TYPE'
  | 'ERR_INVALID_NAME'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_WORKER_EXITED'
  | 'ERR_ADDON_NOT_FOUND'

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
