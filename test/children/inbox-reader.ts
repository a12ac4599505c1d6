// Awaits messages on its own channel and counts them until it takes 'stop'.
import { SharedMemory } from 'interprocess-objects'

const [name, channel] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
let count = 0
let sum = 0
async function main(): Promise<void> {
  for (;;) {
    await shm.waitForMessage({ channel, timeoutMs: 20_000 })
    const stop = await shm.accessAsync((tx) => {
      while (tx.hasMessages({ channel })) {
        const m = tx.takeMessage<number | string>({ channel })
        if (m === 'stop') return true
        count++
        sum += m as number
      }
      return false
    })
    if (stop) break
  }
  process.send!({ count, sum })
  shm.close()
}
void main()
