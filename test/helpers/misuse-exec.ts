// The misuse fuzz's executor (test/misuse.test.ts): runs op descriptors against the
// PUBLIC API in whichever process holds it — the test process itself, and the child
// test/children/misuse-peer.ts, which gets the same descriptors over IPC. It keeps the
// views each process holds by handle id and answers every action with a JSON result
// (what came back, or the error thrown); the test decides whether that was allowed.
// No vitest import here: the child imports this file too.
import { SharedMemory, ShmError, MappedMap, MappedSet, defineStruct, type Turn } from 'interprocess-objects'
// White-box: how many free arrays the loan pool keeps (they are not leaks).
import { pooledArrays } from '../../core/loan_pool'
import { inUse } from './segments'

/** One struct schema for the fuzz: `id` is the record's sentinel, `hp` = sentinel + a fraction. */
export const MisuseRec = defineStruct({ id: 'uint32', hp: 'float64' }, 'MisuseRec')

/** A value to store, as a JSON description (so it can cross IPC). sid: the record's sentinel id. */
export type Node =
  | number
  | string
  | { k: 'obj'; sid: number; f: Array<[string, Node]> }
  | { k: 'arr'; sid: number; items: Node[] }
  | { k: 'map'; sid: number; e: Array<[string, Node]> }
  | { k: 'set'; sid: number; items: Array<number | string> }
  | { k: 'ta'; sid: number; v: number[] }
  | { k: 'st'; sid: number; hp: number }
  /** The node with this sid built earlier in the same value (the same JS object twice: an alias). */
  | { k: 'ref'; sid: number }
  /** A view this process holds (handle id): shares its record. */
  | { k: 'view'; h: number }

export type Action =
  | { a: 'put'; v: Node; out: number }
  /** tx.putMessage: a copy of the value, with the views in it sent by reference. Returns nothing. */
  | { a: 'putMsg'; v: Node; ch: string }
  /**
   * tx.takeMessage ({ copy: true } is accepted and ignored). A live view taken (a value
   * sent by reference) is kept as handle `out`; in a plain object taken, the live views
   * in the named fields are kept as the handles given.
   */
  | { a: 'take'; ch: string; copy: boolean; out: number; fields: Array<[string, number]> }
  | { a: 'get'; h: number; key: string | number; out: number }
  | { a: 'same'; h: number; key: string | number }
  | { a: 'read'; h: number; how: 'copy' | 'walk' }
  | { a: 'destroy'; h: number }
  | { a: 'destroyPlain'; what: number }
  | { a: 'destroyForeign' }
  | { a: 'readForeign' }
  | { a: 'set'; h: number; key: string | number; v: Node }
  | { a: 'del'; h: number; key: string }
  | { a: 'push'; h: number; v: Node }
  | { a: 'pop'; h: number; out: number }
  | { a: 'shift'; h: number; out: number }
  | { a: 'reverse'; h: number }
  | { a: 'sort'; h: number }
  | { a: 'splice'; h: number; i: number; d: number; vs: Node[] }
  | { a: 'swap'; h: number; i: number; j: number }
  | { a: 'rotate'; h: number }
  | { a: 'iterDel'; h: number; keys: string[] }
  | { a: 'setAdd'; h: number; v: number | string }
  | { a: 'setDel'; h: number; v: number | string }
  | { a: 'taw'; h: number; i: number; v: number }
  | { a: 'stw'; h: number; v: number }
  /** Outside a turn: a Turn kept from an earlier turn, used now. */
  | { a: 'leakedTx'; what: 'put' | 'destroy' | 'take'; h?: number }

/** Canonical JSON form of a value (plain or mapped), for comparison with the test's model. */
export type Canon = null | number | string | { u: 1 } | { obj: Array<[string, Canon]> } | { arr: Canon[] } | { map: Array<[string, Canon]> } | { set: Array<number | string> } | { ta: number[] } | { st: [number, number] } | { big: string }

export type Result =
  | { ok: true; v?: Canon | boolean | number | Canon[]; view?: boolean; refs?: string[] }
  | { ok: false; name: string; code?: string; msg: string }

class NoHandle extends Error {
  override name = 'NoHandle'
}

/**
 * An action planned on a handle of one kind that holds another when it runs (an
 * earlier action of the same turn replaced what the handle was read from): not carried
 * out, since the model has nothing of that kind to mirror it in.
 */
class NotContainer extends Error {
  override name = 'NotContainer'
}

/** What each mutating action needs its handle to hold ('container': an object, array or Map). */
export function kindNeeded(a: string): 'arr' | 'map' | 'set' | 'ta' | 'st' | 'container' | undefined {
  switch (a) {
    case 'push': case 'pop': case 'shift': case 'reverse': case 'sort': case 'splice': case 'swap': case 'rotate':
      return 'arr'
    case 'iterDel':
      return 'map'
    case 'setAdd': case 'setDel':
      return 'set'
    case 'taw':
      return 'ta'
    case 'stw':
      return 'st'
    case 'set': case 'del':
      return 'container'
    default:
      return undefined
  }
}

/** Whether a model record (or a live value) of `kind` can take an action that needs `needed`. */
export function kindFits(kind: string | undefined, needed: ReturnType<typeof kindNeeded>): boolean {
  if (needed === undefined || kind === undefined) return true
  return needed === 'container' ? kind === 'obj' || kind === 'arr' || kind === 'map' : kind === needed
}

/**
 * Whether a set/del key suits the container of `kind` it was planned for: an array takes
 * indices, an object or Map string keys (an array planned on turned into an object, or the
 * other way round, by an earlier action of the same turn, is NotContainer).
 */
export function keyFits(kind: string | undefined, x: { a: string; key?: string | number }): boolean {
  if ((x.a !== 'set' && x.a !== 'del') || kind === undefined) return true
  return (kind === 'arr') === (typeof x.key === 'number')
}

function kindOfValue(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  if (Array.isArray(v)) return 'arr'
  if (v instanceof MappedMap) return 'map'
  if (v instanceof MappedSet) return 'set'
  if (ArrayBuffer.isView(v)) return 'ta'
  return 'hp' in v ? 'st' : 'obj'
}

/** At most this many nodes are canonicalised: a view reading garbage could be huge or cyclic. */
const BUDGET = 5000

export function canon(v: unknown, state = { left: BUDGET }, depth = 0): Canon {
  if (--state.left < 0 || depth > 24) throw new Error('canon: value too large or too deep (garbage, or a cycle)')
  if (v === undefined) return { u: 1 }
  if (v === null || typeof v === 'number' || typeof v === 'string') return v as Canon
  if (typeof v === 'boolean') return v ? 1 : 0
  if (typeof v === 'bigint') return { big: String(v) }
  if (typeof v !== 'object') return `<${typeof v}>`
  if (ArrayBuffer.isView(v)) return { ta: Array.from(v as Float64Array) }
  if (v instanceof Map || v instanceof MappedMap) {
    const e: Array<[string, Canon]> = []
    for (const [k, x] of v as Map<unknown, unknown>) e.push([String(k), canon(x, state, depth + 1)])
    return { map: e.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)) }
  }
  if (v instanceof Set || v instanceof MappedSet) return { set: [...(v as Set<number | string>)].sort(cmpPrim) }
  if (Array.isArray(v)) {
    const out: Canon[] = []
    const n = v.length
    if (n > BUDGET) throw new Error(`canon: array length ${n}`)
    for (let i = 0; i < n; i++) out.push(canon(v[i], state, depth + 1))
    return { arr: out }
  }
  if ('hp' in v) {
    const s = v as { id: number; hp: number }
    return { st: [s.id, s.hp] }
  }
  const o = v as Record<string, unknown>
  return { obj: Object.keys(o).sort().map((k) => [k, canon(o[k], state, depth + 1)] as [string, Canon]) }
}

export function cmpPrim(a: number | string, b: number | string): number {
  const x = typeof a === 'number' ? `n${String(a).padStart(12, '0')}` : `s${a}`
  const y = typeof b === 'number' ? `n${String(b).padStart(12, '0')}` : `s${b}`
  return x < y ? -1 : x > y ? 1 : 0
}

/** The sort key the `sort` action uses (the test's model sorts by the same key). */
export function sortKey(v: unknown): string {
  if (typeof v === 'number') return `n${String(v).padStart(12, '0')}`
  if (typeof v === 'string') return `s${v}`
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof MappedMap) && !ArrayBuffer.isView(v) && !(v instanceof MappedSet)) {
    const id = (v as { id?: unknown }).id
    return `o${String(id)}`
  }
  return 'z'
}

function errResult(err: unknown): Result {
  if (err instanceof ShmError) return { ok: false, name: 'ShmError', code: err.code, msg: err.message.slice(0, 300) }
  if (err instanceof Error) return { ok: false, name: err.name, msg: `${err.message}`.slice(0, 300) }
  return { ok: false, name: 'thrown', msg: String(err) }
}

export class Executor {
  shm: SharedMemory | undefined
  /** The views this process holds, by the handle id the test gave them. */
  readonly views = new Map<number, unknown>()
  /** A view of another segment (the test process only): for destroy/read of a foreign value. */
  foreign: unknown
  private leaked: Turn | undefined
  /** The last plain object takeMessage returned (a copy: for destroyPlain 4). */
  private lastTaken: object = {}

  attach(shm: SharedMemory): void {
    this.shm = shm
    this.views.clear()
    this.leaked = undefined
    this.lastTaken = {}
  }

  /** Opens this handle's in-turn handles on `channels` (made already): held until close, like those tx.putMessage opens. */
  openChannels(channels: string[]): void {
    this.shm!.access((tx) => {
      for (const channel of channels) tx.hasMessages({ channel })
    })
  }

  private view(h: number, action?: string, key?: string | number): unknown {
    if (!this.views.has(h)) throw new NoHandle(`no handle ${h}`)
    const v = this.views.get(h)
    const needed = action === undefined ? undefined : kindNeeded(action)
    if (!kindFits(kindOfValue(v), needed)) throw new NotContainer(`handle ${h} does not hold a ${needed}`)
    if (action !== undefined && !keyFits(kindOfValue(v), { a: action, key })) throw new NotContainer(`handle ${h} does not take key ${String(key)}`)
    return v
  }

  /** Builds the JS value a Node describes. */
  build(n: Node, memo = new Map<number, unknown>()): unknown {
    if (typeof n !== 'object') return n
    switch (n.k) {
      case 'view':
        return this.view(n.h)
      case 'ref':
        if (!memo.has(n.sid)) throw new Error(`ref to ${n.sid} before it was built`)
        return memo.get(n.sid)
      case 'obj': {
        const o: Record<string, unknown> = { id: `S${n.sid}` }
        memo.set(n.sid, o)
        for (const [k, x] of n.f) o[k] = this.build(x, memo)
        return o
      }
      case 'arr': {
        const a: unknown[] = [`S${n.sid}`]
        memo.set(n.sid, a)
        for (const x of n.items) a.push(this.build(x, memo))
        return a
      }
      case 'map': {
        const m = new Map<string, unknown>([['id', `S${n.sid}`]])
        memo.set(n.sid, m)
        for (const [k, x] of n.e) m.set(k, this.build(x, memo))
        return m
      }
      case 'set': {
        const s = new Set<unknown>([`S${n.sid}`, ...n.items])
        memo.set(n.sid, s)
        return s
      }
      case 'ta': {
        const t = Float64Array.from(n.v)
        memo.set(n.sid, t)
        return t
      }
      case 'st': {
        const s = MisuseRec.view(new Uint8Array(MisuseRec.byteLength))
        s.id = n.sid
        s.hp = n.hp
        memo.set(n.sid, s)
        return s
      }
    }
  }

  private keep(out: number, v: unknown): Result {
    if (v !== null && typeof v === 'object') {
      this.views.set(out, v)
      return { ok: true, view: true, v: canon(v) }
    }
    return { ok: true, v: canon(v) }
  }

  /** One action inside a turn (tx) or outside one (tx undefined: only reads and leaked-tx calls make sense). */
  act(tx: Turn | undefined, x: Action): Result {
    try {
      return this.actUnchecked(tx, x)
    } catch (err) {
      return errResult(err)
    }
  }

  private actUnchecked(tx: Turn | undefined, x: Action): Result {
    // Outside a turn the calls that need a tx use one kept from an earlier turn (misuse too).
    const t = (tx ?? this.leaked) as Turn
    if (t === undefined && needsTx(x)) return { ok: true, v: 'no leaked tx' }
    switch (x.a) {
      case 'put':
        return this.keep(x.out, t.put(this.build(x.v)))
      case 'putMsg':
        return { ok: true, v: canon(t.putMessage(this.build(x.v), { channel: x.ch }) as unknown) }
      case 'take': {
        const v = t.takeMessage(x.copy ? { channel: x.ch, copy: true } : { channel: x.ch })
        if (isMapped(t, v)) return this.keep(x.out, v)
        const refs: string[] = []
        if (v !== null && typeof v === 'object') {
          this.lastTaken = v
          for (const [field, hid] of x.fields) {
            const f = (v as Record<string, unknown>)[field]
            if (!isMapped(t, f)) continue
            this.views.set(hid, f)
            refs.push(field)
          }
        }
        return { ok: true, v: canon(v), refs: refs.sort() }
      }
      case 'get':
        return this.keep(x.out, getKey(this.view(x.h, x.a), x.key))
      case 'same': {
        const v = this.view(x.h, x.a)
        return { ok: true, v: getKey(v, x.key) === getKey(v, x.key) }
      }
      case 'read': {
        const v = this.view(x.h, x.a)
        return { ok: true, v: canon(x.how === 'copy' ? t.copy(v) : v) }
      }
      case 'destroy':
        t.destroy(this.view(x.h, x.a))
        return { ok: true }
      case 'destroyPlain':
        t.destroy(x.what === 0 ? { q: 1 } : x.what === 1 ? 5 : x.what === 2 ? 'str' : x.what === 3 ? [1, 2] : this.lastTaken)
        return { ok: true }
      case 'destroyForeign':
        t.destroy(this.foreign)
        return { ok: true }
      case 'readForeign':
        return { ok: true, v: canon(this.foreign) }
      case 'set': {
        const v = this.view(x.h, x.a, x.key)
        const val = this.build(x.v)
        if (v instanceof MappedMap) v.set(x.key, val)
        else (v as Record<string | number, unknown>)[x.key] = val
        return { ok: true }
      }
      case 'del': {
        const v = this.view(x.h, x.a, x.key)
        if (v instanceof MappedMap) v.delete(x.key)
        else delete (v as Record<string, unknown>)[x.key]
        return { ok: true }
      }
      case 'push':
        ;(this.view(x.h, x.a) as unknown[]).push(this.build(x.v))
        return { ok: true }
      case 'pop':
        return this.keep(x.out, (this.view(x.h, x.a) as unknown[]).pop())
      case 'shift':
        return this.keep(x.out, (this.view(x.h, x.a) as unknown[]).shift())
      case 'reverse':
        ;(this.view(x.h, x.a) as unknown[]).reverse()
        return { ok: true }
      case 'sort':
        ;(this.view(x.h, x.a) as unknown[]).sort((p, q) => {
          const a = sortKey(p)
          const b = sortKey(q)
          return a < b ? -1 : a > b ? 1 : 0
        })
        return { ok: true }
      case 'splice': {
        const removed = (this.view(x.h, x.a) as unknown[]).splice(x.i, x.d, ...x.vs.map((n) => this.build(n)))
        return { ok: true, v: removed.length }
      }
      case 'swap': {
        // A move through a local: between the two writes the record of a[i] is referenced only by `tmp`.
        const a = this.view(x.h, x.a) as unknown[]
        const tmp = a[x.i]
        a[x.i] = a[x.j]
        a[x.j] = tmp
        return { ok: true }
      }
      case 'rotate': {
        const a = this.view(x.h, x.a) as unknown[]
        a.push(a.shift())
        return { ok: true }
      }
      case 'iterDel': {
        // Deleting Map entries during iteration, and reading each value after its entry went.
        const m = this.view(x.h, x.a) as MappedMap<string, unknown>
        const seen: Canon[] = []
        for (const [k, v] of m) {
          if (x.keys.includes(k)) m.delete(k)
          seen.push([k, canon(v)] as unknown as Canon)
        }
        return { ok: true, v: seen }
      }
      case 'setAdd':
        ;(this.view(x.h, x.a) as Set<unknown>).add(x.v)
        return { ok: true }
      case 'setDel':
        ;(this.view(x.h, x.a) as Set<unknown>).delete(x.v)
        return { ok: true }
      case 'taw':
        ;(this.view(x.h, x.a) as Float64Array)[x.i] = x.v
        return { ok: true }
      case 'stw':
        ;(this.view(x.h, x.a) as { hp: number }).hp = x.v
        return { ok: true }
      case 'leakedTx': {
        const l = this.leaked
        if (l === undefined) return { ok: true, v: 'no leaked tx' }
        if (x.what === 'put') l.put({ leaked: 1 })
        else if (x.what === 'take') l.takeMessage({ channel: 'c0' })
        else l.destroy(this.view(x.h!))
        return { ok: true }
      }
    }
  }

  /** A turn: the actions run in one shm.access, or outside any turn when `outside`. */
  turn(actions: Action[], outside: boolean): { results: Result[]; turnError?: Result } {
    const shm = this.shm!
    if (outside) return { results: actions.map((x) => this.act(undefined, x)) }
    const results: Result[] = []
    try {
      shm.access((tx) => {
        this.leaked = tx
        for (const x of actions) results.push(this.act(tx, x))
      })
    } catch (err) {
      // Taking or releasing the turn failed.
      return { results, turnError: errResult(err) }
    }
    return { results }
  }

  /**
   * Frees everything `owned` names (handles the test says this process owns), then
   * drains the channels, destroying the live views the drained messages hand over
   * (values their senders passed by reference: the taker owns them).
   */
  cleanup(owned: number[], channels: string[]): Result[] {
    const out: Result[] = []
    this.shm!.access((tx) => {
      for (const h of owned) out.push(this.act(tx, { a: 'destroy', h }))
      for (const ch of channels) {
        for (;;) {
          let v: unknown
          try {
            v = tx.takeMessage({ channel: ch })
          } catch (err) {
            if (!(err instanceof ShmError && err.code === 'ERR_NO_MESSAGES')) out.push(errResult(err))
            break
          }
          // The views a message carries: the value itself, or those in a plain object's fields (once each).
          const views = isMapped(tx, v) ? [v] : v !== null && typeof v === 'object' ? [...new Set(Object.values(v).filter((f) => isMapped(tx, f)))] : []
          for (const view of views) {
            try {
              tx.destroy(view)
            } catch (err) {
              out.push(errResult(err))
            }
          }
        }
      }
    })
    return out
  }

  /** Forgets every view (the sequence is over): what they held goes once they are collected. */
  dropViews(): void {
    this.views.clear()
    this.leaked = undefined
    this.lastTaken = {}
  }

  /** Bytes in use, apart from the loan pool's free arrays. */
  used(): number {
    return inUse(this.shm!)
  }

  /** Live allocations, apart from the loan pool's free arrays (kept for reuse, not leaked). */
  allocations(): number {
    const shm = this.shm!
    return shm.access((tx) => tx.stats().allocations - pooledArrays(shm.heap).arrays)
  }

  check(): Result {
    try {
      this.shm!.check()
      return { ok: true }
    } catch (err) {
      return errResult(err)
    }
  }

  /** After close: every held view, used inside no turn, must throw (ERR_SHM_CLOSED or ERR_SHM_NO_TURN); raw TypedArrays excepted. */
  afterClose(): Array<[number, Result]> {
    const out: Array<[number, Result]> = []
    for (const [h, v] of this.views) {
      if (ArrayBuffer.isView(v)) continue
      let r: Result
      try {
        r = { ok: true, v: canon(v) }
      } catch (err) {
        r = errResult(err)
      }
      out.push([h, r])
    }
    return out
  }
}

function needsTx(x: Action): boolean {
  return x.a === 'put' || x.a === 'putMsg' || x.a === 'take' || x.a === 'destroy' || x.a === 'destroyPlain' || x.a === 'destroyForeign' || x.a === 'leakedTx' || (x.a === 'read' && x.how === 'copy')
}

/** Whether `v` is a live view of the segment (tx.copy gives back what is not mapped as it is). */
function isMapped(tx: Turn, v: unknown): boolean {
  return v !== null && typeof v === 'object' && tx.copy(v) !== v
}

function getKey(v: unknown, key: string | number): unknown {
  if (v instanceof MappedMap) return v.get(key)
  return (v as Record<string | number, unknown>)[key]
}
