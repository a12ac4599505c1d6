/** Every failure this library reports on purpose. The message says what to do. */
export type ShmErrorCode =
  | 'ERR_SHM_EXISTS'
  | 'ERR_SHM_NOT_FOUND'
  | 'ERR_SHM_CORRUPT'
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
