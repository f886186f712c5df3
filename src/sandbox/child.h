// What the parent prepares for the sandbox init and its workload, and the messages they exchange.
//
// Everything the children read is built before clone(); after it they only walk these arrays and
// make raw syscalls (no allocation, no locks: the parent may be multi-threaded).
//
// Sync protocol on a SOCK_SEQPACKET socketpair (one message = one struct Message):
//   1. parent: clone(init) — init blocks reading the socket
//   2. parent: writes uid_map/gid_map, sends kGo
//   3. init: builds the root, pivots, hostname, lo, the egress listener, Landlock ruleset, forks
//      the workload (which joins the sandbox's cgroups itself) → kReady (workload started; carries
//      the egress listener and a sock_diag socket of the sandbox's network namespace as SCM_RIGHTS)
//      or kSetupError (step, syscall, errno, path)
//   4. init supervises; parent forwards signals with kill(2)
//   5. init: → kExit (the main process's wait status, how it ended), then exits
//   The parent's death is seen by the init as EOF on the socket: it kills the whole sandbox,
//   removes the sandbox's cgroups, and exits.
#pragma once

#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>

#include "sandbox/landlock.h"
#include "sandbox/plan.h"

namespace ward::sandbox {

// Setup steps, in the order they run. A test pins this order (STYLE.md rule 4).
enum class Step : int {
  kNone = 0,
  kMountPrivate,      // make every mount private to the sandbox
  kBaseTmpfs,         // a scratch tmpfs to pivot through
  kPivotBase,         // pivot into it, the host root parked at /oldroot
  kRootTmpfs,         // the sandbox's root: a fresh tmpfs
  kBind,              // policy paths, bound from the host
  kSymlink,           // symlinked policy paths (/lib -> usr/lib)
  kPrivateTmp,        // the private /tmp
  kProc,              // a fresh /proc
  kDev,               // a minimal /dev
  kPivotRoot,         // pivot into the new root, the old root detached
  kRootReadOnly,      // the root tmpfs made read-only
  kHostname,          // uts namespace
  kLoopback,          // bring up lo in the network namespace
  kEgressListener,    // the proxy's listener (and a sock_diag socket) in the network namespace
  kLandlockRuleset,   // build the Landlock ruleset over the same lists
  kSpawn,             // fork the workload
  kCgroupNamespace,   // workload: its own cgroup namespace
  kRlimits,           // workload: resource limits, no core dumps
  kCapabilities,      // workload: bounding set emptied
  kIds,               // workload: setgroups, setresgid, setresuid
  kDropCapabilities,  // workload: effective/permitted/inheritable/ambient emptied
  kChdir,             // workload: the workdir
  kNoNewPrivs,        // workload: PR_SET_NO_NEW_PRIVS
  kLandlock,          // workload: landlock_restrict_self
  kCloseFds,          // workload: close every fd above 2
  kSeccomp,           // workload: load the filter — last before exec
  kExec,              // workload: execve
};
const char* step_name(Step step);

struct ChildError {
  Step step = Step::kNone;
  int err = 0;
  char syscall[24] = {};
  char path[256] = {};
  // Step::kExec, ENOENT: the file was there, so what is missing is its interpreter (an ELF's
  // loader, a script's #! program).
  bool file_exists = false;
};

// The setup steps in the order they actually ran (ward run -v prints it; a test pins it).
struct StepTrace {
  Step steps[32] = {};
  std::int64_t done_ns[32] = {};  // CLOCK_MONOTONIC when each step finished (ward run -v)
  int count = 0;
  void add(Step step) {
    if (count >= 32) return;
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    done_ns[count] = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    steps[count++] = step;
  }
};

// Long-lived sandboxes (persistent mode) add, parent → init: kExec (start the command of exec
// slot `slot`; its stdin, stdout and stderr attached as SCM_RIGHTS), kSignal (`value` to the
// process group of slot `slot`), kStop (the stop protocol for the whole sandbox); init → parent:
// kExecStarted (`value`: its pid inside), kExecFailed (`error`), kExecExit (`value`: wait status).
struct Message {
  enum Type : std::uint32_t {
    kGo = 1,
    kReady,
    kSetupError,
    kExit,
    kExec,
    kExecStarted,
    kExecFailed,
    kExecExit,
    kSignal,
    kStop,
  };
  std::uint32_t type = 0;
  std::int32_t slot = -1;  // exec messages: which exec slot
  std::int32_t value = 0;  // kReady: workload pid (inside); kExit: wait status
  std::int32_t ended = 0;  // kExit: 0 exited/signaled, 1 timed out, 2 stopped by ward
  ChildError error;        // kSetupError
  StepTrace trace;         // kReady, kSetupError
};

struct Rlimit {
  int resource;
  rlim_t value;
};

// One command started in a running long-lived sandbox: written by the parent before kExec, read
// by the init (they share memory) until the command has exec'd.
struct ExecSlot {
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* workdir = nullptr;
  bool tty = false;  // its stdin is a terminal: setsid() and make it the controlling terminal
  pid_t pid = 0;     // the init's bookkeeping: the running command's pid inside (0: free)
};
inline constexpr int kMaxExecs = 256;

struct ChildSpec {
  // Persistent mode: no command of its own (argv is null); the init stays until kStop, SIGTERM, the
  // time limit or the parent's death, and starts commands on kExec.
  bool persistent = false;
  ExecSlot execs[kMaxExecs];

  int sock = -1;         // the children's end of the socketpair
  int parent_sock = -1;  // the parent's end, closed first thing in the init

  const MountOp* mounts = nullptr;
  std::size_t mount_count = 0;

  int landlock_abi = 0;  // 0: no Landlock
  const landlock::Rule* landlock_rules = nullptr;
  std::size_t landlock_rule_count = 0;

  const sock_filter* seccomp = nullptr;
  unsigned short seccomp_len = 0;

  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* const* search_path = nullptr;  // PATH entries, for a command without a slash
  const char* workdir = "/";
  const char* hostname = "ward";

  bool set_groups = false;  // false when the user namespace denies setgroups (rootless)
  // With cgroups the workload unshares its cgroup namespace itself, once it has joined them (so
  // that it sees itself at their root), and the init stays in the host's, to remove them after
  // ward's death; without cgroups the clone creates it.
  bool workload_cgroup_ns = true;
  // Without a terminal the workload gets a process group of its own, so that kill(0, ...) inside
  // cannot reach the processes that share ward's group. With one it stays in ward's (the
  // foreground group) for job control; Landlock's signal scoping covers that case (ABI 6+).
  bool new_process_group = false;
  // None of ward's stdin, stdout and stderr is a terminal: the workload gets a session of its own,
  // with no controlling terminal, so that /dev/tty does not reach the user's (where it could
  // change the terminal's settings, or be stopped by SIGTTOU and leave ward waiting).
  bool new_session = false;
  uid_t uid = 0;
  gid_t gid = 0;

  // The egress listener: 127.0.0.1:egress_port inside the network namespace (0: none).
  std::uint16_t egress_port = 0;

  Rlimit rlimits[8] = {};
  int rlimit_count = 0;

  std::int64_t timeout_ms = 0;  // 0: none
  std::int64_t grace_ms = 3000;

  // The sandbox's cgroups. Every workload process the init starts joins them first thing, with a
  // write of "0" (the writer) to each cgroup.procs that ward opened (Cgroups::procs_fds); they are
  // closed with the rest before exec. The init never joins: it shares ward's memory (CLONE_VM),
  // and a cgroup whose memory is full of tmpfs pages (nobody's) has its OOM killer pick the task
  // using the most memory, whose death would be ward's too.
  int cgroup_procs_fds[4] = {-1, -1, -1, -1};
  // Cgroups to remove when the parent dies: directory fds of each parent cgroup, and the name of
  // the sandbox's child cgroup in each.
  int cgroup_parent_fds[4] = {-1, -1, -1, -1};
  int cgroup_count = 0;
  const char* cgroup_name = nullptr;

  // The init's visible command line and environment are replaced with "ward-init" and nothing:
  // [title_start, title_end) is ward's own argv and environ block, which the init shares
  // (CLONE_VM), so ward's own /proc/PID/cmdline reads "ward-init" from then on as well.
  char* title_start = nullptr;
  char* title_end = nullptr;

  // Mount options of /dev/shm: with a memory limit, a size as large as the limit (launcher.cc).
  const char* shm_options = "mode=1777";

  // Written by the workload (which shares the init's memory until it execs).
  ChildError workload_error;
  StepTrace trace;
};

// The body of the init (PID 1 of the sandbox). Never returns.
[[noreturn]] void init_main(ChildSpec* spec);

}  // namespace ward::sandbox
