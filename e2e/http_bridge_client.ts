// The page side of the HTTP stand-in for contextBridge: a BridgeApi whose synchronous
// functions are synchronous XMLHttpRequests to http_bridge_server.ts (which runs the
// real preload functions against a real segment) and whose async ones are fetches.
// Like contextBridge it hands the page frozen functions and copies; errors arrive as
// plain Errors carrying only the message ("ERR_X: …"). Browser-only.
import type { BridgeApi, BridgeInfo } from 'interprocess-objects/preload'
import { decodeValue, encodeValue } from './http_bridge_codec'

function syncRequest(method: 'GET' | 'POST', url: string, body?: string | Uint8Array, binary = false): XMLHttpRequest {
  const xhr = new XMLHttpRequest()
  xhr.open(method, url, false)
  // A synchronous XHR cannot use responseType 'arraybuffer' in a window; this charset
  // maps every byte to one char code instead.
  if (binary) xhr.overrideMimeType('text/plain; charset=x-user-defined')
  xhr.send(body as XMLHttpRequestBodyInit | undefined)
  if (xhr.status >= 400) throw new Error(xhr.responseText)
  return xhr
}

function syncCall(base: string, fn: string, args: unknown[]): unknown {
  return decodeValue(syncRequest('POST', `${base}/bridge/call`, encodeValue({ fn, args })).responseText)
}

async function asyncCall(base: string, fn: string, args: unknown[]): Promise<unknown> {
  const res = await fetch(`${base}/bridge/call`, { method: 'POST', body: encodeValue({ fn, args }) })
  const text = await res.text()
  if (!res.ok) throw new Error(text)
  return decodeValue(text)
}

const SYNC = [
  'describe', 'region', 'counter', 'bump', 'messageCount',
  'getInt8', 'getUint8', 'getInt16', 'getUint16', 'getInt32', 'getUint32', 'getFloat32', 'getFloat64', 'getBigInt64', 'getBigUint64', 'getBool',
  'setInt8', 'setUint8', 'setInt16', 'setUint16', 'setInt32', 'setUint32', 'setFloat32', 'setFloat64', 'setBigInt64', 'setBigUint64', 'setBool',
] as const
const ASYNC = ['putMessage', 'takeMessage', 'waitForMessage'] as const

/** Builds the stand-in and exposes it as window[key], frozen, like contextBridge.exposeInMainWorld. */
export function installHttpBridge(key = 'sharedObjects', base = ''): BridgeApi {
  const api: Record<string, unknown> = { version: 1, mode: 'bridge' }
  for (const fn of SYNC) api[fn] = (...args: unknown[]) => syncCall(base, fn, args)
  for (const fn of ASYNC) api[fn] = (...args: unknown[]) => asyncCall(base, fn, args)
  api.read = (h: number, o: number, n: number): Uint8Array => {
    const text = syncRequest('GET', `${base}/bridge/read?h=${h}&o=${o}&n=${n}`, undefined, true).responseText
    const out = new Uint8Array(text.length)
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff
    return out
  }
  api.write = (h: number, o: number, bytes: Uint8Array): void => {
    syncRequest('POST', `${base}/bridge/write?h=${h}&o=${o}`, bytes.slice())
  }
  const info = syncCall(base, 'describe', []) as BridgeInfo
  api.describe = () => info
  Object.freeze(api)
  Object.defineProperty(globalThis, key, { value: api, writable: false, configurable: false, enumerable: true })
  return api as unknown as BridgeApi
}
