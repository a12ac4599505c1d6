// Work put off to the end of the current task (a microtask), or done at once when too
// much of it waits in a loop that never yields. Registering a view with a
// FinalizationRegistry costs ~0.6 µs, and most views (loans, views received by
// reference) are sent or released before their task ends, when they need none: the
// loan pool and ViewHolds register what is still held then.

/** Calls `flush` at the end of the task in which work was added, or at once when `max` wait. */
export class EndOfTask {
  private readonly flush: () => void
  private readonly max: number
  private scheduled = false
  private readonly run = (): void => {
    this.scheduled = false
    this.flush()
  }

  constructor(flush: () => void, max: number) {
    this.flush = flush
    this.max = max
  }

  /** One more piece of work was added; `waiting` in all. */
  added(waiting: number): void {
    if (waiting >= this.max) this.run()
    else if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.run)
    }
  }
}
