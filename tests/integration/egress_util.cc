#include "integration/egress_util.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ward::test {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string node22() {
  const char* env = std::getenv("WARD_TEST_NODE");
  std::string path = env && *env ? env : WARD_NODE22;
  return ::access(path.c_str(), X_OK) == 0 ? path : "";
}

std::string node22_missing() {
  if (!node22().empty()) return "";
  return std::string("Node 22 is not installed at ") + WARD_NODE22 +
         " (tools/test.sh installs it; WARD_TEST_NODE overrides the path)";
}

std::string python_real() {
  char buf[PATH_MAX];
  return ::realpath("/usr/bin/python3", buf) ? buf : "/usr/bin/python3";
}

bool ward_run_help_lists(const std::string& option) {
  static const std::string help = [] {
    RunOptions options;
    Result r = ward({"run", "--help"}, options);
    return r.out + r.err;
  }();
  return help.find(option) != std::string::npos;
}

std::string sh_output(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

std::string endpoint(const std::string& host, const std::string& ports, bool allowed_ips,
                     const std::string& extra) {
  return "{host: \"" + host + "\", " + ports +
         (allowed_ips ? std::string(", allowed_ips: [\"") + kPrivateRange + "\"]" : "") +
         (extra.empty() ? "" : ", " + extra) + "}";
}

std::string rule(const std::string& key, const std::vector<std::string>& endpoints,
                 const std::vector<std::string>& binaries) {
  std::string y = "  " + key + ":\n    endpoints:\n";
  for (const auto& e : endpoints) y += "      - " + e + "\n";
  y += "    binaries:\n";
  for (const auto& b : binaries) y += "      - {path: \"" + b + "\"}\n";
  return y;
}

std::string client(const std::string& args) {
  return "/usr/bin/python3 " + upstream_dir() + "/client.py " + args;
}

std::string curl_code(const std::string& url, const std::string& extra) {
  return std::string(kCurl) + " -s -o /dev/null -w '%{http_code}' " + extra + " " +
         shell_quote(url);
}

std::string curl_tunnel(const std::string& url, const std::string& extra) {
  return std::string(kCurl) + " -s -p -o /dev/null -w '%{http_connect} %{http_code}' " + extra +
         " " + shell_quote(url);
}

json parse_json(const std::string& text) {
  return json::parse(text, nullptr, false);
}

// ---- EgressFixture ----

void EgressFixture::SetUp() {
  WorkdirTest::SetUp();
  if (IsSkipped()) return;
  if (auto why = TestNetwork::unavailable(); !why.empty()) GTEST_SKIP() << why;
  ASSERT_TRUE(ward_has_egress())
      << "this ward has no egress proxy: `ward run --help` does not list --hosts";
  net_ = std::make_unique<TestNetwork>();
  ASSERT_TRUE(net_->ok()) << net_->error();
  const std::string up = net_->upstream_ip();
  hosts_ = dir_->write("hosts", "# test names for ward --hosts\n" + up +
                                    " api.test other.test wrong.test example.com api.example.com "
                                    "a.b.example.com private.test\n"
                                    "127.0.0.1 loop.test\n"
                                    "::1 loop6.test\n"
                                    "169.254.169.254 metadata.test\n");
  audit_ = dir_->file("audit.jsonl");
}

void EgressFixture::start_upstream(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--http-port", "8080", "--http-port", "8081",
                                   "--http-port", "8082", "--tcp-port",  "9000",
                                   "--udp-port",  "53"};
  args.insert(args.end(), extra.begin(), extra.end());
  up_ = std::make_unique<Upstream>(*net_, net_->upstream_ns(), dir_->path(), args);
  ASSERT_TRUE(up_->ok()) << up_->error();
}

std::string make_test_ca(const std::string& dir, const std::string& san, const std::string& leaf) {
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "set -e; cd " + shell_quote(dir) + "\n" +
      // The CA.
      "openssl req -x509 " + ec +
      " -days 2 -subj /CN=ward-test-ca -keyout ca.key -out ca.pem "
      "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign\n"
      "printf 'subjectAltName=" +
      san +
      "\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > leaf.ext\n"
      // The leaf.
      "openssl req " +
      ec + " -subj /CN=ward-test -keyout " + leaf + ".key -out " + leaf +
      ".csr\n"
      "openssl x509 -req -in " +
      leaf + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile leaf.ext -out " +
      leaf + ".pem\nchmod 644 ca.pem " + leaf + ".pem\n";
  std::string out = sh_output("/bin/sh -c " + shell_quote(script) + " 2>&1 || echo FAILED");
  return out.find("FAILED") == std::string::npos ? "" : out;
}

void EgressFixture::make_test_certs() {
  if (!certs_.empty()) return;
  if (::access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl is not installed";
  const std::string dir = dir_->mkdir("certs");
  if (std::string failed = make_test_ca(dir, "DNS:api.test,DNS:other.test"); !failed.empty())
    FAIL() << "generating the test certificates: " << failed;
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "set -e; cd " + shell_quote(dir) + "\n" +
      // Self-signed, for api.test.
      "openssl req -x509 " + ec +
      " -days 2 -subj /CN=api.test -keyout self.key -out self.pem "
      "-addext subjectAltName=DNS:api.test\n"
      // Signed by the CA, for api.test, but expired: -days -1 puts notAfter a day before now.
      "openssl req " +
      ec +
      " -subj /CN=api.test -keyout expired.key -out expired.csr\n"
      "openssl x509 -req -in expired.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days -1 "
      "-extfile leaf.ext -out expired.pem\n"
      "chmod 644 ca.pem leaf.pem self.pem expired.pem\n";
  std::string out = sh_output("/bin/sh -c " + shell_quote(script) + " 2>&1 || echo FAILED");
  ASSERT_EQ(out.find("FAILED"), std::string::npos) << "generating the test certificates: " << out;
  certs_ = dir;
}

void EgressFixture::start_upstream_with_tls(const std::vector<std::string>& extra) {
  ASSERT_NO_FATAL_FAILURE(make_test_certs());
  if (IsSkipped()) return;
  std::vector<std::string> args = {"--tls-port",     "8443",  "--cert",
                                   cert("leaf.pem"), "--key", cert("leaf.key")};
  args.insert(args.end(), extra.begin(), extra.end());
  start_upstream(args);
}

std::string EgressFixture::policy(const std::string& rules, const std::string& sections,
                                  const std::string& name) {
  return dir_->write(name, policy_text(rules, sections));
}

std::string EgressFixture::policy_text(const std::string& rules, const std::string& sections,
                                       const std::string& extra_read_only) {
  std::string ro = upstream_dir();
  if (!certs_.empty()) ro += ", " + certs_;
  if (std::string node = node22(); !node.empty()) ro += ", " + node_root(node);
  if (!extra_read_only.empty()) ro += ", " + extra_read_only;
  return policy_yaml(
      ro, "",
      sections + (rules.empty() ? "network_policies: {}\n" : "network_policies:\n" + rules));
}

std::string EgressFixture::node_root(const std::string& node) {
  std::string dir = node.substr(0, node.rfind('/'));
  return dir.substr(0, dir.rfind('/'));
}

std::vector<std::string> EgressFixture::ward_args(const std::string& policy_file,
                                                  const std::vector<std::string>& options,
                                                  const std::vector<std::string>& command) {
  std::vector<std::string> args = {"run", "-p", policy_file, "--hosts", hosts_, "--audit", audit_};
  args.insert(args.end(), options.begin(), options.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

RunOptions EgressFixture::run_options(milliseconds timeout) {
  RunOptions o;
  o.mode = mode();
  o.cwd = work_;
  o.netns = net_->ward_ns();
  o.timeout = timeout;
  o.env = {"WARD_STATE_DIR=" + state_dir()};
  o.env.insert(o.env.end(), ward_env_.begin(), ward_env_.end());
  o.resolv_conf = resolv_conf_;
  return o;
}

Result EgressFixture::run_ward(const std::vector<std::string>& command,
                               const std::string& policy_file,
                               const std::vector<std::string>& options, milliseconds timeout) {
  return ward(ward_args(policy_file, options, command), run_options(timeout));
}

std::map<std::string, ProbeOutcome> EgressFixture::attempts(
    const std::vector<std::pair<std::string, std::string>>& commands,
    const std::string& policy_file, const std::vector<std::string>& options, Result* result,
    milliseconds timeout) {
  std::vector<ProbeAttempt> list;
  for (const auto& [label, cmd] : commands) list.push_back({label, {}, false, cmd});
  Result r = run_ward({"/bin/sh", "-c", probe_script(list)}, policy_file, options, timeout);
  EXPECT_EQ(r.exit_code, 0) << "ward failed\nstdout: " << r.out << "\nstderr: " << r.err;
  auto report = parse_probe_report(r.out);
  for (const auto& [label, cmd] : commands)
    EXPECT_TRUE(report.count(label)) << label << " did not report\nstderr: " << r.err;
  if (std::getenv("WARD_TEST_VERBOSE"))
    for (const auto& [label, o] : report)
      std::printf("  %-28s exit %d: %s\n", label.c_str(), o.exit_code, o.out.c_str());
  if (result) *result = r;
  return report;
}

std::unique_ptr<Background> EgressFixture::start_ward(const std::vector<std::string>& command,
                                                      const std::string& policy_file,
                                                      const std::vector<std::string>& options) {
  pid_t pid =
      ward_background(ward_args(policy_file, options, command), run_options(), dir_->path());
  return std::make_unique<Background>(pid, dir_->path());
}

std::vector<json> EgressFixture::audit() const {
  std::vector<json> out;
  std::istringstream in(read_file(audit_));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = parse_json(line);
    EXPECT_FALSE(j.is_discarded()) << "an audit line is not JSON: " << line;
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

std::vector<json> EgressFixture::records(int class_uid, int activity_id,
                                         const std::string& host) const {
  std::vector<json> out;
  for (const json& r : audit()) {
    if (at(r, "/class_uid", 0) != class_uid) continue;
    if (activity_id >= 0 && at(r, "/activity_id", -1) != activity_id) continue;
    if (at(r, "/dst_endpoint/hostname", "") != host) continue;
    out.push_back(r);
  }
  return out;
}

void EgressFixture::replace_policy(const std::string& path, const std::string& text) {
  std::string tmp = dir_->write("policy.yaml.new", text);
  ASSERT_EQ(::rename(tmp.c_str(), path.c_str()), 0);
}

void EgressFixture::run_reload(const std::string& workload, const std::string& policy_file,
                               const std::vector<std::string>& options, const std::string& text,
                               bool sighup, json& report) {
  auto ward = start_ward({"/bin/sh", "-c", "trap '' HUP; exec " + workload}, policy_file, options);
  ASSERT_TRUE(wait_until([&] { return exists(w("step1")); }, seconds(30)))
      << ward->out() << ward->err();
  ASSERT_NO_FATAL_FAILURE(replace_policy(policy_file, text));
  if (sighup) {
    ASSERT_EQ(::kill(ward->pid(), SIGHUP), 0);
  }
  signal_workload("go");
  ASSERT_EQ(ward->wait(seconds(40)), 0) << ward->out() << ward->err();
  report = parse_json(ward->out());
  ASSERT_FALSE(report.is_discarded()) << ward->out() << ward->err();
  EXPECT_EQ(report["probe"], 200) << "the new policy never applied: " << report.dump()
                                  << ward->err();
  EXPECT_LE(report.value("probe_tries", 1000), 40) << "the reload applied late: " << report.dump();
}

void EgressFixture::reload_under(const std::string& workload, const std::string& policy_file,
                                 const std::vector<std::string>& options, const std::string& text,
                                 bool sighup, json& report) {
  ASSERT_NO_FATAL_FAILURE(run_reload(workload, policy_file, options, text, sighup, report));
  EXPECT_EQ(report["first"], 200) << report.dump();
  const std::string old_second =
      report["old_second"].is_string() ? report["old_second"] : "a response";
  EXPECT_TRUE(old_second == "EOF" || old_second == "RESET" || old_second.starts_with("SEND:"))
      << "a keep-alive connection of the old policy was not closed at its next request: "
      << report.dump();
}

void EgressFixture::reload_keeps_only_the_allowed(const std::string& workload,
                                                  const std::string& policy_file,
                                                  const std::vector<std::string>& options,
                                                  const std::string& text, int class_uid,
                                                  const std::string& host, const std::string& why,
                                                  json& report) {
  ASSERT_NO_FATAL_FAILURE(run_reload(workload, policy_file, options, text, false, report));
  EXPECT_EQ(report["gone_first"], "gone-one") << report.dump();
  EXPECT_EQ(report["kept_first"], "kept-one") << report.dump();
  const std::string second = report["gone_second"].is_string() ? report["gone_second"] : "";
  EXPECT_TRUE(second == "EOF" || second == "RESET" || second.starts_with("SEND:") ||
              second.starts_with("CLOSE"))
      << "the connection the reload took away still relays: " << report.dump();
  EXPECT_EQ(report["kept_second"], "kept-two") << report.dump();
  bool recorded = false;
  for (const json& r : records(class_uid, -1, host))
    recorded |= at(r, "/message", "").find(why) != std::string::npos;
  EXPECT_TRUE(recorded) << "no record says \"" << why << "\":\n" << read_file(audit_);
}

}  // namespace ward::test
