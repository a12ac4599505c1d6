// Errors in the renderer: bridge errors arrive as plain Errors whose message starts with
// the code ("ERR_NOT_GRANTED: …", see preload/protocol.ts); they are rethrown with `code`.
import { parseBridgeError } from '../preload/protocol'

export class RendererError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'RendererError'
    this.code = code
  }
}

/** The error to throw for something a bridge call threw. */
export function rethrow(err: unknown): Error {
  if (err instanceof RendererError) return err
  const parsed = parseBridgeError(err)
  if (parsed !== undefined) return new RendererError(parsed.code, parsed.message)
  return err instanceof Error ? err : new RendererError('ERR_BRIDGE', String(err))
}
