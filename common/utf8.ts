// UTF-8 in every process and the page, with no Node import.
//
// TextEncoder and TextDecoder exist in Node, Electron and every browser, but their types
// come from lib.dom or @types/node, neither of which common/ may see (tsconfig.common.json
// checks that). So the little of them used here is declared locally: a module-scoped
// `declare` emits nothing and reads the runtime's global.
declare const TextEncoder: new () => { encode(text: string): Uint8Array }
declare const TextDecoder: new () => { decode(bytes: Uint8Array): string }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The UTF-8 bytes of `text` (a fresh, unshared Uint8Array). */
export function encodeUtf8(text: string): Uint8Array {
  return encoder.encode(text)
}

// Bytes may lie in a SharedArrayBuffer (the segment always does). Browsers' TextDecoder
// refuses shared views ("must not be shared"); Node's decodes them in place. Probed once,
// so Node never copies and a page copies first.
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
