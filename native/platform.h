// The platform layer: everything the addon needs from the OS, nothing more.
// One implementation per OS family: segment_posix.cc, segment_win32.cc, wait_*.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ipo {

enum class OpenMode : int { Create = 0, Open = 1, OpenOrCreate = 2 };

// A failed platform call: `code` is one of the ShmError codes the JS layer documents.
struct Failure {
  std::string code;
  std::string message;
};

// An open segment. `window` is where JS sees the bytes: a page-aligned range inside a
// SharedArrayBuffer that V8 allocated (so it lies inside the V8 cage, and no transfer
// can detach it). On POSIX the segment is mapped directly over it. Where the OS cannot
// map into memory V8 owns (Windows), `view` is a separate mapping and `mirrored` is
// true: the JS layer then copies between the two at turn boundaries.
struct Mapping {
  intptr_t handle = -1;
  size_t size = 0;
  bool created = false;
  void* window = nullptr;
  void* view = nullptr;
  bool mirrored = false;
  intptr_t wakeEvent = -1;  // Windows only: the named event waiters sleep on
};

size_t PageSize();

// The largest segment: 4 GiB less 64 KiB. Offsets inside a segment are 32-bit, and the
// SharedArrayBuffer around it (one page more) must still fit one Uint8Array on Node 20,
// whose typed arrays stop at 2^32 elements. A multiple of every page size we know (4, 16
// and 64 KiB). core/layout.ts MAX_SEGMENT_SIZE says the same; the JS layer checks they agree.
constexpr uint64_t kMaxSegmentSize = (uint64_t{1} << 32) - (uint64_t{1} << 16);

// Opens or creates the OS object named `osName` (already validated) and sizes it.
// On Create, `size` must be a multiple of PageSize(); the space is reserved now where the
// OS can (posix_fallocate/fallocate), so a full tmpfs fails here with ENOSPC instead of
// SIGBUS at the first write; a failed create leaves no object behind. On Open the size
// is read from the OS.
bool OpenSegment(const std::string& osName, size_t size, OpenMode mode, Mapping* out,
                 Failure* failure);

// Maps the opened segment at `window` (page aligned, `out->size` bytes, owned by V8).
bool MapSegment(Mapping* mapping, void* window, bool prefault, Failure* failure);

// Puts private zeroed memory back at the window so V8 can free its buffer normally,
// and closes the OS handle. Safe to call once per successfully opened mapping.
// Returns false if the window could not be restored (the OS refused the anonymous
// mapping): the caller must then never let V8 free that buffer.
bool UnmapSegment(Mapping* mapping);

// The size the OS object has now (POSIX: fstat). Smaller than `mapping.size` means
// someone truncated it while mapped: touching the pages past its end raises SIGBUS.
bool BackedSize(const Mapping& mapping, uint64_t* size, Failure* failure);

// Removes the name; processes that have it open keep their mapping.
bool UnlinkSegment(const std::string& osName, Failure* failure);

enum class WaitResult : int { Woken = 0, TimedOut = 1, NotEqual = 2 };

// Cross-process futex on a 32-bit word inside a shared mapping. `timeoutMs` < 0 waits
// forever. Spurious wake-ups are allowed; callers re-check their condition.
WaitResult WaitOnWord(const Mapping& mapping, uint32_t* word, uint32_t expected, double timeoutMs);
int WakeWord(const Mapping& mapping, uint32_t* word, int count);

// Gives the CPU to another runnable thread: spinning waiters call it so that a
// woken process on an oversubscribed machine gets to run.
void YieldCpu();

// True when a process with this id exists (it may belong to another user).
bool ProcessAlive(int64_t pid);

// When the process with this id started, as an opaque number that stays the same for
// that process and (almost surely) differs for a later process given the same id; 0 when
// unknown (no such process, not readable, or a platform without the call). Linux: field
// 22 of /proc/<pid>/stat (clock ticks since boot). macOS: proc_pidinfo's start time in
// microseconds. Windows: GetProcessTimes' creation time in milliseconds. Below 2^53, so a
// JS number holds it exactly. The macOS and Windows paths are written to the docs, untested.
uint64_t ProcessStartTime(int64_t pid);

// This process's id.
int64_t CurrentPid();

}  // namespace ipo
