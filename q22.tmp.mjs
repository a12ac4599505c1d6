import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
const require = createRequire(import.meta.url)
const { makeDocument } = require('./build/bench-js/bench/lib/document.js')
const { FrameEncoder, readFrame } = require('./dist/core/values/frame.js')
const doc = makeDocument()
const enc = new FrameEncoder()
const seg = new Uint8Array(new SharedArrayBuffer(1 << 16))
const N = 20000
function time(f) { let best = Infinity; for (let r = 0; r < 7; r++) { const t0 = performance.now(); for (let i = 0; i < N; i++) f(); best = Math.min(best, (performance.now() - t0) * 1000 / N) } return best }
const e = time(() => enc.encode(doc)), ed = time(() => { const n = enc.encode(doc); enc.writeTo(seg, 8); readFrame(seg, 8, n) }), v = time(() => v8.deserialize(v8.serialize(doc)))
console.log('encode', e.toFixed(2), 'enc+dec', ed.toFixed(2), 'v8', v.toFixed(2), 'ratio', (v / ed).toFixed(3), 'bytes', enc.encode(doc))
