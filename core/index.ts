export { SharedMemory } from './shared_memory'
export type { CreateOptions, OpenOptions, OpenOrCreateOptions } from './shared_memory'
export { ShmError } from './errors'
export type { ShmErrorCode } from './errors'
