// Serves a page and, beside it, the real preload bridge functions (createBridge) over
// HTTP, so a page in real Chromium can call them: the stand-in for contextBridge in
// test/chromium.test.ts. Every value crosses as a copy (bytes on the wire), as it does
// through contextBridge; the page never holds shared memory.
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BridgeApi } from 'interprocess-objects/preload'
import { decodeValue, encodeValue } from './http_bridge_codec'

export interface HttpBridgeServerOptions {
  api: BridgeApi
  /** Static files: path ("/", "/renderer.js") → [content type, body]. */
  files: Record<string, [string, string | Uint8Array]>
  /** GET /ipc/frame: what the page's stand-in for ipcRenderer.invoke fetches. */
  ipcFrame?: () => Uint8Array
}

export interface HttpBridgeServer {
  readonly url: string
  /** Bridge calls served so far. */
  readonly calls: number
  close(): Promise<void>
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export async function startHttpBridgeServer(options: HttpBridgeServerOptions): Promise<HttpBridgeServer> {
  const { api } = options
  let calls = 0
  const fail = (res: http.ServerResponse, err: unknown) => {
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
    res.end(err instanceof Error ? err.message : String(err))
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    void (async () => {
      try {
        if (url.pathname === '/bridge/read') {
          calls++
          const bytes = api.read(Number(url.searchParams.get('h')), Number(url.searchParams.get('o')), Number(url.searchParams.get('n')))
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' })
          res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
        } else if (url.pathname === '/bridge/write' && req.method === 'POST') {
          calls++
          const body = await readBody(req)
          api.write(Number(url.searchParams.get('h')), Number(url.searchParams.get('o')), new Uint8Array(body))
          res.writeHead(204).end()
        } else if (url.pathname === '/bridge/call' && req.method === 'POST') {
          calls++
          const { fn, args } = decodeValue((await readBody(req)).toString('utf8')) as { fn: string; args: unknown[] }
          const f = (api as unknown as Record<string, unknown>)[fn]
          if (typeof f !== 'function') throw new Error(`ERR_INVALID_ARGUMENT: the bridge has no function ${fn}`)
          const result: unknown = await (f as (...a: unknown[]) => unknown)(...args)
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          res.end(encodeValue(result))
        } else if (url.pathname === '/ipc/frame' && options.ipcFrame !== undefined) {
          const frame = options.ipcFrame()
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' })
          res.end(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength))
        } else {
          const file = options.files[url.pathname]
          if (url.pathname === '/favicon.ico' && file === undefined) {
            res.writeHead(204).end()
            return
          }
          if (file === undefined) {
            res.writeHead(404).end()
            return
          }
          res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' })
          res.end(file[1])
        }
      } catch (err) {
        fail(res, err)
      }
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get calls() {
      return calls
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
