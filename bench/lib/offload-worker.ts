// The WorkerPool worker of bench/offload.ts.
import { serveTasks } from 'interprocess-objects/utility'
import { addOne, sum } from './offload-handlers'

export const handlers = { addOne, sum }

void serveTasks(handlers)
