import { ShmError } from './errors'

// The OS name is PREFIX + name; macOS allows 31 bytes including the leading '/'.
export const OS_NAME_PREFIX = '/ipo-'
export const MAX_NAME_LENGTH = 31 - OS_NAME_PREFIX.length
const NAME_PATTERN = /^[A-Za-z0-9._-]+$/

/** Checks a user-facing segment name and returns the name the OS sees. */
export function osNameOf(name: unknown): string {
  if (typeof name !== 'string') {
    throw new ShmError('ERR_INVALID_NAME', `segment name must be a string, got ${typeof name}`)
  }
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new ShmError(
      'ERR_INVALID_NAME',
      `segment name "${name}" has ${name.length} characters; use 1 to ${MAX_NAME_LENGTH} (macOS limits shared-memory names to 31 bytes)`,
    )
  }
  if (!NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new ShmError(
      'ERR_INVALID_NAME',
      `segment name "${name}" may only use letters, digits, '.', '_' and '-' (no '/', no spaces) so it means the same on Linux, macOS and Windows`,
    )
  }
  return OS_NAME_PREFIX + name
}
