// Cleanup for test files (not for children: this imports vitest).
import { afterEach } from 'vitest'
import { SharedMemory } from 'interprocess-objects'

/**
 * Segments and names a test file hands over for cleanup: after each test the segments
 * are closed and the names removed (a name that was never created, or is gone already,
 * is fine: that is the point of many tests).
 */
export function cleanUpAfterEach(): { opened: SharedMemory[]; names: string[] } {
  const opened: SharedMemory[] = []
  const names: string[] = []
  afterEach(() => {
    for (const shm of opened.splice(0)) shm.close()
    for (const name of names.splice(0)) {
      try {
        SharedMemory.unlink(name)
      } catch {
        // never created, or already removed
      }
    }
  })
  return { opened, names }
}
