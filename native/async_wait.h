// Waiting off the JS thread: a small pool of threads sleeps on shared words (spin
// first if asked, then the futex) and reports back through one thread-safe
// function, so the event loop never blocks. Threads are reused; an idle pool
// costs no CPU.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "platform.h"

namespace ipo {

enum class AsyncOutcome : int { Woken = 0, TimedOut = 1, NotEqual = 2, Cancelled = 3, Closed = 4 };

struct AsyncJob {
  uint32_t id = 0;
  uint32_t segmentId = 0;
  Mapping mapping;  // a copy: the waiter only needs the window and wake handle
  uint32_t* word = nullptr;
  uint32_t expected = 0;
  double timeoutMs = -1;
  uint32_t spins = 0;
  std::atomic<int> cancel{-1};  // an AsyncOutcome once cancelled
};

class AsyncWaiter {
 public:
  using Done = void (*)(void* owner, uint32_t jobId, AsyncOutcome outcome);

  AsyncWaiter(void* owner, Done done) : owner_(owner), done_(done) {}
  ~AsyncWaiter();

  void Submit(std::shared_ptr<AsyncJob> job);
  // Stops the job soon (its outcome becomes `why`); returns false if unknown.
  bool Cancel(uint32_t jobId, AsyncOutcome why);
  // Cancels every job on one segment, before that segment is unmapped.
  void CancelSegment(uint32_t segmentId);

 private:
  void Run();
  void Interrupt(AsyncJob& job, AsyncOutcome why);

  void* owner_;
  Done done_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<AsyncJob>> queue_;
  std::vector<std::shared_ptr<AsyncJob>> running_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace ipo
