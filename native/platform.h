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

// An open segment. `window` is where the JS ArrayBuffer sees the bytes; on POSIX the
// segment is mapped directly over it. Where the OS cannot map into memory V8 owns
// (Windows under the V8 cage), `view` is a separate mapping and `mirrored` is true:
// the JS layer then copies between the two at turn boundaries.
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

// Opens or creates the OS object named `osName` (already validated) and sizes it.
// On Create, `size` must be a multiple of PageSize(); on Open it is read from the OS.
bool OpenSegment(const std::string& osName, size_t size, OpenMode mode, Mapping* out,
                 Failure* failure);

// Maps the opened segment at `window` (page aligned, `out->size` bytes, owned by V8).
bool MapSegment(Mapping* mapping, void* window, bool prefault, Failure* failure);

// Puts private zeroed memory back at the window so V8 can free its buffer normally,
// and closes the OS handle. Safe to call once per successfully opened mapping.
void UnmapSegment(Mapping* mapping);

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

}  // namespace ipo
