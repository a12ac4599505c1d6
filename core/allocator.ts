// The shared heap's allocator: TLSF (two-level segregated fit) kept entirely inside
// the segment, so every process that maps it allocates from the same heap. Callers
// hold the turn (core/lock.ts); nothing here locks.
//
// Block layout (all offsets are u32 byte offsets from segment offset 0):
//
//   header  h + 0   prevPhys   header offset of the physically previous block, 0 for the first
//           h + 4   size|flags size of the whole block, header included, a multiple of 16;
//                              bit 0 = free, bits 1..3 always 0
//   payload h + 8   (16-byte aligned: every header sits at 8 mod 16)
//   free blocks only:
//           h + 8   nextFree   next block in the same size class, 0 = none
//           h + 12  prevFree   previous one, 0 = this block is the list head
//
// prevPhys is kept valid for every block (not only behind free ones as in classic
// TLSF) so free() can prove its argument is a block start from both neighbours and
// check() can verify the whole chain. The heap ends in an 8-byte sentinel header
// (size 0, in use), so "the next block" never needs a bounds check.
import { corrupt as corruptIn, ShmError } from './errors'

const corrupt = (detail: string): ShmError => corruptIn(detail, 'allocator')
import { Header } from './layout'

export interface AllocatorStats {
  /** Bytes from Header.HeapStart to the end of the segment. */
  heapBytes: number
  /** Bytes taken by live allocations, their headers and rounding included. */
  used: number
  /** Bytes in free blocks, headers included; used + free = heapBytes - 16. */
  free: number
  /** The largest size alloc() can satisfy right now (0 if none). */
  largestFree: number
  /** Live allocations. */
  allocations: number
  /** Free blocks; 1 on an empty heap, more means fragmentation. */
  freeBlocks: number
}

export interface HeapMemory {
  readonly bytes: Uint8Array
  readonly words: Int32Array
  readonly view: DataView
  readonly size: number
}

/** 'TLSF' as a little-endian u32: tells check() the root was formatted. */
const ROOT_MAGIC = 0x46534c54

const enum Block {
  HeaderSize = 8,
  MinSize = 16,
  Free = 1,
  FlagMask = 15,
  SizeMask = -16,
}

// Word indices (byte offset / 4) of the root state, inside [AllocatorRoot, ChannelRoot).
// Literal numbers, not Header.AllocatorRoot >> 2: esbuild (tsx, vitest) inlines a
// const enum only when its members are constants, and these sit on the hot path.
const enum Root {
  Magic = 16, // Header.AllocatorRoot / 4; asserted below
  First = 17, // header offset of the first block
  End = 18, // header offset of the sentinel
  Op = 19, // Op.* while a mutation is under way, 0 otherwise
  OpBlock = 20, // the block that mutation works on
  Used = 21,
  Free = 22,
  Allocations = 23,
  FreeBlocks = 24,
  FlMap = 25, // bit fl set when SlMap[fl] != 0
  SlMap = 26, // Class.FlCount words: bit sl set when the list (fl, sl) is non-empty
  Heads = 52, // Class.Count list heads, index (fl << 4) | sl
  EndWord = 452, // one past the last root word: byte 1808, well under ChannelRoot (3072)
}

// Crashes: a process killed inside alloc() or free() must not leave a heap that
// looks fine. Every mutation sets Root.Op (and Root.OpBlock) before its first write
// and clears Op after its last, so an interrupted one leaves Op != 0 and check()
// (run when a turn is taken over from a dead owner) refuses the heap, naming the
// block. Inside an operation the physical chain is written so that at most one
// word lags: the prevPhys of the block after OpBlock's. Free lists, bitmaps and
// counters are derived from the chain, so a later repair can rebuild them from it.
const enum Op {
  Alloc = 1,
  Free = 2,
  /** repair() itself: a repair that dies half-way is simply run again. */
  Repair = 3,
}

/** What an interrupted allocator operation left behind (Root.Op / Root.OpBlock). */
export interface PendingOperation {
  op: 'alloc' | 'free' | 'repair'
  /** Header offset of the block the operation worked on. */
  block: number
}

/** What repair() changed. */
export interface AllocatorRepair {
  /** The operation that was interrupted, or null if repair() ran on a finished heap. */
  interrupted: PendingOperation | null
  /** Previous-block links rewritten to match the chain (at most one after a crash). */
  linksFixed: number
  /** Free blocks merged into their free predecessor (a free() that died before merging). */
  blocksMerged: number
  /** The counters after the rebuild. */
  stats: AllocatorStats
}

// Size classes: below 256 bytes one class per 16 bytes (fl 0); above, 16 classes
// per power of two (fl 1 = [256, 512) … fl 24 = [2^31, 2^32)). 16 rather than the
// usual 32 second-level classes because 25 * 32 list heads would not fit the root.
const enum Class {
  FlCount = 25,
  Count = 400,
  SmallLimit = 256,
}

if ((Header.AllocatorRoot as number) !== Root.Magic * 4 || Root.SlMap + Class.FlCount > Root.Heads || Root.Heads + Class.Count !== Root.EndWord || Root.EndWord * 4 > Header.ChannelRoot) {
  throw new Error('allocator root layout does not fit [Header.AllocatorRoot, Header.ChannelRoot)')
}

/** Class index (fl << 4 | sl) a free block of `size` bytes is filed under. */
function classOf(size: number): number {
  if (size < Class.SmallLimit) return size >>> 4
  const t = 31 - Math.clz32(size)
  return ((t - 7) << 4) | ((size >>> (t - 4)) & 15)
}

/**
 * The lowest class whose every block holds `size` bytes (good fit: no list walk);
 * Class.Count if the rounding passes 4 GiB.
 */
function searchClassOf(size: number): number {
  if (size < Class.SmallLimit) return size >>> 4
  const rounded = size + (1 << (27 - Math.clz32(size))) - 1
  return rounded > 0xffffffff ? Class.Count : classOf(rounded)
}

function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x)
}

export class Allocator {
  private readonly words: Int32Array
  /** Header offset of the first block; derived from the size alone so attaching writes and reads nothing. */
  private readonly first: number
  /** Header offset of the sentinel. */
  private readonly end: number
  /** Usable bytes of the single block of an empty heap: no larger request can ever succeed. */
  private readonly maxRequest: number

  constructor(mem: HeapMemory) {
    this.words = mem.words
    // Offsets are u32: a larger memory is managed only up to 4 GiB.
    const limit = Math.floor(Math.min(mem.size, 2 ** 32) / 16) * 16
    this.first = Header.HeapStart + Block.HeaderSize
    this.end = limit - Block.HeaderSize
    this.maxRequest = Math.max(0, this.end - this.first - Block.HeaderSize)
  }

  /** Lays out an empty heap: one free block from HeapStart to the sentinel. */
  static format(mem: HeapMemory): void {
    const a = new Allocator(mem)
    if (a.end - a.first < Block.MinSize || mem.words.length < a.end / 4 + 2) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `a heap needs at least ${Header.HeapStart + 32} bytes of memory, got ${mem.size}`)
    }
    const w = mem.words
    w.fill(0, Root.Magic, Header.ChannelRoot >> 2)
    const size = a.end - a.first
    w[Root.First] = a.first
    w[Root.End] = a.end
    w[a.first >>> 2] = 0
    w[(a.first >>> 2) + 1] = size | Block.Free
    w[a.end >>> 2] = a.first
    w[(a.end >>> 2) + 1] = 0
    insertFree(w, a.first, classOf(size))
    w[Root.Free] = size
    w[Root.FreeBlocks] = 1
    // Last, so a creator that dies while formatting leaves a root check() rejects.
    w[Root.Magic] = ROOT_MAGIC
  }

  /**
   * Offset of at least `size` usable bytes, 16-byte aligned. ERR_SHM_FULL if no free
   * block is large enough; a failed call has written nothing.
   */
  alloc(size: number): number {
    try {
      return this.allocOnce(size)
    } catch (err) {
      // Loan arrays kept for reuse (core/loan_pool.ts) go back first: the heap is full only without them.
      if (this.whenFull === undefined || !(err instanceof ShmError) || err.code !== 'ERR_SHM_FULL') throw err
      if (this.whenFull() === 0) {
        const hint = this.fullHint?.()
        throw hint ? new ShmError('ERR_SHM_FULL', `${err.message}. ${hint}`) : err
      }
      return this.allocOnce(size)
    }
  }

  /**
   * Called, in the turn, when an allocation finds no room: gives back blocks kept for
   * reuse (the loan pool's free arrays) and returns the bytes it freed (0: none).
   */
  whenFull: (() => number) | undefined
  /** What else the ERR_SHM_FULL of a full heap should say (where memory is held that whenFull could not give back), if anything. */
  fullHint: (() => string | undefined) | undefined

  private allocOnce(size: number): number {
    if ((size >>> 0) !== size || size > this.maxRequest) return this.allocFailed(size)
    const w = this.words
    // Header plus payload, rounded to 16; a free block needs 8 payload bytes for its links.
    const need = ((size + 23) >>> 4) * 16
    const idx = searchClassOf(need)
    let fl = idx >>> 4
    let map = fl < Class.FlCount ? w[Root.SlMap + fl]! & (-1 << (idx & 15)) : 0
    if (map === 0) {
      const flMap = fl + 1 < Class.FlCount ? w[Root.FlMap]! & (-1 << (fl + 1)) : 0
      if (flMap === 0) return this.allocFromLargest(size, need)
      fl = lowestBit(flMap)
      map = w[Root.SlMap + fl]!
    }
    const cls = (fl << 4) | lowestBit(map)
    return this.take(w[Root.Heads + cls]! >>> 0, cls, need)
  }

  /** Unlinks free block `block` (filed under `cls`), splits off what `need` leaves, marks it used. */
  private take(block: number, cls: number, need: number): number {
    const w = this.words
    const hi = block >>> 2
    const word = w[hi + 1]!
    const size = (word & Block.SizeMask) >>> 0
    // The list head came from shared memory: before writing anything, make sure it
    // is a free block inside the heap that holds `need` bytes. Otherwise the block
    // (or its split remainder) could end past the segment, and callers that copy
    // into it would write out of bounds.
    if (block < this.first || block >= this.end || (block & 15) !== Block.HeaderSize || (word & Block.FlagMask) !== Block.Free || size < need || block + size > this.end) {
      throw corrupt(`free list ${cls >>> 4}/${cls & 15} holds ${block}, which is not a free block of at least ${need} bytes inside the heap`)
    }
    this.checkFreeLinks(block, cls)
    w[Root.OpBlock] = block
    w[Root.Op] = Op.Alloc
    removeFree(w, block, cls)
    const rest = size - need
    if (rest >= Block.MinSize) {
      // The remainder's header first (it lies in this block's payload, outside the
      // chain), then the shrink that links it in, then its successor's back link.
      const r = block + need
      w[r >>> 2] = block
      w[(r >>> 2) + 1] = rest | Block.Free
      w[hi + 1] = need
      w[(block + size) >>> 2] = r
      insertFree(w, r, classOf(rest))
      w[Root.Free] -= need
      w[Root.Used] += need
    } else {
      // The remainder cannot hold a free block: the caller gets it as slack.
      w[hi + 1] = size
      w[Root.Free] -= size
      w[Root.Used] += size
      w[Root.FreeBlocks] -= 1
    }
    w[Root.Allocations] += 1
    w[Root.Op] = 0
    return block + Block.HeaderSize
  }

  /**
   * The good-fit search skips the class holding `need` itself, since only some of
   * its blocks fit. Reached only when every higher class is empty, i.e. the heap
   * is nearly exhausted for this size; walking that one class keeps "alloc fails
   * only if no free block fits" true.
   */
  private allocFromLargest(size: number, need: number): number {
    const w = this.words
    const flMap = w[Root.FlMap]!
    if (flMap !== 0) {
      const fl = 31 - Math.clz32(flMap)
      const cls = (fl << 4) | (31 - Math.clz32(w[Root.SlMap + fl]!))
      if (need <= this.classMax(cls)) {
        const limit = this.listLimit(cls)
        let steps = 0
        for (let b = w[Root.Heads + cls]! >>> 0; b !== 0; b = w[(b + 8) >>> 2]! >>> 0) {
          if (++steps > limit) throw this.listCycle(cls, limit)
          if ((w[(b >>> 2) + 1]! & Block.SizeMask) >>> 0 >= need) return this.take(b, cls, need)
        }
      }
    }
    return this.allocFailed(size)
  }

  /**
   * How many blocks of class `cls` can exist: the heap divided by the class's smallest
   * block. A free-list walk that goes on longer follows a corrupted link (a cycle), so
   * it stops there — after at most that many steps, not after an arbitrary large number.
   */
  private listLimit(cls: number): number {
    const smallest = cls === 0 ? Block.MinSize : Math.max(Block.MinSize, this.classMax(cls - 1))
    return Math.floor((this.end - this.first) / smallest) + 1
  }

  private listCycle(cls: number, limit: number): ShmError {
    return corrupt(`free list ${cls >>> 4}/${cls & 15} is longer than the ${limit} blocks of its class that fit in the heap: a link in it was overwritten (a cycle); run shm.check({ repair: true })`)
  }

  /** Upper bound (exclusive) of block sizes in class `cls`. */
  private classMax(cls: number): number {
    const fl = cls >>> 4
    const sl = cls & 15
    if (fl === 0) return (sl + 1) * 16
    return (16 + sl + 1) * 2 ** (fl + 3)
  }

  private allocFailed(size: number): never {
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || size > 2 ** 32) {
      throw new ShmError('ERR_INVALID_ARGUMENT', `alloc size must be an integer from 0 to 4 GiB (${2 ** 32}), got ${String(size)}`)
    }
    const s = this.stats()
    throw new ShmError(
      'ERR_SHM_FULL',
      `cannot allocate ${size} bytes: the largest free block holds ${s.largestFree} bytes (${s.free} bytes free in total, heap ${s.heapBytes} bytes, ${s.allocations} live allocations); nothing was changed: create a bigger segment or destroy objects you no longer need`,
    )
  }

  /**
   * Returns a block from alloc() to the heap, merging it with free neighbours.
   * An offset that is not a live allocation throws ERR_INVALID_ARGUMENT and
   * changes nothing.
   */
  free(offset: number): void {
    const h = this.blockOf(offset)
    if (h < 0) this.badOffset('free', offset)
    const w = this.words
    const hi = h >>> 2
    const word = w[hi + 1]!
    const own = (word & Block.SizeMask) >>> 0
    // The neighbours to merge with come from shared memory: check them (and their
    // free-list links) before the first write, so a corrupt heap changes nothing.
    const next = h + own
    const nextWord = next < this.end ? w[(next >>> 2) + 1]! : 0
    const mergeNext = (nextWord & Block.Free) !== 0
    const ns = (nextWord & Block.SizeMask) >>> 0
    if (mergeNext) this.checkFreeNeighbour(next, ns)
    const prev = w[hi]! >>> 0 // blockOf checked that it ends exactly at h
    const prevWord = prev !== 0 ? w[(prev >>> 2) + 1]! : 0
    const mergePrev = (prevWord & Block.Free) !== 0
    const ps = (prevWord & Block.SizeMask) >>> 0
    if (mergePrev) this.checkFreeNeighbour(prev, ps)
    let size = own
    let start = h
    let freeBlocks = 1
    w[Root.OpBlock] = h
    w[Root.Op] = Op.Free
    // Marked free first: if this header ends up inside a merged block, a stale copy
    // reads "free" and a second free() of the same offset is refused as a double free.
    w[hi + 1] = word | Block.Free
    if (mergeNext) {
      removeFree(w, next, classOf(ns))
      size += ns
      freeBlocks--
    }
    if (mergePrev) {
      removeFree(w, prev, classOf(ps))
      size += ps
      start = prev
      freeBlocks--
    }
    w[(start >>> 2) + 1] = size | Block.Free
    w[(start + size) >>> 2] = start
    insertFree(w, start, classOf(size))
    w[Root.Used] -= own
    w[Root.Free] += own
    w[Root.Allocations] -= 1
    w[Root.FreeBlocks] += freeBlocks
    w[Root.Op] = 0
  }

  /** A free block next to one being freed: inside the heap, its size and successor's back link agree, its list links are sound. */
  private checkFreeNeighbour(block: number, size: number): void {
    const w = this.words
    if (size < Block.MinSize || (size & 15) !== 0 || block + size > this.end || w[(block + size) >>> 2]! >>> 0 !== block) {
      throw corrupt(`free block ${block} next to a block being freed has size ${size}, which does not end at a block that links back to it`)
    }
    this.checkFreeLinks(block, classOf(size))
  }

  /** A free block's list links point at free-list members that point back (or at the list head). */
  private checkFreeLinks(block: number, cls: number): void {
    const w = this.words
    const next = w[(block + 8) >>> 2]! >>> 0
    const prev = w[(block + 12) >>> 2]! >>> 0
    const inHeap = (b: number) => b >= this.first && b < this.end && (b & 15) === Block.HeaderSize
    const sound =
      (next === 0 || (inHeap(next) && w[(next + 12) >>> 2]! >>> 0 === block)) &&
      (prev === 0 ? w[Root.Heads + cls]! >>> 0 === block : inHeap(prev) && w[(prev + 8) >>> 2]! >>> 0 === block)
    if (!sound) throw corrupt(`free block ${block} has list links ${next} (next) and ${prev} (previous) that do not link back to it`)
  }

  /** Usable bytes of a live allocation (at least what was asked for). */
  usableSize(offset: number): number {
    const h = this.blockOf(offset)
    if (h < 0) this.badOffset('usableSize', offset)
    return ((this.words[(h >>> 2) + 1]! & Block.SizeMask) >>> 0) - Block.HeaderSize
  }

  /**
   * Usable bytes of the allocated block at `offset`, read from its own header alone (-1
   * when that says it is no allocated block). For a block the caller holds, checked
   * outside a turn: blockSize also follows the links of its neighbours, which another
   * process may be rewriting in its turn (a split or a merge next door), and would
   * then take a sound block for a damaged one.
   */
  heldBlockSize(offset: number): number {
    const h = offset - Block.HeaderSize
    if ((offset >>> 0) !== offset || (offset & 15) !== 0 || h < this.first || h >= this.end) return -1
    const word = this.words[(h >>> 2) + 1]!
    const size = (word & Block.SizeMask) >>> 0
    if ((word & Block.FlagMask) !== 0 || size < Block.MinSize || h + size > this.end) return -1
    return size - Block.HeaderSize
  }

  /** Bytes the block at `offset` takes from the heap, header and rounding included (what `used` counts); -1 when it is no live block. */
  blockFootprint(offset: number): number {
    const h = this.blockOf(offset)
    return h < 0 ? -1 : (this.words[(h >>> 2) + 1]! & Block.SizeMask) >>> 0
  }

  /** Like usableSize, but -1 instead of a throw: for checks that walk untrusted references. */
  blockSize(offset: number): number {
    const h = this.blockOf(offset)
    return h < 0 ? -1 : ((this.words[(h >>> 2) + 1]! & Block.SizeMask) >>> 0) - Block.HeaderSize
  }

  /** The operation a dead process left unfinished (Root.Op set), or null. Unknown values throw ERR_SHM_CORRUPT. */
  pendingOperation(): PendingOperation | null {
    const w = this.words
    const op = w[Root.Op]!
    if (op === 0) return null
    const block = w[Root.OpBlock]! >>> 0
    if (op === Op.Alloc) return { op: 'alloc', block }
    if (op === Op.Free) return { op: 'free', block }
    if (op === Op.Repair) return { op: 'repair', block }
    throw corrupt(`the root records an unknown operation ${op} (the root was overwritten)`)
  }

  /**
   * Header offset of the live allocation at `offset`, or -1. Besides range and
   * alignment, both physical neighbours must point back at it, which an offset
   * into the middle of a payload or a stale header practically never satisfies.
   */
  private blockOf(offset: number): number {
    const h = offset - Block.HeaderSize
    if ((offset >>> 0) !== offset || (offset & 15) !== 0 || h < this.first || h >= this.end) return -1
    const w = this.words
    const hi = h >>> 2
    const word = w[hi + 1]!
    const size = (word & Block.SizeMask) >>> 0
    const next = h + size
    if ((word & Block.FlagMask) !== 0 || size < Block.MinSize || next > this.end || w[next >>> 2]! >>> 0 !== h) return -1
    const prev = w[hi]! >>> 0
    if (prev === 0) return h === this.first ? h : -1
    if (prev < this.first || prev >= h || prev + ((w[(prev >>> 2) + 1]! & Block.SizeMask) >>> 0) !== h) return -1
    return h
  }

  private badOffset(call: string, offset: number): never {
    let why: string
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) why = 'it is not a non-negative integer'
    else if (offset - Block.HeaderSize < this.first || offset - Block.HeaderSize >= this.end) why = `it is outside the heap [${this.first + Block.HeaderSize}, ${this.end})`
    else if (offset % 16 !== 0) why = 'it is not 16-byte aligned, so alloc() never returned it'
    else if ((this.words[((offset - Block.HeaderSize) >>> 2) + 1]! & Block.Free) !== 0) why = 'that block is already free (double free)'
    else why = 'it is not the start of an allocated block'
    throw new ShmError('ERR_INVALID_ARGUMENT', `${call}(${String(offset)}): ${why}; pass an offset returned by alloc() that has not been freed`)
  }

  stats(): AllocatorStats {
    const w = this.words
    return {
      heapBytes: this.end + Block.HeaderSize - Header.HeapStart,
      used: w[Root.Used]! >>> 0,
      free: w[Root.Free]! >>> 0,
      largestFree: this.largestFree(),
      allocations: w[Root.Allocations]! >>> 0,
      freeBlocks: w[Root.FreeBlocks]! >>> 0,
    }
  }

  /** The largest block lives in the highest non-empty class; only that list is walked. */
  private largestFree(): number {
    const w = this.words
    const flMap = w[Root.FlMap]!
    if (flMap === 0) return 0
    const fl = 31 - Math.clz32(flMap)
    const cls = (fl << 4) | (31 - Math.clz32(w[Root.SlMap + fl]!))
    let max = 0
    const limit = this.listLimit(cls)
    let steps = 0
    for (let b = w[Root.Heads + cls]! >>> 0; b !== 0; b = w[(b + 8) >>> 2]! >>> 0) {
      if (++steps > limit) throw this.listCycle(cls, limit)
      const s = (w[(b >>> 2) + 1]! & Block.SizeMask) >>> 0
      if (s > max) max = s
    }
    return max === 0 ? 0 : max - Block.HeaderSize
  }

  /**
   * Walks every block and every free list and throws ERR_SHM_CORRUPT unless the
   * boundary tags, free lists, bitmaps and counters all agree. O(heap blocks).
   */
  check(): void {
    const w = this.words
    if (w[Root.Magic]! >>> 0 !== ROOT_MAGIC) throw corrupt(`allocator root magic is 0x${(w[Root.Magic]! >>> 0).toString(16)}, expected 0x${ROOT_MAGIC.toString(16)} (never formatted, or overwritten)`)
    if (w[Root.First]! >>> 0 !== this.first || w[Root.End]! >>> 0 !== this.end) {
      throw corrupt(`root says the heap spans ${w[Root.First]! >>> 0}..${w[Root.End]! >>> 0}, the segment size implies ${this.first}..${this.end}`)
    }
    const op = w[Root.Op]!
    if (op !== 0) {
      const what = op === Op.Alloc ? 'alloc' : op === Op.Free ? 'free' : op === Op.Repair ? 'repair' : `unknown operation ${op}`
      throw corrupt(`an allocator ${what} on block ${w[Root.OpBlock]! >>> 0} was interrupted (its process died mid-operation)`)
    }

    // Physical walk: the chain of blocks must tile [first, end) exactly.
    const freeSet = new Set<number>()
    let used = 0
    let free = 0
    let allocations = 0
    let prev = 0
    let prevFree = false
    let h = this.first
    while (h !== this.end) {
      const prevPhys = w[h >>> 2]! >>> 0
      const word = w[(h >>> 2) + 1]!
      const size = (word & Block.SizeMask) >>> 0
      const isFree = (word & Block.Free) !== 0
      if (prevPhys !== prev) throw corrupt(`block ${h}: previous-block link is ${prevPhys}, expected ${prev}`)
      if ((word & Block.FlagMask & ~Block.Free) !== 0) throw corrupt(`block ${h}: reserved header bits set (word 0x${(word >>> 0).toString(16)})`)
      if (size < Block.MinSize || h + size > this.end) throw corrupt(`block ${h}: size ${size} does not fit between ${Block.MinSize} and the heap end ${this.end}`)
      if (isFree) {
        if (prevFree) throw corrupt(`blocks ${prev} and ${h} are adjacent free blocks that were never merged`)
        freeSet.add(h)
        free += size
      } else {
        used += size
        allocations++
      }
      prevFree = isFree
      prev = h
      h += size
    }
    if (w[(this.end >>> 2) + 1]! !== 0) throw corrupt(`sentinel header at ${this.end} was overwritten (0x${(w[(this.end >>> 2) + 1]! >>> 0).toString(16)})`)
    if (w[this.end >>> 2]! >>> 0 !== prev) throw corrupt(`sentinel's previous-block link is ${w[this.end >>> 2]! >>> 0}, expected ${prev}`)

    // Free lists and bitmaps: every free block filed exactly once, in its class.
    let listed = 0
    const flMap = w[Root.FlMap]!
    if ((flMap >>> 0) >>> Class.FlCount !== 0) throw corrupt(`first-level bitmap 0x${(flMap >>> 0).toString(16)} has bits beyond class ${Class.FlCount - 1}`)
    for (let fl = 0; fl < Class.FlCount; fl++) {
      const slMap = w[Root.SlMap + fl]!
      if ((slMap >>> 0) >>> 16 !== 0) throw corrupt(`second-level bitmap ${fl} is 0x${(slMap >>> 0).toString(16)}`)
      if ((slMap !== 0) !== ((flMap & (1 << fl)) !== 0)) throw corrupt(`first-level bitmap bit ${fl} disagrees with second-level bitmap 0x${slMap.toString(16)}`)
      for (let sl = 0; sl < 16; sl++) {
        const cls = (fl << 4) | sl
        let b = w[Root.Heads + cls]! >>> 0
        if ((b !== 0) !== ((slMap & (1 << sl)) !== 0)) throw corrupt(`bitmap bit for class ${fl}/${sl} disagrees with its list head ${b}`)
        let back = 0
        while (b !== 0) {
          if (!freeSet.has(b)) throw corrupt(`free list ${fl}/${sl} links to ${b}, which is not a free block (or is listed twice)`)
          freeSet.delete(b)
          const size = (w[(b >>> 2) + 1]! & Block.SizeMask) >>> 0
          if (classOf(size) !== cls) throw corrupt(`free block ${b} of ${size} bytes is filed under class ${fl}/${sl}, belongs in ${classOf(size) >>> 4}/${classOf(size) & 15}`)
          if (w[(b + 12) >>> 2]! >>> 0 !== back) throw corrupt(`free block ${b}: back link is ${w[(b + 12) >>> 2]! >>> 0}, expected ${back}`)
          listed++
          back = b
          b = w[(b + 8) >>> 2]! >>> 0
        }
      }
    }
    if (freeSet.size !== 0) throw corrupt(`${freeSet.size} free block(s) are on no free list (first: ${freeSet.values().next().value})`)
    for (let i = Root.Heads + Class.Count; i < Root.EndWord; i++) if (w[i] !== 0) throw corrupt(`unused root word ${i * 4} is ${w[i]}`)

    const counters: Array<[string, number, number]> = [
      ['used bytes', w[Root.Used]! >>> 0, used],
      ['free bytes', w[Root.Free]! >>> 0, free],
      ['allocations', w[Root.Allocations]! >>> 0, allocations],
      ['free blocks', w[Root.FreeBlocks]! >>> 0, listed],
    ]
    for (const [name, stored, actual] of counters) {
      if (stored !== actual) throw corrupt(`counter "${name}" says ${stored}, the heap holds ${actual}`)
    }
  }

  /**
   * Rebuilds everything derived from the physical block chain: the previous-block
   * links, unmerged free neighbours, the free lists, both bitmaps and the counters.
   * This is what a process that died inside alloc() or free() leaves to fix (see
   * "Crashes" above: the chain itself is always a valid tiling, at most one link
   * lags). The chain is validated before anything is written; if it does not tile
   * the heap, ERR_SHM_CORRUPT is thrown and nothing changes. Safe to run again if
   * the repairing process dies too (Root.Op stays set until the rebuild is done).
   * Callers hold the turn.
   */
  repair(): AllocatorRepair {
    const w = this.words
    if (w[Root.Magic]! >>> 0 !== ROOT_MAGIC) throw corrupt(`allocator root magic is 0x${(w[Root.Magic]! >>> 0).toString(16)}, expected 0x${ROOT_MAGIC.toString(16)}; nothing to repair from`)
    if (w[Root.First]! >>> 0 !== this.first || w[Root.End]! >>> 0 !== this.end) {
      throw corrupt(`root says the heap spans ${w[Root.First]! >>> 0}..${w[Root.End]! >>> 0}, the segment size implies ${this.first}..${this.end}; nothing to repair from`)
    }
    const interrupted = this.pendingOperation()
    // Pass 1, read only: the sizes must tile [first, end) exactly.
    for (let h = this.first; h !== this.end; ) {
      const word = w[(h >>> 2) + 1]!
      const size = (word & Block.SizeMask) >>> 0
      if ((word & Block.FlagMask & ~Block.Free) !== 0 || size < Block.MinSize || h + size > this.end) {
        throw corrupt(`block ${h} has header word 0x${(word >>> 0).toString(16)}, which does not fit the heap: the block chain is broken, not only interrupted; recreate the segment`)
      }
      h += size
    }
    if (w[(this.end >>> 2) + 1]! !== 0) throw corrupt(`sentinel header at ${this.end} was overwritten (0x${(w[(this.end >>> 2) + 1]! >>> 0).toString(16)}); recreate the segment`)

    // Pass 2: fix the chain in place, then rebuild lists, bitmaps and counters.
    w[Root.OpBlock] = interrupted?.block ?? 0
    w[Root.Op] = Op.Repair
    let linksFixed = 0
    let blocksMerged = 0
    let prev = 0
    let prevFree = false
    for (let h = this.first; h !== this.end; ) {
      const word = w[(h >>> 2) + 1]!
      const size = (word & Block.SizeMask) >>> 0
      if ((word & Block.Free) !== 0 && prevFree) {
        // A free() died between marking this block free and merging it: merge now.
        const merged = ((w[(prev >>> 2) + 1]! & Block.SizeMask) >>> 0) + size
        w[(prev >>> 2) + 1] = merged | Block.Free
        blocksMerged++
        h += size
        continue
      }
      if (w[h >>> 2]! >>> 0 !== prev) {
        w[h >>> 2] = prev
        linksFixed++
      }
      prevFree = (word & Block.Free) !== 0
      prev = h
      h += size
    }
    if (w[this.end >>> 2]! >>> 0 !== prev) {
      w[this.end >>> 2] = prev
      linksFixed++
    }
    w.fill(0, Root.Used, Root.EndWord)
    let used = 0
    let free = 0
    let allocations = 0
    let freeBlocks = 0
    for (let h = this.first; h !== this.end; ) {
      const word = w[(h >>> 2) + 1]!
      const size = (word & Block.SizeMask) >>> 0
      if ((word & Block.Free) !== 0) {
        insertFree(w, h, classOf(size))
        free += size
        freeBlocks++
      } else {
        used += size
        allocations++
      }
      h += size
    }
    w[Root.Used] = used
    w[Root.Free] = free
    w[Root.Allocations] = allocations
    w[Root.FreeBlocks] = freeBlocks
    w[Root.OpBlock] = 0
    w[Root.Op] = 0
    return { interrupted, linksFixed, blocksMerged, stats: this.stats() }
  }
}

function insertFree(w: Int32Array, block: number, cls: number): void {
  const head = w[Root.Heads + cls]!
  w[(block + 8) >>> 2] = head
  w[(block + 12) >>> 2] = 0
  if (head !== 0) w[(head + 12) >>> 2] = block
  w[Root.Heads + cls] = block
  const fl = cls >>> 4
  w[Root.SlMap + fl] |= 1 << (cls & 15)
  w[Root.FlMap] |= 1 << fl
}

function removeFree(w: Int32Array, block: number, cls: number): void {
  const next = w[(block + 8) >>> 2]!
  const prev = w[(block + 12) >>> 2]!
  if (next !== 0) w[(next + 12) >>> 2] = prev
  if (prev !== 0) {
    w[(prev + 8) >>> 2] = next
  } else {
    w[Root.Heads + cls] = next
    if (next === 0) {
      const fl = cls >>> 4
      const map = w[Root.SlMap + fl]! & ~(1 << (cls & 15))
      w[Root.SlMap + fl] = map
      if (map === 0) w[Root.FlMap] &= ~(1 << fl)
    }
  }
}
