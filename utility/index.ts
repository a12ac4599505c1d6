// What runs inside a utility (or forked) process: serve tasks to a WorkerPool.
export { serveTasks } from './serve_tasks'
export type { ServeOptions } from './serve_tasks'
export type { TaskContext, TaskHandler, TaskHandlers, TaskInput, TaskName, TaskOutput, UntypedHandlers } from './tasks'
