// Creating, running and tearing down one sandbox.
//
// run() prepares everything the child needs (mount plan, Landlock rules, seccomp program, argv,
// envp, ids) before any fork, then clones the sandbox init (PID 1 of new user, mount, pid, net,
// uts, ipc namespaces; the workload also gets its own cgroup namespace), which builds the root,
// forks the workload and supervises it. See docs/architecture.md for the sync protocol.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "policy/policy.h"

namespace ward::sandbox {

// ward's own exit codes, distinct from the workload's (documented in the README).
inline constexpr int kExitTimeout = 124;        // the wall-clock limit stopped the sandbox
inline constexpr int kExitSetupFailed = 125;    // ward could not build the sandbox
inline constexpr int kExitNotExecutable = 126;  // the command exists but cannot be executed
inline constexpr int kExitNotFound = 127;       // the command was not found inside the sandbox

// What the egress proxy needs from a started sandbox: its listener (127.0.0.1:port inside the
// sandbox's network namespace), a NETLINK_SOCK_DIAG socket of that namespace, and the init's pid
// on the host (the root of the sandbox's process tree).
struct EgressEndpoint {
  UniqueFd listener;
  UniqueFd diag;
  pid_t init_pid = 0;
};

struct RunOptions {
  const policy::Policy* policy = nullptr;
  std::string workdir;  // absolute; bound read-write at the same path when include_workdir
  std::vector<std::string> argv;
  std::chrono::milliseconds grace{3000};  // stop protocol: SIGTERM → grace → SIGKILL
  bool verbose = false;

  // The egress listener's port inside the sandbox; 0: no listener, no proxy variables.
  std::uint16_t egress_port = 0;
  // Called once, from run()'s thread, when a process in the sandbox first connects to the
  // egress listener: a sandbox that never connects never starts the proxy's thread.
  std::function<void(EgressEndpoint)> on_egress;
  // A host directory laid out like /etc with ward's CA bundle (see make_plan): shown inside the
  // sandbox, and the CA variables point at /etc/ward/tls/ca-bundle.pem. "": none.
  std::string trust_layer;
  // Host paths hidden from the sandbox even inside listed paths (ward's state directories, a
  // gateway's socket and token; make_plan).
  std::vector<std::string> hidden;
  // Host files ward uses while the sandbox runs, kept read-only inside (make_plan's `guarded`).
  std::vector<std::string> guarded;
  // inference.local is served (the SDK variables point at it).
  bool inference = false;
  // Credential placeholders (NAME, placeholder) for the workload's environment.
  std::vector<std::pair<std::string, std::string>> secret_env;
  // The name of the sandbox's cgroups ("": ward-PID).
  std::string cgroup_name;
  // When set, a SIGHUP sent to ward calls it (a policy reload) instead of reaching the workload.
  std::function<void()> on_sighup;
};

struct Outcome {
  enum class Kind { kExited, kSignaled, kTimedOut, kOutOfMemory, kSetupFailed };
  Kind kind = Kind::kExited;
  int exit_code = 0;    // what `ward run` exits with
  int signal = 0;       // kSignaled: the signal that ended the workload
  std::string message;  // one sentence for people; empty for a plain exit
};

// A long-lived sandbox (the gateway's): its init stays up with no command of its own until it is
// stopped, and starts commands on request, each under the same policy and hardening as `ward
// run`'s workload (namespaces, mounts, Landlock, seccomp, ids, capabilities, rlimits, cgroups).
// Single-threaded: one owner polls socket_fd() and signal_fd() and calls the rest.
class Persistent {
 public:
  struct Exec {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // "NAME=value", over the sandbox's own environment
    std::string workdir;           // "": the sandbox's working directory
    UniqueFd stdio[3];             // the command's stdin, stdout and stderr
    // stdin is a terminal's slave side: the command leads a session of its own with it as the
    // controlling terminal (for `ward sandbox connect`).
    bool tty = false;
  };
  struct Event {
    enum class Kind { kStarted, kFailed, kExited };
    Kind kind = Kind::kStarted;
    int slot = -1;
    pid_t pid = 0;        // kStarted: inside the sandbox
    int status = 0;       // kExited: the wait status
    int exit_code = 0;    // kFailed: 126/127/125; kExited: code, or 128+signal
    std::string message;  // kFailed: why
  };

  // Builds the sandbox and returns once its init is ready (an Error: nothing runs). `options`'
  // argv is ignored; on_egress is not called: take_egress() hands the listener over instead.
  static Result<std::unique_ptr<Persistent>> start(RunOptions options);
  ~Persistent();  // kills the sandbox when it still runs (its owner should stop() it first)
  Persistent(const Persistent&) = delete;
  Persistent& operator=(const Persistent&) = delete;

  pid_t init_pid() const;
  const std::string& workdir() const;  // inside the sandbox
  // ward's placeholders in the writable paths (launch.h: Placeholders::wards), host paths.
  std::vector<std::string> placeholders() const;
  // The egress listener and sock_diag socket (empty after the first call, or without egress).
  EgressEndpoint take_egress();
  int socket_fd() const;  // readable when read_events() has something
  int signal_fd() const;  // readable when read_signals() has something

  // Starts a command; its start (or failure) and its end arrive as events for the returned slot.
  Result<int> exec(Exec exec);
  void signal(int slot, int sig);  // to the command's process group
  void stop();                     // the stop protocol (SIGTERM, grace, SIGKILL) for everything
  std::vector<Event> read_events();
  // Reaps the init when it has exited; returns the other signals that arrived (SIGTERM, SIGINT,
  // SIGHUP...) for the owner to act on.
  std::vector<int> read_signals();
  bool ended() const;
  Outcome outcome() const;  // once ended(): timed out, stopped, out of memory, died

 private:
  struct Impl;
  explicit Persistent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Lets the sandbox init replace its visible command line (ward's argv, which may name files and
// flags) with "ward-init". Call from main() before anything else.
void remember_title_area(int argc, char** argv);

// Runs argv in a new sandbox in the foreground and waits for it. An Error means nothing was
// started (bad input or the host cannot provide a required layer).
Result<Outcome> run(const RunOptions& options);

}  // namespace ward::sandbox
