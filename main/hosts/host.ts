// Where workers run. One small interface, two implementations: Node's
// child_process.fork (node_host.ts) and Electron's utilityProcess.fork
// (electron_host.ts). The pool talks to its workers through shared memory; a host
// only starts, watches and stops processes.

export interface WorkerStartSpec {
  /** Absolute path of the worker script. */
  script: string
  args: string[]
  /** Added to the parent's environment. */
  env: Record<string, string>
  /** Runtime flags for the worker, e.g. ['--import', 'tsx'] to run a .ts script. */
  execArgv?: string[]
  /** A name for the process where the host shows one (Electron's serviceName). */
  name?: string
}

export interface WorkerExit {
  /** Exit code, or null when a signal ended the process (Node only reports signals). */
  code: number | null
  signal: string | null
  /** Set when the process could not be started at all, or (Electron) died of a fatal error. */
  error?: Error
}

export interface WorkerHandle {
  /** Undefined until the OS has started the process. */
  readonly pid: number | undefined
  /** Resolves once the process has ended, however it ended. Never rejects. */
  readonly exited: Promise<WorkerExit>
  /** Ends the process (SIGTERM on POSIX; Node: SIGKILL if `force`). */
  kill(force?: boolean): void
  /** A small control message over the process channel (the pool uses it only as a fallback for `stop`). */
  postMessage(message: unknown): void
}

export interface WorkerHost {
  readonly kind: 'node' | 'electron' | (string & {})
  start(spec: WorkerStartSpec): WorkerHandle
}
