// Workers as Node child processes (child_process.fork): the host under plain Node,
// and the stand-in for Electron's utility processes in tests.
import { fork } from 'node:child_process'
import { checkOptions } from '../../core/options'
import { ShmError } from '../../core/errors'
import type { WorkerExit, WorkerHandle, WorkerHost, WorkerStartSpec } from './host'

export interface NodeHostOptions {
  /**
   * Runtime flags used when a start spec gives none. Default: Node's own default
   * for fork, this process's execArgv (so a pool started under `tsx` runs .ts workers).
   */
  execArgv?: string[]
  /** stdout/stderr of the workers (default 'inherit'). */
  stdio?: 'inherit' | 'ignore' | 'pipe'
}

export class NodeHost implements WorkerHost {
  readonly kind = 'node'
  private readonly options: NodeHostOptions

  constructor(options: NodeHostOptions = {}) {
    this.options = checkOptions<NodeHostOptions>(options, { execArgv: 'object', stdio: 'string' }, 'new NodeHost')
    checkStdio(options.stdio, 'new NodeHost')
    const execArgv = options.execArgv
    if (execArgv !== undefined && (!Array.isArray(execArgv) || execArgv.some((a) => typeof a !== 'string'))) {
      throw new ShmError('ERR_INVALID_ARGUMENT', 'new NodeHost: execArgv must be an array of strings')
    }
  }

  start(spec: WorkerStartSpec): WorkerHandle {
    const out = this.options.stdio ?? 'inherit'
    const child = fork(spec.script, spec.args, {
      env: { ...process.env, ...spec.env },
      execArgv: spec.execArgv ?? this.options.execArgv ?? process.execArgv,
      stdio: ['ignore', out, out, 'ipc'],
      serialization: 'json',
    })
    const exited = new Promise<WorkerExit>((resolve) => {
      let error: Error | undefined
      child.once('error', (err) => {
        error = err
        // A process that never started emits no 'exit'.
        if (child.pid === undefined) resolve({ code: null, signal: null, error: err })
      })
      child.once('exit', (code, signal) => resolve({ code, signal, error }))
    })
    // A worker must never take its parent down through an unhandled channel error.
    child.on('error', () => {})
    return {
      get pid() {
        return child.pid
      },
      exited,
      kill: (force = false) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(force ? 'SIGKILL' : 'SIGTERM')
      },
      postMessage: (message) => {
        if (child.connected) child.send(message as never, (err) => void err)
      },
    }
  }
}

/** Both hosts take the same stdio choices. */
export function checkStdio(stdio: unknown, call: string): void {
  if (stdio !== undefined && stdio !== 'inherit' && stdio !== 'ignore' && stdio !== 'pipe') {
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}: stdio must be 'inherit', 'ignore' or 'pipe', got ${JSON.stringify(stdio)}`)
  }
}
