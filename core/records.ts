// The records that values become inside a segment. Every process reads these
// layouts, so this file is the wire format: change it and bump LAYOUT_VERSION.
//
// A *slot* (16 bytes) holds one value: primitives inline, everything else as a
// reference (u32 byte offset) to a *record* that starts with a 12-byte header.
// Records are allocator blocks (16-byte aligned), so TypedArray data that starts
// 16 bytes into a record is aligned for every element type.

export const SLOT_SIZE = 16

/** Slot layout: tag at +0 (i32), aux at +4 (i32), payload at +8 (f64 or u32 ref). */
export const enum Slot {
  Tag = 0,
  Aux = 4,
  Payload = 8,
}

export const enum Tag {
  // Inline: the value lives in the slot.
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Int32 = 4, // value in Aux
  Float64 = 5, // value in Payload
  Date = 6, // ms since the epoch in Payload
  Hole = 7, // an array hole (never read back as a value)
  // Referenced: Payload is the offset of a record whose header kind equals the tag.
  String = 16,
  BigInt = 17,
  RegExp = 18,
  Array = 19,
  Object = 20,
  Map = 21,
  Set = 22,
  Binary = 23, // TypedArray, DataView, ArrayBuffer, Buffer (BinaryKind in the record)
  Error = 24,
  Instance = 25, // a registered class: name + fields
  Struct = 26, // a defineStruct value
  Serialized = 27, // v8.serialize fallback (Node processes only)
}

export const FIRST_REF_TAG = Tag.String
export const LAST_VALUE_TAG = Tag.Serialized

/**
 * Record header: kind at +0 (u8), flags at +1 (u8), a kind's own small field at +2
 * (u8: a string's encoding, a bigint's sign, a binary's BinaryKind), refcount at +4
 * (u32), generation at +8 (u32); the body starts at +12. The generation is unique per
 * allocation (never 0) and is zeroed when the record is freed: a view remembers it and
 * compares on every use, so a view of a freed (or freed and reused) record throws
 * ERR_SHM_STALE instead of reading whatever lives there now.
 */
export const enum Rec {
  Kind = 0,
  Flags = 1,
  Small = 2,
  RefCount = 4,
  Generation = 8,
  Body = 12,
}

export const enum RecFlag {
  /** Read-mostly container: mutation throws, readers may cache it whole. */
  Frozen = 1,
  /** A plain object made with Object.create(null). */
  NullProto = 2,
}

/** String and RegExp (text = flags + '/' + source): +2 encoding (u8), +12 byte length, +16 bytes. */
export const enum Str {
  Encoding = 2,
  ByteLength = 12,
  Data = 16,
}

export const enum StrEncoding {
  Utf8 = 1,
  /** Used only when a string holds lone surrogates, which UTF-8 cannot carry. */
  Utf16 = 2,
}

/** BigInt: +2 sign (u8, 0 or 1), +12 magnitude byte length, +16 magnitude little-endian. */
export const enum Big {
  Sign = 2,
  ByteLength = 12,
  Data = 16,
}

/** Array: +12 length, +16 capacity (slots), +20 ref to the items block (capacity slots). */
export const enum Arr {
  Length = 12,
  Capacity = 16,
  Items = 20,
  Size = 24,
}

/**
 * Map, Set, Object, Error, Instance fields: an insertion-ordered hash table.
 * Entries are appended in insertion order (deleted ones are tombstoned and
 * dropped on the next resize); buckets hold the first entry index + 1 of a chain.
 */
export const enum Hash {
  Count = 12, // live entries
  Used = 16, // entries written, live or deleted
  Capacity = 20, // entries the block holds
  Entries = 24, // ref to Capacity * ENTRY_SIZE bytes
  Buckets = 28, // ref to BucketCount u32s
  BucketCount = 32, // a power of two
  Epoch = 36, // bumped whenever entries move (a compacting resize, a reset to empty): live iterators re-find their place
  NextSeq = 40, // the insertion number the next entry gets (Entry.Seq)
  Size = 44,
}

export const ENTRY_SIZE = 48
/**
 * Entry: +0 key hash, +4 next entry index + 1 in the chain, +8 flags, +12 insertion
 * number (increasing along the entries: a live iterator resumes after the last one it
 * visited when entries move), +16 key slot, +32 value slot.
 */
export const enum Entry {
  HashCode = 0,
  Next = 4,
  Flags = 8,
  Seq = 12,
  Key = 16,
  Value = 32,
}

export const enum EntryFlag {
  Deleted = 1,
}

/** Binary: +2 BinaryKind (u8), +12 byte length, +16 data (16-byte aligned). */
export const enum Bin {
  Kind = 2,
  ByteLength = 12,
  Data = 16,
}

export const enum BinaryKind {
  Int8 = 1,
  Uint8 = 2,
  Uint8Clamped = 3,
  Int16 = 4,
  Uint16 = 5,
  Int32 = 6,
  Uint32 = 7,
  Float32 = 8,
  Float64 = 9,
  BigInt64 = 10,
  BigUint64 = 11,
  DataView = 12,
  ArrayBuffer = 13,
  Buffer = 14, // Node Buffer; a Uint8Array where Buffer does not exist
  V8 = 15, // bytes from v8.serialize
}

/** Instance: +12 ref to the class name (String record), +16 ref to its fields (Object record). */
export const enum Inst {
  ClassName = 12,
  Fields = 16,
  Size = 20,
}

/** Error: its fields (name, message, stack, cause…) as an Object record; kind says Error. */

/** Struct: +12 byte length, +16 fingerprint of its schema, +32 the struct's bytes (16-byte aligned, like a binary's). */
export const enum StructRec {
  ByteLength = 12,
  Fingerprint = 16,
  Data = 32,
}

/**
 * Channel: a bounded multi-producer multi-consumer ring of message slots (Dmitry
 * Vyukov's bounded queue: one sequence word per slot), so that sending and receiving
 * take no turn. Created in a turn, listed in the channel directory, and freed in a
 * turn once no handle holds it (RefCount = open handles) and it is empty. Positions
 * are u32 counters compared modulo 2^32.
 */
export const enum Chan {
  Name = 12, // ref to String record
  NameHash = 16,
  Capacity = 20, // slots, a power of two, at least 2
  SlotBytes = 24, // bytes per slot (RingSlot.Data + the inline frame room)
  Dropped = 28, // messages lost to a sender or receiver that stopped mid-operation (stats().dropped)
  Signal = 32, // futex word, bumped after a send when FutexWaiters > 0
  FutexWaiters = 36, // threads sleeping on Signal (sync receives; async ones without a notifier)
  SpaceSignal = 40, // futex word, bumped after a receive when SpaceWaiters > 0
  SpaceWaiters = 44, // senders sleeping on SpaceSignal (a full ring)
  Sleepers = 48, // entries of the sleeper table in use
  SleeperTable = 64, // CHANNEL_SLEEPERS × (pid, nonce, armed) u32s: event loops to notify (core/wakeups.ts)
  Enqueue = 192, // next position to send into (a cache line of its own)
  Dequeue = 256, // next position to receive from (a cache line of its own)
  Slots = 320,
}

export const CHANNEL_SLEEPERS = 8

/**
 * Ring slot: +0 Seq (the position it is free for; position + 1 once it holds that
 * position's message), +4 Length (the frame's bytes; OUT_OF_LINE set: the frame is a
 * Frame record), +8 the pid of the sender that claimed it, +12 the pid of the receiver
 * that claimed it (0 until one did: the sender clears it), +16 and +20 their handles'
 * identities (core/handles.ts; 0: not known), +24 the Frame record's ref — or 1 + the
 * loan pool entry whose array holds the frame (POOLED_FRAME_MAX or less: records start
 * at Header.HeapStart) — +28 its generation, +32 the inline frame (8-aligned). The pids
 * and identities tell a stalled operation of a dead process or an ended thread (given
 * up on) from a slow one (waited for).
 */
export const enum RingSlot {
  Seq = 0,
  Length = 4,
  Writer = 8,
  Reader = 12,
  WriterId = 16,
  ReaderId = 20,
  Ref = 24,
  Generation = 28,
  Data = 32,
}

/** Length bit: the frame is in a Frame record (RingSlot.Ref), not in the ring. */
export const OUT_OF_LINE = 0x80000000
/** Length bit: the frame lists record references (its receiver takes them in a turn). */
export const WITH_REFS = 0x40000000
/** The frame's byte length in a slot's Length word. */
export const FRAME_LENGTH = 0x3fffffff
/**
 * A frame longer than a slot's RingSlot.Data room spans the slots after its head: each
 * holds more of it from byte SPAN_DATA, after its Seq, Length, Writer, Reader, WriterId
 * and ReaderId words (its Seq stays "claimed" until the message is received, so it never
 * looks like a message of its own; the pids and identities tell who holds it, as for a head).
 */
export const SPAN_DATA = 24

/** Frame (a message too large for its slot): +12 byte length, +16 the frame (core/values/frame.ts). */
export const enum FrameRec {
  ByteLength = 12,
  Data = 16,
}

/**
 * Channel directory, in the header at Header.ChannelRoot: an open-addressing table
 * of channel refs (0 empty, TOMBSTONE deleted), probed linearly from NameHash.
 */
export const enum ChannelDir {
  Table = 0, // ref to a block of Capacity u32s, 0 until the first channel
  Capacity = 4, // a power of two
  Count = 8, // live channels
  Used = 12, // live channels + tombstones
}

export const TOMBSTONE = 1

/** Record kinds that are not values. */
export const enum InternalKind {
  Channel = 64,
  Frame = 65,
  LoanPool = 66,
  LoanBlock = 67,
}

/**
 * The loan pool (core/loan_pool.ts), from Header.LoanPool: a table of LOAN_ENTRIES
 * entries, each one byte array of the segment lent by Channel.loan, kept for the next
 * loan once released. Entries change hands by compare-and-swap on State, outside turns;
 * Block and Capacity change only in a turn, by the process whose State holds the entry.
 */
export const enum LoanPoolRec {
  Capacity = 12, // entries
  Used = 16, // entries ever claimed: those past it are all zero (scans stop here)
  Entries = 32,
}

/** One loan pool entry (LOAN_ENTRY_SIZE bytes). */
export const enum LoanEntry {
  State = 0, // i32: 0 free; a pid: held by that process (lent, or received); LOAN_IN_FLIGHT: in a message
  Identity = 4, // u32: which handle of that process (core/lock.ts identityOf); 0 while free or in flight
  Block = 8, // u32: its LoanBlock record (0: none yet)
  Capacity = 12, // u32: the bytes the block holds
  Generation = 16, // u32: changes at every loan, never 0; a message names the loan it carries by it
  Length = 20, // u32: the byte length of the current loan
}

export const LOAN_ENTRY_SIZE = 32
export const LOAN_ENTRIES = 256
export const LOAN_IN_FLIGHT = -1
/** A ring slot's Ref up to this names a loan pool entry (Ref − 1) holding the frame, not a Frame record. */
export const POOLED_FRAME_MAX = LOAN_ENTRIES

/** A LoanBlock record: the header, then the loaned bytes (16-byte aligned). */
export const enum LoanBlockRec {
  Data = 16,
}
