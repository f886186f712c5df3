// Runs the real ward binary the way a user would, as root or as an unprivileged user.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace ward::test {

// Root: ward started by root (the workload still runs unprivileged). Rootless: ward started by
// the unprivileged user `ward-test` that the suite creates when it runs as root.
enum class Mode { kRoot, kRootless };
std::string mode_name(Mode mode);

// Why `mode` cannot be exercised here ("" when it can). Tests skip with this reason:
//   if (auto why = unavailable(GetParam()); !why.empty()) GTEST_SKIP() << why;
std::string unavailable(Mode mode);

struct Result {
  int exit_code = -1;  // 128+N when ward itself was killed by signal N
  std::string out, err;
  bool timed_out = false;
};

struct RunOptions {
  Mode mode = Mode::kRoot;
  std::string cwd;         // where ward is started (its default workdir)
  std::string stdin_data;  // written to ward's stdin, then closed
  std::chrono::milliseconds timeout{30000};
  std::vector<std::string> env;  // extra NAME=value for ward's own environment
  // When set, ward's stdout is this file, created by the mode's user (as `ward ... > FILE` in
  // that user's shell would); Result::out stays empty.
  std::string stdout_file;
  bool close_stdin = false;  // ward starts with fd 0 closed
  // When set, ward starts inside this network namespace (/run/netns/NAME, see netns.h), entered
  // before dropping to the mode's user.
  std::string netns;
  // When set, ward sees this file as /etc/resolv.conf (bound over it in a mount namespace of
  // its own, as `ip netns exec` does with /etc/netns/NAME/resolv.conf).
  std::string resolv_conf;
  // ward() only: ward starts as the leader of a session whose controlling terminal is a new pty,
  // while its stdin, stdout and stderr stay the test's pipes (`cmd </dev/null >log 2>&1` typed
  // at a terminal). The pty's master stays open until ward ends.
  bool controlling_terminal = false;
  // With controlling_terminal: typed at that terminal after `terminal_delay` ("\x03" is a
  // Ctrl-C), and then, with `hang_up`, the terminal hangs up (its master is closed).
  std::string terminal_input;
  std::chrono::milliseconds terminal_delay{0};
  bool hang_up = false;
};

// ward with `args` (for example {"run", "-p", file, "--", "cmd"}).
Result ward(const std::vector<std::string>& args, const RunOptions& options);

// Starts ward in the background; returns its pid. stdout/stderr go to files in `log_dir`.
pid_t ward_background(const std::vector<std::string>& args, const RunOptions& options,
                      const std::string& log_dir);

std::string ward_binary();  // $WARD_TEST_BINARY when set, else the build's
std::string probe_binary();
std::string probe_dir();    // the probe's directory: policies list it read-only
uid_t test_uid(Mode mode);  // the uid ward runs as in `mode`
gid_t test_gid(Mode mode);

// A temporary directory under /tmp, owned by the mode's user, removed at the end.
class TempDir {
 public:
  explicit TempDir(Mode mode);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to `name` (parents created), owned by the mode's user.
  std::string write(const std::string& name, const std::string& content, int mode = 0644) const;
  std::string mkdir(const std::string& name, int mode = 0755) const;

 private:
  std::string path_;
  Mode mode_;
};

// A policy file: the built-in system directories read-only, the probe directory read-only, plus
// `extra` YAML appended verbatim (sections other than filesystem_policy, or a complete
// filesystem_policy when `replace_filesystem`).
std::string policy_yaml(const std::string& extra_read_only = "",
                        const std::string& extra_read_write = "", const std::string& extra = "");

std::string read_file(const std::string& path);
bool exists(const std::string& path);
// Every pid on the host whose command line contains `needle`.
std::vector<pid_t> pids_matching(const std::string& needle);

// ---- sandbox attacks: shared by filesystem_test, process_test and lifecycle_test ----

// The uid/gid the workload runs as (inside and, with the id maps ward writes, on the host).
uid_t workload_uid(Mode mode);
gid_t workload_gid(Mode mode);

// A fixture for tests run in both modes; skips with the reason when the mode is unavailable.
class ModeTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    if (auto why = unavailable(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
  Mode mode() const { return GetParam(); }
};
#define WARD_INSTANTIATE_BOTH_MODES(Suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(                                                                      \
      Modes, Suite, ::testing::Values(::ward::test::Mode::kRoot, ::ward::test::Mode::kRootless), \
      [](const auto& info) { return ::ward::test::mode_name(info.param); })

// `ward run [-p policy_file] -- command`, started in `workdir` (so that is the sandbox's workdir).
Result run_sandbox(Mode mode, const std::string& workdir, const std::vector<std::string>& command,
                   const std::string& policy_file = "", const std::vector<std::string>& env = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

// {probe_binary(), action, args...}
std::vector<std::string> probe(const std::string& action,
                               const std::vector<std::string>& args = {});

// Single quotes for /bin/sh.
std::string shell_quote(const std::string& s);

// Many attempts in one sandbox: a /bin/sh script runs each as its own ward-probe invocation (one
// attempt per process, as the probe's contract says) and reports it on one line that
// parse_probe_report() reads back. `args` is {action, arguments...}; an argument may use shell
// expansions such as "$SIBLING" when `expand` is set. An attempt with `shell` set runs that shell
// command instead of the probe (refused = a non-zero exit). Labels contain no spaces.
struct ProbeAttempt {
  std::string label;
  std::vector<std::string> args;
  bool expand = false;
  std::string shell;
};
struct ProbeOutcome {
  int exit_code = -1;  // -1: the attempt never reported
  std::string out;     // the probe's output, newlines as spaces
};
std::string probe_script(const std::vector<ProbeAttempt>& attempts,
                         const std::string& prologue = "");
std::map<std::string, ProbeOutcome> parse_probe_report(const std::string& out);
// EXPECTs that every attempt ran and failed (probe exit 1).
void expect_all_refused(const std::vector<ProbeAttempt>& attempts,
                        const std::map<std::string, ProbeOutcome>& report, const Result& run);

// Polls `done` every 20 ms until it is true or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// A process started with ward_background(): killed with SIGKILL and reaped when it goes out of
// scope, whatever path the test took.
class Background {
 public:
  Background(pid_t pid, std::string log_dir) : pid_(pid), log_dir_(std::move(log_dir)) {}
  ~Background();
  Background(const Background&) = delete;
  pid_t pid() const { return pid_; }
  // Waits for the exit; returns the code as ward() reports it, or -1 after `timeout` (the process
  // is then killed).
  int wait(std::chrono::milliseconds timeout);
  std::string out() const { return read_file(log_dir_ + "/ward.out"); }
  std::string err() const { return read_file(log_dir_ + "/ward.err"); }

 private:
  pid_t pid_;
  std::string log_dir_;
  bool reaped_ = false;
};

// Digits unique to this test process and call, to find a sandbox's processes from the host by
// their command line. Pass them so that only the processes to find carry "1000.<marker>", e.g.
// {"/bin/sh", "-c", "sleep 1000.$0 & sleep 1000.$0", marker}: the shell's own command line then
// holds the marker but not "1000.<marker>".
std::string unique_marker();

// A shell command run on the host as the test's own user: its exit code and combined output.
std::pair<int, std::string> host_shell(const std::string& command);
// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// RFC 4648 base64 of `bytes`, and back (what is not base64 decodes to "").
std::string base64(std::string_view bytes);
std::string unbase64(std::string_view text);
// SIGKILL to each pid (cleanup of leftovers so that a failing test leaves nothing behind).
void kill_pids(const std::vector<pid_t>& pids);
// Every directory named `name` under /sys/fs/cgroup (any hierarchy, any depth).
std::vector<std::string> cgroups_named(const std::string& name);

// A ModeTest with a temporary directory (owned by the mode's user) and a workdir inside it, where
// ward is started; policy files live beside the workdir, out of the sandbox's sight.
class WorkdirTest : public ModeTest {
 protected:
  void SetUp() override {
    ModeTest::SetUp();
    if (IsSkipped()) return;
    dir_ = std::make_unique<TempDir>(mode());
    work_ = dir_->mkdir("work");
  }

  // The policy run() uses when given none.
  virtual std::string default_policy() { return dir_->write("policy.yaml", policy_yaml()); }

  Result run(const std::vector<std::string>& command, const std::string& policy_file = "",
             const std::vector<std::string>& env = {}) {
    return run_sandbox(mode(), work_, command, policy_file.empty() ? default_policy() : policy_file,
                       env);
  }

  // Runs `attempts` in one sandbox and expects every one of them refused.
  void expect_refused(const std::vector<ProbeAttempt>& attempts, const std::string& prologue = "",
                      const std::string& policy_file = "",
                      const std::vector<std::string>& env = {}) {
    Result r = run({"/bin/sh", "-c", probe_script(attempts, prologue)}, policy_file, env);
    expect_all_refused(attempts, parse_probe_report(r.out), r);
  }

  std::string w(const std::string& name) const { return work_ + "/" + name; }

  std::unique_ptr<TempDir> dir_;
  std::string work_;
};

}  // namespace ward::test
