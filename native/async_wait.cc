#include "async_wait.h"

#include <algorithm>
#include <chrono>

namespace ipo {

namespace {

// A sleeper re-checks for cancellation this often: a cancel's wake can race with
// the sleeper entering the futex, and this bounds how long that race can cost.
constexpr double kSliceMs = 100;

double NowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

AsyncWaiter::~AsyncWaiter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& job : running_) Interrupt(*job, AsyncOutcome::Closed);
    queue_.clear();
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
}

void AsyncWaiter::Submit(std::shared_ptr<AsyncJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
    // Every queued job needs an idle thread of its own: a thread takes one job and may
    // sleep on it for as long as it waits (a channel wait can last forever). Checking
    // only for "no idle thread" let two jobs submitted before the idle thread woke share
    // it, and the second starved behind the first (a WorkerPool stalled with the turn
    // free and its dispatch's turn wait still queued).
    if (idle_ < queue_.size()) {
      threads_.emplace_back([this] { Run(); });
      idle_++;
    }
  }
  ready_.notify_one();
}

void AsyncWaiter::Interrupt(AsyncJob& job, AsyncOutcome why) {
  int none = -1;
  if (job.cancel.compare_exchange_strong(none, static_cast<int>(why))) WakeWord(job.mapping, job.word, INT32_MAX);
}

bool AsyncWaiter::Cancel(uint32_t jobId, AsyncOutcome why) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if ((*it)->id == jobId) {
      (*it)->cancel.store(static_cast<int>(why));
      return true;  // a thread will pick it up and report it at once
    }
  }
  for (auto& job : running_) {
    if (job->id == jobId) {
      Interrupt(*job, why);
      return true;
    }
  }
  return false;
}

void AsyncWaiter::CancelSegment(uint32_t segmentId) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto& job : queue_) {
    if (job->segmentId == segmentId) job->cancel.store(static_cast<int>(AsyncOutcome::Closed));
  }
  for (auto& job : running_) {
    if (job->segmentId == segmentId) Interrupt(*job, AsyncOutcome::Closed);
  }
  // The caller unmaps next: wait until no thread is still reading this segment's words.
  while (std::any_of(running_.begin(), running_.end(), [&](auto& j) { return j->segmentId == segmentId; })) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    lock.lock();
  }
}

void AsyncWaiter::Run() {
  for (;;) {
    std::shared_ptr<AsyncJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      idle_--;
      running_.push_back(job);
    }
    AsyncOutcome outcome = AsyncOutcome::TimedOut;
    const bool forever = job->timeoutMs < 0;
    const double deadline = NowMs() + (forever ? 0 : job->timeoutMs);
    for (uint32_t i = 0; i < job->spins && job->cancel.load() < 0; i++) {
      if (__atomic_load_n(job->word, __ATOMIC_ACQUIRE) != job->expected) {
        outcome = AsyncOutcome::NotEqual;
        break;
      }
      if ((i & 1023) == 1023) {
        if (!forever && NowMs() >= deadline) break;
        std::this_thread::yield();
      }
    }
    if (outcome != AsyncOutcome::NotEqual) {
      for (;;) {
        if (job->cancel.load() >= 0) break;
        double left = forever ? kSliceMs : std::min(kSliceMs, deadline - NowMs());
        if (left <= 0) {
          outcome = AsyncOutcome::TimedOut;
          break;
        }
        WaitResult r = WaitOnWord(job->mapping, job->word, job->expected, left);
        if (job->cancel.load() >= 0) break;
        if (r == WaitResult::Woken) {
          outcome = AsyncOutcome::Woken;
          break;
        }
        if (r == WaitResult::NotEqual) {
          outcome = AsyncOutcome::NotEqual;
          break;
        }
      }
    }
    int cancelled = job->cancel.load();
    if (cancelled >= 0) outcome = static_cast<AsyncOutcome>(cancelled);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.erase(std::find(running_.begin(), running_.end(), job));
      idle_++;
      if (stopping_) return;
    }
    done_(owner_, job->id, outcome);
  }
}

}  // namespace ipo
