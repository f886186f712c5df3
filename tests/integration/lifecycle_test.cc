// Lifecycle and limits (the "Process" section of the scenarios): wall-clock timeout, pids and
// memory limits, and no orphans: no process and no cgroup of a sandbox outlives ward, whether the
// workload exits, times out, or ward itself is killed with SIGKILL.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "integration/harness.h"

namespace ward::test {
namespace {

using namespace std::chrono_literals;

std::int64_t monotonic_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The sandbox's processes: those whose command line carries "1000.<marker>" (see unique_marker).
std::vector<pid_t> sandbox_processes(const std::string& marker) {
  return pids_matching("1000." + marker);
}

// Kills whatever a failing test left behind, in every path out of the test.
struct KillLeftovers {
  std::string marker;
  ~KillLeftovers() { kill_pids(sandbox_processes(marker)); }
};

std::string describe(const std::vector<pid_t>& pids) {
  std::string s;
  for (pid_t p : pids) {
    std::string cmd = read_file("/proc/" + std::to_string(p) + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    s += std::to_string(p) + ": " + cmd + "\n";
  }
  return s;
}

std::string describe(const std::vector<std::string>& dirs) {
  std::string s;
  for (const auto& d : dirs) s += d + "\n";
  return s;
}

std::string read_link(const std::string& path) {
  char buf[256];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// The host's mounts, as /proc/self/mountinfo lists them, without those other tests make
// meanwhile (ctest runs tests side by side): under their own temporary directories, and the
// network namespaces of the egress tests.
std::set<std::string> host_mounts(const std::string& own_dir) {
  std::set<std::string> mounts;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (point.starts_with("/tmp/ward-test-") && !point.starts_with(own_dir)) continue;
    if (point.starts_with("/run/netns")) continue;  // the egress tests' `ip netns add`
    mounts.insert(line);
  }
  return mounts;
}

// The namespaces of `pid` ("mnt:[4026532301]"...) that are not the test's own.
std::set<std::string> namespaces_of(pid_t pid) {
  std::set<std::string> out;
  for (const char* kind : {"mnt", "net", "pid", "user", "ipc", "uts", "cgroup"}) {
    const std::string mine = read_link(std::string("/proc/self/ns/") + kind);
    const std::string theirs = read_link("/proc/" + std::to_string(pid) + "/ns/" + kind);
    if (!theirs.empty() && theirs != mine) out.insert(theirs);
  }
  return out;
}

// Which of `wanted` some process of the host still holds — as its namespace, or through a
// descriptor (an nsfs file, as `ip netns` or a leaked setns handle would keep one) — each with
// one holder.
std::map<std::string, std::string> still_held(const std::set<std::string>& wanted) {
  std::map<std::string, std::string> held;
  DIR* proc = ::opendir("/proc");
  while (struct dirent* e = proc ? ::readdir(proc) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    for (const char* sub : {"/ns", "/fd"}) {
      const std::string dir = std::string("/proc/") + e->d_name + sub;
      DIR* d = ::opendir(dir.c_str());
      while (struct dirent* f = d ? ::readdir(d) : nullptr) {
        const std::string link = read_link(dir + "/" + f->d_name);
        if (wanted.count(link)) held.emplace(link, dir + "/" + f->d_name);
      }
      if (d) ::closedir(d);
    }
  }
  if (proc) ::closedir(proc);
  return held;
}

std::string describe(const std::set<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// What the no-orphans tests check besides processes and cgroups: the host's mount table is the
// same during the run and after it as before (nothing of the sandbox's mounts propagated out),
// and nothing on the host holds the sandbox's namespaces once ward is gone.
struct NoLeaks {
  std::string own_dir;
  std::set<std::string> mounts_before = host_mounts(own_dir);
  std::set<std::string> namespaces;

  // While the sandbox runs, with one of its processes.
  void during(pid_t sandbox_pid) {
    namespaces = namespaces_of(sandbox_pid);
    EXPECT_GE(namespaces.size(), 5u) << "the sandbox's namespaces were not seen";
    EXPECT_EQ(still_held(namespaces).size(), namespaces.size()) << "the scan misses holders";
    EXPECT_EQ(describe(host_mounts(own_dir)), describe(mounts_before))
        << "the sandbox's mounts reached the host";
  }
  void after() {
    EXPECT_EQ(describe(host_mounts(own_dir)), describe(mounts_before))
        << "the host's mount table changed";
    std::map<std::string, std::string> held;
    EXPECT_TRUE(wait_until([&] { return (held = still_held(namespaces)).empty(); }, 3s))
        << "namespaces of the sandbox outlived it, " << held.size() << ", first "
        << (held.empty() ? "" : held.begin()->first + " held by " + held.begin()->second);
  }
};

// The names in `dir`, sorted.
std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  while (struct dirent* e = d ? ::readdir(d) : nullptr) names.insert(e->d_name);
  if (d) ::closedir(d);
  return names;
}

// The cgroup part of a no-orphans check only means something when ward made cgroups: say so.
void note_cgroups(const std::vector<std::string>& during) {
  if (during.empty())
    std::printf("note: ward made no cgroup here; only processes were checked for leaks\n");
}

class LifecycleTest : public WorkdirTest {
 protected:
  std::string policy(const std::string& resources) {
    return dir_->write("policy.yaml", policy_yaml("", "", "resources: " + resources + "\n"));
  }

  RunOptions options() const {
    RunOptions o;
    o.mode = mode();
    o.cwd = work_;
    o.timeout = 20s;
    return o;
  }

  std::unique_ptr<Background> start(const std::vector<std::string>& ward_args) {
    return std::make_unique<Background>(ward_background(ward_args, options(), dir_->path()),
                                        dir_->path());
  }

  // Whether ward puts a sandbox with a memory limit into a cgroup here, in this mode: seen from
  // the host while a sandbox runs.
  bool memory_limit_uses_a_cgroup() {
    const std::string m = unique_marker();
    KillLeftovers cleanup{m};
    auto b = start(
        {"run", "-p", policy("{memory: 256M}"), "--", "/bin/sh", "-c", "exec sleep 1000.$0", m});
    bool running = wait_until([&] { return sandbox_processes(m).size() == 1; }, 5s);
    bool used = running && !cgroups_named("ward-" + std::to_string(b->pid())).empty();
    ::kill(b->pid(), SIGTERM);
    b->wait(5s);
    return used;
  }
};

TEST_P(LifecycleTest, TimeoutKillsTheWholeTree) {
  const std::string m = unique_marker();
  KillLeftovers cleanup{m};
  // A child that ignores SIGTERM, an orphaned grandchild (reparented to the init), the main one.
  dir_->write("work/tree.sh",
              "( trap '' TERM; exec sleep 1000.$1 ) &\n"
              "( sleep 1000.$1 & )\n"
              "sleep 1000.$1\n");
  const std::int64_t started = monotonic_ms();
  auto b = start({"run", "--grace", "0.5", "-p", policy("{timeout: 2s, memory: 256M, pids: 100}"),
                  "--", "/bin/sh", "tree.sh", m});
  NoLeaks leaks{dir_->path()};
  ASSERT_TRUE(wait_until([&] { return sandbox_processes(m).size() == 3; }, 5s))
      << "the tree never started:\n"
      << describe(sandbox_processes(m)) << b->err();
  const auto cgroups_during = cgroups_named("ward-" + std::to_string(b->pid()));
  leaks.during(sandbox_processes(m).front());

  EXPECT_EQ(b->wait(15s), 124) << b->err();
  const std::int64_t elapsed = monotonic_ms() - started;
  EXPECT_GE(elapsed, 1900);
  EXPECT_LT(elapsed, 8000) << "the timeout or the grace period was not honoured";
  EXPECT_NE(b->err().find("time limit"), std::string::npos) << "no message: " << b->err();
  EXPECT_EQ(sandbox_processes(m), std::vector<pid_t>{}) << "left behind after the timeout:\n"
                                                        << describe(sandbox_processes(m));
  leaks.after();
  note_cgroups(cgroups_during);
  EXPECT_EQ(cgroups_named("ward-" + std::to_string(b->pid())), std::vector<std::string>{});
  leaks.after();
}

TEST_P(LifecycleTest, ForkBombStopsAtThePidsLimit) {
  Result r =
      ward({"run", "-p", policy("{pids: 64}"), "--", probe_binary(), "fork-bomb"}, options());
  ASSERT_FALSE(r.timed_out) << "ward did not exit";
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  int made = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "refused after %d", &made), 1) << r.out;
  EXPECT_LT(made, 64) << r.out;
}

TEST_P(LifecycleTest, ShellForkBombIsContainedAndWardStillExits) {
  const std::string m = unique_marker();
  KillLeftovers cleanup{m};
  // The classic bomb, every copy carrying the marker; only the timeout ends it.
  auto b = start({"run", "--grace", "0.2", "-p", policy("{pids: 64, timeout: 1500ms}"), "--",
                  "/bin/sh", "-c", "b() { sleep 1000.$0 & b | b & }; b; wait", m});
  EXPECT_EQ(b->wait(15s), 124) << b->err();
  EXPECT_TRUE(wait_until([&] { return sandbox_processes(m).empty(); }, 2s))
      << describe(sandbox_processes(m));
}

TEST_P(LifecycleTest, MemoryHogIsKilledAndReportedAsOutOfMemory) {
  const bool cgroup = memory_limit_uses_a_cgroup();
  Result r =
      ward({"run", "-p", policy("{memory: 64M}"), "--", probe_binary(), "alloc", "512"}, options());
  ASSERT_FALSE(r.timed_out);
  if (cgroup) {
    EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.out << r.err;
    EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("ok"), std::string::npos) << "512 MiB allocated under a 64M limit";
  } else {
    // No writable cgroup (rootless here): the fallback is RLIMIT_AS, so the allocation fails.
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(r.out.find("ENOMEM") != std::string::npos || r.exit_code == 128 + SIGKILL)
        << r.out << r.err;
  }
  if (!cgroup)
    std::printf("note: no cgroup for the memory limit here: checked the rlimit fallback\n");
}

// An attack on ward itself: tmpfs pages are charged to the memory cgroup but are no process's
// memory, so when /dev/shm and /tmp (half the limit each) fill the cgroup the OOM killer picks
// the task with the most memory.
// That must be a process of the workload: never ward's init, which shares ward's memory (killing
// it would kill ward, and leave the cgroups and the workdir's placeholders behind).
TEST_P(LifecycleTest, FillingTmpfsToTheMemoryLimitKillsTheWorkloadNotWard) {
  if (!memory_limit_uses_a_cgroup())
    GTEST_SKIP() << "no writable memory cgroup in this mode, so no OOM killer to turn on ward "
                    "(MemoryLimitBoundsTheTmpfsMounts covers the rlimit fallback)";
  const auto before = entries(work_);
  auto b = start({"run", "-p", policy("{memory: 64M, pids: 64}"), "--", "/bin/sh", "-c",
                  "head -c 200M /dev/zero > /dev/shm/big; head -c 200M /dev/zero > /tmp/big"});
  const int code = b->wait(20s);
  // 137 either way: ward reports the workload's SIGKILL, and a killed ward is 128 + SIGKILL too.
  // Only ward's own report tells them apart.
  EXPECT_EQ(code, 128 + SIGKILL) << b->err();
  EXPECT_NE(b->err().find("ran out of memory"), std::string::npos)
      << "no out-of-memory report (was ward killed?): " << b->err();
  EXPECT_EQ(cgroups_named("ward-" + std::to_string(b->pid())), std::vector<std::string>{});
  EXPECT_EQ(entries(work_), before) << "placeholders left in the workdir";
}

// A memory limit caps the sandbox's writable tmpfs mounts too (their pages are no process's
// memory, so RLIMIT_AS never sees them): each is half the limit, and writing past it fails with
// ENOSPC where no memory cgroup charges them first. With one, the cgroup may end the writer
// before the tmpfs is full; either way ward reports normally.
TEST_P(LifecycleTest, MemoryLimitBoundsTheTmpfsMounts) {
  const bool cgroup = memory_limit_uses_a_cgroup();
  const std::string file = policy("{memory: 64M}");
  for (const std::string dir : {"/tmp", "/dev/shm"}) {
    SCOPED_TRACE(dir);
    Result size = ward({"run", "-p", file, "--", probe_binary(), "fs-size", dir}, options());
    EXPECT_EQ(size.exit_code, 0) << size.err;
    EXPECT_EQ(size.out, std::to_string(32 << 20) + "\n");  // half the limit each
    Result fill =
        ward({"run", "-p", file, "--", probe_binary(), "fill", dir + "/big", "200"}, options());
    ASSERT_FALSE(fill.timed_out);
    EXPECT_EQ(fill.out.find("ok"), std::string::npos) << "200 MiB stored under a 64M limit";
    const bool full = fill.out.starts_with("ENOSPC\nafter ");
    if (cgroup) {
      const bool killed = fill.exit_code == 128 + SIGKILL &&
                          fill.err.find("ran out of memory") != std::string::npos;
      EXPECT_TRUE(full || killed) << fill.exit_code << " " << fill.out << fill.err;
    } else {
      EXPECT_TRUE(full) << fill.out << fill.err;
      EXPECT_EQ(fill.exit_code, 1) << fill.err;
    }
  }
  if (cgroup)
    std::printf("note: a memory cgroup charges the tmpfs here: its OOM kill counts as a refusal\n");
}

TEST_P(LifecycleTest, NoOrphansAfterWardIsKilledWithSigkill) {
  const std::string m = unique_marker();
  KillLeftovers cleanup{m};
  NoLeaks leaks{dir_->path()};
  auto b = start({"run", "-p", policy("{memory: 256M, pids: 100}"), "--", "/bin/sh", "-c",
                  "sleep 1000.$0 & (sleep 1000.$0 &); sleep 1000.$0", m});
  ASSERT_TRUE(wait_until([&] { return sandbox_processes(m).size() == 3; }, 5s))
      << describe(sandbox_processes(m)) << b->err();
  leaks.during(sandbox_processes(m).front());
  const std::string cgroup = "ward-" + std::to_string(b->pid());
  const auto cgroups_during = cgroups_named(cgroup);
  note_cgroups(cgroups_during);

  ASSERT_EQ(::kill(b->pid(), SIGKILL), 0);
  EXPECT_EQ(b->wait(5s), 128 + SIGKILL);
  EXPECT_TRUE(wait_until([&] { return sandbox_processes(m).empty(); }, 3s))
      << "orphans of a killed ward:\n"
      << describe(sandbox_processes(m));
  EXPECT_TRUE(wait_until([&] { return cgroups_named(cgroup).empty(); }, 3s))
      << "cgroups of a killed ward:\n"
      << describe(cgroups_named(cgroup));
  leaks.after();
}

TEST_P(LifecycleTest, NoOrphansAfterANormalExit) {
  const std::string m = unique_marker();
  KillLeftovers cleanup{m};
  // The workload exits soon, leaving an orphan and a child that ignores SIGTERM.
  NoLeaks leaks{dir_->path()};
  auto b =
      start({"run", "--grace", "0.3", "-p", policy("{memory: 256M, pids: 100}"), "--", "/bin/sh",
             "-c", "(sleep 1000.$0 &); (trap '' TERM; exec sleep 1000.$0) & sleep 0.5; exit 3", m});
  ASSERT_TRUE(wait_until([&] { return sandbox_processes(m).size() == 2; }, 5s))
      << describe(sandbox_processes(m)) << b->err();
  leaks.during(sandbox_processes(m).front());
  EXPECT_EQ(b->wait(10s), 3) << b->err();
  EXPECT_EQ(sandbox_processes(m), std::vector<pid_t>{})
      << "left behind after the workload exited:\n"
      << describe(sandbox_processes(m));
  EXPECT_EQ(cgroups_named("ward-" + std::to_string(b->pid())), std::vector<std::string>{});
}

WARD_INSTANTIATE_BOTH_MODES(LifecycleTest);

}  // namespace
}  // namespace ward::test
