// Main-process helpers: own a segment and offload work to worker processes
// (Electron utility processes, or Node child processes under plain Node), and the
// Electron host that creates segments and grants windows what they may open.
// Every name here is documented (README.md, docs/electron.md); nothing is re-exported wholesale.
export { WorkerPool } from './worker_pool'
export { WorkerExitError } from './pool/errors'
export type { WorkerPoolOptions } from './pool/options'
export type { PoolStats, RunArgs, RunOptions, WorkerInfo } from './pool/types'
export { SharedObjectsHost } from './electron_app'
export type {
  BaseWebPreferences, BridgeWebPreferences, GrantSpec, HostRegion, QuitEvents, SegmentLayout, SharedObjectsHostOptions, WindowOptions, WindowWebPreferences,
} from './electron_app'
export { NodeHost, ElectronHost, defaultHost, inElectronMain } from './hosts'
export type {
  ElectronHostOptions, NodeHostOptions, UtilityForkOptions, UtilityProcessLike, UtilityProcessModule, WorkerExit, WorkerHandle, WorkerHost, WorkerStartSpec,
} from './hosts'
export type { TaskContext, TaskHandler, TaskHandlers, TaskInput, TaskName, TaskOutput, UntypedHandlers } from '../utility/tasks'
