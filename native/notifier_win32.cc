// Windows: no notifier. AF_UNIX on Windows has stream sockets only, no datagrams, so there
// is no connectionless one-byte wake to send. Supported() says so, Open fails, and the
// addon's notifierOpen returns 0: the JS layer keeps to the waiter threads. A send can
// reach nobody, so it reports 'gone' (the caller drops the registration). UNTESTED: never
// compiled on Windows by this project.
#ifdef _WIN32
#include "notifier.h"

namespace ipo {

struct Notifier::Poll {};

bool Notifier::Supported() { return false; }

bool Notifier::Open(uv_loop_t*, WakeFn, void*, Failure* failure) {
  *failure = {"ERR_SHM_OS", "this platform has no notifier"};
  return false;
}

void Notifier::OnPoll(uv_poll_t*, int, int) {}

void Notifier::Ref(bool) {}

void Notifier::Close(ClosedFn, void*) {}

NotifyResult NotifySender::Send(uint32_t, uint32_t) { return NotifyResult::Gone; }

void NotifySender::Close() {}

}  // namespace ipo
#endif  // _WIN32
