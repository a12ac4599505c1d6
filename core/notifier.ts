// TEMPORARY stand-in until the native notifier lands (helper branch `notifier`).
export interface Notifier {
  readonly pid: number
  readonly nonce: number
  listen(fn: () => void, keepAlive: boolean): () => void
}
export function localNotifier(): Notifier | null {
  return null
}
export function notifyProcess(_pid: number, _nonce: number): 'sent' | 'gone' | 'failed' {
  return 'gone'
}
