// What bench/throughput.ts and its peers agree on: the seed's message size, how
// many messages may be in flight, and the stamp that proves a message arrived whole.

/** The seed's benchmark: messages of 400,000 bytes. */
export const MESSAGE_BYTES = 400_000
/** Messages a producer may have sent but not yet seen acknowledged. */
export const WINDOW = 8
/** A peer that makes no progress for this long has failed. */
export const STALL_MS = 30_000

/** Writes message number `seq` into its first four bytes and its last byte. */
export function stamp(bytes: Uint8Array, seq: number): void {
  bytes[0] = seq & 0xff
  bytes[1] = (seq >>> 8) & 0xff
  bytes[2] = (seq >>> 16) & 0xff
  bytes[3] = (seq >>> 24) & 0xff
  bytes[MESSAGE_BYTES - 1] = seq & 0xff
}

/** Throws unless `bytes` is a whole message stamped `seq`. */
export function checkStamp(bytes: Uint8Array, seq: number): void {
  const got = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0
  if (bytes.length !== MESSAGE_BYTES || got !== seq >>> 0 || bytes[MESSAGE_BYTES - 1] !== (seq & 0xff)) {
    throw new Error(`message ${seq}: got ${bytes.length} bytes stamped ${got} / ${bytes[MESSAGE_BYTES - 1]}`)
  }
}
