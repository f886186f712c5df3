#include "integration/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "creds/scan.h"
#include "integration/netns.h"

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
    u.uid = pw->pw_uid;
    u.gid = pw->pw_gid;
    // The unprivileged user must be able to reach the build (a clone under /root is not).
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(u.gid, u.gid, u.gid) != 0 ||
          ::setresuid(u.uid, u.uid, u.uid) != 0)
        ::_exit(2);
      ::_exit(::access(WARD_BINARY, X_OK) == 0 && ::access(WARD_PROBE, X_OK) == 0 ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      u.why = "the unprivileged user ward-test cannot execute " + std::string(WARD_BINARY) +
              " (a parent directory is not world-searchable): clone the repository somewhere "
              "like /tmp or /srv to run the rootless half";
      return u;
    }
    u.available = true;
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
  if (!options.netns.empty() && !enter_netns(options.netns)) ::_exit(204);
  if (!options.resolv_conf.empty() &&
      (::unshare(CLONE_NEWNS) != 0 ||
       ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
       ::mount(options.resolv_conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0))
    ::_exit(205);
  if (options.mode == Mode::kRootless && ::geteuid() == 0) {
    const TestUser& u = test_user();
    if (::setgroups(0, nullptr) != 0 || ::setresgid(u.gid, u.gid, u.gid) != 0 ||
        ::setresuid(u.uid, u.uid, u.uid) != 0)
      ::_exit(201);
  }
  // If the test runner dies (a ctest timeout kills it), ward dies too, and its sandbox with it.
  // Set after the uid change, which clears it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (options.close_stdin) ::close(0);
  if (!options.stdout_file.empty()) {
    int fd = ::open(options.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::dup2(fd, 1) < 0) ::_exit(203);
    ::close(fd);
  }
  // options.env adds to the test's environment, or replaces a variable of it (HOME, say).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry = *e;
    const std::string_view name = entry.substr(0, entry.find('='));
    if (std::none_of(options.env.begin(), options.env.end(), [&](const std::string& o) {
          return o.size() > name.size() && o.compare(0, name.size(), name) == 0 &&
                 o[name.size()] == '=';
        }))
      env_strings.emplace_back(entry);
  }
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
  // Another build's ward (an older commit's: does a new attack test fail there?).
  if (const char* other = std::getenv("WARD_TEST_BINARY"); other && *other) return other;
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
  int master = -1;
  if (options.controlling_terminal) {
    master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
      ADD_FAILURE() << "no pty for a controlling terminal: " << std::strerror(errno);
      return {};
    }
  }
  const std::string terminal = master >= 0 ? ::ptsname(master) : "";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    if (master >= 0) {
      // A session leader's first terminal opened without O_NOCTTY becomes its controlling one.
      int slave = ::setsid() < 0 ? -1 : ::open(terminal.c_str(), O_RDWR | O_CLOEXEC);
      if (slave < 0) ::_exit(206);
    }
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
  std::int64_t typing_at = master >= 0 && (!options.terminal_input.empty() || options.hang_up)
                               ? now_ms() + options.terminal_delay.count()
                               : 0;
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    std::int64_t left = deadline - now_ms();
    if (left <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (typing_at && now_ms() >= typing_at) {
      typing_at = 0;
      ssize_t n = ::write(master, options.terminal_input.data(), options.terminal_input.size());
      (void)n;
      if (options.hang_up) {
        ::close(master);
        master = -1;
      }
    }
    if (typing_at) left = std::min(left, std::max<std::int64_t>(typing_at - now_ms(), 1));
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
  if (master >= 0) ::close(master);
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

// ---- sandbox attacks ----

uid_t workload_uid(Mode mode) {
  return mode == Mode::kRoot ? 65534 : test_uid(mode);  // root: ward's default unprivileged id
}
gid_t workload_gid(Mode mode) {
  return mode == Mode::kRoot ? 65534 : test_gid(mode);
}

Result run_sandbox(Mode mode, const std::string& workdir, const std::vector<std::string>& command,
                   const std::string& policy_file, const std::vector<std::string>& env,
                   std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {"run"};
  if (!policy_file.empty()) args.insert(args.end(), {"-p", policy_file});
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  RunOptions options;
  options.mode = mode;
  options.cwd = workdir;
  options.env = env;
  options.timeout = timeout;
  return ward(args, options);
}

std::vector<std::string> probe(const std::string& action, const std::vector<std::string>& args) {
  std::vector<std::string> out = {probe_binary(), action};
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

namespace {
constexpr const char* kReportTag = "@@probe ";
}  // namespace

std::string probe_script(const std::vector<ProbeAttempt>& attempts, const std::string& prologue) {
  std::string script = prologue + "\n";
  for (const ProbeAttempt& a : attempts) {
    std::string cmd = shell_quote(probe_binary());
    for (const auto& arg : a.args) cmd += " " + (a.expand ? "\"" + arg + "\"" : shell_quote(arg));
    if (!a.shell.empty()) cmd = "{ " + a.shell + "; } </dev/null";
    script += "out=$(" + cmd + " 2>&1); rc=$?; printf '" + std::string(kReportTag) +
              "%s %s %s\\n' \"$rc\" " + shell_quote(a.label) +
              " \"$(printf '%s' \"$out\" | tr '\\n' ' ')\"\n";
  }
  return script;
}

std::map<std::string, ProbeOutcome> parse_probe_report(const std::string& out) {
  // Lines: "@@probe RC LABEL OUTPUT..." (labels have no spaces).
  std::map<std::string, ProbeOutcome> report;
  std::istringstream in(out);
  std::string line;
  const std::string tag = kReportTag;
  while (std::getline(in, line)) {
    if (line.compare(0, tag.size(), tag) != 0) continue;
    std::istringstream fields(line.substr(tag.size()));
    ProbeOutcome o;
    std::string label;
    fields >> o.exit_code >> label;
    std::getline(fields, o.out);
    if (!o.out.empty() && o.out.front() == ' ') o.out.erase(0, 1);
    while (!o.out.empty() && o.out.back() == ' ') o.out.pop_back();
    report[label] = o;
  }
  return report;
}

void expect_all_refused(const std::vector<ProbeAttempt>& attempts,
                        const std::map<std::string, ProbeOutcome>& report, const Result& run) {
  for (const ProbeAttempt& a : attempts) {
    auto it = report.find(a.label);
    if (it == report.end()) {
      ADD_FAILURE() << a.label << ": the attempt did not report; ward exit " << run.exit_code
                    << "\nstdout: " << run.out << "\nstderr: " << run.err;
      continue;
    }
    if (std::getenv("WARD_TEST_VERBOSE"))
      std::printf("  %-40s exit %d: %s\n", a.label.c_str(), it->second.exit_code,
                  it->second.out.c_str());
    if (!a.shell.empty()) {
      EXPECT_NE(it->second.exit_code, 0)
          << a.label << " was not refused (output: " << it->second.out << ")";
      continue;
    }
    EXPECT_EQ(it->second.exit_code, 1)
        << a.label << " was not refused (probe exit " << it->second.exit_code
        << ", output: " << it->second.out << ")";
  }
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  std::int64_t deadline = now_ms() + timeout.count();
  for (;;) {
    if (done()) return true;
    if (now_ms() >= deadline) return done();
    ::usleep(20000);
  }
}

Background::~Background() {
  if (reaped_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

int Background::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return -1;
  std::int64_t deadline = now_ms() + timeout.count();
  int status = 0;
  for (;;) {
    pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == pid_) break;
    if (got < 0 || now_ms() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      reaped_ = true;
      return -1;
    }
    ::usleep(10000);
  }
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string unique_marker() {
  static int counter = 0;
  return std::to_string(::getpid()) + std::to_string(++counter);
}

std::pair<int, std::string> host_shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, out};
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string base64(std::string_view bytes) {
  return creds::detail::base64_encode(bytes);
}

std::string unbase64(std::string_view text) {
  return creds::detail::base64_decode(text).value_or("");
}

void kill_pids(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids)
    if (pid > 1) ::kill(pid, SIGKILL);
}

namespace {
void find_dirs_named(const std::string& dir, const std::string& name, int depth,
                     std::vector<std::string>& out) {
  if (depth > 8) return;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    std::string path = dir + "/" + e->d_name;
    if (name == e->d_name) out.push_back(path);
    find_dirs_named(path, name, depth + 1, out);
  }
  ::closedir(d);
}
}  // namespace

std::vector<std::string> cgroups_named(const std::string& name) {
  std::vector<std::string> out;
  find_dirs_named("/sys/fs/cgroup", name, 0, out);
  return out;
}

}  // namespace ward::test
