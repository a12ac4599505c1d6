// The demo page as test/chromium.test.ts loads it in real Chromium: the HTTP stand-in
// replaces the preload's contextBridge exposure, a fetch of /ipc/frame stands in for
// ipcRenderer.invoke, and the rest is the demo's own renderer code.
import { installHttpBridge } from './http_bridge_client'
import { startDemo } from '../demo/electron/renderer'

installHttpBridge()
startDemo({
  label: 'HTTP fetch (stand-in for ipcRenderer.invoke)',
  async fetchFrame() {
    const res = await fetch('/ipc/frame')
    return new Uint8Array(await res.arrayBuffer())
  },
})
