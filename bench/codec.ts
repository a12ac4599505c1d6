// Encoding and decoding a realistic document: this SDK stores it in the segment
// (tx.putMessage) and copies it back out (tx.takeMessage + tx.copy), against
// v8.serialize/deserialize, JSON.stringify/parse and structuredClone. One
// process, one operation per turn: what a message of this shape costs to send
// and to receive, apart from waiting.
import { isDeepStrictEqual } from 'node:util'
import * as v8 from 'node:v8'
import { SharedMemory, type Turn } from 'interprocess-objects'
import { uniqueName } from './lib/processes'
import type { BenchRow, RunOptions } from './lib/scenario'
import { opsPerSec, rate, ratio, textFigure } from './lib/stats'
import { makeDocument } from './lib/document'

export const title = 'codec: a nested ~3 KB document, stored and copied back out'
export const notes = [
  'No target is set for this table. Why the SDK row is slower than v8.serialize: storing a value builds live records that other processes can read and change in place — one heap allocation (with header and reference count) per string, table, array and bigint, hash tables with buckets for every object and Map, and an undo journal so that a failed put changes nothing — while v8.serialize writes one flat byte stream and reads it back once.',
  'The SDK is built for the mapped read (no decode at all: a field read costs what the shared-dict table shows); tx.copy of a whole document is its slow path. Inlining short strings into their slot (most keys and many values fit in 12 bytes) would remove most allocations of a document like this one.',
]
export const about = `What it costs to turn a typical message into bytes and back. The document is an order: nested objects, an array of 12 items (each with strings, numbers, a tag array and a dimensions array), a history array, a 300-character note, a \`Date\` and a \`Map\` (about 3 KB as JSON). For this SDK, **encode** is \`tx.put(doc)\` + \`tx.destroy\`, **decode** is \`tx.copy\` of the stored document into ordinary JS objects, and **encode+decode** is the full message path in one turn: \`tx.putMessage(doc)\`, \`tx.takeMessage()\`, \`tx.copy()\`, \`tx.destroy()\`. Reading a field or two through the mapped view instead of copying the whole document is much cheaper, and is what the mapped views are for. JSON cannot carry the \`Date\` and the \`Map\` (they are flattened to a string and an object first and not restored), so its row does less work than the others.`


type Doc = ReturnType<typeof makeDocument>

/** What JSON can carry of the document: the Map as an object, the Date as a string. */
function jsonable(doc: Doc): unknown {
  return { ...doc, createdAt: doc.createdAt.toISOString(), meta: Object.fromEntries(doc.meta) }
}

interface Measured {
  both: number
  encode?: number
  decode?: number
}

function sdk(doc: Doc, ms: number): Measured {
  const shm = SharedMemory.create({ name: uniqueName('bench-codec'), size: 8 << 20 })
  try {
    let copy: unknown
    const roundTrip = (tx: Turn) => {
      tx.putMessage(doc)
      const m = tx.takeMessage()
      copy = tx.copy(m)
      tx.destroy(m)
    }
    shm.access(roundTrip)
    if (!isDeepStrictEqual(copy, doc)) throw new Error('codec: the SDK copy differs from the document')
    const both = rate(ms, () => shm.access(roundTrip))
    const encode = rate(ms, () =>
      shm.access((tx) => {
        tx.destroy(tx.put(doc))
      }),
    )
    const stored = shm.access((tx) => tx.put(doc))
    const decode = rate(ms, () =>
      shm.access((tx) => {
        copy = tx.copy(stored)
      }),
    )
    return { both, encode, decode }
  } finally {
    shm.close()
  }
}

function viaV8(doc: Doc, ms: number): Measured {
  if (!isDeepStrictEqual(v8.deserialize(v8.serialize(doc)), doc)) throw new Error('codec: v8 copy differs')
  let sink: unknown
  const bytes = v8.serialize(doc)
  return {
    both: rate(ms, () => (sink = v8.deserialize(v8.serialize(doc)))),
    encode: rate(ms, () => (sink = v8.serialize(doc))),
    decode: rate(ms, () => (sink = v8.deserialize(bytes))),
  }
  void sink
}

function viaJson(doc: Doc, ms: number): Measured {
  const plain = jsonable(doc)
  let sink: unknown
  const text = JSON.stringify(plain)
  return {
    both: rate(ms, () => (sink = JSON.parse(JSON.stringify(plain)))),
    encode: rate(ms, () => (sink = JSON.stringify(plain))),
    decode: rate(ms, () => (sink = JSON.parse(text))),
  }
  void sink
}

function viaStructuredClone(doc: Doc, ms: number): Measured {
  if (!isDeepStrictEqual(structuredClone(doc), doc)) throw new Error('codec: structuredClone differs')
  let sink: unknown
  return { both: rate(ms, () => (sink = structuredClone(doc))) }
  void sink
}

const V8 = 'v8.serialize / v8.deserialize'
const SDK = 'SDK putMessage → takeMessage → copy'

export async function run(opts: RunOptions): Promise<BenchRow[]> {
  const ms = opts.quick ? 300 : 2000
  const doc = makeDocument()
  const jsonBytes = Buffer.byteLength(JSON.stringify(jsonable(doc)))
  const v8Bytes = v8.serialize(doc).length
  const results: Array<[string, Measured, string?]> = [
    [SDK, sdk(doc, ms), 'encode = tx.put + tx.destroy; decode = tx.copy; one turn per operation'],
    [V8, viaV8(doc, ms), `${v8Bytes.toLocaleString('en-US')} bytes serialized`],
    ['JSON.stringify / JSON.parse', viaJson(doc, ms), `${jsonBytes.toLocaleString('en-US')} bytes; Date and Map flattened, not restored`],
    ['structuredClone', viaStructuredClone(doc, ms), 'in-process copy, no bytes'],
  ]
  const base = results.find(([name]) => name === V8)![1]
  return results.map(([name, m, note]): BenchRow => ({
    case: name,
    figures: {
      'encode+decode': opsPerSec(m.both),
      encode: m.encode === undefined ? textFigure('') : opsPerSec(m.encode),
      decode: m.decode === undefined ? textFigure('') : opsPerSec(m.decode),
      'vs v8 (encode+decode)': ratio(m.both / base.both),
    },
    note,
  }))
}
