// Workers as Electron utility processes (utilityProcess.fork), the offload host in
// an Electron main process. Electron is loaded only when a worker is started, so
// importing this file under plain Node costs nothing and needs no Electron.
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { checkOptions } from '../../core/options'
import { ShmError } from '../../core/errors'
import type { WorkerExit, WorkerHandle, WorkerHost, WorkerStartSpec } from './host'
import { checkStdio } from './node_host'

/**
 * The options this host passes to `utilityProcess.fork` (a subset of Electron's
 * ForkOptions). Written out here so the published types need no `electron` package;
 * test/public-types.test.ts checks that Electron's own utilityProcess fits.
 */
export interface UtilityForkOptions {
  env?: NodeJS.ProcessEnv
  execArgv?: string[]
  stdio?: 'inherit' | 'ignore' | 'pipe'
  serviceName?: string
}

/** The part of Electron's `utilityProcess` this host uses (a fake can stand in for it in tests). */
export interface UtilityProcessModule {
  fork(modulePath: string, args?: string[], options?: UtilityForkOptions): UtilityProcessLike
}

/** The part of Electron's UtilityProcess this host uses. */
export interface UtilityProcessLike {
  readonly pid: number | undefined
  once(event: 'exit', listener: (code: number) => void): unknown
  /** 'error' (a fatal V8 error; 'exit' follows). Unheard, an EventEmitter 'error' would throw in the main process. */
  on(event: 'error', listener: (type: string, location: string, report: string) => void): unknown
  kill(): boolean
  postMessage(message: unknown): void
}

export interface ElectronHostOptions {
  /** Default: `require('electron').utilityProcess`, loaded at the first start. */
  utilityProcess?: UtilityProcessModule
  /** stdout/stderr of the workers (default 'inherit'). */
  stdio?: 'inherit' | 'ignore' | 'pipe'
  /** Shown in Electron's process metrics (default "offload worker"); the worker index is appended. */
  serviceName?: string
}

function loadElectron(): { utilityProcess: UtilityProcessModule } {
  // `require` exists in the compiled CommonJS build; elsewhere make one.
  const load = typeof require === 'function' ? require : createRequire(path.join(process.cwd(), 'index.js'))
  return load('electron') as { utilityProcess: UtilityProcessModule }
}

export class ElectronHost implements WorkerHost {
  readonly kind = 'electron'
  private readonly options: ElectronHostOptions
  private utilityProcess: UtilityProcessModule | undefined

  constructor(options: ElectronHostOptions = {}) {
    this.options = checkOptions<ElectronHostOptions>(options, { utilityProcess: 'object', stdio: 'string', serviceName: 'string' }, 'new ElectronHost')
    checkStdio(options.stdio, 'new ElectronHost')
    if (options.utilityProcess !== undefined && typeof options.utilityProcess?.fork !== 'function') {
      throw new ShmError('ERR_INVALID_ARGUMENT', "new ElectronHost: utilityProcess must be Electron's utilityProcess (an object with fork)")
    }
    this.utilityProcess = options.utilityProcess
  }

  start(spec: WorkerStartSpec): WorkerHandle {
    // utilityProcess.fork works only after app 'ready'; Electron's own error says so.
    const up = (this.utilityProcess ??= loadElectron().utilityProcess)
    const child = up.fork(spec.script, spec.args, {
      env: { ...process.env, ...spec.env },
      execArgv: spec.execArgv,
      stdio: this.options.stdio ?? 'inherit',
      serviceName: spec.name ?? this.options.serviceName ?? 'offload worker',
    })
    let ended = false
    let error: Error | undefined
    child.on('error', (type, location) => {
      error = new Error(`${type} in the utility process${location ? ` at ${location}` : ''}`)
    })
    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code) => {
        ended = true
        resolve({ code, signal: null, error })
      })
    })
    return {
      get pid() {
        return child.pid
      },
      exited,
      kill: (force = false) => {
        if (ended) return
        const pid = child.pid
        if (force && pid !== undefined) {
          try {
            process.kill(pid, 'SIGKILL')
            return
          } catch {
            // fall back to Electron's own kill
          }
        }
        child.kill()
      },
      postMessage: (message) => {
        if (!ended) child.postMessage(message)
      },
    }
  }
}
