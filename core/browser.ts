// What a web page gets from `import … from 'interprocess-objects'`: the package's
// "browser" export condition points here (esbuild, Vite and webpack pick it when they
// bundle for the web). The schema language and the error class only — no Node import,
// no addon — so the one schema file that main, workers and the preload import can be
// imported by renderer code too. Segments themselves are reached through
// interprocess-objects/renderer.
export { ShmError } from './errors'
export type { ShmErrorCode } from './errors'
export { defineStruct, StructArray, utf8, array } from './struct'
export type { StructType, StructInstance, StructPlain, StructInit, Schema, TurnGuard } from './struct'
