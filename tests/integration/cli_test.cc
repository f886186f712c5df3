// The commands around `ward run`: version, help, doctor, policy lint and show-default; the
// refusals of a credential set-up given to `ward run`.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ward::test {
namespace {

using namespace std::chrono_literals;

Result ward_cli(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  RunOptions options;
  options.mode = ::geteuid() == 0 ? Mode::kRoot : Mode::kRootless;
  options.cwd = "/";
  options.env = env;
  return ward(args, options);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Cli, VersionAndHelp) {
  Result v = ward_cli({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("ward ", 0), 0u) << v.out;
  EXPECT_EQ(ward_cli({"version"}).out, v.out);
  Result help = ward_cli({"help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--help", "-h"}) {
    Result same = ward_cli({flag});
    EXPECT_EQ(same.exit_code, 0) << flag;
    EXPECT_EQ(same.out, help.out) << flag;
  }
  for (const char* command : {"run", "demo", "policy", "doctor"})
    EXPECT_NE(help.out.find(command), std::string::npos) << command;
  Result run_help = ward_cli({"help", "run"});
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_NE(run_help.out.find("Usage: ward run"), std::string::npos) << run_help.out;
  EXPECT_NE(run_help.out.find("--policy"), std::string::npos) << run_help.out;
  EXPECT_EQ(ward_cli({"help", "no-such-command"}).exit_code, 2);
  EXPECT_EQ(ward_cli({"no-such-command"}).exit_code, 2);
}

// `ward help` goes down to a subcommand, as `ward COMMAND SUBCOMMAND --help` does.
TEST(Cli, HelpShowsASubcommandsHelp) {
  Result exec = ward_cli({"help", "sandbox", "exec"});
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_TRUE(contains(exec.out, "Usage: ward sandbox exec")) << exec.out;
  EXPECT_TRUE(contains(exec.out, "--no-stdin")) << exec.out;
  Result lint = ward_cli({"help", "policy", "lint"});
  EXPECT_TRUE(contains(lint.out, "Usage: ward policy lint")) << lint.out;
  Result wrong = ward_cli({"help", "sandbox", "nope"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_TRUE(contains(wrong.err, "'ward sandbox nope'")) << wrong.err;
}

// A mistyped command is named as such, with the nearest real one and the list; the words of
// other tools for a sandbox's terminal lead to `ward sandbox connect`.
TEST(Cli, AMistypedCommandIsNamedWithTheNearestOne) {
  Result top = ward_cli({"polcy", "lint", "x"});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_TRUE(contains(top.err, "unknown command 'polcy'")) << top.err;
  EXPECT_TRUE(contains(top.err, "'ward policy'")) << top.err;
  EXPECT_TRUE(contains(top.err, "run, ")) << top.err;
  Result sub = ward_cli({"sandbox", "crate", "foo"});
  EXPECT_EQ(sub.exit_code, 2);
  EXPECT_TRUE(contains(sub.err, "unknown subcommand 'crate'")) << sub.err;
  EXPECT_TRUE(contains(sub.err, "'ward sandbox create'")) << sub.err;
  EXPECT_TRUE(contains(sub.err, "exec")) << sub.err;
  EXPECT_FALSE(contains(sub.err, "A subcommand is required")) << sub.err;
  for (const char* word : {"term", "connect"}) {
    Result r = ward_cli({word, "box"});
    EXPECT_EQ(r.exit_code, 2) << word;
    EXPECT_TRUE(contains(r.err, "ward sandbox connect")) << word << ": " << r.err;
  }
  Result verb = ward_cli({"exec", "box", "--", "true"});
  EXPECT_TRUE(contains(verb.err, "'ward sandbox exec'")) << verb.err;
}

// A value out of range is said in a person's numbers, and the help shows the default.
TEST(Cli, NumbersOutOfRangeAreSaidPlainly) {
  Result grace = ward_cli({"run", "--grace", "-1", "--", "/bin/true"});
  EXPECT_EQ(grace.exit_code, 2);
  EXPECT_TRUE(contains(grace.err, "-1 is not a number of seconds from 0 to 3600")) << grace.err;
  EXPECT_LT(grace.err.size(), 300u) << grace.err;
  Result tail = ward_cli({"logs", "box", "--tail", "-5"});
  EXPECT_EQ(tail.exit_code, 2);
  EXPECT_TRUE(contains(tail.err, "-5 is not a whole number from 0 to")) << tail.err;
  Result help = ward_cli({"help", "run"});
  std::smatch m;
  EXPECT_TRUE(std::regex_search(help.out, m, std::regex(R"(--grace[^\n]*\b3\b)"))) << help.out;
}

// -o yaml as the gateway's commands take it; the same report.
TEST(Cli, DoctorAndLintSpeakYaml) {
  Result yaml = ward_cli({"doctor", "-o", "yaml"});
  EXPECT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_TRUE(contains(yaml.out, "can_run_sandboxes: true")) << yaml.out;
  EXPECT_TRUE(contains(yaml.out, "- name: seccomp")) << yaml.out;
  Result wrong = ward_cli({"doctor", "-o", "xml"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_TRUE(contains(wrong.err, "yaml")) << "the choices are not listed: " << wrong.err;
  TempDir dir(::geteuid() == 0 ? Mode::kRoot : Mode::kRootless);
  Result lint = ward_cli({"policy", "lint", "-o", "yaml", dir.write("p.yaml", "version: 2\n")});
  EXPECT_EQ(lint.exit_code, 1);
  EXPECT_TRUE(contains(lint.out, "valid: false")) << lint.out;
}

TEST(Cli, DoctorReportsEveryLayerAsJson) {
  Result r = ward_cli({"doctor", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_TRUE(report["can_run_sandboxes"].get<bool>());
  std::vector<std::string> names;
  for (const auto& check : report["checks"]) {
    names.push_back(check["name"]);
    EXPECT_FALSE(check["detail"].get<std::string>().empty());
    // What ward does without a missing piece is always said.
    if (!check["ok"].get<bool>()) {
      EXPECT_FALSE(check["without"].get<std::string>().empty());
    }
  }
  for (const char* name : {"user namespaces", "landlock", "seccomp", "cgroup v2", "cgroup v1"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
}

TEST(Cli, LintReportsEveryProblemAndExitsOne) {
  TempDir dir(::geteuid() == 0 ? Mode::kRoot : Mode::kRootless);
  std::string bad = dir.write("bad.yaml",
                              "version: 1\n"
                              "filesystem_policy:\n"
                              "  read_only: [usr]\n"
                              "  read_write: [/]\n"
                              "  bogus: true\n");
  Result text = ward_cli({"policy", "lint", bad});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("bad.yaml:3:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("bad.yaml:4:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("bad.yaml:5:3"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("3 errors"), std::string::npos) << text.out;

  Result json = ward_cli({"policy", "lint", "-o", "json", bad});
  EXPECT_EQ(json.exit_code, 1);
  auto report = nlohmann::json::parse(json.out);
  EXPECT_FALSE(report["valid"].get<bool>());
  ASSERT_EQ(report["diagnostics"].size(), 3u);
  EXPECT_EQ(report["diagnostics"][2]["key"], "filesystem_policy.bogus");
  EXPECT_EQ(report["diagnostics"][2]["line"], 5);
  EXPECT_EQ(report["diagnostics"][2]["column"], 3);
}

TEST(Cli, TheDefaultPolicyLintsClean) {
  TempDir dir(::geteuid() == 0 ? Mode::kRoot : Mode::kRootless);
  Result shown = ward_cli({"policy", "show-default"});
  ASSERT_EQ(shown.exit_code, 0);
  std::string file = dir.write("default.yaml", shown.out);
  Result lint = ward_cli({"policy", "lint", file});
  EXPECT_EQ(lint.exit_code, 0) << lint.out;
  EXPECT_NE(lint.out.find("valid (0 errors, 0 warnings)"), std::string::npos) << lint.out;
}

TEST(Cli, OpenShellPoliciesLintAsPinned) {
  std::string dir = std::string(WARD_SHARED_DIR) + "/reference/openshell-policies/";
  if (!exists(dir)) GTEST_SKIP() << dir << " is missing";
  EXPECT_EQ(ward_cli({"policy", "lint", dir + "examples__sandbox-policy-quickstart__policy.yaml"})
                .exit_code,
            0);
  Result middleware = ward_cli(
      {"policy", "lint", dir + "examples__supervisor-middleware-content-guard__policy.yaml"});
  EXPECT_EQ(middleware.exit_code, 1);
  EXPECT_NE(middleware.out.find("network_middlewares"), std::string::npos) << middleware.out;
}

// ---- credential set-up errors of `ward run` ----

// A credential set-up ward cannot use is refused before anything starts: exit 125 and one line
// on stderr that says what is wrong, and never a secret's value.
class CliCredentialErrors : public WorkdirTest {
 protected:
  void SetUp() override {
    WorkdirTest::SetUp();
    // ward inherits the test's environment: the built-in github provider's variables must come
    // from the test alone.
    for (const char* name : {"GITHUB_TOKEN", "GH_TOKEN"}) {
      if (const char* v = std::getenv(name)) saved_.emplace_back(name, v);
      ::unsetenv(name);
    }
  }
  void TearDown() override {
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
  }

  // `ward run OPTIONS -- /bin/true` with `env` added to ward's environment; EXPECTs exit 125 and
  // one line on stderr. That line.
  std::string refusal(const std::vector<std::string>& options,
                      const std::vector<std::string>& env = {}) {
    RunOptions o;
    o.mode = mode();
    o.cwd = work_;
    o.env = {"WARD_STATE_DIR=" + dir_->file("state")};
    o.env.insert(o.env.end(), env.begin(), env.end());
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {"--", "/bin/true"});
    Result r = ward(args, o);
    EXPECT_EQ(r.exit_code, 125) << r.out << r.err;
    EXPECT_EQ(r.out, "");
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 0) << "more than one line:\n" << r.err;
    return err;
  }

  std::vector<std::pair<std::string, std::string>> saved_;
};

// An unknown --provider: the message names the built-in providers.
TEST_P(CliCredentialErrors, UnknownProviderNamesTheBuiltIns) {
  std::string err = refusal({"--provider", "nosuch"});
  EXPECT_NE(err.find("nosuch"), std::string::npos) << err;
  for (const char* id : {"anthropic", "openai", "github", "gitlab", "npm", "pypi"})
    EXPECT_NE(err.find(id), std::string::npos) << id << " is not named: " << err;
  EXPECT_NE(err.find("--provider-profile"), std::string::npos) << err;
}

// A provider whose required credential is in none of its variables: the message names them.
TEST_P(CliCredentialErrors, MissingCredentialNamesTheVariables) {
  std::string err = refusal({"--provider", "github"});
  EXPECT_NE(err.find("github"), std::string::npos) << err;
  EXPECT_NE(err.find("GITHUB_TOKEN"), std::string::npos) << err;
  EXPECT_NE(err.find("GH_TOKEN"), std::string::npos) << err;
  // An empty variable is no credential either.
  std::string empty = refusal({"--provider", "github"}, {"GITHUB_TOKEN="});
  EXPECT_NE(empty.find("GITHUB_TOKEN"), std::string::npos) << empty;
}

// A secret holding a line feed or a carriage return (no header can carry it) is refused; the
// message names the variable and shows no part of the value.
TEST_P(CliCredentialErrors, SecretWithALineBreakIsRefusedWithoutShowingIt) {
  const std::string marker = unique_marker();
  for (const char* line_break : {"\n", "\r", "\r\n"}) {
    const std::string first = "first-" + marker, second = "second-" + marker;
    std::string err =
        refusal({"--provider", "github"}, {"GITHUB_TOKEN=" + first + line_break + second});
    EXPECT_NE(err.find("GITHUB_TOKEN"), std::string::npos) << err;
    EXPECT_EQ(err.find(first), std::string::npos) << "the secret is in the message: " << err;
    EXPECT_EQ(err.find(second), std::string::npos) << "the secret is in the message: " << err;
  }
}

// A broken --provider-profile: the message gives file:line:column and, where there is one, the
// key.
TEST_P(CliCredentialErrors, BrokenProfileGivesFileLineColumnAndKey) {
  const std::string head = "id: broken\ndisplay_name: Broken\ncredentials:\n  - name: token\n";
  std::string wrong_type = dir_->write("wrong-type.yaml", head + "    env_vars: WARD_X\n");
  std::string err = refusal({"--provider-profile", wrong_type, "--provider", "broken"});
  EXPECT_NE(err.find(wrong_type + ":5:15:"), std::string::npos) << err;
  EXPECT_NE(err.find("credentials[0].env_vars"), std::string::npos) << err;
  std::string unknown_key =
      dir_->write("unknown-key.yaml", head + "    env_vars: [WARD_X]\n    bogus: 1\n");
  err = refusal({"--provider-profile", unknown_key, "--provider", "broken"});
  EXPECT_NE(err.find(unknown_key + ":6:5:"), std::string::npos) << err;
  EXPECT_NE(err.find("credentials[0].bogus"), std::string::npos) << err;
  std::string syntax = dir_->write("syntax.yaml", "id: broken\ncredentials: [\n  - name: t\n");
  err = refusal({"--provider-profile", syntax, "--provider", "broken"});
  EXPECT_NE(err.find(syntax + ":3:3:"), std::string::npos) << err;
}

WARD_INSTANTIATE_BOTH_MODES(CliCredentialErrors);

// ---- ward run's files: named, checked, never followed where the sandbox writes ----

class CliRunFiles : public WorkdirTest {
 protected:
  // `ward run OPTIONS -- COMMAND` started in the workdir, with a state directory of the test's.
  Result run_with(const std::vector<std::string>& options,
                  const std::vector<std::string>& command = {"/bin/true"}) {
    RunOptions o;
    o.mode = mode();
    o.cwd = work_;
    o.env = {"WARD_STATE_DIR=" + dir_->file("state")};
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    return ward(args, o);
  }
};

// A file option naming what cannot be read: ward's own message, with the file and the reason,
// and the exit status of a sandbox that could not start (125), not CLI11's usage error.
TEST_P(CliRunFiles, AMissingFileIsNamedWithTheReason) {
  const std::string missing = dir_->file("nonexist.yaml");
  for (const char* option :
       {"-p", "--hosts", "--inference", "--upstream-ca", "--provider-profile"}) {
    Result r = run_with({option, missing});
    EXPECT_EQ(r.exit_code, 125) << option << ": " << r.err;
    EXPECT_TRUE(contains(r.err, missing + ": No such file or directory"))
        << option << ": " << r.err;
    EXPECT_FALSE(contains(r.err, "File does not exist")) << r.err;
  }
  Result dir = run_with({"-p", dir_->path()});
  EXPECT_EQ(dir.exit_code, 125) << dir.err;
  EXPECT_TRUE(contains(dir.err, "is a directory")) << dir.err;
}

// The host's /tmp is not a path the sandbox may write (its /tmp is a private tmpfs): a rotated
// audit file there is kept. One in the workdir is still refused.
TEST_P(CliRunFiles, ARotatedAuditFileInTheHostsTmpIsAccepted) {
  ASSERT_EQ(dir_->path().rfind("/tmp/", 0), 0u);
  const std::string audit = dir_->file("a.jsonl");
  Result r = run_with({"--audit", audit, "--audit-max-mib", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(exists(audit));
  Result inside = run_with({"--audit", w("a.jsonl"), "--audit-max-mib", "1"});
  EXPECT_EQ(inside.exit_code, 125) << inside.err;
  EXPECT_TRUE(contains(inside.err, "which the sandbox may write")) << inside.err;
  EXPECT_TRUE(contains(inside.err, work_)) << inside.err;
}

// The attack: an earlier sandbox leaves a symlink in its workdir where the user's next run
// will put its audit file (or a directory of it), pointing at a file of the user's (root's)
// that does not exist yet. ward, which creates the audit file as its user, must create nothing
// there, with or without rotation, and say why.
TEST_P(CliRunFiles, AnAuditFileThroughAPlantedSymlinkCreatesNothing) {
  const std::string victim = dir_->file("victim.txt");
  const std::string victim_dir = dir_->mkdir("victim-dir");
  Result planted = run_with({}, {"/bin/sh", "-c",
                                 "ln -s " + shell_quote(victim) + " audit2.jsonl && ln -s " +
                                     shell_quote(victim_dir) + " logs"});
  ASSERT_EQ(planted.exit_code, 0) << planted.err;
  ASSERT_TRUE(exists(w("audit2.jsonl")));
  for (const std::vector<std::string>& rotation :
       {std::vector<std::string>{}, std::vector<std::string>{"--audit-max-mib", "1"}}) {
    for (const std::string& audit : {std::string("audit2.jsonl"), std::string("logs/a.jsonl")}) {
      std::vector<std::string> options = {"--audit", audit};
      options.insert(options.end(), rotation.begin(), rotation.end());
      Result r = run_with(options);
      EXPECT_EQ(r.exit_code, 125) << audit << ": " << r.err;
      EXPECT_TRUE(contains(r.err, "symbolic link")) << audit << ": " << r.err;
    }
  }
  EXPECT_FALSE(exists(victim)) << "ward created the symlink's target";
  EXPECT_FALSE(exists(victim_dir + "/a.jsonl")) << "ward created a file through a symlinked dir";
}

// A routes file with several problems: one diagnostic a line, FILE:LINE:COLUMN first, as
// `ward policy lint` prints them (not one line with \x0a between them).
TEST_P(CliRunFiles, RoutesFileErrorsAreOneALine) {
  const std::string routes = dir_->write("routes.yaml", "version: 1\nroutes:\n  - name: 7\n");
  Result r = run_with({"--inference", routes});
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_FALSE(contains(r.err, "\\x0a")) << r.err;
  std::istringstream lines(r.err);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n)
    EXPECT_EQ(line.rfind(routes + ":", 0), 0u) << "not a diagnostic line: " << line;
  EXPECT_GE(n, 2) << r.err;
}

WARD_INSTANTIATE_BOTH_MODES(CliRunFiles);

// ---- ward gateway's options, and what its clients say ----

// A gateway whose options are wrong says so before it makes its state directory, a token or a
// CA, or announces anything: nothing is left behind.
TEST(CliGateway, BadOptionsAreRefusedBeforeAnythingIsMade) {
  TempDir dir(::geteuid() == 0 ? Mode::kRoot : Mode::kRootless);
  const std::string state = dir.file("state");
  const std::vector<std::vector<std::string>> cases = {
      {"--listen", "127.0.0.1:abc"},
      {"--listen", "0.0.0.0:0", "--no-auth"},
      {"--listen", "127.0.0.1:0", "--tls-cert", "/etc/hostname"},
      {"--socket-group", "no-such-group-of-ward"},
  };
  for (const auto& options : cases) {
    std::vector<std::string> args = {"gateway", "--state-dir", state};
    args.insert(args.end(), options.begin(), options.end());
    Result r = ward_cli(args);
    EXPECT_EQ(r.exit_code, 2) << options[1] << ": " << r.err;
    EXPECT_FALSE(exists(state)) << options[1] << " left the state directory behind";
    EXPECT_FALSE(contains(r.err, "token")) << r.err;
    EXPECT_FALSE(contains(r.err, "any process")) << r.err;
  }
}

// A gateway on a socket and a plain-HTTP --listen address, for the clients' messages.
class CliGatewayClients : public ::testing::Test {
 protected:
  void SetUp() override {
    mode_ = ::geteuid() == 0 ? Mode::kRoot : Mode::kRootless;
    dir_ = std::make_unique<TempDir>(mode_);
    state_ = dir_->file("state");
    socket_ = state_ + "/gateway.sock";
    port_ = free_port();
    RunOptions o;
    o.mode = mode_;
    o.timeout = 120s;
    gateway_ = std::make_unique<Background>(
        ward_background(
            {"gateway", "--state-dir", state_, "--listen", "127.0.0.1:" + std::to_string(port_)}, o,
            dir_->path()),
        dir_->path());
    ASSERT_TRUE(wait_until(
        [&] {
          return ward_cli({"status", "--gateway", socket_}).exit_code == 0;
        },
        10s))
        << gateway_->err();
  }
  void TearDown() override {
    if (gateway_) ::kill(gateway_->pid(), SIGTERM);
    if (gateway_) gateway_->wait(10s);
  }
  Mode mode_;
  std::unique_ptr<TempDir> dir_;
  std::string state_, socket_;
  int port_ = 0;
  std::unique_ptr<Background> gateway_;
};

// `ward policy set`: a file that cannot be read says why; an invalid policy is reported once,
// every diagnostic naming the real file.
TEST_F(CliGatewayClients, PolicySetNamesTheRealFileOnce) {
  const std::string missing = dir_->file("nonexist.yaml");
  Result none = ward_cli({"policy", "set", "--gateway", socket_, "--default", missing});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(contains(none.err, missing + ": No such file or directory")) << none.err;
  const std::string bad = dir_->write("bad.yaml",
                                      "version: 1\n"
                                      "filesystem_policy:\n"
                                      "  read_only: [usr]\n"
                                      "  bogus: true\n");
  Result invalid = ward_cli({"policy", "set", "--gateway", socket_, "--default", bad});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_TRUE(contains(invalid.err, bad + ":3:")) << invalid.err;
  EXPECT_TRUE(contains(invalid.err, bad + ":4:")) << invalid.err;
  EXPECT_FALSE(contains(invalid.err, "policy:3:")) << "a file named 'policy': " << invalid.err;
  std::istringstream lines(invalid.err);
  int n = 0;
  for (std::string line; std::getline(lines, line);) n += contains(line, "bad.yaml:3:");
  EXPECT_EQ(n, 1) << "the first diagnostic twice: " << invalid.err;
}

// https:// against a plain-HTTP listener: no private-CA hint, which cannot help; a missing
// token names WARD_GATEWAY_TOKEN.
TEST_F(CliGatewayClients, ClientHintsFitTheFailure) {
  const std::string address = "127.0.0.1:" + std::to_string(port_);
  Result tls = ward_cli({"status", "--gateway", "https://" + address});
  EXPECT_EQ(tls.exit_code, 1);
  EXPECT_FALSE(contains(tls.err, "WARD_GATEWAY_CA")) << tls.err;
  EXPECT_TRUE(contains(tls.err, "http://")) << tls.err;
  ::unsetenv("WARD_GATEWAY_TOKEN");
  Result token = ward_cli({"status", "--gateway", "http://" + address});
  EXPECT_EQ(token.exit_code, 1);
  EXPECT_TRUE(contains(token.err, "WARD_GATEWAY_TOKEN")) << token.err;
  Result wrong = ward_cli({"status", "--gateway", "http://" + address}, {"WARD_GATEWAY_TOKEN=x"});
  EXPECT_TRUE(contains(wrong.err, "not this gateway's")) << wrong.err;
  const std::string real = read_file(state_ + "/token");
  Result right = ward_cli({"status", "--gateway", "http://" + address},
                          {"WARD_GATEWAY_TOKEN=" + real.substr(0, real.find('\n'))});
  EXPECT_EQ(right.exit_code, 0) << right.err;
}

// ---- shell completions ----

// Every option each command's --help shows is one the bash and zsh completions offer, and bash
// offers none that the command lacks.
TEST(Cli, CompletionsKnowEveryOptionOfEveryCommand) {
  const std::string bash = std::string(WARD_SOURCE_DIR) + "/contrib/completions/ward.bash";
  const std::string zsh_text =
      read_file(std::string(WARD_SOURCE_DIR) + "/contrib/completions/_ward");
  ASSERT_FALSE(zsh_text.empty());
  // "Subcommands:" lines of a help text: "  name   description".
  auto subcommands = [](const std::string& help) {
    std::vector<std::string> names;
    std::istringstream lines(help.substr(std::min(help.size(), help.find("Subcommands:"))));
    std::string line;
    std::getline(lines, line);
    while (std::getline(lines, line) && line.rfind("  ", 0) == 0) {
      std::istringstream words(line);
      std::string name;
      words >> name;
      names.push_back(name.substr(0, name.find(',')));  // "list, ls": its aliases after it
    }
    return names;
  };
  // "  -p,--policy TEXT  ..." lines of a help text: the option names.
  auto options = [](const std::string& help) {
    std::set<std::string> names;
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("  -", 0) != 0) continue;
      std::istringstream words(line);
      std::string first;
      words >> first;
      std::stringstream parts(first);
      for (std::string name; std::getline(parts, name, ',');) names.insert(name);
    }
    return names;
  };
  std::vector<std::string> paths;
  for (const std::string& command : subcommands(ward_cli({"help"}).out)) {
    paths.push_back(command);
    if (command == "help" || command == "version") continue;
    for (const std::string& sub : subcommands(ward_cli({command, "--help"}).out))
      paths.push_back(command + " " + sub);
  }
  ASSERT_GT(paths.size(), 20u);
  for (const std::string& path : paths) {
    std::vector<std::string> args;
    std::istringstream words(path);
    for (std::string w; words >> w;) args.push_back(w);
    args.push_back("--help");
    const std::set<std::string> shown = options(ward_cli(args).out);
    EXPECT_FALSE(shown.empty()) << path;
    auto [rc, offered_text] =
        host_shell("bash -c " + shell_quote(". " + shell_quote(bash) + " && _ward_options " +
                                            shell_quote(path)));
    EXPECT_EQ(rc, 0) << offered_text;
    std::set<std::string> offered;
    std::istringstream offered_words(offered_text);
    for (std::string w; offered_words >> w;) offered.insert(w);
    for (const std::string& option : shown) {
      EXPECT_TRUE(offered.count(option)) << "ward.bash lacks " << path << " " << option;
      const std::regex in_zsh("(^|[^-A-Za-z0-9])" + option + "([=+,\\[}])");
      EXPECT_TRUE(std::regex_search(zsh_text, in_zsh)) << "_ward lacks " << path << " " << option;
    }
    for (const std::string& option : offered)
      EXPECT_TRUE(shown.count(option))
          << "ward.bash offers " << path << " " << option << ", which it does not have";
  }
}

}  // namespace
}  // namespace ward::test
