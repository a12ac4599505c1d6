// Echoes every IPC message back: the cross-process stand-in for ipcRenderer.invoke in
// test/bridge-cost.test.ts.
process.on('message', (m) => process.send!(m))
process.send!('ready')
