// UTF-8 decoding of bytes that may lie in a SharedArrayBuffer (the segment always does).
// Browsers' TextDecoder refuses shared views ("must not be shared"); Node's decodes them
// in place. Probed once, so Node never copies and a page copies first. Pure: no Node import.
const decoder = new TextDecoder()

const SharedBuffer: (new (n: number) => ArrayBufferLike) | undefined = typeof SharedArrayBuffer === 'function' ? SharedArrayBuffer : undefined

const decodesShared = ((): boolean => {
  if (SharedBuffer === undefined) return true // no shared memory here, nothing to refuse
  try {
    decoder.decode(new Uint8Array(new SharedBuffer(1)))
    return true
  } catch {
    return false
  }
})()

export function decodeUtf8(bytes: Uint8Array): string {
  return decodesShared || !(bytes.buffer instanceof SharedBuffer!) ? decoder.decode(bytes) : decoder.decode(bytes.slice())
}
