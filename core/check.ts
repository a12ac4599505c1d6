// The whole-heap consistency check, and the repair of what a process killed in
// the middle of a turn can leave behind. Run it while holding the turn: after a
// turn was taken over from a dead owner (runTurn's recovery path) and from
// shm.check(). Everything it reads comes from shared memory, so every reference
// is range-checked and every walk is bounded before it is followed.
//
// What a crash can leave, and what is repaired (everything else is reported as
// ERR_SHM_CORRUPT, because only a stray write can produce it):
//   allocator  Root.Op set: an alloc() or free() died half-way. The block chain is
//              still a valid tiling (allocator.ts writes it in that order), so the
//              free lists, bitmaps and counters are rebuilt from it (Allocator.repair).
//   channels   nothing: rings are written outside turns, one compare-and-swap at a
//              time (core/ring.ts), and a stalled send or receive is given up on by
//              the channel itself. A damaged ring or queued frame is a stray write.
// A crash can also leak blocks (allocated, not yet linked anywhere): that is not
// an inconsistency, only lost space, and it is not detectable without knowing
// which mapped values other processes still hold.
//
// A recovery that finds the heap beyond repair sets HeaderFlag.Corrupt: from then
// on every turn, in every process, refuses with ERR_SHM_CORRUPT instead of working
// on a broken heap. shm.check() still runs on a marked segment (to say what is
// wrong) and clears the mark with { repair: true } if the heap checks out.
import type { AllocatorRepair, AllocatorStats } from './allocator'
import { channelLabel, checkChannel, dirWord, findChannel } from './channel'
import { Ring } from './ring'
import { frameRefs } from './values/frame'
import { checkHolders } from './holders'
import { checkLoanPool, checkPooledFrame, type LoanPoolReport } from './loan_pool'
import { overrun } from './values/bounds'
import { hashKey, lookupHash } from './values/hash'
import { readKey } from './values/decode'
import { readStringRecord } from './values/strings'
import { corrupt as corruptIn, ShmError } from './errors'
import type { Heap } from './heap'
import { Header, HeaderFlag } from './layout'
import {
  Arr, Big, Bin, BinaryKind, Chan, ChannelDir, Entry, ENTRY_SIZE, EntryFlag, FIRST_REF_TAG, FRAME_LENGTH, FrameRec, Hash, Inst, InternalKind, OUT_OF_LINE, POOLED_FRAME_MAX, Rec, WITH_REFS,
  RingSlot, Slot, SLOT_SIZE, Str, StrEncoding, StructRec, Tag, TOMBSTONE,
} from './records'

export interface CheckOptions {
  /**
   * Repair what an interrupted operation left. With false, any finding throws
   * ERR_SHM_CORRUPT and nothing is written. shm.check() defaults to false (report
   * only); the recovery after a dead turn owner always repairs.
   */
  repair?: boolean
}

/** A turn this process took over from an owner that died holding it. */
export interface TurnRecovery {
  /** The process that died holding the turn. */
  deadOwnerPid: number
  /** When this process took the turn over. */
  at: Date
  /** The full heap check (with repair) that ran before the turn was used. */
  report: HeapReport
}

export interface ChannelReport {
  /** '' is the default channel. */
  name: string
  messages: number
  /** Processes registered as sleeping on the channel (stale if a waiter was killed). */
  waiters: number
}

export interface HeapReport {
  /** True when nothing had to be repaired. */
  clean: boolean
  /** One sentence per repair made, in the order they were made. */
  repairs: string[]
  /** What Allocator.repair() did, if it ran. */
  allocatorRepair: AllocatorRepair | null
  /** Allocator figures after the check (and repairs). */
  allocator: AllocatorStats
  channels: ChannelReport[]
  /** The loan pool: entries used, loans held and in flight, bytes kept for reuse. */
  loans: LoanPoolReport
  /** Value records reachable from queued messages, each validated once. */
  records: number
  /** How long the check took. */
  ms: number
}

/**
 * Verifies the allocator (boundary tags, free lists, bitmaps, counters) and the
 * channels (directory, queue records, node chains, every queued message's value
 * graph); repairs what an interrupted operation left (see the top of this file)
 * and says what it repaired. Throws ERR_SHM_CORRUPT, with the first
 * inconsistency found, when the heap cannot be repaired. Needs the turn.
 */
export function checkHeap(heap: Heap, options: CheckOptions = {}): HeapReport {
  heap.checkTurn()
  const repair = options.repair ?? true
  const started = performance.now()
  const repairs: string[] = []
  const allocator = heap.allocator

  let allocatorRepair: AllocatorRepair | null = null
  const pending = allocator.pendingOperation()
  if (pending !== null) {
    if (!repair) throw corrupt(`an allocator ${pending.op} on block ${pending.block} was interrupted (its process died mid-operation); check with repair enabled to rebuild the free lists`)
    allocatorRepair = allocator.repair()
    const r = allocatorRepair
    repairs.push(
      `allocator: an interrupted ${pending.op} on block ${pending.block} was finished by rebuilding the free lists, bitmaps and counters from the block chain` +
        ` (${r.linksFixed} block link(s) fixed, ${r.blocksMerged} free block(s) merged)`,
    )
  }
  allocator.check()

  const channels = new ChannelChecker(heap, repair, repairs)
  const reports = channels.run()
  checkHolders(heap)
  const loans = checkLoanPool(heap)

  return {
    clean: repairs.length === 0,
    repairs,
    allocatorRepair,
    allocator: allocator.stats(),
    channels: reports,
    loans,
    records: channels.values.records,
    ms: performance.now() - started,
  }
}

const FLAGS = Header.Flags >>> 2

/** True once a recovery found the heap beyond repair (HeaderFlag.Corrupt). */
export function isMarkedCorrupt(heap: Heap): boolean {
  return (Atomics.load(heap.i32, FLAGS) & HeaderFlag.Corrupt) !== 0
}

/** Called at the start of every ordinary turn: a marked segment is not worked on. */
export function refuseMarkedCorrupt(heap: Heap): void {
  if (!isMarkedCorrupt(heap)) return
  const name = heap.segment.name
  throw new ShmError(
    'ERR_SHM_CORRUPT',
    `segment "${name}" is marked corrupt: a process that took its turn over from a dead owner found the heap beyond repair; ` +
      `its data cannot be trusted: recreate the segment (\`interprocess-objects check ${name}\` shows what is wrong)`,
  )
}

/**
 * The recovery after taking the turn over from `deadOwnerPid`: the full check,
 * repairing what an interrupted operation left. A heap beyond repair is marked
 * corrupt for every process (see the top of this file) and ERR_SHM_CORRUPT thrown.
 * Needs the turn.
 */
export function recoverTurn(heap: Heap, deadOwnerPid: number): TurnRecovery {
  const at = new Date()
  let report: HeapReport
  try {
    report = checkHeap(heap, { repair: true })
  } catch (err) {
    Atomics.or(heap.i32, FLAGS, HeaderFlag.Corrupt)
    const detail = err instanceof ShmError ? err.message : `the check itself failed (${String((err as Error)?.message ?? err)})`
    throw new ShmError(
      'ERR_SHM_CORRUPT',
      `took the turn of segment "${heap.segment.name}" over from pid ${deadOwnerPid}, which died holding it, and the heap is beyond repair; ` +
        `the segment is now marked corrupt for every process: ${detail}`,
    )
  }
  if (isMarkedCorrupt(heap)) {
    Atomics.and(heap.i32, FLAGS, ~HeaderFlag.Corrupt)
    report.repairs.push('segment: cleared the corrupt mark (the heap checks out)')
    report.clean = false
  }
  return { deadOwnerPid, at, report }
}

/**
 * shm.check(): checkHeap, plus the corrupt mark. A marked segment whose heap now
 * checks out is refused without repair and unmarked (reported as a repair) with it.
 */
export function checkSegment(heap: Heap, options: CheckOptions = {}): HeapReport {
  const repair = options.repair ?? false
  const report = checkHeap(heap, { repair })
  if (!isMarkedCorrupt(heap)) return report
  if (!repair) {
    throw new ShmError(
      'ERR_SHM_CORRUPT',
      `segment "${heap.segment.name}" is marked corrupt (a turn recovery found its heap beyond repair, or the header was overwritten), ` +
        `although the heap checks out now; check with { repair: true } to clear the mark`,
    )
  }
  Atomics.and(heap.i32, FLAGS, ~HeaderFlag.Corrupt)
  report.repairs.push('segment: cleared the corrupt mark (the heap checks out)')
  report.clean = false
  return report
}

const corrupt = (detail: string): ShmError => corruptIn(detail, 'check')

class ChannelChecker {
  readonly values: ValueChecker

  constructor(
    private readonly heap: Heap,
    repair: boolean,
    repairs: string[],
  ) {
    this.values = new ValueChecker(heap, repair ? repairs : null)
  }

  run(): ChannelReport[] {
    const heap = this.heap
    const u32 = heap.u32
    const table = u32[dirWord(ChannelDir.Table)]!
    const capacity = u32[dirWord(ChannelDir.Capacity)]!
    const count = u32[dirWord(ChannelDir.Count)]!
    const used = u32[dirWord(ChannelDir.Used)]!
    if (table === 0) {
      if (capacity !== 0 || count !== 0 || used !== 0) throw corrupt(`the channel directory has no table but says capacity ${capacity}, ${count} channels, ${used} used`)
      return []
    }
    if (capacity < 16 || (capacity & (capacity - 1)) !== 0) throw corrupt(`the channel directory has capacity ${capacity}`)
    if (heap.allocator.blockSize(table) < capacity * 4) throw corrupt(`the channel directory ${table} is not a live block of ${capacity * 4} bytes`)
    const names = new Set<string>()
    const reports: ChannelReport[] = []
    let live = 0
    let tombstones = 0
    for (let i = 0; i < capacity; i++) {
      const ref = u32[(table >>> 2) + i]!
      if (ref === 0) continue
      if (ref === TOMBSTONE) {
        tombstones++
        continue
      }
      live++
      this.liveRecord(ref, InternalKind.Channel, Chan.Slots, `channel directory entry ${i}`)
      const nameRef = u32[(ref + Chan.Name) >>> 2]!
      this.liveRecord(nameRef, Tag.String, Str.Data, `channel ${ref}'s name`)
      let name: string
      try {
        checkChannel(heap, ref)
        name = readStringRecord(heap, nameRef)
      } catch (err) {
        throw corrupt(`channel ${ref} cannot be read (${(err as Error).message})`)
      }
      if (names.has(name)) throw corrupt(`two channels are named ${JSON.stringify(name)}`)
      names.add(name)
      if (u32[(ref + Chan.NameHash) >>> 2] !== hashKey(name, () => 'channel')) throw corrupt(`channel ${ref} (${JSON.stringify(name)}) has the wrong name hash`)
      if (findChannel(heap, name) !== ref) throw corrupt(`channel ${JSON.stringify(name)} is not found where its name hash says`)
      const waiters = heap.i32[(ref + Chan.Sleepers) >>> 2]! + heap.i32[(ref + Chan.FutexWaiters) >>> 2]!
      reports.push({ name, messages: this.checkRing(ref, name), waiters })
    }
    if (live !== count || live + tombstones !== used) throw corrupt(`the channel directory says ${count} channels and ${used} used entries; it holds ${live} channels and ${tombstones} tombstones`)
    return reports
  }

  /** `ref` must be a live block of `minBytes` holding a record of `kind`. */
  private liveRecord(ref: number, kind: number, minBytes: number, what: string): void {
    const usable = this.heap.allocator.blockSize(ref)
    if (usable < minBytes) throw corrupt(`${what} (${ref}) is not a live block of at least ${minBytes} bytes`)
    if (this.heap.u8[ref] !== kind) throw corrupt(`${what} (${ref}) is a record of kind ${this.heap.u8[ref]}, expected ${kind}`)
  }

  /**
   * Every position between Dequeue and Enqueue holds a published message (whose frame
   * and the values it refers to are sound) or one a sender is still writing. Rings are
   * never written in a turn, so nothing here is a crash's leftover to repair: a finding
   * is a stray write. Returns the published messages.
   */
  private checkRing(ref: number, name: string): number {
    const heap = this.heap
    const ring = new Ring(heap.i32, ref)
    const label = channelLabel(name)
    const enqueue = heap.u32[(ref + Chan.Enqueue) >>> 2]!
    const dequeue = heap.u32[(ref + Chan.Dequeue) >>> 2]!
    const size = (enqueue - dequeue) | 0
    if (size < 0 || size > ring.capacity) throw corrupt(`${label}: Enqueue ${enqueue} and Dequeue ${dequeue} are ${size} apart, its ring holds ${ring.capacity}`)
    let published = 0
    for (let i = 0; i < size; ) {
      const pos = (dequeue + i) | 0
      const slot = ring.slotAt(pos)
      const seq = heap.i32[slot >>> 2]!
      i++
      if (seq === pos) continue // claimed by a sender still writing it (or the rest of a span being written)
      if (seq !== ((pos + 1) | 0)) throw corrupt(`${label}: the slot of position ${pos >>> 0} has sequence ${seq >>> 0}`)
      const span = ring.spanAt(slot)
      if (i - 1 + span > size) throw corrupt(`${label}: the message at position ${pos >>> 0} spans ${span} slots, past Enqueue`)
      for (let k = 1; k < span; k++, i++) {
        const at = (pos + k) | 0
        if (heap.i32[ring.slotAt(at) >>> 2] !== at) throw corrupt(`${label}: slot ${k} of the message at position ${pos >>> 0} has sequence ${heap.u32[ring.slotAt(at) >>> 2]}`)
      }
      const problem = this.checkFrame(ring, slot, pos, span)
      if (problem !== null) throw corrupt(`${label}: the message at position ${pos >>> 0} is damaged: ${problem}`)
      published++
    }
    return published
  }

  private checkFrame(ring: Ring, slot: number, pos: number, span: number): string | null {
    const heap = this.heap
    const word = heap.u32[(slot + RingSlot.Length) >>> 2]!
    const length = word & FRAME_LENGTH
    let bytes = heap.u8
    let at = slot + RingSlot.Data
    if ((word & OUT_OF_LINE) !== 0) {
      const record = heap.u32[(slot + RingSlot.Ref) >>> 2]!
      if (record !== 0 && record <= POOLED_FRAME_MAX) {
        if ((word & WITH_REFS) !== 0) return `a frame with references is in loan pool entry ${record - 1} (such frames go into Frame records)`
        return checkPooledFrame(heap, record - 1, heap.u32[(slot + RingSlot.Generation) >>> 2]!, length)
      }
      if (heap.allocator.blockSize(record) < FrameRec.Data + length || heap.u8[record] !== InternalKind.Frame) return `its frame record ${record} is not a live Frame record of ${length} bytes`
      if (heap.generationOf(record) !== heap.u32[(slot + RingSlot.Generation) >>> 2]) return `its frame record ${record} was freed`
      at = record + FrameRec.Data
    } else if (length > ring.maxFrame || ring.slotsFor(length) !== span) {
      return `a frame of ${length} bytes does not fit the ${span} slot(s) it spans`
    } else if (span > 1) {
      bytes = new Uint8Array(length)
      ring.gather(pos, length, bytes)
      at = 0
    }
    if ((word & WITH_REFS) === 0) return null
    let refs: number[]
    try {
      refs = frameRefs(bytes, at, length)
    } catch (err) {
      return (err as Error).message
    }
    for (const ref of refs) {
      const problem = this.values.checkRecord(ref)
      if (problem !== null) return problem
    }
    return null
  }
}

const binaryWidth: Record<number, number> = {
  [BinaryKind.Int8]: 1, [BinaryKind.Uint8]: 1, [BinaryKind.Uint8Clamped]: 1, [BinaryKind.Int16]: 2, [BinaryKind.Uint16]: 2,
  [BinaryKind.Int32]: 4, [BinaryKind.Uint32]: 4, [BinaryKind.Float32]: 4, [BinaryKind.Float64]: 8, [BinaryKind.BigInt64]: 8,
  [BinaryKind.BigUint64]: 8, [BinaryKind.DataView]: 1, [BinaryKind.ArrayBuffer]: 1, [BinaryKind.Buffer]: 1,
}

/**
 * Validates value graphs: every reference lands on a live block holding a record
 * of the slot's tag, every length fits its block, hash chains are acyclic and
 * cover every entry exactly once. Records shared between messages are checked once.
 */
class ValueChecker {
  /** Record → tag it was validated as. */
  private readonly seen = new Map<number, number>()
  records = 0

  /** `repairs`: where to note what was repaired, or null to repair nothing. */
  constructor(
    private readonly heap: Heap,
    private readonly repairs: string[] | null,
  ) {}

  /** null if value record `ref` (and everything it references) is sound, else why not. */
  checkRecord(ref: number): string | null {
    const pending: number[] = []
    const added: number[] = []
    const keyed: number[] = []
    try {
      if (ref < Header.HeapStart || ref >= this.heap.size) return `${ref} is not a value record`
      const tag = this.heap.u8[ref]!
      if (tag < FIRST_REF_TAG || tag > Tag.Serialized) return `${ref} is not a value record`
      this.ref(ref, tag, pending, added)
      while (pending.length > 0) {
        const tag = pending.pop()!
        const ref = pending.pop()!
        this.record(ref, tag, pending, added, keyed)
      }
      // Only now is every key record known sound, so the keys can be decoded.
      for (let i = 0; i < keyed.length; i += 2) this.keyHash(keyed[i]!, keyed[i + 1]!)
      return null
    } catch (err) {
      if (!(err instanceof Problem)) throw err
      // Forget what this message added, so a later message sharing a record of it re-checks it.
      for (const ref of added) this.seen.delete(ref)
      return err.message
    }
  }

  private slot(at: number, pending: number[], added: number[], allowHole = false): void {
    const tag = this.heap.i32[at >>> 2]!
    if (tag >= Tag.Undefined && tag <= Tag.Date) return
    if (tag === Tag.Hole) {
      if (allowHole) return
      throw new Problem(`slot ${at} holds an array hole outside an array`)
    }
    if (tag < FIRST_REF_TAG || tag > Tag.Serialized) throw new Problem(`slot ${at} has unknown tag ${tag}`)
    this.ref(this.heap.u32[(at + Slot.Payload) >>> 2]!, tag, pending, added)
  }

  /** `ref` is a live block of at least `bytes` usable bytes; returns its usable size. */
  private block(ref: number, bytes: number, what: string): number {
    const usable = this.heap.allocator.blockSize(ref)
    if (usable < bytes) throw new Problem(`${what} ${ref} is not a live block of at least ${bytes} bytes`)
    return usable
  }

  /** Throws unless `count` elements of `size` bytes fit the live block `block` (./codec/bounds.ts). */
  private fitsBlock(block: number, count: number, size: number, field: string): void {
    const why = overrun(this.heap, block, 0, count, size)
    if (why !== null) throw new Problem(`${field} = ${count} ${why}`)
  }

  /** Throws unless `bytes` fit in the record's block of `usable` bytes. */
  private fits(ref: number, usable: number, bytes: number, what: string): void {
    if (bytes > usable) throw new Problem(`record ${ref}: ${what} needs ${bytes} bytes, its block holds ${usable}`)
  }

  /**
   * The entry's stored hash is its key's hash: a wrong one hides the key from every
   * lookup (and a key that no hash accepts was never written by set/add).
   */
  private keyHash(table: number, e: number): void {
    let hash: number
    try {
      hash = lookupHash(readKey(this.heap, e + Entry.Key))
    } catch (err) {
      if (err instanceof ShmError) throw new Problem(`table ${table}: a key cannot be read (${err.message})`)
      throw err
    }
    const stored = this.heap.u32[(e + Entry.HashCode) >>> 2]!
    if (hash < 0) throw new Problem(`table ${table}: an entry holds a key of a kind no Map or Set key can be`)
    if (hash !== stored) throw new Problem(`table ${table}: an entry has key hash ${stored}, its key hashes to ${hash}`)
  }

  private record(ref: number, tag: number, pending: number[], added: number[], keyed: number[]): void {
    const heap = this.heap
    const u32 = heap.u32
    // No closures here: this runs once per record, and must stay cheap.
    const usable = this.block(ref, Rec.Body, 'record')
    if (heap.u8[ref] !== tag) throw new Problem(`record ${ref} has kind ${heap.u8[ref]}, its slot says tag ${tag}`)
    if (u32[(ref + Rec.RefCount) >>> 2] === 0) throw new Problem(`record ${ref} (tag ${tag}) has reference count 0`)
    this.records++
    switch (tag) {
      case Tag.String:
      case Tag.RegExp: {
        this.fits(ref, usable, Str.Data, 'the header')
        const length = u32[(ref + Str.ByteLength) >>> 2]!
        const encoding = heap.u8[ref + Str.Encoding]
        this.fits(ref, usable, Str.Data + length, 'the text')
        if (encoding !== StrEncoding.Utf8 && encoding !== StrEncoding.Utf16) throw new Problem(`string record ${ref} has encoding ${encoding}`)
        if (encoding === StrEncoding.Utf16 && (length & 1) !== 0) throw new Problem(`UTF-16 string record ${ref} has odd length ${length}`)
        return
      }
      case Tag.BigInt: {
        this.fits(ref, usable, Big.Data, 'the header')
        this.fits(ref, usable, Big.Data + u32[(ref + Big.ByteLength) >>> 2]!, 'the magnitude')
        const sign = heap.u8[ref + Big.Sign]
        if (sign > 1) throw new Problem(`bigint record ${ref} has sign ${sign}`)
        return
      }
      case Tag.Binary:
      case Tag.Serialized: {
        this.fits(ref, usable, Bin.Data, 'the header')
        const length = u32[(ref + Bin.ByteLength) >>> 2]!
        const kind = heap.u8[ref + Bin.Kind]
        this.fits(ref, usable, Bin.Data + length, 'the data')
        const width = tag === Tag.Serialized ? (kind === BinaryKind.V8 ? 1 : 0) : binaryWidth[kind]
        if (width === undefined || width === 0) throw new Problem(`binary record ${ref} has kind ${kind}`)
        if (length % width !== 0) throw new Problem(`binary record ${ref} holds ${length} bytes, not a multiple of ${width}`)
        return
      }
      case Tag.Struct:
        this.fits(ref, usable, StructRec.Data, 'the header')
        this.fits(ref, usable, StructRec.Data + u32[(ref + StructRec.ByteLength) >>> 2]!, 'the struct bytes')
        return
      case Tag.Array: {
        this.fits(ref, usable, Arr.Size, 'the header')
        const length = u32[(ref + Arr.Length) >>> 2]!
        const capacity = u32[(ref + Arr.Capacity) >>> 2]!
        const items = u32[(ref + Arr.Items) >>> 2]!
        if (length > capacity) throw new Problem(`array record ${ref} has length ${length} over capacity ${capacity}`)
        if (items === 0) {
          if (capacity !== 0) throw new Problem(`array record ${ref} has capacity ${capacity} but no items block`)
          return
        }
        this.fitsBlock(items, capacity, SLOT_SIZE, `array record ${ref}: Capacity`)
        for (let i = 0; i < length; i++) this.slot(items + i * SLOT_SIZE, pending, added, true)
        return
      }
      case Tag.Object:
      case Tag.Map:
      case Tag.Set:
      case Tag.Error:
        this.fits(ref, usable, Hash.Size, 'the header')
        this.table(ref, tag, pending, added, keyed)
        return
      case Tag.Instance:
        this.fits(ref, usable, Inst.Size, 'the header')
        this.ref(u32[(ref + Inst.ClassName) >>> 2]!, Tag.String, pending, added)
        this.ref(u32[(ref + Inst.Fields) >>> 2]!, Tag.Object, pending, added)
        return
      default:
        throw new Problem(`record ${ref} has unknown tag ${tag}`)
    }
  }

  /** Queues record `r` for checking as `tag`, unless it already was. */
  private ref(r: number, tag: number, pending: number[], added: number[]): void {
    const known = this.seen.get(r)
    if (known !== undefined) {
      if (known !== tag) throw new Problem(`record ${r} is referenced as tag ${tag} and as tag ${known}`)
      return
    }
    this.seen.set(r, tag)
    added.push(r)
    pending.push(r, tag)
  }

  /** `keyed` gets (table, entry) for each live entry, whose key hash is checked once the records are. */
  private table(ref: number, tag: number, pending: number[], added: number[], keyed: number[]): void {
    const u32 = this.heap.u32
    const count = u32[(ref + Hash.Count) >>> 2]!
    const used = u32[(ref + Hash.Used) >>> 2]!
    const capacity = u32[(ref + Hash.Capacity) >>> 2]!
    const entries = u32[(ref + Hash.Entries) >>> 2]!
    const buckets = u32[(ref + Hash.Buckets) >>> 2]!
    const bucketCount = u32[(ref + Hash.BucketCount) >>> 2]!
    if (count > used || used > capacity) throw new Problem(`table ${ref} has count ${count}, used ${used}, capacity ${capacity}`)
    if (entries === 0) {
      if (capacity !== 0) throw new Problem(`table ${ref} has capacity ${capacity} but no entries block`)
    } else {
      this.fitsBlock(entries, capacity, ENTRY_SIZE, `table record ${ref}: Capacity`)
    }
    if (bucketCount === 0 || (bucketCount & (bucketCount - 1)) !== 0) throw new Problem(`table ${ref} has ${bucketCount} buckets, not a power of two`)
    this.fitsBlock(buckets, bucketCount, 4, `table record ${ref}: BucketCount`)
    // Every entry sits on exactly one chain, the one its hash selects.
    const onChain = used <= 64 ? this.small.fill(0, 0, used) : new Uint8Array(used)
    let chained = 0
    for (let b = 0; b < bucketCount; b++) {
      for (let index = u32[(buckets >>> 2) + b]!; index !== 0; ) {
        if (index > used) throw new Problem(`table ${ref}: bucket ${b} links to entry ${index} of ${used}`)
        if (onChain[index - 1] !== 0) throw new Problem(`table ${ref}: entry ${index} is on a chain twice (a cycle)`)
        onChain[index - 1] = 1
        chained++
        const e = entries + (index - 1) * ENTRY_SIZE
        if ((u32[(e + Entry.HashCode) >>> 2]! & (bucketCount - 1)) !== b) throw new Problem(`table ${ref}: entry ${index} is on bucket ${b}, its hash selects another`)
        index = u32[(e + Entry.Next) >>> 2]!
      }
    }
    if (chained !== used) throw new Problem(`table ${ref}: ${used - chained} of ${used} entries are on no chain`)
    let live = 0
    const objectKeys = tag === Tag.Object || tag === Tag.Error
    for (let i = 0; i < used; i++) {
      const e = entries + i * ENTRY_SIZE
      const flags = u32[(e + Entry.Flags) >>> 2]!
      if ((flags & ~EntryFlag.Deleted) !== 0) throw new Problem(`table ${ref}: entry ${i + 1} has flags ${flags}`)
      if (flags !== 0) continue
      live++
      if (objectKeys && this.heap.i32[(e + Entry.Key) >>> 2] !== Tag.String) {
        throw new Problem(`table ${ref}: entry ${i + 1} of an object has a key of tag ${this.heap.i32[(e + Entry.Key) >>> 2]}`)
      }
      this.slot(e + Entry.Key, pending, added)
      this.slot(e + Entry.Value, pending, added)
      keyed.push(ref, e)
    }
    if (live !== count) {
      // An insert links the entry, then raises the count; a delete marks the entry,
      // then lowers it: a process killed in between leaves the count one off, and
      // the entries say what it should be.
      if (this.repairs === null || Math.abs(count - live) !== 1) throw new Problem(`table ${ref} says ${count} live entries, holds ${live}`)
      this.heap.u32[(ref + Hash.Count) >>> 2] = live
      this.repairs.push(`table ${ref}: Count ${count} → ${live} (an insert or delete was interrupted before it updated the count)`)
    }
  }

  private readonly small = new Uint8Array(64)
}

/** A damaged message (recoverable by dropping it), as opposed to a damaged heap. */
class Problem extends Error {}
