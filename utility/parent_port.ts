// The process channel to the parent, whichever host started us: Electron's
// `process.parentPort` in a utility process, Node's `process.send`/'message' in a
// forked child. The offload protocol does not need it in normal operation (tasks
// and results go through shared memory); it carries a fallback `stop` and tells a
// Node child that its parent has gone.

interface ElectronParentPort {
  on(event: 'message', listener: (e: { data: unknown }) => void): unknown
  removeListener(event: 'message', listener: (e: { data: unknown }) => void): unknown
  postMessage(message: unknown): void
}

export interface ParentChannel {
  readonly kind: 'electron' | 'node'
  /** Stop listening, so the channel no longer keeps this process alive. */
  close(): void
}

/**
 * Listens for messages from the parent and for its disappearance. Undefined when
 * this process has no channel to a parent (started some other way).
 */
export function listenToParent(onMessage: (message: unknown) => void, onParentGone: () => void): ParentChannel | undefined {
  const port = (process as unknown as { parentPort?: ElectronParentPort | null }).parentPort
  if (port) {
    // Electron ends utility processes together with their parent: no "gone" event needed.
    const listener = (e: { data: unknown }): void => onMessage(e.data)
    port.on('message', listener)
    return { kind: 'electron', close: () => void port.removeListener('message', listener) }
  }
  if (typeof process.send === 'function') {
    const gone = (): void => onParentGone()
    process.on('message', onMessage)
    process.on('disconnect', gone)
    return {
      kind: 'node',
      close: () => {
        process.removeListener('message', onMessage)
        process.removeListener('disconnect', gone)
      },
    }
  }
  return undefined
}
