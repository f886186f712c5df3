// What run() (launcher.cc) and a long-lived sandbox (persistent.cc) share: everything prepared
// before the init is cloned, kept alive (and at a fixed address: ChildSpec points into it) for as
// long as the init runs, and the clone itself with the parent's half of sync 2.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "sandbox/cgroup.h"
#include "sandbox/child.h"
#include "sandbox/identity.h"
#include "sandbox/plan.h"
#include "sandbox/sandbox.h"

namespace ward::sandbox {

// The placeholders of protected names (plan.h): created before the sandbox starts when missing
// (marked with the extended attribute user.ward.placeholder), and held with a shared flock(2)
// while it runs, like the present ones that may be another sandbox's. When a sandbox ends, a
// placeholder is removed, if still empty, only when no other sandbox holds it: removing a mount
// point of another sandbox's namespace would detach the read-only mount there and let that
// sandbox create the name. The last holder removes it (the creator, or any sandbox that finds the
// mark: also what a killed ward left behind). Where the filesystem keeps no user.* extended
// attributes, a placeholder whose maker ended while another sandbox held it has no mark and stays
// behind, empty (litter, not a hole). A placeholder that cannot be created loses its mount (the
// name then stays unprotected, with a warning).
class Placeholders {
 public:
  Placeholders() = default;
  Placeholders(const Placeholders&) = delete;
  Placeholders& operator=(const Placeholders&) = delete;
  // Fails when a placeholder stays locked by someone else (not a ward removing it) for longer
  // than a ward ever holds one exclusively: starting would mean waiting for them.
  Result<void> create(Plan& plan);
  ~Placeholders();
  // The placeholders held that are ward's, not the user's: made by this sandbox, or carrying the
  // mark (another sandbox's). Host paths; what a download leaves out.
  std::vector<std::string> wards() const;

  struct Held {
    Placeholder placeholder;
    std::shared_ptr<const UniqueFd> parent;  // its directory, opened once (shared by the
                                             // placeholders of one directory): made, checked
                                             // and removed through it
    std::string name;                        // its name in `parent`
    UniqueFd fd;                             // holds the shared lock
    bool made = false;                       // this sandbox created it
    bool locked = false;                     // false where the filesystem has no flock(2)
  };

 private:
  std::vector<Held> held_;
};

// The init's stack; unmapped once the init has been reaped (its owner waits for it on every path).
class InitStack {
 public:
  static constexpr size_t kSize = 256 * 1024;
  InitStack();
  ~InitStack();
  InitStack(const InitStack&) = delete;
  InitStack& operator=(const InitStack&) = delete;
  explicit operator bool() const;
  char* top() const { return static_cast<char*>(base_) + kSize; }

 private:
  void* base_;
};

struct Launch {
  const RunOptions* options = nullptr;
  Plan plan;
  Identity id;
  Placeholders placeholders;
  std::vector<UniqueFd> trees;         // idmapped writable trees (as root)
  std::vector<UniqueFd> std_fd_paths;  // O_PATH fds of ward's terminal / redirected files
  std::vector<std::string> argv, env, search;
  std::vector<char*> argv_c, env_c, search_c;
  std::deque<std::string> tmpfs_options;  // sized tmpfs options (a deque: c_str() stays put)
  std::optional<Cgroups> cgroups;
  ChildSpec spec;
  UniqueFd sock;        // the parent's end of the sync socket
  UniqueFd sigfd;       // SIGCHLD and the forwarded signals
  sigset_t old_mask{};  // restored by the owner once the init is gone
  bool mask_saved = false;
  InitStack stack;
  pid_t init = 0;
  std::chrono::steady_clock::time_point cloned;

  // Everything before clone. `persistent`: a long-lived sandbox (no command of its own; commands
  // are started later through exec requests, the caller's terminal is not shown inside).
  static Result<std::unique_ptr<Launch>> prepare(const RunOptions& options, bool persistent);
  // Clones the init, writes its id maps and sends kGo (sync 2). On an Error the init is gone and
  // the signal mask restored.
  Result<void> start();
  // Kills and reaps the init (when it is still there) and restores the signal mask.
  void abort();
  ~Launch();
};

// One message from the init, nonblocking; fds sent with it (SCM_RIGHTS) land in `fds`.
ssize_t receive_message(int sock, Message& m, std::vector<UniqueFd>* fds);

std::string describe_error(const ChildError& e);

// What ward says, and exits with, when the command itself could not be executed (Step::kExec):
// 127 when it is not there, 126 when it cannot run — its interpreter (as the host's copy of the
// file names it) missing inside, say.
std::pair<int, std::string> exec_failure(const ChildError& e);

}  // namespace ward::sandbox
