#include "sandbox/doctor.h"

#include <grp.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "sandbox/cgroup.h"
#include "sandbox/identity.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp.h"

namespace ward::sandbox {
namespace {

std::string read_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Forks a child that (optionally drops to an unprivileged uid and) unshares `flags`; returns
// the errno it hit, 0 on success.
int try_unshare(unsigned long flags, bool as_unprivileged) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return errno;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    int err = 0;
    if (as_unprivileged && ::geteuid() == 0 &&
        (::setgroups(0, nullptr) != 0 ||
         ::setresgid(kDefaultUnprivilegedId, kDefaultUnprivilegedId, kDefaultUnprivilegedId) != 0 ||
         ::setresuid(kDefaultUnprivilegedId, kDefaultUnprivilegedId, kDefaultUnprivilegedId) != 0))
      err = errno;
    if (err == 0 && ::unshare(flags) != 0) err = errno;
    ssize_t ignored = ::write(pipefd[1], &err, sizeof err);
    (void)ignored;
    ::_exit(0);
  }
  ::close(pipefd[1]);
  int err = ECHILD;
  if (pid > 0) {
    if (::read(pipefd[0], &err, sizeof err) != sizeof err) err = ECHILD;
    ::waitpid(pid, nullptr, 0);
  }
  ::close(pipefd[0]);
  return err;
}

}  // namespace

std::vector<Finding> doctor() {
  std::vector<Finding> out;

  {
    Finding f{"user namespaces"};
    int err = try_unshare(CLONE_NEWUSER, true);
    std::string max = read_line("/proc/sys/user/max_user_namespaces");
    f.ok = err == 0;
    f.detail = f.ok ? "unprivileged user namespaces work (max_user_namespaces " + max + ")"
                    : std::string("an unprivileged user cannot create one: ") + std::strerror(err);
    std::string debian = read_line("/proc/sys/kernel/unprivileged_userns_clone");
    if (debian == "0") f.detail += "; kernel.unprivileged_userns_clone = 0";
    std::string apparmor = read_line("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    if (apparmor == "1") f.detail += "; AppArmor restricts unprivileged user namespaces";
    if (!f.ok)
      f.without = "ward cannot run rootless; as root it still works (root creates the namespaces)";
    out.push_back(f);
  }
  {
    Finding f{"namespaces"};
    int err = try_unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS |
                              CLONE_NEWIPC | CLONE_NEWCGROUP,
                          false);
    f.ok = err == 0;
    f.detail = f.ok ? "user, mount, pid, network, uts, ipc and cgroup namespaces can be created"
                    : std::string("creating them failed: ") + std::strerror(err);
    if (!f.ok) f.without = "ward refuses to start a sandbox";
    out.push_back(f);
  }
  {
    Finding f{"landlock"};
    int abi = landlock::abi_version();
    f.ok = abi > 0;
    f.detail = f.ok ? "ABI " + std::to_string(abi) +
                          (abi >= 6 ? " (filesystem, truncate, ioctl, signal and abstract-socket "
                                      "scoping)"
                                    : "")
                    : "not available (kernel < 5.13, or not in the lsm= list)";
    if (!f.ok)
      f.without = "best_effort policies run with mount isolation only; hard_requirement refuses";
    out.push_back(f);
  }
  {
    Finding f{"seccomp"};
    unsigned action = SECCOMP_RET_ERRNO;
    f.ok = ::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
    f.detail = f.ok ? "filter mode available; ward's filter has " +
                          std::to_string(seccomp::embedded().size()) + " BPF instructions"
                    : std::string("unavailable: ") + std::strerror(errno);
    if (!f.ok) f.without = "ward refuses to start a sandbox";
    out.push_back(f);
  }
  {
    Finding f{"yama"};
    std::string scope = read_line("/proc/sys/kernel/yama/ptrace_scope");
    f.ok = !scope.empty() && scope != "0";
    f.detail = scope.empty() ? "not in this kernel" : "kernel.yama.ptrace_scope = " + scope;
    if (!f.ok)
      f.without =
          "processes of one sandbox can read each other's memory through /proc/PID/mem "
          "(ptrace and process_vm_readv stay denied); set kernel.yama.ptrace_scope=1 to "
          "close it";
    out.push_back(f);
  }
  {
    CgroupProbe p = probe_cgroups();
    Finding v2{"cgroup v2"};
    v2.ok = !p.v2_dir.empty();
    if (v2.ok) {
      v2.detail = p.v2_dir + " is writable with";
      for (const auto& c : p.v2_controllers) v2.detail += " " + c;
    } else {
      v2.detail = p.why_not_v2;
      v2.without = "cgroup v1 when writable, else rlimits";
    }
    out.push_back(v2);
    Finding v1{"cgroup v1"};
    std::string found;
    if (!p.v1_memory.empty()) found += " memory";
    if (!p.v1_pids.empty()) found += " pids";
    if (!p.v1_cpu.empty()) found += " cpu";
    v1.ok = !found.empty();
    v1.detail =
        v1.ok ? "writable controllers:" + found : "no writable memory, pids or cpu controller";
    if (!v1.ok && !v2.ok)
      v1.without =
          "limits fall back to rlimits: memory -> RLIMIT_AS per process, pids -> "
          "RLIMIT_NPROC, cpu not enforced; an out-of-memory kill cannot be reported";
    out.push_back(v1);
  }
  return out;
}

}  // namespace ward::sandbox
