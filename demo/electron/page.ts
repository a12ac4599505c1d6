// Entry of the demo page in Electron: the bridge is window.sharedObjects (preload.ts),
// the IPC comparison goes through window.demoIpc (ipcRenderer.invoke in the preload).
import { startDemo, type DemoIpc } from './renderer'

startDemo((globalThis as { demoIpc?: DemoIpc }).demoIpc)
