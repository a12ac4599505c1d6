// Main-process helpers: own a segment and offload work to worker processes
// (Electron utility processes, or Node child processes under plain Node).
export { WorkerPool, WorkerExitError } from './worker_pool'
export type { PoolStats, RunArgs, RunOptions, WorkerInfo, WorkerPoolOptions } from './worker_pool'
export { NodeHost, ElectronHost, defaultHost, inElectronMain } from './hosts'
export type {
  ElectronHostOptions, NodeHostOptions, UtilityProcessLike, UtilityProcessModule, WorkerExit, WorkerHandle, WorkerHost, WorkerStartSpec,
} from './hosts'
export type { TaskContext, TaskHandler, TaskHandlers, TaskInput, TaskName, TaskOutput, UntypedHandlers } from '../utility/tasks'
