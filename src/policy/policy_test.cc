// The loader as a whole, the static sections, the built-in default and OpenShell's own files.
// Network sections are in network_test.cc, value syntaxes in values_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "policy/policy.h"
#include "policy/test_util.h"

namespace ward::policy {
namespace {

using namespace ward::policy::testing;

// --- diagnostics and the top level ---

TEST(Diagnostic, FormatsErrorAndWarning) {
  Diagnostic e{Diagnostic::Severity::kError,      "p.yaml",       3, 7,
               "filesystem_policy.read_write[1]", "relative path"};
  EXPECT_EQ(e.format(), "p.yaml:3:7: error: filesystem_policy.read_write[1]: relative path");
  Diagnostic w{Diagnostic::Severity::kWarning, "p.yaml", 1, 2, "", "careful"};
  EXPECT_EQ(w.format(), "p.yaml:1:2: warning: careful");
  Diagnostic nowhere{Diagnostic::Severity::kError, "p.yaml", 0, 0, "", "cannot open"};
  EXPECT_EQ(nowhere.format(), "p.yaml: error: cannot open");
}

TEST(LoadResult, FirstErrorSkipsWarnings) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_only: [/tmp]\n"
      "  read_write: [/tmp, rel]\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_error(),
            "test.yaml:4:22: error: filesystem_policy.read_write[1]: relative path 'rel': "
            "filesystem paths must be absolute (start with '/')");
  EXPECT_EQ(load("version: 1\n").first_error(), "");
}

TEST(TopLevel, MinimalPolicyLoads) {
  LoadResult r = load("version: 1\n");
  ASSERT_TRUE(LoadsClean(r));
  const Policy& p = *r.policy;
  EXPECT_FALSE(p.filesystem.include_workdir);
  EXPECT_TRUE(p.filesystem.read_only.empty());
  EXPECT_TRUE(p.filesystem.read_write.empty());
  EXPECT_EQ(p.landlock, Compatibility::kBestEffort);
  EXPECT_TRUE(p.network.empty());
  EXPECT_FALSE(p.resources.memory_bytes);
}

TEST(TopLevel, VersionIsRequired) {
  LoadResult r = load("landlock: {compatibility: best_effort}\n");
  EXPECT_TRUE(HasError(r, 1, 1, "version", "missing version: a policy starts with version: 1"));
}

TEST(TopLevel, VersionMustBeOne) {
  EXPECT_TRUE(HasError(load("version: 2\n"), 1, 10, "version", "version must be 1"));
  EXPECT_TRUE(HasError(load("version: 1.0\n"), 1, 10, "version", "got the value '1.0'"));
  EXPECT_TRUE(HasError(load("version: [1]\n"), 1, 10, "version", "got a list"));
  EXPECT_TRUE(load("version: \"1\"\n").ok());
}

TEST(TopLevel, UnknownKeyNamesKeyAndAlternatives) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem: {}\n");
  EXPECT_TRUE(HasError(
      r, 2, 1, "filesystem",
      "unknown key 'filesystem' in the policy; expected one of: version, filesystem_policy, "
      "landlock, process, network_policies, resources, environment"));
}

TEST(TopLevel, UnknownNestedKey) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_only: []\n"
      "  foo: 1\n");
  EXPECT_TRUE(HasError(
      r, 4, 3, "filesystem_policy.foo",
      "unknown key 'foo' in filesystem_policy; expected one of: include_workdir, read_only, "
      "read_write"));
}

TEST(TopLevel, DuplicateKeys) {
  LoadResult r = load(
      "version: 1\n"
      "landlock:\n"
      "  compatibility: best_effort\n"
      "  compatibility: hard_requirement\n"
      "version: 1\n");
  EXPECT_TRUE(HasError(r, 4, 3, "landlock.compatibility",
                       "duplicate key 'compatibility' (first given at line 3)"));
  EXPECT_TRUE(HasError(r, 5, 1, "version", "duplicate key 'version' (first given at line 1)"));
}

TEST(TopLevel, NonScalarKey) {
  LoadResult r = load(
      "version: 1\n"
      "? [a, b]\n"
      ": c\n");
  EXPECT_TRUE(HasError(r, 2, 3, "", "a key must be a plain name, got a list"));
}

TEST(TopLevel, NetworkMiddlewaresRefusedPlainly) {
  LoadResult r = load(
      "version: 1\n"
      "network_middlewares:\n"
      "  guard: {middleware: content-guard}\n");
  EXPECT_TRUE(HasError(
      r, 2, 1, "network_middlewares",
      "network_middlewares (OpenShell middleware plug-ins) is not supported by ward; remove the "
      "section"));
}

TEST(TopLevel, SectionOfWrongType) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy: [/usr]\n"
      "landlock: best_effort\n"
      "network_policies: []\n");
  EXPECT_TRUE(
      HasError(r, 2, 20, "filesystem_policy", "expected a mapping (key: value lines), got a list"));
  EXPECT_TRUE(HasError(r, 3, 11, "landlock",
                       "expected a mapping (key: value lines), got the value 'best_effort'"));
  EXPECT_TRUE(HasError(r, 4, 19, "network_policies", "expected a mapping"));
}

TEST(TopLevel, EmptySectionsAreValid) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "landlock: {}\n"
      "process:\n"
      "network_policies: {}\n"
      "resources:\n"
      "environment: {}\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_TRUE(r.policy->filesystem.read_only.empty());
  EXPECT_TRUE(r.policy->network.empty());
}

// Bound read-only, / would be mounted over the root ward builds (the sandbox never started: its
// private /tmp could not be mounted on it): refused with its position.
TEST(Filesystem, TheRootCannotBeListedReadOnlyEither) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_only: [/usr, /]\n");
  EXPECT_TRUE(HasError(r, 3, 21, "filesystem_policy.read_only[1]", "read_only: / cannot be bound"))
      << dump(r);
}

TEST(TopLevel, EveryErrorIsReportedTogether) {
  LoadResult r = load(
      "version: 3\n"
      "filesystem_policy:\n"
      "  read_only: [usr, /a/../b]\n"
      "  read_write: [/]\n"
      "process:\n"
      "  run_as_user: root\n"
      "resources:\n"
      "  memory: 12Q\n"
      "bogus: 1\n");
  EXPECT_EQ(count(r, Severity::kError), 7) << dump(r);
  EXPECT_TRUE(HasError(r, 1, 10, "version", "must be 1"));
  EXPECT_TRUE(HasError(r, 3, 15, "filesystem_policy.read_only[0]", "relative path 'usr'"));
  EXPECT_TRUE(HasError(r, 3, 20, "filesystem_policy.read_only[1]", "'..' component"));
  EXPECT_TRUE(HasError(r, 4, 16, "filesystem_policy.read_write[0]", "whole host writable"));
  EXPECT_TRUE(HasError(r, 6, 16, "process.run_as_user", "must not run as root"));
  EXPECT_TRUE(HasError(r, 8, 11, "resources.memory", "'12Q' is not a size"));
  EXPECT_TRUE(HasError(r, 9, 1, "bogus", "unknown key 'bogus'"));
  // In document order.
  for (std::size_t i = 1; i < r.diagnostics.size(); ++i) {
    EXPECT_LE(r.diagnostics[i - 1].line, r.diagnostics[i].line);
  }
}

TEST(TopLevel, JsonIsAccepted) {
  LoadResult r = load(R"({
  "version": 1,
  "filesystem_policy": {"include_workdir": true, "read_only": ["/usr"], "read_write": ["/tmp"]},
  "landlock": {"compatibility": "hard_requirement"},
  "process": {"run_as_user": "1000", "run_as_group": 1000},
  "network_policies": {
    "gh": {"endpoints": [{"host": "api.github.com", "port": 443}], "binaries": [{"path": "/usr/bin/gh"}]}
  },
  "resources": {"memory": "1G", "pids": 100, "cpus": 1.5, "timeout": "1h"},
  "environment": {"pass": ["TERM"], "set": {"A": 1, "B": "two"}}
})");
  ASSERT_TRUE(LoadsClean(r));
  const Policy& p = *r.policy;
  EXPECT_TRUE(p.filesystem.include_workdir);
  EXPECT_EQ(p.filesystem.read_only, std::vector<std::string>{"/usr"});
  EXPECT_EQ(p.landlock, Compatibility::kHardRequirement);
  EXPECT_EQ(p.process.run_as_group, "1000");
  ASSERT_EQ(p.network.size(), 1u);
  EXPECT_EQ(p.network[0].endpoints[0].ports, std::vector<std::uint16_t>{443});
  EXPECT_EQ(p.resources.memory_bytes, 1ULL << 30);
  EXPECT_EQ(p.resources.cpus, 1.5);
  EXPECT_EQ(p.resources.timeout, std::chrono::hours(1));
  EXPECT_EQ(p.environment.set[0], (std::pair<std::string, std::string>{"A", "1"}));
}

TEST(TopLevel, ByteOrderMarkAndCrlf) {
  LoadResult r =
      load("\xef\xbb\xbfversion: 1\r\nfilesystem_policy:\r\n  read_only: [/usr, rel]\r\n");
  EXPECT_TRUE(HasError(r, 3, 21, "filesystem_policy.read_only[1]", "relative path 'rel'"));
  EXPECT_EQ(count(r, Severity::kError), 1) << dump(r);
}

TEST(TopLevel, JsonErrorsHavePositions) {
  LoadResult r = load("{\"version\": 1,\n \"landlock\": {\"compatibility\": \"sometimes\"}}");
  EXPECT_TRUE(
      HasError(r, 2, 32, "landlock.compatibility", "expected 'best_effort' or 'hard_requirement'"));
}

// --- garbage never crashes ---

TEST(Garbage, YamlSyntaxErrorHasPosition) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy: [\n");
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(HasError(r, 3, 1, "", "YAML syntax error: end of sequence flow not found"));
  r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_only: [/usr\n"
      "  read_write: []\n");
  EXPECT_TRUE(HasError(r, 4, 13, "", "YAML syntax error: end of sequence flow not found"));
}

TEST(Garbage, EmptyDocument) {
  EXPECT_TRUE(HasError(load(""), 0, 0, "", "the document is empty"));
  EXPECT_TRUE(HasError(load("# only a comment\n"), 0, 0, "", "the document is empty"));
  EXPECT_TRUE(HasError(load("---\n...\n"), 1, 1, "", "the document is empty"));
  EXPECT_TRUE(HasError(load("~\n"), 1, 1, "", "the document is empty"));
}

TEST(Garbage, ScalarOrListDocument) {
  EXPECT_TRUE(HasError(load("hello"), 1, 1, "",
                       "expected a policy (a mapping that starts with version: 1), got "
                       "the value 'hello'"));
  EXPECT_TRUE(HasError(load("- version: 1\n"), 1, 1, "", "got a list"));
}

TEST(Garbage, SeveralDocuments) {
  LoadResult r = load("version: 1\n---\nversion: 1\n");
  EXPECT_TRUE(HasError(r, 2, 1, "", "the file holds more than one YAML document"));
}

// yaml-cpp 0.7's LoadAll loops forever, allocating, on these (found by fuzz/policy_fuzz.cc).
TEST(Garbage, InputsThatHangYamlCppLoadAll) {
  EXPECT_TRUE(HasError(load(","), 1, 1, "", "YAML syntax error"));
  EXPECT_TRUE(HasError(load("\n\n  ,\n"), 3, 3, "", "YAML syntax error"));
  EXPECT_TRUE(HasError(load("version: 1\n---\n,\n"), 2, 1, "", "more than one YAML document"));
}

TEST(Garbage, MergeKeysAreNamed) {
  LoadResult r = load(
      "version: 1\n"
      "x: &fs {read_only: [/usr]}\n"
      "filesystem_policy:\n"
      "  <<: *fs\n");
  EXPECT_TRUE(HasError(r, 4, 3, "filesystem_policy.<<",
                       "YAML merge keys (<<: *anchor) are not supported; write the keys out"));
}

TEST(Garbage, BinaryBytes) {
  std::string bytes;
  for (int i = 0; i < 512; ++i) bytes.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  LoadResult r = load(bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.diagnostics.empty());
  std::string nul("version: 1\0\x01\x02", 14);
  EXPECT_FALSE(load(nul).ok());
}

TEST(Garbage, DeeplyNested) {
  std::string deep(100000, '[');
  LoadResult r = load(deep);
  EXPECT_TRUE(HasError(r, 1, 1, "", "the YAML nests too deeply for the parser"));
  std::string maps;
  for (int i = 0; i < 5000; ++i) maps += "{a: ";
  EXPECT_FALSE(load(maps).ok());
  std::string nested_value =
      "version: 1\nfilesystem_policy:\n  read_only: " + std::string(100, '[') +
      std::string(100, ']') + "\n";
  r = load(nested_value);
  EXPECT_TRUE(HasError(r, 3, 15, "filesystem_policy.read_only[0]",
                       "expected an absolute path, got a list"));
}

TEST(Garbage, CyclicAliasIsNotWalkedForever) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_only: &a [*a]\n");
  EXPECT_FALSE(r.ok());
}

TEST(Garbage, ManyErrorsAreCapped) {
  std::string yaml = "version: 1\nfilesystem_policy:\n  read_only:\n";
  for (int i = 0; i < 1000; ++i) yaml += "    - rel\n";
  LoadResult r = load(yaml);
  EXPECT_FALSE(r.ok());
  EXPECT_LE(r.diagnostics.size(), 201u);
  EXPECT_NE(r.diagnostics.back().message.find("more errors not shown"), std::string::npos);
  // The summary line stands for the ones not shown: together they are every problem, the 1,000
  // relative paths and the one for more than 256 paths.
  int counted = 0;
  for (const auto& d : r.diagnostics) counted += d.count;
  EXPECT_EQ(counted, 1001);
}

// --- files ---

TEST(LoadFile, MissingFileNamesFileAndErrno) {
  LoadResult r = load_file("/nonexistent/ward-policy.yaml");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].format(),
            "/nonexistent/ward-policy.yaml: error: cannot open the policy file: No such file or "
            "directory");
}

TEST(LoadFile, DirectoryIsRefused) {
  LoadResult r = load_file("/tmp");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.first_error().find("/tmp: error: cannot read the policy file: Is a directory"),
            std::string::npos)
      << dump(r);
}

// --- filesystem_policy ---

TEST(Filesystem, PathsAreNormalised) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  include_workdir: true\n"
      "  read_only: [/usr//lib/, /./etc]\n"
      "  read_write: [/tmp/]\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_TRUE(r.policy->filesystem.include_workdir);
  EXPECT_EQ(r.policy->filesystem.read_only, (std::vector<std::string>{"/usr/lib", "/etc"}));
  EXPECT_EQ(r.policy->filesystem.read_write, std::vector<std::string>{"/tmp"});
}

TEST(Filesystem, RelativePath) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_write:\n"
      "    - /tmp\n"
      "    - data/out\n");
  EXPECT_TRUE(HasError(r, 5, 7, "filesystem_policy.read_write[1]", "relative path 'data/out'"));
}

TEST(Filesystem, DotDotComponent) {
  LoadResult r = load("version: 1\nfilesystem_policy: {read_only: [/usr/../etc]}\n");
  EXPECT_TRUE(HasError(r, 2, 33, "filesystem_policy.read_only[0]",
                       "path '/usr/../etc' has a '..' component; write the path without it"));
}

TEST(Filesystem, PathTooLong) {
  std::string yaml =
      "version: 1\nfilesystem_policy:\n  read_only:\n    - /" + std::string(4096, 'a') + "\n";
  EXPECT_TRUE(HasError(load(yaml), 4, 7, "filesystem_policy.read_only[0]",
                       "path is 4097 characters long; the limit is 4096"));
}

TEST(Filesystem, EmptyAndNulPaths) {
  LoadResult r = load("version: 1\nfilesystem_policy:\n  read_only: [\"\", \"/a\\0b\"]\n");
  EXPECT_TRUE(HasError(r, 3, 15, "filesystem_policy.read_only[0]", "empty path"));
  EXPECT_TRUE(HasError(r, 3, 19, "filesystem_policy.read_only[1]", "contains a NUL byte"));
}

TEST(Filesystem, WritableRootRefused) {
  LoadResult r = load("version: 1\nfilesystem_policy:\n  read_write: [/tmp, //]\n");
  EXPECT_TRUE(HasError(r, 3, 22, "filesystem_policy.read_write[1]",
                       "read_write: / would make the whole host writable"));
}

TEST(Filesystem, AtMost256Paths) {
  std::string yaml = "version: 1\nfilesystem_policy:\n  read_only:\n";
  for (int i = 0; i < 200; ++i) yaml += "    - /ro/" + std::to_string(i) + "\n";
  yaml += "  read_write:\n";
  for (int i = 0; i < 57; ++i) yaml += "    - /rw/" + std::to_string(i) + "\n";
  EXPECT_TRUE(HasError(load(yaml), 3, 3, "filesystem_policy",
                       "257 paths in read_only and read_write together; the limit is 256"));
}

TEST(Filesystem, PathInBothListsWarnsAndReadWriteWins) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  read_only: [/usr, /data]\n"
      "  read_write: [/data/]\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(HasWarning(
      r, 3, 21, "filesystem_policy.read_only[1]",
      "'/data' is also in read_write (filesystem_policy.read_write[0]); read_write wins"));
  EXPECT_EQ(r.policy->filesystem.read_only, std::vector<std::string>{"/usr"});
  EXPECT_EQ(r.policy->filesystem.read_write, std::vector<std::string>{"/data"});
}

TEST(Filesystem, DuplicateInOneListWarns) {
  LoadResult r = load("version: 1\nfilesystem_policy:\n  read_only: [/usr, /usr/]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(HasWarning(r, 3, 21, "filesystem_policy.read_only[1]", "'/usr' is listed twice"));
  EXPECT_EQ(r.policy->filesystem.read_only.size(), 1u);
}

TEST(Filesystem, WrongTypes) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  include_workdir: yes\n"
      "  read_only: /usr\n"
      "  read_write: {a: b}\n");
  EXPECT_TRUE(HasError(r, 3, 20, "filesystem_policy.include_workdir",
                       "expected true or false, got the value 'yes'"));
  EXPECT_TRUE(HasError(r, 4, 14, "filesystem_policy.read_only",
                       "expected a list of absolute paths, got the value '/usr'"));
  EXPECT_TRUE(HasError(r, 5, 15, "filesystem_policy.read_write",
                       "expected a list of absolute paths, got a mapping"));
}

TEST(Filesystem, EmptyValueIsReportedAtTheKey) {
  LoadResult r = load(
      "version: 1\n"
      "filesystem_policy:\n"
      "  include_workdir:\n"
      "  read_only: [/usr]\n");
  EXPECT_TRUE(
      HasError(r, 3, 3, "filesystem_policy.include_workdir", "got nothing (an empty value)"));
}

// --- landlock ---

TEST(Landlock, Compatibility) {
  LoadResult r = load("version: 1\nlandlock:\n  compatibility: hard_requirement\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_EQ(r.policy->landlock, Compatibility::kHardRequirement);
  EXPECT_TRUE(HasError(load("version: 1\nlandlock:\n  compatibility: strict\n"), 3, 18,
                       "landlock.compatibility",
                       "expected 'best_effort' or 'hard_requirement', got the value 'strict'"));
  EXPECT_TRUE(HasError(load("version: 1\nlandlock:\n  abi: 3\n"), 3, 3, "landlock.abi",
                       "unknown key 'abi' in landlock; expected one of: compatibility"));
}

// --- process ---

TEST(Process, NamesAndIds) {
  LoadResult r = load("version: 1\nprocess:\n  run_as_user: sandbox\n  run_as_group: 1000\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_EQ(r.policy->process.run_as_user, "sandbox");
  EXPECT_EQ(r.policy->process.run_as_group, "1000");
  EXPECT_TRUE(
      load("version: 1\nprocess: {run_as_user: 4294967294, run_as_group: svc-bot_1.x}\n").ok());
}

TEST(Process, RootIsRefused) {
  LoadResult r = load(
      "version: 1\n"
      "process:\n"
      "  run_as_user: root\n"
      "  run_as_group: 0\n");
  EXPECT_TRUE(
      HasError(r, 3, 16, "process.run_as_user", "user 'root': the workload must not run as root"));
  EXPECT_TRUE(HasError(r, 4, 17, "process.run_as_group",
                       "group id 0 is root: the workload must not run as root"));
  EXPECT_TRUE(HasError(load("version: 1\nprocess: {run_as_user: \"000\"}\n"), 2, 24,
                       "process.run_as_user", "must not run as root"));
}

TEST(Process, OutOfRangeAndBadNames) {
  EXPECT_TRUE(HasError(load("version: 1\nprocess: {run_as_user: 4294967295}\n"), 2, 24,
                       "process.run_as_user",
                       "user id '4294967295' is out of range 1..4294967294"));
  EXPECT_TRUE(HasError(load("version: 1\nprocess: {run_as_user: 99999999999999999999999}\n"), 2, 24,
                       "process.run_as_user", "out of range"));
  EXPECT_TRUE(HasError(load("version: 1\nprocess: {run_as_group: \"a b\"}\n"), 2, 25,
                       "process.run_as_group", "'a b' is not a valid group name or id"));
  EXPECT_TRUE(HasError(load("version: 1\nprocess: {run_as_user: -1}\n"), 2, 24,
                       "process.run_as_user", "not a valid user name or id"));
  EXPECT_TRUE(HasError(load("version: 1\nprocess: {run_as_user: [a]}\n"), 2, 24,
                       "process.run_as_user", "expected a user name or numeric id, got a list"));
}

// --- resources ---

TEST(Resources, AllFields) {
  LoadResult r = load(
      "version: 1\n"
      "resources:\n"
      "  memory: 512M\n"
      "  pids: 256\n"
      "  cpu: 0.5\n"
      "  timeout: 1h30m\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_EQ(r.policy->resources.memory_bytes, 512ULL << 20);
  EXPECT_EQ(r.policy->resources.pids, 256u);
  EXPECT_EQ(r.policy->resources.cpus, 0.5);
  EXPECT_EQ(r.policy->resources.timeout, std::chrono::minutes(90));
}

TEST(Resources, MemorySpellings) {
  struct Case {
    const char* text;
    std::uint64_t bytes;
  } cases[] = {{"1048576", 1 << 20}, {"2G", 2ULL << 30},     {"2g", 2ULL << 30},
               {"2Gi", 2ULL << 30},  {"2GiB", 2ULL << 30},   {"2gib", 2ULL << 30},
               {"1T", 1ULL << 40},   {"1024K", 1 << 20},     {"1024KiB", 1 << 20},
               {"1Mi", 1 << 20},     {"\"64MiB\"", 64 << 20}};
  for (const Case& c : cases) {
    LoadResult r = load(std::string("version: 1\nresources: {memory: ") + c.text + "}\n");
    ASSERT_TRUE(r.ok()) << c.text << dump(r);
    EXPECT_EQ(r.policy->resources.memory_bytes, c.bytes) << c.text;
  }
}

TEST(Resources, MemoryErrors) {
  EXPECT_TRUE(HasError(load("version: 1\nresources:\n  memory: 1000K\n"), 3, 11, "resources.memory",
                       "memory '1000K' is below the minimum of 1M (1048576 bytes)"));
  EXPECT_TRUE(HasError(load("version: 1\nresources:\n  memory: 1.5G\n"), 3, 11, "resources.memory",
                       "'1.5G' is not a size: write a whole number of bytes, optionally with a "
                       "suffix K, M, G or T"));
  EXPECT_TRUE(HasError(load("version: 1\nresources:\n  memory: 99999999999T\n"), 3, 11,
                       "resources.memory", "too large"));
  EXPECT_TRUE(HasError(load("version: 1\nresources:\n  memory: -5M\n"), 3, 11, "resources.memory",
                       "not a size"));
}

TEST(Resources, PidsCpusTimeoutErrors) {
  LoadResult r = load(
      "version: 1\n"
      "resources:\n"
      "  pids: 0\n"
      "  cpus: 0\n"
      "  timeout: 0s\n");
  EXPECT_TRUE(HasError(r, 3, 9, "resources.pids", "expected a whole number from 1 to"));
  EXPECT_TRUE(HasError(r, 4, 9, "resources.cpus", "cpus must be from 0.01 to 65536 cores, got 0"));
  EXPECT_TRUE(HasError(r, 5, 12, "resources.timeout", "timeout must be greater than zero"));
  r = load("version: 1\nresources:\n  cpus: lots\n  timeout: 5 minutes\n");
  EXPECT_TRUE(HasError(r, 3, 9, "resources.cpus", "'lots' is not a number of CPU cores"));
  EXPECT_TRUE(HasError(r, 4, 12, "resources.timeout", "'5 minutes' is not a duration"));
}

TEST(Resources, CpuAndCpusTogether) {
  LoadResult r = load("version: 1\nresources:\n  cpus: 1\n  cpu: 2\n");
  EXPECT_TRUE(HasError(r, 4, 8, "resources.cpu",
                       "cpu and cpus are two spellings of one setting; give one"));
}

TEST(Resources, TimeoutSpellings) {
  struct Case {
    const char* text;
    std::int64_t ms;
  } cases[] = {{"30", 30000},   {"\"30\"", 30000}, {"30s", 30000},     {"5m", 300000},
               {"1h", 3600000}, {"1500ms", 1500},  {"1h30m", 5400000}, {"1d", 86400000}};
  for (const Case& c : cases) {
    LoadResult r = load(std::string("version: 1\nresources: {timeout: ") + c.text + "}\n");
    ASSERT_TRUE(r.ok()) << c.text << dump(r);
    EXPECT_EQ(r.policy->resources.timeout->count(), c.ms) << c.text;
  }
}

// --- environment ---

TEST(Environment, PassAndSet) {
  LoadResult r = load(
      "version: 1\n"
      "environment:\n"
      "  pass: [TERM, LC_*, \"X?\", \"[AB]_ID\"]\n"
      "  set:\n"
      "    PORT: 8080\n"
      "    DEBUG: true\n"
      "    EMPTY: \"\"\n"
      "    RATIO: 0.50\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_EQ(r.policy->environment.pass,
            (std::vector<std::string>{"TERM", "LC_*", "X?", "[AB]_ID"}));
  using Var = std::pair<std::string, std::string>;
  EXPECT_EQ(
      r.policy->environment.set,
      (std::vector<Var>{{"PORT", "8080"}, {"DEBUG", "true"}, {"EMPTY", ""}, {"RATIO", "0.50"}}));
}

TEST(Environment, BadNames) {
  LoadResult r = load(
      "version: 1\n"
      "environment:\n"
      "  pass: [1FOO, FOO-BAR, \"A[B\"]\n"
      "  set:\n"
      "    BAD-NAME: x\n"
      "    NOVALUE:\n"
      "    LIST: [a]\n");
  EXPECT_TRUE(HasError(r, 3, 10, "environment.pass[0]",
                       "'1FOO': a variable name cannot start with a digit"));
  EXPECT_TRUE(HasError(r, 3, 16, "environment.pass[1]",
                       "'FOO-BAR': '-' is not allowed in a variable name"));
  EXPECT_TRUE(HasError(r, 3, 25, "environment.pass[2]", "'[' without a closing ']'"));
  EXPECT_TRUE(HasError(r, 5, 5, "environment.set.BAD-NAME", "'BAD-NAME' is not a variable name"));
  EXPECT_TRUE(HasError(r, 6, 5, "environment.set.NOVALUE",
                       "expected a value (write \"\" for an empty one), got "
                       "nothing"));
  EXPECT_TRUE(HasError(r, 7, 11, "environment.set.LIST", "got a list"));
}

TEST(Environment, WildcardEverythingWarns) {
  LoadResult r = load("version: 1\nenvironment:\n  pass: [\"*\"]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(HasWarning(r, 3, 10, "environment.pass[0]", "matches every variable"));
}

TEST(Environment, PassMustBeAList) {
  EXPECT_TRUE(HasError(load("version: 1\nenvironment:\n  pass: TERM\n"), 3, 9, "environment.pass",
                       "expected a list of variable names or globs, got the value 'TERM'"));
}

// --- the built-in default ---

TEST(Default, LoadsWithoutDiagnostics) {
  LoadResult r = load_default();
  ASSERT_TRUE(LoadsClean(r));
  const Policy& p = *r.policy;
  EXPECT_TRUE(p.filesystem.include_workdir);
  EXPECT_EQ(p.filesystem.read_write, std::vector<std::string>{"/tmp"});
  EXPECT_NE(std::find(p.filesystem.read_only.begin(), p.filesystem.read_only.end(), "/usr"),
            p.filesystem.read_only.end());
  for (const std::string& dir : p.filesystem.read_only) {
    EXPECT_EQ(::access(dir.c_str(), F_OK), 0) << dir << " is listed but does not exist";
  }
  EXPECT_EQ(p.landlock, Compatibility::kBestEffort);
  EXPECT_TRUE(p.network.empty());
  EXPECT_EQ(p.environment.pass, (std::vector<std::string>{"TERM", "COLORTERM", "LANG", "LANGUAGE",
                                                          "LC_*", "TZ", "NO_COLOR"}));
  EXPECT_TRUE(p.environment.set.empty());
}

// load_default() builds the policy without parsing; the text users see must say the same thing.
TEST(Default, TheTextShownLoadsAsTheBuiltPolicy) {
  LoadResult parsed = load_string(default_policy_yaml(), "<default>");
  ASSERT_TRUE(LoadsClean(parsed));
  const Policy& a = *parsed.policy;
  LoadResult built = load_default();
  ASSERT_TRUE(built.ok());
  const Policy& b = *built.policy;
  EXPECT_EQ(a.filesystem.include_workdir, b.filesystem.include_workdir);
  EXPECT_EQ(a.filesystem.read_only, b.filesystem.read_only);
  EXPECT_EQ(a.filesystem.read_write, b.filesystem.read_write);
  EXPECT_EQ(a.landlock, b.landlock);
  EXPECT_EQ(a.network.size(), b.network.size());
  EXPECT_EQ(a.environment.pass, b.environment.pass);
  EXPECT_EQ(a.environment.set, b.environment.set);
  EXPECT_EQ(a.process.run_as_user, b.process.run_as_user);
  EXPECT_EQ(a.resources.memory_bytes, b.resources.memory_bytes);
  EXPECT_EQ(a.resources.timeout, b.resources.timeout);
}

TEST(Default, IsCommentedAndStable) {
  std::string_view text = default_policy_yaml();
  EXPECT_NE(text.find("# ward's built-in policy"), std::string_view::npos);
  EXPECT_EQ(text.data(), default_policy_yaml().data());  // built once
}

TEST(Default, ErrorsNameTheDefaultSource) {
  LoadResult r = load_string("version: 9\n", "<default>");
  EXPECT_EQ(r.first_error().rfind("<default>:1:10: error: version", 0), 0u) << r.first_error();
}

// --- OpenShell's own files ---

std::string shared_file(const char* name) {
  return std::string(WARD_SHARED_DIR) + "/reference/openshell-policies/" + name;
}

// The reference files live in ../shared beside the repository (CI always has it); a developer
// clone without it skips these with the reason rather than failing.
class OpenShellFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(WARD_SHARED_DIR "/reference/openshell-policies", R_OK) != 0)
      GTEST_SKIP() << WARD_SHARED_DIR
          "/reference/openshell-policies is missing (the shared/ "
          "directory beside the repository)";
  }
};

TEST_F(OpenShellFiles, QuickstartLoads) {
  LoadResult r = load_file(shared_file("examples__sandbox-policy-quickstart__policy.yaml"));
  ASSERT_TRUE(LoadsClean(r));
  const Policy& p = *r.policy;
  EXPECT_EQ(p.filesystem.read_only,
            (std::vector<std::string>{"/usr", "/lib", "/proc", "/dev/urandom", "/app", "/etc",
                                      "/var/log"}));
  EXPECT_EQ(p.filesystem.read_write, (std::vector<std::string>{"/sandbox", "/tmp", "/dev/null"}));
  ASSERT_EQ(p.network.size(), 1u);
  const NetworkRule& rule = p.network[0];
  EXPECT_EQ(rule.key, "github_api");
  EXPECT_EQ(rule.name, "github-api-readonly");
  ASSERT_EQ(rule.endpoints.size(), 1u);
  EXPECT_EQ(rule.endpoints[0].host, "api.github.com");
  EXPECT_EQ(rule.endpoints[0].protocol, Protocol::kRest);
  EXPECT_EQ(rule.endpoints[0].access, Access::kReadOnly);
  EXPECT_EQ(rule.endpoints[0].enforcement, Enforcement::kEnforce);
  EXPECT_EQ(rule.binaries, std::vector<std::string>{"/usr/bin/curl"});
}

TEST_F(OpenShellFiles, SupervisorNetworkTestdataLoads) {
  LoadResult r =
      load_file(shared_file("crates__openshell-supervisor-network__testdata__sandbox-policy.yaml"));
  ASSERT_TRUE(LoadsClean(r));
  const Policy& p = *r.policy;
  EXPECT_EQ(p.process.run_as_user, "sandbox");
  ASSERT_EQ(p.network.size(), 4u);
  EXPECT_EQ(p.network[1].key, "github_ssh_over_https");
  const Endpoint& git = p.network[1].endpoints[0];
  ASSERT_EQ(git.rules.size(), 2u);
  EXPECT_EQ(git.rules[0].method, "GET");
  EXPECT_EQ(git.rules[0].path, "/**/info/refs*");
  EXPECT_EQ(git.rules[1].method, "POST");
  EXPECT_EQ(p.network[2].endpoints.size(), 11u);
  EXPECT_EQ(p.network[2].binaries[0],
            "/usr/lib/node_modules/@github/copilot/node_modules/@github/**/copilot");
}

TEST_F(OpenShellFiles, ProverTestdataLoads) {
  LoadResult r = load_file(shared_file("crates__openshell-prover__testdata__policy.yaml"));
  ASSERT_TRUE(LoadsClean(r));
  const NetworkRule& rule = r.policy->network[0];
  EXPECT_EQ(rule.endpoints[0].protocol, Protocol::kRest);
  EXPECT_EQ(rule.endpoints[1].protocol, Protocol::kL4);
  EXPECT_EQ(rule.binaries.back(), "/sandbox/.uv/python/**/python3*");
}

TEST_F(OpenShellFiles, LocalInferenceLoadsWithDeprecatedTlsWarning) {
  LoadResult r = load_file(shared_file("examples__local-inference__sandbox-policy.yaml"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r);
  EXPECT_TRUE(HasWarning(r, 43, 14, "network_policies.nvidia_direct.endpoints[0].tls",
                         "tls: terminate is deprecated and has no effect"));
  const Endpoint& ep = r.policy->network[1].endpoints[0];
  EXPECT_EQ(ep.tls, Tls::kAuto);
  EXPECT_EQ(ep.access, Access::kFull);
  EXPECT_EQ(r.policy->network[1].name, "NVIDIA API (L7 intercept)");
}

TEST_F(OpenShellFiles, MiddlewareContentGuardIsRefused) {
  LoadResult r =
      load_file(shared_file("examples__supervisor-middleware-content-guard__policy.yaml"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(HasError(r, 6, 1, "network_middlewares",
                       "network_middlewares (OpenShell middleware plug-ins) is not "
                       "supported by ward"));
  EXPECT_NE(r.first_error().find("network_middlewares"), std::string::npos);
}

TEST_F(OpenShellFiles, TransparentTcpRedisIsRefused) {
  LoadResult r = load_file(shared_file("examples__transparent-tcp-redis__policy.yaml"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(count(r, Severity::kError), 1) << dump(r);
  EXPECT_TRUE(HasError(r, 19, 19, "network_policies.redis.endpoints[0].protocol",
                       "protocol: tcp (transparent TCP) is not supported by ward"));
}

TEST_F(OpenShellFiles, NonPolicyFilesAreRefusedWithUnknownKeys) {
  LoadResult r = load_file(shared_file("examples__local-inference__routes.yaml"));
  EXPECT_TRUE(HasError(r, 13, 1, "routes", "unknown key 'routes'"));
  EXPECT_TRUE(HasError(r, 13, 1, "version", "missing version"));
}

}  // namespace
}  // namespace ward::policy

namespace ward::policy {
namespace {

using namespace ward::policy::testing;

// --- reload: only network sections may change ---

TEST(Reload, NetworkChangesAreDynamicEverythingElseIsStatic) {
  const std::string base =
      "version: 1\n"
      "filesystem_policy: {read_only: [/usr]}\n"
      "resources: {memory: 64M}\n";
  LoadResult running = load(base);
  ASSERT_TRUE(running.ok()) << dump(running);
  LoadResult network = load(base +
                            "network_policies:\n"
                            "  api: {endpoints: [{host: api.test, port: 443}], "
                            "binaries: [{path: /usr/bin/curl}]}\n");
  ASSERT_TRUE(network.ok()) << dump(network);
  EXPECT_EQ(changed_static_section(*running.policy, *network.policy), "");

  struct Case {
    const char* yaml;
    const char* section;
  } cases[] = {
      {"version: 1\nfilesystem_policy: {read_only: [/usr, /etc]}\nresources: {memory: 64M}\n",
       "filesystem_policy"},
      {"version: 1\nfilesystem_policy: {read_only: [/usr]}\nresources: {memory: 65M}\n",
       "resources"},
      {"version: 1\nfilesystem_policy: {read_only: [/usr]}\nresources: {memory: 64M}\n"
       "landlock: {compatibility: hard_requirement}\n",
       "landlock"},
      {"version: 1\nfilesystem_policy: {read_only: [/usr]}\nresources: {memory: 64M}\n"
       "process: {run_as_user: nobody}\n",
       "process"},
      {"version: 1\nfilesystem_policy: {read_only: [/usr]}\nresources: {memory: 64M}\n"
       "environment: {pass: [TERM]}\n",
       "environment"},
  };
  for (const Case& c : cases) {
    LoadResult update = load(c.yaml);
    ASSERT_TRUE(update.ok()) << dump(update);
    EXPECT_EQ(changed_static_section(*running.policy, *update.policy), c.section) << c.yaml;
  }
}

}  // namespace
}  // namespace ward::policy
