// Choosing a host: Electron's utility processes in an Electron main process,
// Node's child processes everywhere else.
import { ElectronHost } from './electron_host'
import type { WorkerHost } from './host'
import { NodeHost } from './node_host'

export type { WorkerExit, WorkerHandle, WorkerHost, WorkerStartSpec } from './host'
export { NodeHost } from './node_host'
export type { NodeHostOptions } from './node_host'
export { ElectronHost } from './electron_host'
export type { ElectronHostOptions, UtilityForkOptions, UtilityProcessLike, UtilityProcessModule } from './electron_host'

/** True in Electron's main ("browser") process, where utilityProcess.fork exists. */
export function inElectronMain(): boolean {
  return process.versions.electron !== undefined && (process as { type?: string }).type === 'browser'
}

/** ElectronHost in an Electron main process, NodeHost elsewhere. */
export function defaultHost(): WorkerHost {
  return inElectronMain() ? new ElectronHost() : new NodeHost()
}
