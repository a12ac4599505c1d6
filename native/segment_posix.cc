// POSIX shared memory: shm_open + ftruncate + mmap(MAP_SHARED | MAP_FIXED) over a
// window inside a V8-allocated ArrayBuffer, so the bytes stay inside the V8 cage.
#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "platform.h"

namespace ipo {

namespace {

std::string Errno(const char* what, const std::string& osName) {
  return std::string(what) + " failed for \"" + osName + "\": " + strerror(errno);
}

}  // namespace

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

bool OpenSegment(const std::string& osName, size_t size, OpenMode mode, Mapping* out,
                 Failure* failure) {
  const bool mayCreate = mode != OpenMode::Open;
  int fd = -1;
  bool created = false;
  if (mayCreate) {
    fd = shm_open(osName.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      created = true;
    } else if (errno != EEXIST || mode == OpenMode::Create) {
      *failure = {errno == EEXIST ? "ERR_SHM_EXISTS" : "ERR_SHM_OS",
                  errno == EEXIST
                      ? "a segment named \"" + osName + "\" already exists: open it, or unlink it first"
                      : Errno("shm_open", osName)};
      return false;
    }
  }
  if (fd < 0) {
    fd = shm_open(osName.c_str(), O_RDWR, 0600);
    if (fd < 0) {
      *failure = {errno == ENOENT ? "ERR_SHM_NOT_FOUND" : "ERR_SHM_OS",
                  errno == ENOENT ? "no segment named \"" + osName + "\": create it first"
                                  : Errno("shm_open", osName)};
      return false;
    }
  }
  if (created) {
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      *failure = {"ERR_SHM_OS", Errno("ftruncate", osName)};
      close(fd);
      shm_unlink(osName.c_str());
      return false;
    }
  } else {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      *failure = {"ERR_SHM_OS", Errno("fstat", osName)};
      close(fd);
      return false;
    }
    size = static_cast<size_t>(st.st_size);
    if (size == 0 || size % PageSize() != 0) {
      // Either the creator has not sized it yet, or it is not one of ours.
      *failure = {"ERR_SHM_NOT_READY", "segment \"" + osName + "\" has size " +
                                           std::to_string(size) + ", not a whole number of pages"};
      close(fd);
      return false;
    }
  }
  out->handle = fd;
  out->size = size;
  out->created = created;
  return true;
}

bool MapSegment(Mapping* mapping, void* window, bool prefault, Failure* failure) {
  int flags = MAP_SHARED | MAP_FIXED;
#ifdef MAP_POPULATE
  if (prefault) flags |= MAP_POPULATE;
#else
  (void)prefault;
#endif
  void* at = mmap(window, mapping->size, PROT_READ | PROT_WRITE, flags,
                  static_cast<int>(mapping->handle), 0);
  if (at == MAP_FAILED) {
    *failure = {"ERR_SHM_OS", std::string("mmap failed: ") + strerror(errno)};
    return false;
  }
  mapping->window = window;
  mapping->view = window;
  mapping->mirrored = false;
  return true;
}

void UnmapSegment(Mapping* mapping) {
  if (mapping->window != nullptr) {
    // MAP_FIXED replaces the shared pages atomically; V8 later frees ordinary memory.
    mmap(mapping->window, mapping->size, PROT_READ | PROT_WRITE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    mapping->window = nullptr;
    mapping->view = nullptr;
  }
  if (mapping->handle >= 0) {
    close(static_cast<int>(mapping->handle));
    mapping->handle = -1;
  }
}

bool UnlinkSegment(const std::string& osName, Failure* failure) {
  if (shm_unlink(osName.c_str()) == 0) return true;
  *failure = {errno == ENOENT ? "ERR_SHM_NOT_FOUND" : "ERR_SHM_OS",
              errno == ENOENT ? "no segment named \"" + osName + "\" to unlink"
                              : Errno("shm_unlink", osName)};
  return false;
}

void YieldCpu() { sched_yield(); }

bool ProcessAlive(int64_t pid) {
  if (pid <= 0 || pid > INT32_MAX) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace ipo
#endif  // !_WIN32
