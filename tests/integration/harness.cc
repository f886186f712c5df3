#include "integration/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

extern char** environ;

namespace ward::test {
namespace {

constexpr const char* kTestUser = "ward-test";

struct TestUser {
  bool available = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string why;
};

const TestUser& test_user() {
  static TestUser user = [] {
    TestUser u;
    if (::geteuid() != 0) {
      u.available = true;  // we are the unprivileged user already
      u.uid = ::geteuid();
      u.gid = ::getegid();
      return u;
    }
    struct passwd* pw = ::getpwnam(kTestUser);
    if (!pw) {
      // The suite creates its unprivileged user when it runs as root (tools/test.sh does too).
      int rc = std::system(
          "useradd --system --no-create-home --shell /usr/sbin/nologin ward-test "
          ">/dev/null 2>&1");
      (void)rc;
      pw = ::getpwnam(kTestUser);
    }
    if (!pw) {
      u.why = "cannot create the unprivileged user ward-test (useradd failed)";
      return u;
    }
    u.available = true;
    u.uid = pw->pw_uid;
    u.gid = pw->pw_gid;
    return u;
  }();
  return user;
}

void set_cloexec_all_above(int fd) {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    int n = std::atoi(e->d_name);
    if (n > fd && n != ::dirfd(d)) ::fcntl(n, F_SETFD, FD_CLOEXEC);
  }
  ::closedir(d);
}

// Child side of ward()/ward_background(): drop to the mode's user, then exec ward.
[[noreturn]] void exec_ward(const std::vector<std::string>& args, const RunOptions& options) {
  if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(200);
  if (options.mode == Mode::kRootless && ::geteuid() == 0) {
    const TestUser& u = test_user();
    if (::setgroups(0, nullptr) != 0 || ::setresgid(u.gid, u.gid, u.gid) != 0 ||
        ::setresuid(u.uid, u.uid, u.uid) != 0)
      ::_exit(201);
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& e : options.env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = {ward_binary()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  set_cloexec_all_above(2);
  ::execve(argv[0], argv.data(), envp.data());
  ::_exit(202);
}

std::int64_t now_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

std::string mode_name(Mode mode) {
  return mode == Mode::kRoot ? "Root" : "Rootless";
}

std::string unavailable(Mode mode) {
  if (mode == Mode::kRoot && ::geteuid() != 0) return "root mode needs the suite to run as root";
  if (mode == Mode::kRootless && !test_user().available) return test_user().why;
  return {};
}

std::string ward_binary() {
  return WARD_BINARY;
}
std::string probe_binary() {
  return WARD_PROBE;
}
std::string probe_dir() {
  std::string p = WARD_PROBE;
  return p.substr(0, p.rfind('/'));
}

uid_t test_uid(Mode mode) {
  return mode == Mode::kRoot ? 0 : test_user().uid;
}
gid_t test_gid(Mode mode) {
  return mode == Mode::kRoot ? 0 : test_user().gid;
}

Result ward(const std::vector<std::string>& args, const RunOptions& options) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    exec_ward(args, options);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (!options.stdin_data.empty()) {
    ssize_t n = ::write(in[1], options.stdin_data.data(), options.stdin_data.size());
    (void)n;
  }
  ::close(in[1]);

  Result r;
  std::int64_t deadline = now_ms() + options.timeout.count();
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    std::int64_t left = deadline - now_ms();
    if (left <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, n);
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

pid_t ward_background(const std::vector<std::string>& args, const RunOptions& options,
                      const std::string& log_dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // out of the test runner's process group: a test's signals stay its own
    int null = ::open("/dev/null", O_RDONLY);
    int o = ::open((log_dir + "/ward.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open((log_dir + "/ward.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    exec_ward(args, options);
  }
  return pid;
}

TempDir::TempDir(Mode mode) : mode_(mode) {
  char tmpl[] = "/tmp/ward-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  path_ = tmpl;
  ::chmod(path_.c_str(), 0755);
  if (mode == Mode::kRootless && ::geteuid() == 0) {
    int rc = ::chown(path_.c_str(), test_uid(mode), test_gid(mode));
    (void)rc;
  }
}

TempDir::~TempDir() {
  std::string cmd = "rm -rf '" + path_ + "'";
  int rc = std::system(cmd.c_str());
  (void)rc;
}

std::string TempDir::mkdir(const std::string& name, int mode) const {
  std::string p = file(name);
  std::string cmd = "mkdir -p '" + p + "'";
  int rc = std::system(cmd.c_str());
  (void)rc;
  ::chmod(p.c_str(), mode);
  if (mode_ == Mode::kRootless && ::geteuid() == 0) {
    std::string chown = "chown -R " + std::to_string(test_uid(mode_)) + ":" +
                        std::to_string(test_gid(mode_)) + " '" + path_ + "'";
    rc = std::system(chown.c_str());
  }
  return p;
}

std::string TempDir::write(const std::string& name, const std::string& content, int mode) const {
  std::string p = file(name);
  std::string dir = p.substr(0, p.rfind('/'));
  if (dir != path_) this->mkdir(dir.substr(path_.size() + 1));
  {
    std::ofstream out(p, std::ios::binary);
    out << content;
  }
  ::chmod(p.c_str(), mode);
  if (mode_ == Mode::kRootless && ::geteuid() == 0) {
    int rc = ::chown(p.c_str(), test_uid(mode_), test_gid(mode_));
    (void)rc;
  }
  return p;
}

std::string policy_yaml(const std::string& extra_read_only, const std::string& extra_read_write,
                        const std::string& extra) {
  std::string y =
      "version: 1\n"
      "filesystem_policy:\n"
      "  include_workdir: true\n"
      "  read_only: [/usr, /bin, /lib, /lib64, /etc, " +
      probe_dir() + (extra_read_only.empty() ? "" : ", " + extra_read_only) +
      "]\n"
      "  read_write: [/tmp" +
      (extra_read_write.empty() ? "" : ", " + extra_read_write) + "]\n";
  return y + extra;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<pid_t> pids_matching(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    std::string cmd = read_file("/proc/" + std::string(e->d_name) + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

}  // namespace ward::test
