// A private test network for the egress tests: two network namespaces joined by a veth pair, with
// no default route anywhere, so that nothing a test does can leave them.
//
//   "ward" namespace  (ward runs here)   veth 10.231.X.1/24  <-->  10.231.X.2/24 veth
//   "upstream" namespace (test servers run here)
//
// Needs root and iproute2's `ip`; TestNetwork::unavailable() says why not otherwise.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ward::test {

class TestNetwork {
 public:
  // "" when a TestNetwork can be built here; else why not (for GTEST_SKIP).
  static std::string unavailable();

  TestNetwork();  // check ok() / error() afterwards
  ~TestNetwork();
  TestNetwork(const TestNetwork&) = delete;
  TestNetwork& operator=(const TestNetwork&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  const std::string& ward_ns() const { return ward_ns_; }          // ward runs here
  const std::string& upstream_ns() const { return upstream_ns_; }  // servers run here
  const std::string& ward_ip() const { return ward_ip_; }          // 10.231.X.1
  const std::string& upstream_ip() const { return upstream_ip_; }  // 10.231.X.2

  // `ip -n NS addr add CIDR dev DEV` (e.g. 169.254.169.254/32 on lo). Returns false on failure.
  bool add_address(const std::string& ns, const std::string& cidr, const std::string& dev);

  // Starts `argv` inside namespace `ns` with stdout/stderr appended to `log`; the process is
  // killed (SIGKILL, by pid) and reaped by the destructor or by stop(). Returns its pid, -1 on
  // failure.
  pid_t spawn(const std::string& ns, const std::vector<std::string>& argv, const std::string& log);
  void stop(pid_t pid);

 private:
  std::string ward_ns_, upstream_ns_, ward_ip_, upstream_ip_, error_;
  std::vector<pid_t> pids_;
};

// Enters network namespace `name` (/run/netns/NAME) in the calling process; false on failure.
bool enter_netns(const std::string& name);

// The test servers of tests/upstream/upstream.py, run in one namespace of a TestNetwork.
class Upstream {
 public:
  // `args`: upstream.py's serve options other than --log and --ready (e.g. {"--http-port",
  // "8080"}). Waits (polling) until every socket listens; ok() tells whether it did.
  Upstream(TestNetwork& net, const std::string& ns, const std::string& dir,
           const std::vector<std::string>& args, const std::string& name = "upstream");
  ~Upstream();
  Upstream(const Upstream&) = delete;

  bool ok() const { return pid_ > 0; }
  const std::string& error() const { return error_; }
  const std::string& log_path() const { return log_; }
  std::string log() const;
  // Lines of the log that start with `prefix` (e.g. "REQ ", "CONN ").
  std::vector<std::string> lines(const std::string& prefix) const;
  // Number of requests received whose log line contains `needle` (any request when "").
  int requests(const std::string& needle = "") const;
  // Number of requests received on `port` with exactly this method and target ("/a?b").
  int requests_to(int port, const std::string& method, const std::string& target) const;
  int connections() const { return static_cast<int>(lines("CONN ").size()); }

 private:
  TestNetwork& net_;
  pid_t pid_ = -1;
  std::string log_, error_;
};

// Where tests/upstream lives (upstream.py, client.py); sandboxes list it read-only.
std::string upstream_dir();

}  // namespace ward::test
