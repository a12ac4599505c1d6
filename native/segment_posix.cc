// POSIX shared memory: shm_open + fallocate/ftruncate + mmap(MAP_SHARED | MAP_FIXED)
// over a window inside a V8-allocated SharedArrayBuffer, so the bytes stay inside the V8
// cage and no transfer list can detach them.
#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>

#if defined(__APPLE__)
#include <libproc.h>
#include <sys/proc_info.h>
#endif

#include "platform.h"

namespace ipo {

namespace {

// The symbolic name of the errno values a shared-memory call can give, so messages
// (and the tests that read them) name ENOSPC rather than a locale's wording.
const char* ErrnoName(int err) {
  switch (err) {
    case ENOSPC: return "ENOSPC";
    case ENOMEM: return "ENOMEM";
    case EFBIG: return "EFBIG";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENODEV: return "ENODEV";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case EIO: return "EIO";
    default: return nullptr;
  }
}

std::string Describe(int err) {
  const char* name = ErrnoName(err);
  std::string text = strerror(err);
  return name != nullptr ? text + " (" + name + ")" : text + " (errno " + std::to_string(err) + ")";
}

std::string Errno(const char* what, const std::string& osName) {
  return std::string(what) + " failed for \"" + osName + "\": " + Describe(errno);
}

std::string Mib(uint64_t bytes) {
  char text[32];
  snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

// True for the errors that mean "this file system cannot reserve space": then the
// segment is only sized (ftruncate), as before, and a full file system shows as SIGBUS
// at the first write of a missing page instead of ENOSPC here.
bool ReserveUnsupported(int err) { return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL || err == ENODEV; }

// Gives a freshly created (empty) object its size, reserving the space where the OS can.
// Returns 0, or the errno of the call that failed (`*what` names it).
int SizeNewObject(int fd, size_t size, const char** what) {
#if defined(__linux__)
  // fallocate rather than posix_fallocate: where the file system cannot reserve, glibc's
  // posix_fallocate emulates it by writing one byte per block, which grows the object a
  // block at a time under the eyes of openers. On tmpfs (/dev/shm) fallocate either
  // reserves every page and sets the size at once, or fails and leaves it empty.
  for (;;) {
    *what = "fallocate";
    if (fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0) return 0;
    if (errno == EINTR) continue;  // tmpfs gives up on a pending signal and undoes its work
    if (!ReserveUnsupported(errno)) return errno;
    break;
  }
#elif !defined(__APPLE__)
  // macOS has no posix_fallocate, and its shm objects can be sized exactly once.
  *what = "posix_fallocate";
  int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == 0) return 0;
  if (!ReserveUnsupported(err)) return err;
#endif
  *what = "ftruncate";
  if (ftruncate(fd, static_cast<off_t>(size)) == 0) return 0;
  return errno;
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
    const char* what = "";
    int err = SizeNewObject(fd, size, &what);
    if (err != 0) {
      std::string message = std::string(what) + " failed for \"" + osName + "\": " + Describe(err);
      if (err == ENOSPC || err == ENOMEM || err == EFBIG) {
        message += ": a segment of " + std::to_string(size) + " bytes (" + Mib(size) + ") did not fit";
        struct statvfs vfs;
        if (fstatvfs(fd, &vfs) == 0) {
          uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
          message += "; " + std::to_string(avail) + " bytes (" + Mib(avail) + ") are free for shared memory";
        }
        message += ". Free space (interprocess-objects ls / rm removes stale segments), enlarge /dev/shm, or create a smaller segment";
      }
      *failure = {"ERR_SHM_OS", message};
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
    *failure = {"ERR_SHM_OS", std::string("mmap failed: ") + Describe(errno)};
    return false;
  }
  mapping->window = window;
  mapping->view = window;
  mapping->mirrored = false;
  return true;
}

bool UnmapSegment(Mapping* mapping) {
  bool restored = true;
  if (mapping->window != nullptr) {
    // MAP_FIXED replaces the shared pages atomically; V8 later frees ordinary memory.
    restored = mmap(mapping->window, mapping->size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED;
    mapping->window = nullptr;
    mapping->view = nullptr;
  }
  if (mapping->handle >= 0) {
    close(static_cast<int>(mapping->handle));
    mapping->handle = -1;
  }
  return restored;
}

bool BackedSize(const Mapping& mapping, uint64_t* size, Failure* failure) {
  struct stat st;
  if (mapping.handle < 0 || fstat(static_cast<int>(mapping.handle), &st) != 0) {
    *failure = {"ERR_SHM_OS", std::string("fstat failed: ") + Describe(errno)};
    return false;
  }
  *size = static_cast<uint64_t>(st.st_size);
  return true;
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

uint64_t ProcessStartTime(int64_t pid) {
  if (pid <= 0 || pid > INT32_MAX) return 0;
#if defined(__linux__)
  // "pid (comm) state ppid … starttime …": comm may hold spaces and ')', so the fields
  // are counted from the last ')'; starttime is field 22, the 20th after it.
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char* p = strrchr(buf, ')');
  if (p == nullptr) return 0;
  p++;
  for (int field = 3; field < 22; field++) {
    while (*p == ' ') p++;
    while (*p != ' ' && *p != '\0') p++;
    if (*p == '\0') return 0;
  }
  while (*p == ' ') p++;
  char* end = nullptr;
  unsigned long long ticks = strtoull(p, &end, 10);
  if (end == p) return 0;
  return static_cast<uint64_t>(ticks);
#elif defined(__APPLE__)
  struct proc_bsdinfo info;
  if (proc_pidinfo(static_cast<int>(pid), PROC_PIDTBSDINFO, 0, &info, sizeof(info)) != static_cast<int>(sizeof(info)))
    return 0;
  return static_cast<uint64_t>(info.pbi_start_tvsec) * 1000000u + static_cast<uint64_t>(info.pbi_start_tvusec);
#else
  return 0;
#endif
}

int64_t CurrentPid() { return static_cast<int64_t>(getpid()); }

}  // namespace ipo
#endif  // !_WIN32
