// Strings as records: UTF-8 normally, UTF-16 only for strings with lone surrogates
// (UTF-8 cannot carry them, and silently replacing them would lose data).
import { corrupt } from '../errors'
import type { Heap } from '../heap'
import { Str, StrEncoding, Tag } from '../records'
import { decodeUtf8 } from '../utf8'
import { checkFits } from './bounds'

const encoder = new TextEncoder()

/** UTF-8 byte length of a well-formed string. */
function utf8Length(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 2 // a pair: 2 units, 4 bytes
      i++
    }
    else n += 2
  }
  return n
}

export function writeStringRecord(heap: Heap, s: string, kind: Tag = Tag.String): number {
  if (!s.isWellFormed()) {
    const ref = heap.allocRecord(kind, Str.Data + s.length * 2)
    heap.u32[(ref + Str.ByteLength) >>> 2] = s.length * 2
    heap.u8[ref + Str.Encoding] = StrEncoding.Utf16
    const data = ref + Str.Data
    for (let i = 0; i < s.length; i++) heap.view.setUint16(data + 2 * i, s.charCodeAt(i), true)
    return ref
  }
  const byteLength = utf8Length(s)
  const ref = heap.allocRecord(kind, Str.Data + byteLength)
  heap.u32[(ref + Str.ByteLength) >>> 2] = byteLength
  heap.u8[ref + Str.Encoding] = StrEncoding.Utf8
  const data = ref + Str.Data
  if (byteLength === s.length) {
    const u8 = heap.u8
    for (let i = 0; i < byteLength; i++) u8[data + i] = s.charCodeAt(i)
  } else {
    encoder.encodeInto(s, heap.u8.subarray(data, data + byteLength))
  }
  return ref
}

export function readStringRecord(heap: Heap, ref: number, kind: Tag = Tag.String): string {
  heap.record(ref, kind)
  const byteLength = heap.u32[(ref + Str.ByteLength) >>> 2]!
  const encoding = heap.u8[ref + Str.Encoding]
  const data = ref + Str.Data
  checkFits(heap, ref, Str.Data, byteLength, 1, 'string', ref, 'ByteLength')
  if (encoding === StrEncoding.Utf16) {
    if ((byteLength & 1) !== 0) throw corrupt(`UTF-16 string record ${ref} has an odd byte length ${byteLength}`)
    return guardLength(ref, () => fromUtf16(heap, data, byteLength >>> 1))
  }
  if (encoding !== StrEncoding.Utf8) throw corrupt(`string record ${ref} has unknown encoding ${encoding}`)
  if (byteLength <= 32) {
    // Short ASCII is the common case for keys; TextDecoder's call costs more than the loop.
    const u8 = heap.u8
    let s = ''
    let i = 0
    for (; i < byteLength; i++) {
      const c = u8[data + i]!
      if (c >= 0x80) break
      s += String.fromCharCode(c)
    }
    if (i === byteLength) return s
  }
  return guardLength(ref, () => decodeUtf8(heap.u8.subarray(data, data + byteLength)))
}

/** A length no JS string can have was never written by encode: report it as corruption, not a RangeError. */
function guardLength(ref: number, decode: () => string): string {
  try {
    return decode()
  } catch (err) {
    if (err instanceof RangeError) throw corrupt(`string record ${ref} is longer than any JavaScript string (${err.message})`)
    throw err
  }
}

/** TextDecoder would replace lone surrogates with U+FFFD; these must come back as they were. */
function fromUtf16(heap: Heap, data: number, units: number): string {
  let s = ''
  const chunk: number[] = []
  for (let i = 0; i < units; i++) {
    chunk.push(heap.view.getUint16(data + 2 * i, true))
    if (chunk.length === 4096) {
      s += String.fromCharCode(...chunk)
      chunk.length = 0
    }
  }
  return s + String.fromCharCode(...chunk)
}
