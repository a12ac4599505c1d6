// The work every offload peer does, so only the transport differs between them:
// a tiny task (add one) and a large one (sum a Float64Array).
export function addOne(n: number): number {
  return n + 1
}

export function sum(values: Float64Array): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i]!
  return s
}

export type OffloadTask = { op: 'addOne'; n: number } | { op: 'sum'; values: Float64Array }

/** A request of the peers that are not a WorkerPool (child_process IPC, worker_threads). */
export type OffloadRequest = OffloadTask & { id: number }

export function answer(m: OffloadRequest): { id: number; result: number } {
  return { id: m.id, result: m.op === 'addOne' ? addOne(m.n) : sum(m.values) }
}
