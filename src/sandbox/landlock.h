// Landlock: the second filesystem layer. Rules are computed before fork (access masks tailored to
// each inode's type and clamped to the kernel's ABI); the init opens the paths inside the new root
// and builds the ruleset; the workload calls restrict_self just before seccomp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ward::sandbox::landlock {

// Highest ABI the running kernel offers; 0 when Landlock is missing or disabled.
int abi_version();

// Access rights of ABI `abi` (cumulative): every right the ruleset handles.
std::uint64_t handled_fs_access(int abi);
// Scopes (ABI 6+): abstract unix sockets and signals outside the domain.
std::uint64_t scopes(int abi);

enum class Mode { kReadOnly, kReadWrite, kDevice, kListOnly, kProc };
// Rights for one rule: tailored to the inode type (a non-directory gets file rights only) and
// clamped to `abi`.
std::uint64_t rule_access(Mode mode, bool is_directory, int abi);

struct Rule {
  std::string path;  // path inside the sandbox (after pivot_root); ignored when fd >= 0
  int fd = -1;       // an inherited O_PATH fd (the caller's terminal, say); owned by the caller
  std::uint64_t access = 0;
};

// Async-signal-safe helpers for the init and the workload (raw syscalls, no allocation).
// create_ruleset returns a ruleset fd or -errno.
int create_ruleset(int abi);
// Adds one path-beneath rule; returns 0 or -errno. `path` is opened O_PATH.
int add_path_rule(int ruleset_fd, const char* path, std::uint64_t access);
int add_fd_rule(int ruleset_fd, int fd, std::uint64_t access);
// landlock_restrict_self; returns 0 or -errno.
int restrict_self(int ruleset_fd);

}  // namespace ward::sandbox::landlock
