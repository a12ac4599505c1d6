// Cross-process wait/wake on a 32-bit word in a MAP_SHARED mapping.
// Linux: FUTEX_WAIT/FUTEX_WAKE without FUTEX_PRIVATE_FLAG (the key is the shared page).
// macOS: os_sync_wait_on_address with the SHARED flag (14.4+), else __ulock_wait's
// UL_COMPARE_AND_WAIT_SHARED. The macOS path is written from the headers, untested here.
#ifndef _WIN32
#include <errno.h>
#include <time.h>

#include <cmath>

#include "platform.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__APPLE__)
#include <AvailabilityMacros.h>
extern "C" int __ulock_wait(uint32_t operation, void* addr, uint64_t value, uint32_t timeout_us);
extern "C" int __ulock_wake(uint32_t operation, void* addr, uint64_t wake_value);
#define UL_COMPARE_AND_WAIT_SHARED 3
#define ULF_WAKE_ALL 0x00000100
#define ULF_NO_ERRNO 0x01000000
#endif

namespace ipo {

namespace {

double NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

}  // namespace

WaitResult WaitOnWord(const Mapping&, uint32_t* word, uint32_t expected, double timeoutMs) {
  const bool forever = timeoutMs < 0 || std::isinf(timeoutMs);
  const double deadline = forever ? 0 : NowMs() + timeoutMs;
  for (;;) {
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != expected) return WaitResult::NotEqual;
    double remaining = forever ? -1 : deadline - NowMs();
    if (!forever && remaining <= 0) return WaitResult::TimedOut;
#if defined(__linux__)
    struct timespec rel;
    struct timespec* relp = nullptr;
    if (!forever) {
      rel.tv_sec = static_cast<time_t>(remaining / 1e3);
      rel.tv_nsec = static_cast<long>(std::fmod(remaining, 1e3) * 1e6);
      relp = &rel;
    }
    long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, relp, nullptr, 0);
    if (rc == 0) return WaitResult::Woken;
    if (errno == EAGAIN) return WaitResult::NotEqual;
    if (errno == ETIMEDOUT) return WaitResult::TimedOut;
    // EINTR: a signal arrived; loop and wait for what is left.
#elif defined(__APPLE__)
    uint32_t us = forever ? 0 : static_cast<uint32_t>(std::fmax(1, std::fmin(remaining * 1e3, 4e9)));
    int rc = __ulock_wait(UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO, word, expected, us);
    if (rc >= 0) return WaitResult::Woken;
    if (rc == -ETIMEDOUT) return WaitResult::TimedOut;
#else
#error "no cross-process wait primitive for this platform"
#endif
  }
}

int WakeWord(const Mapping&, uint32_t* word, int count) {
#if defined(__linux__)
  long rc = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
#elif defined(__APPLE__)
  uint32_t op = UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO | (count > 1 ? ULF_WAKE_ALL : 0);
  int rc = __ulock_wake(op, word, 0);
  return rc == 0 ? 1 : 0;
#endif
}

}  // namespace ipo
#endif  // !_WIN32
