#include "sandbox/landlock.h"

#include "sandbox/sys.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

// Older kernel headers (Debian 12, Ubuntu 22.04) lack the newer constants: the values are ABI.
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

namespace ward::sandbox::landlock {
namespace {

// struct landlock_ruleset_attr grew with each ABI; this is its ABI-6 layout.
struct RulesetAttr {
  std::uint64_t handled_access_fs;
  std::uint64_t handled_access_net;
  std::uint64_t scoped;
};

struct PathBeneathAttr {
  std::uint64_t allowed_access;
  std::int32_t parent_fd;
} __attribute__((packed));

constexpr std::uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE;
constexpr std::uint64_t kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                      LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
                                      LANDLOCK_ACCESS_FS_IOCTL_DEV;
constexpr std::uint64_t kDeviceNodes = LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK;

}  // namespace

int abi_version() {
  long abi = ::syscall(__NR_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

std::uint64_t handled_fs_access(int abi) {
  if (abi <= 0) return 0;
  std::uint64_t access = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) access |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) access |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) access |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return access;
}

std::uint64_t scopes(int abi) {
  return abi >= 6 ? (LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL) : 0;
}

std::uint64_t rule_access(Mode mode, bool is_directory, int abi) {
  std::uint64_t access = 0;
  switch (mode) {
    case Mode::kReadOnly:
      access = kRead | LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_DIR;
      break;
    case Mode::kReadWrite:
      // Everything but creating device nodes: mknod must fail even in a writable directory.
      access = handled_fs_access(abi) & ~kDeviceNodes;
      break;
    case Mode::kDevice:
      access = kRead | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV |
               LANDLOCK_ACCESS_FS_READ_DIR;
      break;
    case Mode::kListOnly:
      access = LANDLOCK_ACCESS_FS_READ_DIR;
      break;
    case Mode::kProc:
      // /proc/self/* is written by ordinary programs (oom_score_adj, comm); proc's own
      // permissions guard the rest. Nothing can be created there.
      access = kRead | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
      break;
  }
  if (!is_directory) access &= kFileRights;
  return access & handled_fs_access(abi);
}

int create_ruleset(int abi) {
  RulesetAttr attr{handled_fs_access(abi), 0, scopes(abi)};
  // Each ABI accepts the struct up to the fields it knows.
  size_t size = abi >= 6 ? sizeof(RulesetAttr) : abi >= 4 ? 16 : 8;
  return static_cast<int>(sys::raw(__NR_landlock_create_ruleset, (long)&attr, (long)size, 0));
}

int add_fd_rule(int ruleset_fd, int fd, std::uint64_t access) {
  PathBeneathAttr attr{access, fd};
  long rc =
      sys::raw(__NR_landlock_add_rule, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, (long)&attr, 0);
  return rc < 0 ? static_cast<int>(rc) : 0;
}

int add_path_rule(int ruleset_fd, const char* path, std::uint64_t access) {
  long fd = sys::raw(SYS_openat, AT_FDCWD, (long)path, O_PATH | O_CLOEXEC, 0);
  if (fd < 0) return static_cast<int>(fd);
  int rc = add_fd_rule(ruleset_fd, static_cast<int>(fd), access);
  sys::raw(SYS_close, fd);
  return rc;
}

int restrict_self(int ruleset_fd) {
  long rc = sys::raw(__NR_landlock_restrict_self, ruleset_fd, 0);
  return rc < 0 ? static_cast<int>(rc) : 0;
}

}  // namespace ward::sandbox::landlock
