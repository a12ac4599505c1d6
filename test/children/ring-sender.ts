// Sends one message (JSON from argv) on a channel of a segment, then exits.
import { SharedMemory } from 'interprocess-objects'

const [name, channel, json] = process.argv.slice(2)
const shm = SharedMemory.open({ name: name! })
const ch = shm.channel(channel!)
ch.send(JSON.parse(json!))
ch.close()
shm.close()
