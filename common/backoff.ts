// One retry policy for "the segment is full, try again soon": the pool retries sending
// tasks and the workers retry sending results with the same doubling delays. Only the
// arithmetic lives here (no timers: common/ imports nothing of Node); callers own the timer.

/** Retry delays that start at minMs, double on each failed retry up to maxMs, and go back to minMs on success. */
export class Backoff {
  private current: number

  constructor(
    private readonly minMs = 2,
    private readonly maxMs = 100,
  ) {
    this.current = minMs
  }

  /** How long to wait before the next try. */
  get delay(): number {
    return this.current
  }

  /** A try failed: the next wait doubles (at most maxMs). */
  grow(): void {
    this.current = Math.min(this.maxMs, this.current * 2)
  }

  /** A try succeeded: the next wait is the shortest again. */
  reset(): void {
    this.current = this.minMs
  }
}
