#include "integration/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "integration/harness.h"

namespace ward::test {
namespace {

// Runs `cmd` through /bin/sh; returns its exit status, with its output in `out`.
int sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string find_ip() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

}  // namespace

std::string upstream_dir() {
  return WARD_UPSTREAM_DIR;
}

bool enter_netns(const std::string& name) {
  int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

std::string TestNetwork::unavailable() {
  if (::geteuid() != 0)
    return "the egress tests build private network namespaces (ip netns), which needs root";
  if (find_ip().empty()) return "iproute2's `ip` is not installed";
  if (::access("/usr/bin/python3", X_OK) != 0)
    return "/usr/bin/python3 (the test upstream servers) is not installed";
  return {};
}

// Namespaces left behind by a test runner that was killed (its destructors never ran): their
// names carry the runner's pid. Only the names are removed; the processes inside died with the
// runner (PR_SET_PDEATHSIG).
static void remove_stale_namespaces(const std::string& ip) {
  DIR* d = ::opendir("/run/netns");
  if (!d) return;
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("ward-t", 0) != 0) continue;
    pid_t owner = std::atoi(name.c_str() + 6);
    if (owner > 0 && owner != ::getpid() && !exists("/proc/" + std::to_string(owner)))
      stale.push_back(name);
  }
  ::closedir(d);
  for (const std::string& name : stale) sh(ip + " netns del " + name);
}

TestNetwork::TestNetwork() {
  static int counter = 0;
  ++counter;
  const std::string base = "ward-t" + std::to_string(::getpid()) + "-" + std::to_string(counter);
  int x = static_cast<int>((::getpid() * 7 + counter) % 250) + 2;
  ward_ns_ = base + "-w";
  upstream_ns_ = base + "-u";
  ward_ip_ = "10.231." + std::to_string(x) + ".1";
  upstream_ip_ = "10.231." + std::to_string(x) + ".2";
  const std::string ip = find_ip();
  if (ip.empty()) {
    error_ = "iproute2's `ip` is not installed";
    return;
  }
  if (counter == 1) remove_stale_namespaces(ip);
  const std::string w = ip + " -n " + ward_ns_ + " ", u = ip + " -n " + upstream_ns_ + " ";
  const std::vector<std::string> steps = {
      ip + " netns add " + ward_ns_,
      ip + " netns add " + upstream_ns_,
      w + "link add veth0 type veth peer name veth1 netns " + upstream_ns_,
      w + "addr add " + ward_ip_ + "/24 dev veth0",
      u + "addr add " + upstream_ip_ + "/24 dev veth1",
      w + "link set lo up",
      u + "link set lo up",
      w + "link set veth0 up",
      u + "link set veth1 up",
  };
  for (const std::string& step : steps) {
    std::string out;
    if (sh(step, &out) != 0) {
      error_ = "`" + step + "` failed: " + out;
      return;
    }
  }
  // The veth pair may take a moment to be usable (carrier): wait for both ends to be UP.
  wait_until(
      [&] {
        std::string a, b;
        sh(w + "-o link show veth0", &a);
        sh(u + "-o link show veth1", &b);
        return a.find("LOWER_UP") != std::string::npos && b.find("LOWER_UP") != std::string::npos;
      },
      std::chrono::seconds(5));
}

TestNetwork::~TestNetwork() {
  for (pid_t pid : pids_) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  const std::string ip = find_ip();
  if (ip.empty()) return;
  for (const std::string& ns : {ward_ns_, upstream_ns_})
    if (exists("/run/netns/" + ns)) sh(ip + " netns del " + ns);
}

bool TestNetwork::add_address(const std::string& ns, const std::string& cidr,
                              const std::string& dev) {
  std::string out;
  return sh(find_ip() + " -n " + ns + " addr add " + cidr + " dev " + dev, &out) == 0;
}

pid_t TestNetwork::spawn(const std::string& ns, const std::vector<std::string>& argv,
                         const std::string& log) {
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null < 0 || out < 0 || ::dup2(null, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0)
      ::_exit(120);
    ::close_range(3, ~0U, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test runner killed by a timeout leaves no server
    if (::getppid() != parent) ::_exit(123);
    if (!enter_netns(ns)) ::_exit(121);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(122);
  }
  pids_.push_back(pid);
  return pid;
}

void TestNetwork::stop(pid_t pid) {
  for (auto it = pids_.begin(); it != pids_.end(); ++it) {
    if (*it != pid) continue;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pids_.erase(it);
    return;
  }
}

Upstream::Upstream(TestNetwork& net, const std::string& ns, const std::string& dir,
                   const std::vector<std::string>& args, const std::string& name)
    : net_(net), log_(dir + "/" + name + ".log") {
  const std::string ready = dir + "/" + name + ".ready";
  const std::string output = dir + "/" + name + ".out";
  std::vector<std::string> argv = {
      "/usr/bin/python3", upstream_dir() + "/upstream.py", "--log", log_, "--ready", ready};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = net_.spawn(ns, argv, output);
  if (pid < 0) {
    error_ = "fork failed";
    return;
  }
  bool died = false;
  bool up = wait_until(
      [&] {
        if (exists(ready)) return true;
        // A zombie (not reaped here, so that its pid cannot be reused before stop()).
        std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        size_t paren = stat.rfind(')');
        died = paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
        return died;
      },
      std::chrono::seconds(15));
  if (!up || died || !exists(ready)) {
    error_ = name + " did not start (" + (died ? "it exited" : "not ready after 15 s") +
             "): " + read_file(output);
    net_.stop(pid);
    return;
  }
  pid_ = pid;
}

Upstream::~Upstream() {
  if (pid_ > 0) net_.stop(pid_);
}

std::string Upstream::log() const {
  return read_file(log_);
}

std::vector<std::string> Upstream::lines(const std::string& prefix) const {
  std::vector<std::string> out;
  std::istringstream in(log());
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) out.push_back(line);
  return out;
}

int Upstream::requests(const std::string& needle) const {
  int n = 0;
  for (const std::string& line : lines("REQ "))
    if (needle.empty() || line.find(needle) != std::string::npos) ++n;
  return n;
}

int Upstream::requests_to(int port, const std::string& method, const std::string& target) const {
  int n = 0;
  for (const std::string& line : lines("REQ ")) {
    std::istringstream in(line);
    std::string tag, id, p, m, t;
    in >> tag >> id >> p >> m >> t;
    if (p == std::to_string(port) && m == method && t == target) ++n;
  }
  return n;
}

}  // namespace ward::test
