// Windows: CreateFileMappingW / MapViewOfFile. UNTESTED: written to the Win32 docs,
// never compiled or run on Windows by this project (see docs/concepts.md).
//
// MapViewOfFile cannot place a view inside memory V8 already owns, and the V8 cage
// forbids external buffers, so Windows runs in *mirrored* mode: the view lives outside
// the cage and the window inside the JS SharedArrayBuffer is a copy that the JS layer
// refreshes at the start of a turn (`syncIn`) and publishes at its end (`syncOut`). Waiting uses a
// named auto-reset event per segment; the word itself is read from the real view.
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <cstring>

#include "platform.h"

namespace ipo {

namespace {

std::wstring Widen(const std::string& s) {
  return std::wstring(s.begin(), s.end());  // names are validated ASCII
}

std::wstring ObjectName(const std::string& osName, const wchar_t* suffix) {
  return L"Local\\" + Widen(osName) + suffix;
}

std::string LastError(const char* what) {
  return std::string(what) + " failed with Windows error " + std::to_string(GetLastError());
}

uint32_t* RealWord(const Mapping& m, uint32_t* word) {
  auto off = reinterpret_cast<char*>(word) - reinterpret_cast<char*>(m.window);
  return reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(m.view) + off);
}

}  // namespace

size_t PageSize() {
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwAllocationGranularity;
}

bool OpenSegment(const std::string& osName, size_t size, OpenMode mode, Mapping* out,
                 Failure* failure) {
  std::wstring name = ObjectName(osName, L"");
  HANDLE h = nullptr;
  bool created = false;
  if (mode != OpenMode::Open) {
    h = CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE,
                           static_cast<DWORD>(static_cast<uint64_t>(size) >> 32),
                           static_cast<DWORD>(size & 0xffffffffu), name.c_str());
    if (h == nullptr) {
      *failure = {"ERR_SHM_OS", LastError("CreateFileMappingW")};
      return false;
    }
    created = GetLastError() != ERROR_ALREADY_EXISTS;
    if (!created && mode == OpenMode::Create) {
      CloseHandle(h);
      *failure = {"ERR_SHM_EXISTS", "a segment named \"" + osName + "\" already exists"};
      return false;
    }
  } else {
    h = OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, name.c_str());
    if (h == nullptr) {
      *failure = {"ERR_SHM_NOT_FOUND", "no segment named \"" + osName + "\": create it first"};
      return false;
    }
  }
  void* view = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, 0);
  if (view == nullptr) {
    *failure = {"ERR_SHM_OS", LastError("MapViewOfFile")};
    CloseHandle(h);
    return false;
  }
  if (!created) {
    MEMORY_BASIC_INFORMATION info;
    VirtualQuery(view, &info, sizeof(info));
    size = info.RegionSize;
  }
  std::wstring eventName = ObjectName(osName, L"-wake");
  HANDLE wake = CreateEventW(nullptr, FALSE, FALSE, eventName.c_str());
  out->handle = reinterpret_cast<intptr_t>(h);
  out->wakeEvent = reinterpret_cast<intptr_t>(wake);
  out->size = size;
  out->created = created;
  out->view = view;
  return true;
}

bool MapSegment(Mapping* mapping, void* window, bool, Failure*) {
  mapping->window = window;
  mapping->mirrored = true;
  std::memcpy(window, mapping->view, mapping->size);
  return true;
}

bool UnmapSegment(Mapping* mapping) {
  // The window is an ordinary copy inside V8's buffer: nothing to restore there.
  if (mapping->view != nullptr) UnmapViewOfFile(mapping->view);
  if (mapping->handle != -1) CloseHandle(reinterpret_cast<HANDLE>(mapping->handle));
  if (mapping->wakeEvent != -1) CloseHandle(reinterpret_cast<HANDLE>(mapping->wakeEvent));
  mapping->view = mapping->window = nullptr;
  mapping->handle = mapping->wakeEvent = -1;
  return true;
}

bool BackedSize(const Mapping& mapping, uint64_t* size, Failure*) {
  // A section's size is fixed at creation (committed from the page file up front, so
  // a full disk fails CreateFileMappingW instead of a later access): it cannot shrink.
  *size = mapping.size;
  return true;
}

bool UnlinkSegment(const std::string&, Failure*) {
  // Windows has no names that outlive their handles: the segment disappears with
  // the last process that has it open, so there is nothing to remove.
  return true;
}

WaitResult WaitOnWord(const Mapping& m, uint32_t* word, uint32_t expected, double timeoutMs) {
  uint32_t* real = RealWord(m, word);
  ULONGLONG deadline = timeoutMs < 0 ? 0 : GetTickCount64() + static_cast<ULONGLONG>(timeoutMs);
  for (;;) {
    if (InterlockedCompareExchange(reinterpret_cast<volatile LONG*>(real), 0, 0) !=
        static_cast<LONG>(expected))
      return WaitResult::NotEqual;
    DWORD slice = 1;  // the event is per segment, not per word: re-check often
    if (timeoutMs >= 0) {
      ULONGLONG now = GetTickCount64();
      if (now >= deadline) return WaitResult::TimedOut;
    }
    if (WaitForSingleObject(reinterpret_cast<HANDLE>(m.wakeEvent), slice) == WAIT_OBJECT_0)
      return WaitResult::Woken;
  }
}

int WakeWord(const Mapping& m, uint32_t*, int) {
  SetEvent(reinterpret_cast<HANDLE>(m.wakeEvent));
  return 1;
}

void YieldCpu() { SwitchToThread(); }

bool ProcessAlive(int64_t pid) {
  HANDLE p = OpenProcess(SYNCHRONIZE, FALSE, static_cast<DWORD>(pid));
  if (p == nullptr) return GetLastError() == ERROR_ACCESS_DENIED;
  DWORD rc = WaitForSingleObject(p, 0);
  CloseHandle(p);
  return rc == WAIT_TIMEOUT;
}

uint64_t ProcessStartTime(int64_t pid) {
  if (pid <= 0 || pid > 0xffffffffLL) return 0;
  HANDLE p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, static_cast<DWORD>(pid));
  if (p == nullptr) return 0;
  FILETIME created, exited, kernel, user;
  BOOL ok = GetProcessTimes(p, &created, &exited, &kernel, &user);
  CloseHandle(p);
  if (!ok) return 0;
  uint64_t t = (static_cast<uint64_t>(created.dwHighDateTime) << 32) | created.dwLowDateTime;
  return t / 10000;  // 100 ns units since 1601 -> ms: below 2^53
}

int64_t CurrentPid() { return static_cast<int64_t>(GetCurrentProcessId()); }

}  // namespace ipo
#endif  // _WIN32
