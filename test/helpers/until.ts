/** Polls `cond` until it holds; throws `timed out waiting for <what>` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, { timeoutMs = 10_000, everyMs = 5 } = {}): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
