// The notifier on POSIX: an AF_UNIX SOCK_DGRAM socket bound at an address made of
// (pid, nonce), watched with uv_poll on the owning env's loop. A sendto from any process
// makes the socket readable, which wakes that loop directly.
//
// Addresses:
//   Linux: the abstract namespace, "\0interprocess-objects/<pid>.<nonce>": no file, and the
//     name goes away with the socket, even when the process is killed. Abstract names are
//     per network namespace: a process in another one (a sandboxed Chromium child, a
//     container) cannot be reached and reads as 'gone', so callers fall back.
//   Other POSIX (macOS): a socket file "<dir>/iobj-<pid>-<nonce>.sock", dir = $TMPDIR or
//     /tmp, removed at close. Both sides must see the same $TMPDIR (processes of one user
//     do). A killed process leaves its file behind: a send to it fails with ECONNREFUSED
//     ('gone'), and a later bind at the same name (same pid and nonce) picks another
//     nonce. The non-Linux path is written to the man pages, never compiled or run by this
//     project.
#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include "notifier.h"

namespace ipo {

namespace {

// More datagrams than a receive queue holds by default (Linux: net.unix.max_dgram_qlen,
// 10 to 512), so one pass normally empties it. The bound keeps a sender that never stops
// from holding the loop: the poll is level-triggered, so what is left wakes it again.
constexpr int kMaxDrain = 1024;

// A non-blocking, close-on-exec datagram socket, or -1 with errno set.
int NewDatagramSocket() {
  int fd = -1;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0 || errno != EINVAL) return fd;  // EINVAL: a kernel without the flags; set them below
#endif
  fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int fdFlags = fcntl(fd, F_GETFD);
  int flFlags = fcntl(fd, F_GETFL);
  if (fdFlags < 0 || flFlags < 0 || fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC) < 0 ||
      fcntl(fd, F_SETFL, flFlags | O_NONBLOCK) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// The address of the notifier at (pid, nonce). False when it does not fit sun_path (a
// long $TMPDIR off Linux). `path` (may be null) gets the socket file's path, or "" on Linux.
bool WakeAddress(uint32_t pid, uint32_t nonce, sockaddr_un* addr, socklen_t* len, std::string* path) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  char name[64];
#if defined(__linux__)
  int n = snprintf(name, sizeof(name), "interprocess-objects/%u.%u", pid, nonce);
  if (n <= 0 || static_cast<size_t>(n) + 1 > sizeof(addr->sun_path)) return false;
  // Abstract: a leading NUL, then the name; the length says where it ends (no terminator).
  memcpy(addr->sun_path + 1, name, static_cast<size_t>(n));
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + static_cast<size_t>(n));
  if (path != nullptr) path->clear();
#else
  const char* tmp = getenv("TMPDIR");
  std::string dir = tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();  // macOS's $TMPDIR ends in '/'
  int n = snprintf(name, sizeof(name), "/iobj-%u-%u.sock", pid, nonce);
  if (n <= 0) return false;
  std::string full = dir + name;
  if (full.size() + 1 > sizeof(addr->sun_path)) return false;  // with its terminating NUL
  memcpy(addr->sun_path, full.c_str(), full.size() + 1);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + full.size() + 1);
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
  addr->sun_len = static_cast<decltype(addr->sun_len)>(*len);
#endif
  if (path != nullptr) *path = full;
#endif
  return true;
}

// A random nonce, never 0 nor 0xffffffff (channel sleeper tables use those as "free" and
// "being emptied", core/wakeups.ts): another thread's (or an earlier process's with this pid) notifier
// must not share the address. std::random_device reads the OS's generator; if it cannot,
// the clock mixed with a stack address still differs between threads and between calls.
uint32_t RandomNonce() {
  uint32_t nonce = 0;
  try {
    std::random_device rd;
    nonce = static_cast<uint32_t>(rd());
  } catch (...) {
    uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    uint64_t x = t ^ reinterpret_cast<uintptr_t>(&nonce) ^ (t >> 29);
    x *= 0x9e3779b97f4a7c15ull;
    nonce = static_cast<uint32_t>(x >> 32);
  }
  return nonce == 0 || nonce == 0xffffffffu ? 1 : nonce;
}

std::string Describe(const char* what, int err) {
  return std::string(what) + " failed: " + strerror(err) + " (errno " + std::to_string(err) + ")";
}

// Drains the socket: every queued datagram is one "look again", so they all count as one.
void Drain(int fd) {
  char buf[16];
  for (int i = 0; i < kMaxDrain; i++) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n >= 0) continue;
    if (errno == EINTR) continue;
    return;  // EAGAIN/EWOULDBLOCK: empty. Anything else: the poll reports it again if it persists.
  }
}

// 0, or the errno of a failed send of one byte.
int SendOne(int fd, const sockaddr_un& addr, socklen_t len) {
  const char byte = 1;
  for (;;) {
    if (sendto(fd, &byte, 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr), len) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

// The receiver's queue is full (Linux: EAGAIN; macOS: ENOBUFS), or ours is.
bool QueueFull(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

}  // namespace

struct Notifier::Poll {
  uv_poll_t handle;
  Notifier* owner = nullptr;  // null once closing: a late callback does nothing
  ClosedFn closed = nullptr;
  void* arg = nullptr;
};

bool Notifier::Supported() { return true; }

bool Notifier::Open(uv_loop_t* loop, WakeFn wake, void* owner, Failure* failure) {
  if (IsOpen()) {
    *failure = {"ERR_SHM_OS", "the notifier is already open"};
    return false;
  }
  int fd = NewDatagramSocket();
  if (fd < 0) {
    *failure = {"ERR_SHM_OS", Describe("socket(AF_UNIX, SOCK_DGRAM)", errno)};
    return false;
  }
  const uint32_t pid = static_cast<uint32_t>(CurrentPid());
  uint32_t nonce = 0;
  std::string path;
  // EADDRINUSE: another notifier has this nonce (or a killed process with this pid left its
  // file, off Linux). A fresh nonce almost surely differs; a few tries cover bad luck.
  for (int tries = 0;; tries++) {
    nonce = RandomNonce();
    sockaddr_un addr;
    socklen_t len = 0;
    if (!WakeAddress(pid, nonce, &addr, &len, &path)) {
      close(fd);
      *failure = {"ERR_SHM_OS", "the notifier's socket path does not fit in sun_path (" +
                                    std::to_string(sizeof(addr.sun_path)) +
                                    " bytes): set TMPDIR to a shorter directory"};
      return false;
    }
    if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0) break;
    int err = errno;
    if (err == EADDRINUSE && tries < 16) continue;
    close(fd);
    *failure = {"ERR_SHM_OS", Describe("bind of the notifier's socket", err)};
    return false;
  }
  auto* poll = new Poll();
  poll->handle.data = poll;
  poll->owner = this;
  // uv_poll_init fails before it registers the handle, so the memory may go at once.
  int r = uv_poll_init(loop, &poll->handle, fd);
  if (r != 0) {
    delete poll;
    close(fd);
    if (!path.empty()) unlink(path.c_str());
    *failure = {"ERR_SHM_OS", std::string("uv_poll_init failed: ") + uv_strerror(r)};
    return false;
  }
  r = uv_poll_start(&poll->handle, UV_READABLE, &Notifier::OnPoll);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle),
             [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
    close(fd);
    if (!path.empty()) unlink(path.c_str());
    *failure = {"ERR_SHM_OS", std::string("uv_poll_start failed: ") + uv_strerror(r)};
    return false;
  }
  // A notifier alone never keeps the process alive: only a wait that asks to does.
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll->handle));
  poll_ = poll;
  fd_ = fd;
  nonce_ = nonce;
  path_ = path;
  wake_ = wake;
  owner_ = owner;
  return true;
}

void Notifier::OnPoll(uv_poll_t* handle, int status, int events) {
  (void)events;
  auto* poll = static_cast<Poll*>(handle->data);
  Notifier* self = poll->owner;
  if (self == nullptr) return;
  // status < 0 (a socket error): drain anyway, recv reports and clears it; the wake is at
  // worst spurious, and callers re-check.
  (void)status;
  Drain(static_cast<int>(self->fd_));
  // `wake` may close and destroy this Notifier: copy what it needs, touch nothing after.
  WakeFn wake = self->wake_;
  void* owner = self->owner_;
  wake(owner);
}

void Notifier::Ref(bool keepAlive) {
  if (poll_ == nullptr) return;
  if (keepAlive) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
}

void Notifier::Close(ClosedFn closed, void* arg) {
  if (poll_ == nullptr) return;
  Poll* poll = poll_;
  poll_ = nullptr;
  poll->owner = nullptr;
  poll->closed = closed;
  poll->arg = arg;
  // uv_close stops the watcher first (taking the fd out of epoll/kqueue), so the socket may
  // be closed right after; the handle's memory must wait for the callback.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), [](uv_handle_t* h) {
    auto* p = static_cast<Poll*>(h->data);
    if (p->closed != nullptr) p->closed(p->arg);
    delete p;
  });
  close(static_cast<int>(fd_));
  fd_ = -1;
  if (!path_.empty()) unlink(path_.c_str());
  path_.clear();
  nonce_ = 0;
}

NotifyResult NotifySender::Send(uint32_t pid, uint32_t nonce) {
  sockaddr_un addr;
  socklen_t len = 0;
  if (!WakeAddress(pid, nonce, &addr, &len, nullptr)) return NotifyResult::Failed;
  if (fd_ < 0) {
    fd_ = NewDatagramSocket();
    if (fd_ < 0) return NotifyResult::Failed;
  }
  int err = SendOne(static_cast<int>(fd_), addr, len);
  if (err != 0 && QueueFull(err)) {
    // Linux charges a queued datagram to its sender's buffer until it is read, so this one
    // socket can fill up with wakes waiting at receivers that do not drain (stopped, busy)
    // and then refuse every address. A fresh socket tells the two cases apart: if it gets
    // through, it replaces the full one (whose datagrams stay queued where they are).
    int fresh = NewDatagramSocket();
    if (fresh < 0) return NotifyResult::Sent;  // cannot tell: a full queue means a wake is pending
    err = SendOne(fresh, addr, len);
    if (err == 0) {
      close(static_cast<int>(fd_));
      fd_ = fresh;
      return NotifyResult::Sent;
    }
    close(fresh);
    if (QueueFull(err)) return NotifyResult::Sent;  // the receiver's queue is full: a wake is pending there
  }
  if (err == 0) return NotifyResult::Sent;
  // Nobody bound there (Linux, abstract: ECONNREFUSED; a socket file without a socket:
  // ECONNREFUSED; no file: ENOENT).
  if (err == ECONNREFUSED || err == ENOENT) return NotifyResult::Gone;
  return NotifyResult::Failed;
}

void NotifySender::Close() {
  if (fd_ >= 0) close(static_cast<int>(fd_));
  fd_ = -1;
}

}  // namespace ipo
#endif  // !_WIN32
