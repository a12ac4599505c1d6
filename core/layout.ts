// Where everything lives in a segment. Every process maps the same bytes, so this
// file is the contract between them: change a number here and bump LAYOUT_VERSION.
//
// Offsets are bytes from the start of the segment. All words are little-endian
// (every platform we build for is), 32-bit words are 4-byte aligned so Atomics and
// the futex can use them.

/** 'IPOB' read as a little-endian u32. */
export const MAGIC = 0x424f5049
/**
 * 2: the turn word names its holder (LockOwnerId); LockWaiters moved to 60.
 * 3: records carry a generation (16-byte record header, every body 8 bytes later);
 *    the generation counter lives at Header.NextGeneration; tables have an Epoch; the
 *    references processes hold through views are listed from Header.Holders.
 * 4: channels are lock-free rings of copied message frames (records.ts Chan, RingSlot,
 *    Frame); the channel directory is a hash table with tombstones.
 * 5: loans come from a pool of reusable byte arrays (Header.LoanPool, records.ts
 *    LoanPoolRec) and travel in frames as loan pool entries (frame tag Loan); open
 *    handles are listed at Header.Handles, and ring slots name their writer's and
 *    reader's handle (RingSlot.WriterId, ReaderId).
 * 6: TypedArrays read out of containers hold their records (core/view_holds.ts); a
 *    handle whose heap is full asks the others to collect theirs
 *    (Header.CollectRequests); a holder list may list a Frame record (a send waiting
 *    for room, core/messages.ts listPending).
 * 7: a holder list keeps its count in its own block, not in the directory's slot (12
 *    bytes now), so that a handle can add to it outside turns; reference counts change
 *    atomically (messages sent, received and released by reference without a turn).
 */
export const LAYOUT_VERSION = 7

/** Segment header, at offset 0. */
export const enum Header {
  Magic = 0, // u32
  Version = 4, // u32
  Size = 8, // u64, total bytes of the segment
  CreatorPid = 16, // u32
  Ready = 20, // u32, 0 while the creator initializes, 1 after (release store, set last)
  CreatedAt = 24, // f64, ms since the epoch
  // LockOwner and LockOwnerId are one u64, the turn word, always written together
  // (core/lock.ts): the low half is the futex word turn waiters sleep on.
  LockOwner = 32, // i32, pid holding the turn; 0 free; -pid reserved for that process's heir
  LockOwnerId = 36, // u32, who in that process: start-time stamp << 16 | holder token (0: never registered)
  InstanceId = 40, // 2 × u32, random, set at create: tells this segment from a later one with the same name
  Flags = 48, // u32, HeaderFlag bits
  Recoveries = 52, // u32, turns taken over from dead owners
  LockHeir = 56, // i32, pid of a waiter that waited too long: the next release hands it the turn
  LockWaiters = 60, // i32, threads sleeping on LockOwner
  AllocatorRoot = 64, // allocator state (up to byte 1808 of it; core/allocator.ts Root)
  NextGeneration = 2048, // u32, counts record allocations: each record's generation derives from it
  Holders = 2052, // u32, ref to the holder directory (core/holders.ts), 0 until a process holds a view
  LoanPool = 2056, // u32, ref to the loan pool (core/loan_pool.ts), 0 until the first loan
  HandlesOverflow = 2060, // u32, 1 once a handle found the handle table full (core/handles.ts)
  Handles = 2064, // HANDLE_SLOTS × u64: the open handles, pid | identity << 32 (core/handles.ts)
  CollectRequests = 3024, // u32, counts allocations that found the heap full: each asks the others to give back what their collected views held (core/view_holds.ts)
  ChannelRoot = 3072, // channel table, up to HeapStart
  HeapStart = 4096,
}

export const enum HeaderFlag {
  /** The creator unlinks the name when it closes or exits. */
  UnlinkOnCreatorExit = 1,
  /**
   * Set by a process that took the turn over from a dead owner and found the heap
   * beyond repair: every later turn refuses with ERR_SHM_CORRUPT (shm.check() still
   * runs, and clears it with { repair: true } if the heap checks out).
   */
  Corrupt = 2,
}

/** Segments smaller than this cannot hold the header plus a useful heap. */
export const MIN_SEGMENT_SIZE = 16 * 1024

/**
 * The largest segment: 4 GiB less 64 KiB. Offsets inside a segment are u32, and the
 * SharedArrayBuffer around it (one page more) must fit a single Uint8Array on Node 20,
 * whose typed arrays stop at 2^32 elements. A multiple of every page size (4/16/64 KiB).
 * Not part of the byte layout (no header field changes): native/platform.h says the same.
 */
export const MAX_SEGMENT_SIZE = 2 ** 32 - 2 ** 16
