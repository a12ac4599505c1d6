// Preload of the demo window (sandbox: false, contextIsolation: true — set by
// host.webPreferences in main). Exposes the granted segment as window.sharedObjects and,
// for the comparison panel only, one ipcRenderer.invoke path as window.demoIpc.
import { contextBridge, ipcRenderer } from 'electron'
import { exposeSharedObjects } from 'interprocess-objects/preload'

exposeSharedObjects()

contextBridge.exposeInMainWorld('demoIpc', {
  label: 'ipcRenderer.invoke',
  fetchFrame: (): Promise<Uint8Array> => ipcRenderer.invoke('demo:frame') as Promise<Uint8Array>,
})
