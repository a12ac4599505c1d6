// JSON with tags for the values the bridge moves that JSON lacks (bigint, TypedArrays,
// Date, Map, Set, undefined): the wire format of the HTTP stand-in for contextBridge
// (http_bridge_server.ts / http_bridge_client.ts). Pure; runs in Node and in the page.
// Like contextBridge it can only copy: prototypes are dropped, functions refused.

type Tagged =
  | { $big: string }
  | { $ta: string; data: number[] }
  | { $date: number }
  | { $map: Array<[unknown, unknown]> }
  | { $set: unknown[] }
  | { $undef: 1 }

const TYPED: Record<string, new (values: ArrayLike<number> | ArrayLike<bigint>) => ArrayBufferView> = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array,
  BigInt64Array: BigInt64Array as never, BigUint64Array: BigUint64Array as never,
}

function tag(value: unknown): unknown {
  if (typeof value === 'bigint') return { $big: value.toString() } satisfies Tagged
  if (value === undefined) return { $undef: 1 } satisfies Tagged
  if (typeof value === 'function' || typeof value === 'symbol') throw new Error(`DataCloneError: ${typeof value} could not be cloned.`)
  if (value instanceof Date) return { $date: value.getTime() } satisfies Tagged
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [tag(k), tag(v)] as [unknown, unknown]) } satisfies Tagged
  if (value instanceof Set) return { $set: [...value].map(tag) } satisfies Tagged
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const name = Object.prototype.toString.call(value).slice(8, -1)
    const data = Array.from(value as unknown as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? Number(x) : x))
    return { $ta: name, data } satisfies Tagged
  }
  if (Array.isArray(value)) return value.map(tag)
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value)) out[k] = tag((value as Record<string, unknown>)[k])
    return out
  }
  return value
}

function untag(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untag)
  if (typeof value !== 'object' || value === null) return value
  const v = value as Record<string, unknown>
  if (typeof v.$big === 'string') return BigInt(v.$big)
  if (v.$undef === 1) return undefined
  if (typeof v.$date === 'number') return new Date(v.$date)
  if (Array.isArray(v.$map)) return new Map((v.$map as Array<[unknown, unknown]>).map(([k, x]) => [untag(k), untag(x)]))
  if (Array.isArray(v.$set)) return new Set((v.$set as unknown[]).map(untag))
  if (typeof v.$ta === 'string' && Array.isArray(v.data)) {
    const Ctor = TYPED[v.$ta]
    if (Ctor === undefined) throw new Error(`unknown typed array ${v.$ta}`)
    const big = v.$ta.startsWith('Big')
    return new Ctor((v.data as number[]).map((x) => (big ? BigInt(x) : x)) as never)
  }
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = untag(v[k])
  return out
}

export function encodeValue(value: unknown): string {
  return JSON.stringify(tag(value))
}

export function decodeValue(text: string): unknown {
  return untag(JSON.parse(text))
}
