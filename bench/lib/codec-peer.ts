// The far side of bench/codec.ts's two-process row: on { n }, receives n documents on
// channel "docs" (each a decoded copy), checks the first and the last against the
// document, and answers { done: n, equal }. { n: -1 } ends it.
// Usage: codec-peer.ts <segment>
import { isDeepStrictEqual } from 'node:util'
import { SharedMemory } from 'interprocess-objects'
import { makeDocument } from './document'

const [name] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel<unknown>('docs')
const doc = makeDocument()
const waitOptions = { timeoutMs: 30_000 }

process.on('message', (m: { n: number }) => {
  if (m.n < 0) {
    ch.close()
    shm.close()
    process.disconnect()
    return
  }
  let equal = true
  for (let i = 0; i < m.n; i++) {
    const got = ch.receiveSync(waitOptions)
    if (i === 0 || i === m.n - 1) equal &&= isDeepStrictEqual(got, doc)
  }
  process.send!({ done: m.n, equal })
})
process.send!('ready')
