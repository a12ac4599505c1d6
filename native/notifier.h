// The notifier: a wake address per event loop that another process can poke with one
// datagram, waking that loop directly (one hop, no waiter thread in between).
//
// POSIX: an AF_UNIX SOCK_DGRAM socket bound to an address made of (pid, nonce), watched
// by a uv_poll handle on the owning env's loop (notifier_posix.cc). Windows has no
// AF_UNIX datagram sockets: there Open reports "unsupported" and the JS layer falls back
// to the waiter threads (notifier_win32.cc).
//
// Anyone on the machine who can reach the address (Linux: anyone in the same network
// namespace; macOS: anyone allowed to write the socket file) can send to it, so a wake
// says only "look again": callers re-check the shared state they wait for.
#pragma once
#include <uv.h>

#include <cstdint>
#include <string>

#include "platform.h"

namespace ipo {

// What a notify came to; the numbers are what notify() returns to JS.
enum class NotifyResult : int {
  Sent = 0,    // queued, or the receiver's queue was full: a wake is pending there anyway
  Gone = 1,    // nobody is bound at that address: the process or its notifier is gone
  Failed = 2,  // anything else (out of descriptors, an address that does not fit...)
};

// One bound socket and the poll handle watching it. Lives on, and is used from, the loop
// thread of the env that opened it only.
class Notifier {
 public:
  // Called on the loop thread after the queued datagrams were drained. It may close (and
  // destroy) the Notifier: nothing touches the Notifier after it returns.
  using WakeFn = void (*)(void* owner);
  // Called on the loop thread once the loop has let go of the poll handle.
  using ClosedFn = void (*)(void* arg);

  Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  ~Notifier() { Close(nullptr, nullptr); }

  // False where this platform has no notifier (Windows): Open then always fails.
  static bool Supported();

  // Binds a socket at (this pid, a fresh random nonce) and starts watching it on `loop`,
  // unreferenced. False with `failure` set when it cannot.
  bool Open(uv_loop_t* loop, WakeFn wake, void* owner, Failure* failure);
  bool IsOpen() const { return poll_ != nullptr; }
  uint32_t Nonce() const { return nonce_; }

  // Whether the poll handle keeps the loop alive.
  void Ref(bool keepAlive);

  // Stops watching, closes the socket (and removes its file where it has one). The poll
  // handle's memory is freed by uv_close's callback, which then calls `closed(arg)` (when
  // given). Idempotent; `closed` is only called for a notifier that was open.
  void Close(ClosedFn closed, void* arg);

 private:
  struct Poll;
  static void OnPoll(uv_poll_t* handle, int status, int events);

  Poll* poll_ = nullptr;
  intptr_t fd_ = -1;
  uint32_t nonce_ = 0;
  std::string path_;  // non-Linux POSIX: the socket file to unlink at close
  WakeFn wake_ = nullptr;
  void* owner_ = nullptr;
};

// The sending side: one unbound datagram socket, created on first use. Never blocks.
class NotifySender {
 public:
  NotifySender() = default;
  NotifySender(const NotifySender&) = delete;
  NotifySender& operator=(const NotifySender&) = delete;
  ~NotifySender() { Close(); }

  // Sends one byte to the notifier at (pid, nonce).
  NotifyResult Send(uint32_t pid, uint32_t nonce);
  void Close();

 private:
  intptr_t fd_ = -1;
};

}  // namespace ipo
