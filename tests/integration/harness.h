// Runs the real ward binary the way a user would, as root or as an unprivileged user.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

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
};

// ward with `args` (for example {"run", "-p", file, "--", "cmd"}).
Result ward(const std::vector<std::string>& args, const RunOptions& options);

// Starts ward in the background; returns its pid. stdout/stderr go to files in `log_dir`.
pid_t ward_background(const std::vector<std::string>& args, const RunOptions& options,
                      const std::string& log_dir);

std::string ward_binary();
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

}  // namespace ward::test
