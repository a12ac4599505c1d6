// The Node-API surface: map/unmap a named segment into a V8-owned SharedArrayBuffer,
// wait/wake on a 32-bit word inside it, and check whether a process is alive.
// Every argument from JS is checked here; JS never hands us a pointer, only a
// segment id and offsets that are bounds-checked against that segment.
//
// The turn (core/lock.ts) names its holder in one 64-bit word: the pid in the low half
// (the futex word), a start-time stamp and this handle's token in the high half. A thread
// that is torn down (worker.terminate()) inside a turn never runs its JS `finally`, so
// an env cleanup hook marks every turn word still naming one of this env's tokens as
// abandoned: waiters take it over at once and check the heap.
//
// Each env (the main thread, each worker_thread) may also own one notifier (notifier.h):
// a wake address another process can send a datagram to, waking this env's loop directly.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#ifdef _MSC_VER
#include <intrin.h>
#endif

#include "async_wait.h"
#include "notifier.h"
#include "platform.h"

namespace ipo {

namespace {

// Holder tokens: unique among the handles open in this process, in every thread and env,
// so a turn word naming (this pid, a token) names exactly one handle. 1..0xfffe; the
// token bits 0xffff mark a turn whose holder was torn down (kAbandonedToken).
constexpr uint32_t kTokenCount = 0x10000;
constexpr uint32_t kAbandonedToken = 0xffff;

class Tokens {
 public:
  // 0 when every token is in use.
  static uint32_t Take() {
    std::lock_guard<std::mutex> lock(Mutex());
    std::vector<bool>& used = Used();
    for (uint32_t tries = 0; tries < kTokenCount; tries++) {
      uint32_t t = Cursor()++ % kTokenCount;
      if (t == 0 || t == kAbandonedToken || used[t]) continue;
      used[t] = true;
      return t;
    }
    return 0;
  }
  static void Give(uint32_t token) {
    if (token == 0 || token >= kTokenCount) return;
    std::lock_guard<std::mutex> lock(Mutex());
    Used()[token] = false;
  }

 private:
  // Never destroyed: a worker's env may still give tokens back while the process exits.
  static std::mutex& Mutex() {
    static std::mutex* m = new std::mutex();
    return *m;
  }
  static std::vector<bool>& Used() {
    static std::vector<bool>* used = new std::vector<bool>(kTokenCount, false);
    return *used;
  }
  static uint32_t& Cursor() {
    static uint32_t cursor = 1;
    return cursor;
  }
};

bool CompareExchange64(uint64_t* word, uint64_t* expected, uint64_t desired) {
#ifdef _MSC_VER
  long long prev = _InterlockedCompareExchange64(reinterpret_cast<volatile long long*>(word),
                                                 static_cast<long long>(desired), static_cast<long long>(*expected));
  if (static_cast<uint64_t>(prev) == *expected) return true;
  *expected = static_cast<uint64_t>(prev);
  return false;
#else
  return __atomic_compare_exchange_n(word, expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
#endif
}

struct Segment {
  Mapping mapping;
  // The Uint8Array over the whole SharedArrayBuffer the window lies in: holding it holds
  // the buffer, so V8 cannot free memory that is still the mapping before close().
  Napi::Reference<Napi::Uint8Array> buffer;
  uint32_t token = 0;
  // Offset of the 8-byte turn word (guardTurn), or -1: none to release at teardown.
  int64_t turnOffset = -1;
  // The handle's entry in the segment's handle table (guardListing): the 8-byte word at
  // listingOffset is cleared, if it still holds listingValue, at teardown or close.
  int64_t listingOffset = -1;
  uint64_t listingValue = 0;
};

// Takes this handle out of the segment's handle table (core/handles.ts): other processes
// then see that its thread is gone, even though its process lives on.
void Unlist(Segment& seg) {
  if (seg.listingOffset < 0 || seg.mapping.window == nullptr) return;
  auto* word = reinterpret_cast<uint64_t*>(static_cast<char*>(seg.mapping.window) + seg.listingOffset);
  uint64_t expected = seg.listingValue;
  CompareExchange64(word, &expected, 0);
  seg.listingOffset = -1;
}

// If the segment's turn word still names this process and this handle's token, marks it
// abandoned (token bits 0xffff) and wakes its waiters: they take it over at once and run
// the heap check. The pid and the stamp stay, so the recovery names this process.
void AbandonTurn(Segment& seg) {
  if (seg.turnOffset < 0 || seg.mapping.window == nullptr || seg.token == 0) return;
  auto* word = reinterpret_cast<uint64_t*>(static_cast<char*>(seg.mapping.window) + seg.turnOffset);
  const uint32_t pid = static_cast<uint32_t>(CurrentPid());
  uint64_t seen = *reinterpret_cast<volatile uint64_t*>(word);
  for (;;) {
    if (static_cast<uint32_t>(seen) != pid || ((seen >> 32) & 0xffff) != seg.token) return;
    if (CompareExchange64(word, &seen, seen | (uint64_t{kAbandonedToken} << 32))) break;
  }
  WakeWord(seg.mapping, reinterpret_cast<uint32_t*>(word), INT32_MAX);  // the low half is the futex word
}

constexpr size_t kMaxNameLength = 31;  // macOS PSHMNAMLEN, including the leading '/'

bool ValidOsName(const std::string& name) {
  if (name.size() < 2 || name.size() > kMaxNameLength || name[0] != '/') return false;
  for (size_t i = 1; i < name.size(); i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {  // Napi::Addon owns and frees this instance
    DefineAddon(exports, {
        InstanceMethod("setErrorClass", &Addon::SetErrorClass),
        InstanceMethod("open", &Addon::Open),
        InstanceMethod("close", &Addon::Close),
        InstanceMethod("backedSize", &Addon::BackedSizeJs),
        InstanceMethod("unlink", &Addon::Unlink),
        InstanceMethod("wait", &Addon::Wait),
        InstanceMethod("wake", &Addon::Wake),
        InstanceMethod("waitAsync", &Addon::WaitAsync),
        InstanceMethod("cancelWait", &Addon::CancelWait),
        InstanceMethod("syncIn", &Addon::SyncIn),
        InstanceMethod("syncOut", &Addon::SyncOut),
        InstanceMethod("copy", &Addon::Copy),
        InstanceMethod("processAlive", &Addon::ProcessAliveJs),
        InstanceMethod("processStartTime", &Addon::ProcessStartTimeJs),
        InstanceMethod("guardTurn", &Addon::GuardTurn),
        InstanceMethod("guardListing", &Addon::GuardListing),
        InstanceMethod("yieldCpu", &Addon::YieldCpuJs),
        InstanceMethod("adjustExternalMemory", &Addon::AdjustExternalMemory),
        InstanceMethod("notifierOpen", &Addon::NotifierOpen),
        InstanceMethod("notifierRef", &Addon::NotifierRef),
        InstanceMethod("notifierClose", &Addon::NotifierClose),
        InstanceMethod("notify", &Addon::Notify),
        InstanceValue("pageSize", Napi::Number::New(env, static_cast<double>(PageSize()))),
        InstanceValue("maxSegmentSize", Napi::Number::New(env, static_cast<double>(kMaxSegmentSize))),
    });
    // Runs when this env is torn down (worker.terminate(), thread or process exit),
    // before V8 finalizers: releases turns this env still holds.
    if (napi_add_env_cleanup_hook(env, &Addon::EnvCleanup, this) == napi_ok) env_ = env;
  }

  ~Addon() {
    if (env_ != nullptr && !cleanedUp_) napi_remove_env_cleanup_hook(env_, &Addon::EnvCleanup, this);
    // EnvCleanup normally did these; they are idempotent.
    CloseNotifier();
    sender_.Close();
    DestroyWakeContext();
    waiter_.reset();  // joins the waiting threads before their segments go away
    for (auto& entry : segments_) {
      AbandonTurn(entry.second);
      Unlist(entry.second);
      Tokens::Give(entry.second.token);
      // A window the OS would not restore must never be freed: leave its reference be.
      if (!UnmapSegment(&entry.second.mapping)) entry.second.buffer.SuppressDestruct();
    }
    for (auto& ref : leaked_) ref.SuppressDestruct();
  }

 private:
  Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
    if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass(ctor)");
    errorClass_ = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  }

  // Throws `new ShmError(code, message)` once the JS layer registered its class.
  [[noreturn]] void Fail(Napi::Env env, const Failure& failure) {
    if (!errorClass_.IsEmpty()) {
      Napi::Value err = errorClass_.New({Napi::String::New(env, failure.code),
                                         Napi::String::New(env, failure.message)});
      throw Napi::Error(env, err);
    }
    Napi::Error err = Napi::Error::New(env, failure.message);
    err.Set("code", Napi::String::New(env, failure.code));
    throw err;
  }

  static std::string NameArg(const Napi::CallbackInfo& info, size_t i) {
    if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "segment name must be a string");
    std::string name = info[i].As<Napi::String>().Utf8Value();
    if (!ValidOsName(name))
      throw Napi::TypeError::New(info.Env(), "segment OS name must be '/' + 1-30 of [A-Za-z0-9._-]");
    return name;
  }

  // A 32-bit word value, given as int32 (Atomics on an Int32Array) or uint32.
  static uint32_t WordValueArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
    double v = NumberArg(info, i, what);
    if (v != std::floor(v) || v < -2147483648.0 || v > 4294967295.0)
      throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer from -2^31 to 2^32-1");
    return static_cast<uint32_t>(static_cast<int64_t>(v));
  }

  static double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
    if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
    double v = info[i].As<Napi::Number>().DoubleValue();
    if (std::isnan(v)) throw Napi::RangeError::New(info.Env(), std::string(what) + " is NaN");
    return v;
  }

  Segment& SegmentArg(const Napi::CallbackInfo& info, size_t i) {
    double id = NumberArg(info, i, "segment id");
    // Check the range before converting: a negative or huge double cast to uint32_t is UB.
    auto it = (id >= 0 && id <= 4294967295.0 && id == std::floor(id)) ? segments_.find(static_cast<uint32_t>(id))
                                                                        : segments_.end();
    if (it == segments_.end())
      Fail(info.Env(), {"ERR_SHM_CLOSED", "this segment is closed: open it again to use it"});
    return it->second;
  }

  // A 4-byte aligned word strictly inside the segment.
  uint32_t* WordArg(const Napi::CallbackInfo& info, size_t i, Segment& seg) {
    double offset = NumberArg(info, i, "word offset");
    if (offset < 0 || offset != std::floor(offset) || offset + 4 > static_cast<double>(seg.mapping.size) ||
        static_cast<uint64_t>(offset) % 4 != 0)
      throw Napi::RangeError::New(info.Env(), "word offset must be a multiple of 4 inside the segment");
    return reinterpret_cast<uint32_t*>(static_cast<char*>(seg.mapping.window) + static_cast<size_t>(offset));
  }

  // A Uint8Array over a fresh SharedArrayBuffer of `bytes` bytes, from the JS layer's
  // `allocate` callback when given (it turns a failed allocation into a ShmError and
  // finds the constructor where the global is hidden), else from the global constructors.
  static Napi::Value AllocateWindow(Napi::Env env, const Napi::Value& allocate, size_t bytes) {
    Napi::Number length = Napi::Number::New(env, static_cast<double>(bytes));
    if (allocate.IsFunction()) return allocate.As<Napi::Function>().Call({length});
    Napi::Object global = env.Global();
    Napi::Value sabCtor = global.Get("SharedArrayBuffer");
    Napi::Value u8Ctor = global.Get("Uint8Array");
    if (!sabCtor.IsFunction() || !u8Ctor.IsFunction())
      throw Napi::TypeError::New(env, "SharedArrayBuffer is not available in this context: pass an allocate callback");
    Napi::Object sab = sabCtor.As<Napi::Function>().New({length});
    return u8Ctor.As<Napi::Function>().New({sab});
  }

  // Checks what `allocate` returned: a Uint8Array over a SharedArrayBuffer (never an
  // ArrayBuffer: that one a transfer list could detach and free under the mapping) with
  // room for a page-aligned window of `size` bytes. Sets `*sab` to the buffer (from V8,
  // not from a getter JS could replace) and `*sabStart` to the address of its byte 0;
  // returns the window's address, or null with `*why` set.
  static char* WindowIn(Napi::Env env, const Napi::Value& value, size_t size, napi_value* sab, char** sabStart,
                        std::string* why) {
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      *why = "allocate must return a Uint8Array";
      return nullptr;
    }
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value arraybuffer;
    size_t byteOffset = 0;
    if (napi_get_typedarray_info(env, value, &type, &length, &data, &arraybuffer, &byteOffset) != napi_ok) {
      *why = "napi_get_typedarray_info failed";
      return nullptr;
    }
    bool plain = true;
    if (napi_is_arraybuffer(env, arraybuffer, &plain) != napi_ok || plain) {
      *why = "allocate must return a Uint8Array over a SharedArrayBuffer, not an ArrayBuffer";
      return nullptr;
    }
    const size_t page = PageSize();
    uintptr_t start = reinterpret_cast<uintptr_t>(data);
    uintptr_t aligned = (start + page - 1) & ~static_cast<uintptr_t>(page - 1);
    if (data == nullptr || aligned - start > length || length - (aligned - start) < size) {
      *why = "allocate returned " + std::to_string(length) + " bytes, too few for a page-aligned window of " +
             std::to_string(size) + " bytes";
      return nullptr;
    }
    *sab = arraybuffer;
    *sabStart = static_cast<char*>(data) - byteOffset;
    return reinterpret_cast<char*>(aligned);
  }

  // open(osName, size, mode, prefault, allocate?) ->
  //   { id, buffer (the SharedArrayBuffer), byteOffset, size, created, mirrored }
  // `allocate(byteLength)` returns a Uint8Array over a new SharedArrayBuffer; the segment
  // is mapped at the first page boundary inside it.
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = NameArg(info, 0);
    double size = NumberArg(info, 1, "size");
    double modeNum = NumberArg(info, 2, "mode");
    if (modeNum != 0 && modeNum != 1 && modeNum != 2) throw Napi::RangeError::New(env, "mode must be 0, 1 or 2");
    OpenMode mode = static_cast<OpenMode>(static_cast<int>(modeNum));
    const size_t page = PageSize();
    if (mode != OpenMode::Open &&
        (size <= 0 || size > static_cast<double>(kMaxSegmentSize) || std::fmod(size, static_cast<double>(page)) != 0))
      throw Napi::RangeError::New(env, "size must be a positive multiple of the page size, at most " +
                                           std::to_string(kMaxSegmentSize) + " bytes");
    bool prefault = info[3].ToBoolean();
    Napi::Value allocate = info[4];
    if (!allocate.IsUndefined() && !allocate.IsFunction())
      throw Napi::TypeError::New(env, "allocate must be a function or undefined");

    Segment seg;
    seg.token = Tokens::Take();
    if (seg.token == 0)
      Fail(env, {"ERR_SHM_OS", "65534 segment handles are open in this process: close some before opening more"});
    // Gives the token back on every failure below (the handle never existed).
    struct TokenGuard {
      uint32_t token;
      ~TokenGuard() { Tokens::Give(token); }
    } tokenGuard{seg.token};
    Failure failure;
    if (!OpenSegment(name, static_cast<size_t>(size), mode, &seg.mapping, &failure)) Fail(env, failure);
    // Undoes OpenSegment: nothing is mapped over V8's memory yet, so only the handle
    // (and the name, if we made it) go.
    auto abandon = [&]() {
      bool created = seg.mapping.created;
      seg.mapping.window = nullptr;
      UnmapSegment(&seg.mapping);
      Failure ignored;
      if (created) UnlinkSegment(name, &ignored);
    };
    if (seg.mapping.size > kMaxSegmentSize) {
      std::string bytes = std::to_string(seg.mapping.size);
      abandon();
      Fail(env, {"ERR_SHM_CORRUPT", "the OS object \"" + name + "\" has " + bytes +
                                        " bytes, more than the largest segment (" + std::to_string(kMaxSegmentSize) +
                                        " bytes): it was not created by interprocess-objects; remove it if it is stale"});
    }

    // One page more than the segment, so a page-aligned window fits inside V8's buffer.
    Napi::Value window;
    try {
      window = AllocateWindow(env, allocate, seg.mapping.size + page);
    } catch (const Napi::Error& err) {
      abandon();
      if (allocate.IsFunction()) throw;  // the JS layer's own error (a ShmError)
      Fail(env, {"ERR_SHM_OS", "could not allocate a SharedArrayBuffer of " + std::to_string(seg.mapping.size + page) +
                                   " bytes for the segment: " + err.Message()});
    }
    napi_value sab = nullptr;
    char* sabStart = nullptr;
    std::string why;
    char* at = WindowIn(env, window, seg.mapping.size, &sab, &sabStart, &why);
    if (at == nullptr) {
      abandon();
      throw Napi::TypeError::New(env, why);
    }
    if (!MapSegment(&seg.mapping, at, prefault, &failure)) {
      abandon();
      Fail(env, failure);
    }
    seg.buffer = Napi::Persistent(window.As<Napi::Uint8Array>());

    uint32_t id = nextId_++;
    Napi::Object result = Napi::Object::New(env);
    result.Set("id", Napi::Number::New(env, id));
    result.Set("buffer", Napi::Value(env, sab));
    result.Set("byteOffset", Napi::Number::New(env, static_cast<double>(at - sabStart)));
    result.Set("size", Napi::Number::New(env, static_cast<double>(seg.mapping.size)));
    result.Set("created", Napi::Boolean::New(env, seg.mapping.created));
    result.Set("mirrored", Napi::Boolean::New(env, seg.mapping.mirrored));
    result.Set("token", Napi::Number::New(env, seg.token));
    segments_.emplace(id, std::move(seg));
    tokenGuard.token = 0;  // the handle owns it now
    return result;
  }

  // close(id): puts private zeroed memory back under the window. A SharedArrayBuffer
  // cannot be detached, so views over it stay usable and read zeros from then on
  // (writes land in this process's private memory); V8 frees the buffer once the
  // last view, in any thread, is gone.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    double id = info[0].As<Napi::Number>().DoubleValue();
    AbandonTurn(seg);  // the JS layer refuses to close inside a turn; never leave one held
    Unlist(seg);
    if (waiter_) waiter_->CancelSegment(static_cast<uint32_t>(id));
    Tokens::Give(seg.token);
    seg.token = 0;
    if (!UnmapSegment(&seg.mapping)) {
      // The shared pages are still there: letting V8 free (and malloc reuse) them would
      // let other processes write into this one's heap. Keep the buffer forever.
      leaked_.push_back(std::move(seg.buffer));
    }
    segments_.erase(static_cast<uint32_t>(id));
    return info.Env().Undefined();
  }

  // backedSize(id) -> bytes the OS object has now (POSIX: fstat); less than the mapped
  // size means it was truncated under us, and touching the lost pages raises SIGBUS.
  Napi::Value BackedSizeJs(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    uint64_t size = 0;
    Failure failure;
    if (!BackedSize(seg.mapping, &size, &failure)) Fail(info.Env(), failure);
    return Napi::Number::New(info.Env(), static_cast<double>(size));
  }

  Napi::Value Unlink(const Napi::CallbackInfo& info) {
    Failure failure;
    if (!UnlinkSegment(NameArg(info, 0), &failure)) Fail(info.Env(), failure);
    return info.Env().Undefined();
  }

  // wait(id, offset, expected, timeoutMs) -> 'ok' | 'timed-out' | 'not-equal'
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    uint32_t* word = WordArg(info, 1, seg);
    uint32_t expected = WordValueArg(info, 2, "expected");
    double timeout = NumberArg(info, 3, "timeoutMs");
    WaitResult r = WaitOnWord(seg.mapping, word, expected, timeout);
    static const char* names[] = {"ok", "timed-out", "not-equal"};
    return Napi::String::New(info.Env(), names[static_cast<int>(r)]);
  }

  // wake(id, offset, count) -> number of waiters woken (where the OS tells)
  Napi::Value Wake(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    uint32_t* word = WordArg(info, 1, seg);
    double count = NumberArg(info, 2, "count");
    if (count < 0) throw Napi::RangeError::New(info.Env(), "count must not be negative");
    // Like Atomics.notify: a count of 0 wakes nobody (fractions round down).
    int n = count >= 2147483647.0 ? 2147483647 : static_cast<int>(count);
    if (n == 0) return Napi::Number::New(info.Env(), 0);
    return Napi::Number::New(info.Env(), WakeWord(seg.mapping, word, n));
  }

  // waitAsync(id, offset, expected, timeoutMs, spins, keepAlive, callback) -> job id.
  // `callback(outcome)` runs on the JS thread: 0 woken, 1 timed out, 2 not equal,
  // 3 cancelled, 4 segment closed. keepAlive holds the event loop open meanwhile.
  Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Segment& seg = SegmentArg(info, 0);
    uint32_t* word = WordArg(info, 1, seg);
    uint32_t expected = WordValueArg(info, 2, "expected");
    double timeout = NumberArg(info, 3, "timeoutMs");
    double spins = NumberArg(info, 4, "spins");
    if (spins < 0 || spins > 1e9) throw Napi::RangeError::New(env, "spins must be between 0 and 1e9");
    bool keepAlive = info[5].ToBoolean();
    if (!info[6].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    if (!waiter_) {
      tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "interprocess-objects wait", 0, 1);
      tsfn_.Unref(env);
      waiter_ = std::make_unique<AsyncWaiter>(this, &Addon::Done);
    }
    auto job = std::make_shared<AsyncJob>();
    job->id = nextJob_++;
    job->segmentId = static_cast<uint32_t>(info[0].As<Napi::Number>().DoubleValue());
    job->mapping = seg.mapping;
    job->word = word;
    job->expected = expected;
    job->timeoutMs = std::isinf(timeout) ? -1 : timeout;
    job->spins = static_cast<uint32_t>(spins);
    pending_[job->id] = {Napi::Persistent(info[6].As<Napi::Function>()), keepAlive};
    if (keepAlive && keepAlive_++ == 0) tsfn_.Ref(env);
    uint32_t id = job->id;
    waiter_->Submit(std::move(job));
    return Napi::Number::New(env, id);
  }

  Napi::Value CancelWait(const Napi::CallbackInfo& info) {
    double id = NumberArg(info, 0, "wait id");
    bool found = waiter_ && id >= 0 && waiter_->Cancel(static_cast<uint32_t>(id), AsyncOutcome::Cancelled);
    return Napi::Boolean::New(info.Env(), found);
  }

  struct Outcome {
    uint32_t job;
    AsyncOutcome outcome;
  };

  // On a waiter thread: hand the outcome to the JS thread.
  static void Done(void* self, uint32_t job, AsyncOutcome outcome) {
    auto* addon = static_cast<Addon*>(self);
    auto* result = new Outcome{job, outcome};
    napi_status status = addon->tsfn_.NonBlockingCall(result, [addon](Napi::Env env, Napi::Function, Outcome* r) {
      addon->Deliver(env, *r);
      delete r;
    });
    if (status != napi_ok) delete result;  // the environment is shutting down
  }

  void Deliver(Napi::Env env, const Outcome& r) {
    auto it = pending_.find(r.job);
    if (it == pending_.end()) return;
    Napi::FunctionReference callback = std::move(it->second.callback);
    if (it->second.keepAlive && --keepAlive_ == 0) tsfn_.Unref(env);
    pending_.erase(it);
    callback.Call({Napi::Number::New(env, static_cast<int>(r.outcome))});
  }

  // Mirrored mode only (Windows): copy the real view into the JS window and back.
  Napi::Value SyncIn(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    if (seg.mapping.mirrored) std::memcpy(seg.mapping.window, seg.mapping.view, seg.mapping.size);
    return info.Env().Undefined();
  }

  Napi::Value SyncOut(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    if (seg.mapping.mirrored) std::memcpy(seg.mapping.view, seg.mapping.window, seg.mapping.size);
    return info.Env().Undefined();
  }

  // copy(id, offset, view, intoSegment): memmove between the segment at `offset` (where JS
  // sees it: the window) and the bytes of `view` (a TypedArray or DataView). V8 copies into
  // and out of a SharedArrayBuffer element by element (relaxed atomics), about a third of
  // memcpy's speed for payloads of tens of KiB and more: this is the bulk path.
  Napi::Value Copy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Segment& seg = SegmentArg(info, 0);
    double offset = NumberArg(info, 1, "offset");
    void* data = nullptr;
    size_t length = 0;
    napi_value view = info[2];
    bool isTyped = false, isDataView = false;
    napi_is_typedarray(env, view, &isTyped);
    if (!isTyped) napi_is_dataview(env, view, &isDataView);
    if (isTyped) {
      napi_typedarray_type type;
      size_t elements = 0, byteOffset = 0;
      napi_value buffer;
      if (napi_get_typedarray_info(env, view, &type, &elements, &data, &buffer, &byteOffset) != napi_ok)
        throw Napi::TypeError::New(env, "view must be a TypedArray or DataView");
      size_t element = TypedArrayElementSize(type);
      if (element == 0) throw Napi::TypeError::New(env, "view has an element type this addon does not know; pass a Uint8Array over the same bytes");
      length = elements * element;
    } else if (isDataView) {
      napi_value buffer;
      size_t byteOffset = 0;
      if (napi_get_dataview_info(env, view, &length, &data, &buffer, &byteOffset) != napi_ok)
        throw Napi::TypeError::New(env, "view must be a TypedArray or DataView");
    } else {
      throw Napi::TypeError::New(env, "view must be a TypedArray or DataView");
    }
    if (offset < 0 || offset != std::floor(offset) || offset + static_cast<double>(length) > static_cast<double>(seg.mapping.size))
      throw Napi::RangeError::New(env, "offset and view length must lie inside the segment");
    if (length == 0) return env.Undefined();
    char* at = static_cast<char*>(seg.mapping.window) + static_cast<size_t>(offset);
    if (info[3].ToBoolean()) std::memmove(at, data, length);
    else std::memmove(data, at, length);
    return env.Undefined();
  }

  static size_t TypedArrayElementSize(napi_typedarray_type type) {
    switch (type) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
      case napi_int16_array: case napi_uint16_array: return 2;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
      default: return 0;  // a type added after this was written: refuse rather than guess its size
    }
  }

  // adjustExternalMemory(delta): tells V8 that objects of this thread keep `delta` more
  // (or, negative, fewer) bytes alive outside its heap — segment records pinned by views
  // (core/view_holds.ts) — so that its collector runs, and gives them back, before they
  // fill the segment. An integer of at most 2^40 either way.
  Napi::Value AdjustExternalMemory(const Napi::CallbackInfo& info) {
    double delta = NumberArg(info, 0, "delta");
    if (delta != std::floor(delta) || std::fabs(delta) > 1099511627776.0)
      throw Napi::RangeError::New(info.Env(), "delta must be an integer of at most 2^40 bytes either way");
    int64_t total = Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(delta));
    return Napi::Number::New(info.Env(), static_cast<double>(total));
  }

  Napi::Value YieldCpuJs(const Napi::CallbackInfo& info) {
    YieldCpu();
    return info.Env().Undefined();
  }

  // guardTurn(id, offset): the 8-byte turn word at `offset` (a multiple of 8 inside the
  // segment) is released if this env is torn down, or the handle closed, while holding it.
  Napi::Value GuardTurn(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    double offset = NumberArg(info, 1, "turn word offset");
    if (offset < 0 || offset != std::floor(offset) || offset + 8 > static_cast<double>(seg.mapping.size) ||
        static_cast<uint64_t>(offset) % 8 != 0)
      throw Napi::RangeError::New(info.Env(), "turn word offset must be a multiple of 8 inside the segment");
    seg.turnOffset = static_cast<int64_t>(offset);
    return info.Env().Undefined();
  }

  // guardListing(id, offset, low, high): the 8-byte word at `offset` (a multiple of 8 inside
  // the segment) is cleared at teardown or close if it still holds high << 32 | low.
  Napi::Value GuardListing(const Napi::CallbackInfo& info) {
    Segment& seg = SegmentArg(info, 0);
    double offset = NumberArg(info, 1, "listing word offset");
    double low = NumberArg(info, 2, "listing value (low half)");
    double high = NumberArg(info, 3, "listing value (high half)");
    if (offset < 0 || offset != std::floor(offset) || offset + 8 > static_cast<double>(seg.mapping.size) ||
        static_cast<uint64_t>(offset) % 8 != 0)
      throw Napi::RangeError::New(info.Env(), "listing word offset must be a multiple of 8 inside the segment");
    for (double half : {low, high}) {
      if (half < 0 || half > 4294967295.0 || half != std::floor(half))
        throw Napi::RangeError::New(info.Env(), "listing value halves must be integers from 0 to 2^32 - 1");
    }
    seg.listingOffset = static_cast<int64_t>(offset);
    seg.listingValue = (static_cast<uint64_t>(high) << 32) | static_cast<uint64_t>(low);
    return info.Env().Undefined();
  }

  // processStartTime(pid) -> an opaque start time of that process, 0 when unknown.
  Napi::Value ProcessStartTimeJs(const Napi::CallbackInfo& info) {
    double pid = NumberArg(info, 0, "pid");
    if (pid != std::floor(pid)) throw Napi::RangeError::New(info.Env(), "pid must be an integer");
    return Napi::Number::New(info.Env(), static_cast<double>(ProcessStartTime(static_cast<int64_t>(pid))));
  }

  static void EnvCleanup(void* arg) {
    auto* self = static_cast<Addon*>(arg);
    self->cleanedUp_ = true;
    for (auto& entry : self->segments_) {
      AbandonTurn(entry.second);
      Unlist(entry.second);
    }
    // A terminated worker leaves no socket behind: its address reads 'gone' at once. (The
    // async cleanup hook does the same; whichever runs first closes.)
    self->CloseNotifier();
    self->sender_.Close();
    self->DestroyWakeContext();
  }

  // ---- The notifier (notifier.h) ----

  // notifierOpen(onWake) -> this env's nonce: its address is (process.pid, nonce). Returns 0
  // where the platform has no notifier (Windows): the JS layer then keeps to the waiter
  // threads. After each batch of datagrams, onWake() runs once on this env's loop thread;
  // an exception it throws is reported as uncaught. The handle starts unreferenced
  // (notifierRef). Throws if this env's notifier is already open.
  Napi::Value NotifierOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "onWake must be a function");
    if (notifier_) throw Napi::Error::New(env, "this thread's notifier is already open: call notifierClose() first");
    if (!Notifier::Supported()) return Napi::Number::New(env, 0);
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      Fail(env, {"ERR_SHM_OS", "napi_get_uv_event_loop failed: this environment has no loop to watch a notifier on"});
    if (wakeContext_ == nullptr) {
      // One async context for every wake of this env: async_hooks and AsyncLocalStorage
      // see the wakes as one resource's callbacks, as with a timer.
      napi_value name = Napi::String::New(env, "interprocess-objects:notifier");
      if (napi_async_init(env, nullptr, name, &wakeContext_) != napi_ok) {
        wakeContext_ = nullptr;
        Fail(env, {"ERR_SHM_OS", "napi_async_init failed for the notifier"});
      }
      wakeEnv_ = env;
    }
    auto notifier = std::make_unique<Notifier>();
    Failure failure;
    if (!notifier->Open(loop, &Addon::OnWake, this, &failure)) Fail(env, failure);
    // Node closes a worker's loop once its env is gone and aborts if a handle is still open
    // there (CheckedUvLoopClose). A plain cleanup hook can start uv_close but cannot make
    // Node wait for its callback; an async cleanup hook can. It is removed when that
    // callback runs (NotifierClosed), however the close began.
    napi_async_cleanup_hook_handle hook = nullptr;
    if (napi_add_async_cleanup_hook(env, &Addon::NotifierTeardown, this, &hook) != napi_ok) {
      notifier->Close(nullptr, nullptr);
      Fail(env, {"ERR_SHM_OS", "napi_add_async_cleanup_hook failed for the notifier"});
    }
    onWake_ = Napi::Persistent(info[0].As<Napi::Function>());
    notifierHook_ = hook;
    notifier_ = std::move(notifier);
    return Napi::Number::New(env, notifier_->Nonce());
  }

  // notifierRef(keepAlive): whether the notifier holds the event loop open. No-op when closed.
  Napi::Value NotifierRef(const Napi::CallbackInfo& info) {
    if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "keepAlive must be a boolean");
    if (notifier_) notifier_->Ref(info[0].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  }

  // notifierClose(): stops watching and closes the socket; its address reads 'gone' from
  // now on. Idempotent. A later notifierOpen gets a new nonce.
  Napi::Value NotifierClose(const Napi::CallbackInfo& info) {
    CloseNotifier();
    return info.Env().Undefined();
  }

  // notify(pid, nonce) -> 0 sent (or a wake is already pending there), 1 nobody is at that
  // address (the process or its notifier is gone), 2 failed otherwise. Never blocks.
  Napi::Value Notify(const Napi::CallbackInfo& info) {
    uint32_t pid = AddressPartArg(info, 0, "pid");
    uint32_t nonce = AddressPartArg(info, 1, "nonce");
    return Napi::Number::New(info.Env(), static_cast<int>(sender_.Send(pid, nonce)));
  }

  static uint32_t AddressPartArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
    double v = NumberArg(info, i, what);
    if (v != std::floor(v) || v < 1 || v > 4294967295.0)
      throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer from 1 to 2^32-1");
    return static_cast<uint32_t>(v);
  }

  // From JS, from either cleanup hook, or the destructor. Touches no JS value: the env may
  // be tearing down (no handle scope may be opened then).
  void CloseNotifier() {
    if (!notifier_) return;
    notifier_->Close(&Addon::NotifierClosed, notifierHook_);
    notifier_.reset();
    notifierHook_ = nullptr;
    try {
      onWake_.Reset();
    } catch (...) {  // napi_delete_reference does not fail on a live env; never throw into C
    }
  }

  void DestroyWakeContext() {
    if (wakeContext_ == nullptr) return;
    napi_async_destroy(wakeEnv_, wakeContext_);
    wakeContext_ = nullptr;
  }

  // uv_close's callback for a notifier's poll handle: the env may now finish tearing down.
  static void NotifierClosed(void* hook) {
    if (hook != nullptr) napi_remove_async_cleanup_hook(static_cast<napi_async_cleanup_hook_handle>(hook));
  }

  // The env is going away. Closes the notifier if it is still open; either way the hook is
  // removed when the poll handle's close callback runs (a notifier closed earlier from JS
  // may still have its close pending: that callback removes this hook).
  static void NotifierTeardown(napi_async_cleanup_hook_handle, void* self) {
    static_cast<Addon*>(self)->CloseNotifier();
  }

  // On the loop thread, from uv_poll's callback, after the socket was drained.
  static void OnWake(void* self) { static_cast<Addon*>(self)->DeliverWake(); }

  // Calls onWake() as a top-level callback: napi_make_callback enters the async context and
  // then runs process.nextTick callbacks and microtasks, as a timer's callback does.
  // Written against the C API so that nothing throws into libuv.
  void DeliverWake() {
    if (onWake_.IsEmpty() || wakeContext_ == nullptr) return;
    napi_env env = wakeEnv_;
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn = nullptr, recv = nullptr, result = nullptr;
    // onWake may close the notifier (and reset onWake_): the call holds its own handle.
    if (napi_get_reference_value(env, onWake_, &fn) == napi_ok && fn != nullptr &&
        napi_get_global(env, &recv) == napi_ok &&
        napi_make_callback(env, wakeContext_, recv, fn, 0, nullptr, &result) != napi_ok) {
      // A throw from onWake is pending here: report it as uncaught (process 'uncaughtException',
      // a worker's 'error'). Nothing pending means JS cannot run any more (the env is being
      // torn down): the wake is dropped.
      bool pending = false;
      napi_value err = nullptr;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &err) == napi_ok)
        napi_fatal_exception(env, err);
    }
    napi_close_handle_scope(env, scope);
  }

  Napi::Value ProcessAliveJs(const Napi::CallbackInfo& info) {
    double pid = NumberArg(info, 0, "pid");
    if (pid != std::floor(pid)) throw Napi::RangeError::New(info.Env(), "pid must be an integer");
    return Napi::Boolean::New(info.Env(), ProcessAlive(static_cast<int64_t>(pid)));
  }

  struct PendingWait {
    Napi::FunctionReference callback;
    bool keepAlive;
  };

  std::unordered_map<uint32_t, Segment> segments_;
  std::vector<Napi::Reference<Napi::Uint8Array>> leaked_;  // windows the OS would not restore
  uint32_t nextId_ = 1;
  std::unique_ptr<AsyncWaiter> waiter_;
  Napi::ThreadSafeFunction tsfn_;
  std::unordered_map<uint32_t, PendingWait> pending_;
  uint32_t nextJob_ = 1;
  uint32_t keepAlive_ = 0;
  Napi::FunctionReference errorClass_;
  napi_env env_ = nullptr;
  bool cleanedUp_ = false;
  // The notifier: at most one per env, opened and closed from JS.
  std::unique_ptr<Notifier> notifier_;
  napi_async_cleanup_hook_handle notifierHook_ = nullptr;  // removed by the poll handle's close callback
  Napi::FunctionReference onWake_;
  napi_async_context wakeContext_ = nullptr;
  napi_env wakeEnv_ = nullptr;
  NotifySender sender_;  // notify()'s socket, made on first use
};

}  // namespace ipo

using IpoAddon = ipo::Addon;
NODE_API_ADDON(IpoAddon)
