// The mount plan: what is bound where, in which order, with which rights.
#include "sandbox/plan.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace ward::sandbox {
namespace {

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ward-plan-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ::mkdir((root_ + "/ro").c_str(), 0755);
    ::mkdir((root_ + "/rw").c_str(), 0755);
    ::mkdir((root_ + "/rw/.git").c_str(), 0755);
    ::mkdir((root_ + "/rw/.git/hooks").c_str(), 0755);
    ::mkdir((root_ + "/rw/.git/objects").c_str(), 0755);
    std::ofstream(root_ + "/rw/.git/config") << "[core]\n";
    std::ofstream(root_ + "/rw/.bashrc") << "# rc\n";
    std::ofstream(root_ + "/ro/file") << "x\n";
    ASSERT_EQ(::symlink("ro", (root_ + "/link").c_str()), 0);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  const MountOp* find(const Plan& plan, const std::string& target) {
    for (const auto& op : plan.mounts)
      if (op.target == target) return &op;
    return nullptr;
  }
  size_t index(const Plan& plan, const std::string& target) {
    for (size_t i = 0; i < plan.mounts.size(); ++i)
      if (plan.mounts[i].target == target) return i;
    return SIZE_MAX;
  }

  std::string root_;
};

TEST_F(PlanTest, BindsWhatIsListedWithItsRights) {
  policy::Policy p;
  p.filesystem.read_only = {root_ + "/ro"};
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan) << plan.error().describe();
  const MountOp* ro = find(*plan, root_ + "/ro");
  const MountOp* rw = find(*plan, root_ + "/rw");
  ASSERT_TRUE(ro && rw);
  EXPECT_TRUE(ro->read_only);
  EXPECT_FALSE(rw->read_only);
  EXPECT_EQ(plan->mounts.front().kind, MountOp::Kind::kTmpfs);  // the private /tmp comes first
  EXPECT_EQ(plan->mounts.front().target, "/tmp");
}

TEST_F(PlanTest, ProtectedNamesInWritablePathsAreReadOnly) {
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  for (const char* name : {"/.bashrc", "/.git/config", "/.git/hooks"}) {
    const MountOp* op = find(*plan, root_ + "/rw" + name);
    ASSERT_NE(op, nullptr) << name;
    EXPECT_TRUE(op->read_only) << name;
    EXPECT_GT(index(*plan, root_ + "/rw" + name), index(*plan, root_ + "/rw")) << name;
  }
  // git keeps working: objects, refs and the index are not protected; .git itself is pinned (a
  // writable mount point) so that it cannot be renamed away with the protected entries in it.
  EXPECT_EQ(find(*plan, root_ + "/rw/.git/objects"), nullptr);
  const MountOp* git = find(*plan, root_ + "/rw/.git");
  ASSERT_NE(git, nullptr);
  EXPECT_FALSE(git->read_only);
  EXPECT_TRUE(git->self_bind);
  EXPECT_LT(index(*plan, root_ + "/rw/.git"), index(*plan, root_ + "/rw/.git/config"));
}

TEST_F(PlanTest, NestedRepositoriesAndSubmodulesAreProtectedToo) {
  ::mkdir((root_ + "/rw/sub").c_str(), 0755);
  ::mkdir((root_ + "/rw/sub/.git").c_str(), 0755);
  std::ofstream(root_ + "/rw/sub/.git/config") << "[core]\n";
  ::mkdir((root_ + "/rw/.git/modules").c_str(), 0755);
  ::mkdir((root_ + "/rw/.git/modules/lib").c_str(), 0755);
  ::mkdir((root_ + "/rw/.git/modules/lib/hooks").c_str(), 0755);
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  for (const char* path : {"/sub/.git/config", "/.git/modules/lib/hooks"}) {
    const MountOp* op = find(*plan, root_ + "/rw" + path);
    ASSERT_NE(op, nullptr) << path;
    EXPECT_TRUE(op->read_only) << path;
  }
  // Every directory between the writable root and a protected entry is pinned, parents first.
  for (const char* path : {"/sub", "/sub/.git", "/.git/modules", "/.git/modules/lib"}) {
    const MountOp* op = find(*plan, root_ + "/rw" + path);
    ASSERT_NE(op, nullptr) << path;
    EXPECT_FALSE(op->read_only) << path;
  }
  EXPECT_LT(index(*plan, root_ + "/rw/sub"), index(*plan, root_ + "/rw/sub/.git/config"));
}

TEST_F(PlanTest, ParentsComeBeforeChildren) {
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/rw"};
  p.filesystem.read_only = {root_};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  EXPECT_LT(index(*plan, root_), index(*plan, root_ + "/rw"));
}

TEST_F(PlanTest, SymlinksAreRecreatedAndTheirTargetExposed) {
  policy::Policy p;
  p.filesystem.read_only = {root_ + "/link"};
  auto plan = make_plan(p, "/nonexistent-workdir");
  ASSERT_TRUE(plan);
  const MountOp* link = find(*plan, root_ + "/link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->kind, MountOp::Kind::kSymlink);
  EXPECT_EQ(link->source, "ro");
  const MountOp* target = find(*plan, root_ + "/ro");
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->kind, MountOp::Kind::kBind);
  EXPECT_TRUE(target->read_only);
}

// An earlier sandbox could have replaced a path under a writable directory with a symlink to /:
// the next run must not follow it.
TEST_F(PlanTest, SymlinksBeneathWritablePathsAreNotFollowed) {
  ASSERT_EQ(::symlink("/", (root_ + "/rw/planted").c_str()), 0);
  ::mkdir((root_ + "/rw/real").c_str(), 0755);
  ASSERT_EQ(::symlink("/", (root_ + "/rw/via").c_str()), 0);
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/rw"};
  p.filesystem.read_only = {root_ + "/rw/planted", root_ + "/rw/via/etc", root_ + "/rw/real"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, root_ + "/rw/planted"), nullptr);
  EXPECT_EQ(find(*plan, "/"), nullptr);
  EXPECT_EQ(find(*plan, root_ + "/rw/via/etc"), nullptr);
  EXPECT_EQ(plan->skipped,
            (std::vector<std::string>{root_ + "/rw/planted", root_ + "/rw/via/etc"}));
  p.landlock = policy::Compatibility::kHardRequirement;
  EXPECT_FALSE(make_plan(p, root_ + "/rw"));
}

// Found in review: a workdir inside a listed writable directory (read_write: [~/work], run in
// ~/work/a/b/app) was folded into its parent's bind, so it got no placeholders and the search for
// protected names stopped two levels below the parent. It is a root of its own now, pinned.
TEST_F(PlanTest, AWorkdirInsideAWritableParentIsARootForTheProtectedNames) {
  const std::string app = root_ + "/rw/a/b/app";
  ASSERT_EQ(std::system(("mkdir -p '" + app + "/.vscode'").c_str()), 0);
  policy::Policy p;
  p.filesystem.include_workdir = true;
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, app);
  ASSERT_TRUE(plan) << plan.error().describe();
  EXPECT_EQ(plan->workdir, app);
  // Its existing protected names, three levels below the listed root, are read-only.
  const MountOp* vscode = find(*plan, app + "/.vscode");
  ASSERT_TRUE(vscode);
  EXPECT_TRUE(vscode->read_only);
  // Its missing ones get placeholders, bound read-only.
  for (const char* name : {".mcp.json", ".claude", ".codex", ".idea", ".gitmodules"}) {
    const std::string path = app + "/" + name;
    EXPECT_TRUE(std::any_of(plan->placeholders.begin(), plan->placeholders.end(),
                            [&](const Placeholder& ph) { return ph.path == path; }))
        << name;
    const MountOp* op = find(*plan, path);
    ASSERT_TRUE(op) << name;
    EXPECT_TRUE(op->read_only) << name;
  }
  // It and every directory up to the listed root are mount points (cannot be renamed), made
  // before what is mounted in it.
  for (const std::string& dir : {root_ + "/rw/a", root_ + "/rw/a/b", app}) {
    const MountOp* pin = find(*plan, dir);
    ASSERT_TRUE(pin) << dir;
    EXPECT_FALSE(pin->read_only) << dir;
    EXPECT_TRUE(pin->self_bind) << dir;
    EXPECT_LT(index(*plan, dir), index(*plan, app + "/.mcp.json")) << dir;
  }
  // One mount per target, however the searches overlapped.
  for (const auto& op : plan->mounts)
    EXPECT_EQ(std::count_if(plan->mounts.begin(), plan->mounts.end(),
                            [&](const MountOp& o) { return o.target == op.target; }),
              1)
        << op.target;
}

// Found in review: a protected name that is a symlink (a dotfile manager's ~/.bashrc, a shared
// .claude) was skipped, and the workload could replace it. Nothing can be mounted on a symlink:
// ward refuses to start and names it.
TEST_F(PlanTest, AProtectedNameThatIsASymlinkRefusesTheStart) {
  ::mkdir((root_ + "/rw/shared-claude").c_str(), 0755);
  ASSERT_EQ(::symlink("shared-claude", (root_ + "/rw/.claude").c_str()), 0);
  ::mkdir((root_ + "/rw/sub").c_str(), 0755);
  ASSERT_EQ(::symlink("/nonexistent", (root_ + "/rw/sub/.mcp.json").c_str()), 0);
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_FALSE(plan);
  const std::string& message = plan.error().message;
  EXPECT_NE(message.find(root_ + "/rw/.claude"), std::string::npos) << message;
  EXPECT_NE(message.find(root_ + "/rw/sub/.mcp.json"), std::string::npos) << message;
  EXPECT_NE(message.find("symlink"), std::string::npos) << message;
  // Read-only, the same directory is fine: nothing there can be replaced.
  p.filesystem.read_write.clear();
  p.filesystem.read_only = {root_ + "/rw"};
  p.filesystem.include_workdir = false;
  EXPECT_TRUE(make_plan(p, root_ + "/rw"));
}

// Found in review: a worktree's .git is a file ("gitdir: ..."), which the search skipped, so the
// workload could point it at a repository of its own; and in a workdir below a repository's
// top, a .git made there would become the repository of the user's next git command there.
TEST_F(PlanTest, AWorktreeLinkIsReadOnlyAndASubdirectoryOfARepositoryGetsNoNewGit) {
  ::mkdir((root_ + "/rw/tree").c_str(), 0755);
  std::ofstream(root_ + "/rw/tree/.git") << "gitdir: /elsewhere/.git/worktrees/tree\n";
  ::mkdir((root_ + "/rw/sub").c_str(), 0755);
  policy::Policy p;
  p.filesystem.include_workdir = true;
  auto plan = make_plan(p, root_ + "/rw/tree");
  ASSERT_TRUE(plan) << plan.error().describe();
  const MountOp* link = find(*plan, root_ + "/rw/tree/.git");
  ASSERT_TRUE(link);
  EXPECT_TRUE(link->read_only);
  EXPECT_FALSE(link->is_directory);
  plan = make_plan(p, root_ + "/rw/sub");
  ASSERT_TRUE(plan) << plan.error().describe();
  EXPECT_TRUE(std::any_of(
      plan->placeholders.begin(), plan->placeholders.end(),
      [&](const Placeholder& ph) { return ph.path == root_ + "/rw/sub/.git" && ph.is_directory; }));
  const MountOp* git = find(*plan, root_ + "/rw/sub/.git");
  ASSERT_TRUE(git);
  EXPECT_TRUE(git->read_only);
  // Outside any repository a workdir keeps its freedom to `git init`.
  plan = make_plan(p, root_ + "/ro");
  ASSERT_TRUE(plan) << plan.error().describe();
  EXPECT_EQ(find(*plan, root_ + "/ro/.git"), nullptr);
}

TEST_F(PlanTest, MissingPathsBestEffortVsHardRequirement) {
  policy::Policy p;
  p.filesystem.read_only = {root_ + "/missing"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->skipped, std::vector<std::string>{root_ + "/missing"});
  p.landlock = policy::Compatibility::kHardRequirement;
  auto strict = make_plan(p, root_ + "/rw");
  ASSERT_FALSE(strict);
  EXPECT_NE(strict.error().message.find(root_ + "/missing"), std::string::npos);
}

TEST_F(PlanTest, DevicesAndProcAreProvidedNotBound) {
  policy::Policy p;
  p.filesystem.read_only = {"/proc", "/dev/urandom"};
  p.filesystem.read_write = {"/dev/null", "/tmp"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, "/proc"), nullptr);
  EXPECT_EQ(find(*plan, "/dev/null"), nullptr);
  ASSERT_NE(find(*plan, "/tmp"), nullptr);
  EXPECT_FALSE(find(*plan, "/tmp")->read_only);  // listed read_write: the private /tmp is writable
}

TEST_F(PlanTest, WorkdirIsWritableAndTheStartingDirectory) {
  policy::Policy p;
  p.filesystem.include_workdir = true;
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  const MountOp* wd = find(*plan, root_ + "/rw");
  ASSERT_NE(wd, nullptr);
  EXPECT_FALSE(wd->read_only);
  EXPECT_EQ(plan->workdir, root_ + "/rw");
  EXPECT_FALSE(make_plan(p, "/"));  // a workdir of / would make the host writable
}

TEST_F(PlanTest, WithoutTheWorkdirTheSandboxStartsAtRoot) {
  policy::Policy p;
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->workdir, "/");
}

TEST_F(PlanTest, LandlockRulesMirrorTheMounts) {
  policy::Policy p;
  p.filesystem.read_only = {root_ + "/ro/file"};
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, root_ + "/rw");
  ASSERT_TRUE(plan);
  auto rule = [&](const std::string& path) -> const landlock::Rule* {
    for (const auto& r : plan->landlock)
      if (r.path == path) return &r;
    return nullptr;
  };
  ASSERT_NE(rule(root_ + "/rw"), nullptr);
  ASSERT_NE(rule(root_ + "/ro/file"), nullptr);
  if (landlock::abi_version() > 0) {
    EXPECT_EQ(rule(root_ + "/ro/file")->access,
              landlock::rule_access(landlock::Mode::kReadOnly, false, landlock::abi_version()));
  }
}

// ward's CA bundle: an overlay over a read-only /etc (its mount point /etc/ward cannot be made
// in the host's /etc), right after /etc's own bind so that binds beneath /etc land on top.
// Whether this host has mounts beneath /etc (a container's resolv.conf, hosts, hostname).
bool mounts_beneath_etc() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (point.starts_with("/etc/")) return true;
  }
  return false;
}

TEST_F(PlanTest, TrustLayerOverlaysAReadOnlyEtc) {
  if (mounts_beneath_etc())
    GTEST_SKIP() << "this host has mounts beneath /etc: the shadowed /etc is used (next test)";
  ::mkdir((root_ + "/layer").c_str(), 0755);
  policy::Policy p;
  p.filesystem.read_only = {"/etc", "/etc/ssl"};
  auto plan = make_plan(p, root_ + "/rw", root_ + "/layer");
  ASSERT_TRUE(plan) << plan.error().describe();
  size_t etc = index(*plan, "/etc");
  ASSERT_LT(etc + 1, plan->mounts.size());
  const MountOp& overlay = plan->mounts[etc + 1];
  EXPECT_EQ(overlay.kind, MountOp::Kind::kOverlay);
  EXPECT_EQ(overlay.source, root_ + "/layer");
  EXPECT_EQ(overlay.target, "/etc");
}

// Where the overlay cannot serve — a hidden path beneath /etc (its cover would lie under the
// overlay, which shows its lower layers' own contents), or mounts beneath the host's /etc —
// /etc is a tmpfs holding a read-only bind of each host entry, none followed if it has become a
// symlink, and a copy of each symlink; the hidden path's cover comes after the bind that shows
// it, and the bundle is bound into the tmpfs.
TEST_F(PlanTest, TrustLayerShadowsEtcWhereAnOverlayWouldHideACover) {
  ::mkdir((root_ + "/layer").c_str(), 0755);
  ::mkdir((root_ + "/layer/ward").c_str(), 0755);
  ::mkdir((root_ + "/layer/ward/tls").c_str(), 0755);
  std::ofstream(root_ + "/layer/ward/tls/ca-bundle.pem") << "pem\n";
  policy::Policy p;
  p.filesystem.read_only = {"/etc"};
  auto plan = make_plan(p, root_ + "/rw", root_ + "/layer", {"/etc/ssl"});
  ASSERT_TRUE(plan) << plan.error().describe();
  for (const MountOp& op : plan->mounts) EXPECT_NE(op.kind, MountOp::Kind::kOverlay) << op.target;
  const size_t etc = index(*plan, "/etc");
  ASSERT_LT(etc, plan->mounts.size());
  EXPECT_EQ(plan->mounts[etc].kind, MountOp::Kind::kTmpfs);
  EXPECT_TRUE(plan->mounts[etc].read_only);
  EXPECT_STREQ(plan->mounts[etc].tmpfs_options, "mode=0755");
  const MountOp* passwd = find(*plan, "/etc/passwd");
  ASSERT_NE(passwd, nullptr);
  EXPECT_EQ(passwd->kind, MountOp::Kind::kBind);
  EXPECT_TRUE(passwd->read_only && passwd->no_follow && !passwd->is_directory);
  DIR* d = ::opendir("/etc");
  ASSERT_NE(d, nullptr);
  while (struct dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) == "." || std::string(e->d_name) == "..") continue;
    const std::string path = std::string("/etc/") + e->d_name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    const MountOp* op = find(*plan, path);
    ASSERT_NE(op, nullptr) << path << " is missing from the shadowed /etc";
    EXPECT_GT(index(*plan, path), etc) << path;
    EXPECT_EQ(op->kind, S_ISLNK(st.st_mode) ? MountOp::Kind::kSymlink : MountOp::Kind::kBind)
        << path;
  }
  ::closedir(d);
  // The cover of /etc/ssl (an empty tmpfs) after the bind of /etc/ssl, not beneath it.
  size_t bind = SIZE_MAX, cover = SIZE_MAX;
  for (size_t i = 0; i < plan->mounts.size(); ++i) {
    if (plan->mounts[i].target != "/etc/ssl") continue;
    (plan->mounts[i].kind == MountOp::Kind::kBind ? bind : cover) = i;
  }
  ASSERT_NE(bind, SIZE_MAX);
  ASSERT_NE(cover, SIZE_MAX);
  EXPECT_LT(bind, cover);
  EXPECT_EQ(plan->mounts[cover].kind, MountOp::Kind::kTmpfs);
  const MountOp* bundle = find(*plan, "/etc/ward/tls/ca-bundle.pem");
  ASSERT_NE(bundle, nullptr);
  EXPECT_EQ(bundle->kind, MountOp::Kind::kBind);
  EXPECT_GT(index(*plan, "/etc/ward/tls/ca-bundle.pem"), etc);
}

// Without /etc bound, the bundle is bound file by file into the root tmpfs, readable.
TEST_F(PlanTest, TrustLayerBindsFilesWhenEtcIsNotBound) {
  ::mkdir((root_ + "/layer").c_str(), 0755);
  ::mkdir((root_ + "/layer/ward").c_str(), 0755);
  ::mkdir((root_ + "/layer/ward/tls").c_str(), 0755);
  std::ofstream(root_ + "/layer/ward/tls/ca-bundle.pem") << "pem\n";
  policy::Policy p;
  p.filesystem.read_only = {root_ + "/ro"};
  auto plan = make_plan(p, root_ + "/rw", root_ + "/layer");
  ASSERT_TRUE(plan) << plan.error().describe();
  const MountOp* bundle = find(*plan, "/etc/ward/tls/ca-bundle.pem");
  ASSERT_NE(bundle, nullptr);
  EXPECT_EQ(bundle->kind, MountOp::Kind::kBind);
  EXPECT_TRUE(bundle->read_only);
  EXPECT_FALSE(bundle->is_directory);
  EXPECT_TRUE(std::any_of(plan->landlock.begin(), plan->landlock.end(),
                          [](const auto& r) { return r.path == "/etc/ward/tls/ca-bundle.pem"; }));
  for (const auto& op : plan->mounts) EXPECT_NE(op.kind, MountOp::Kind::kOverlay);
}

// ward's state directory (its CA key) is covered by an empty read-only tmpfs where a listed path
// would show it, and left alone where nothing does.
TEST_F(PlanTest, HiddenDirectoriesGetAnEmptyReadOnlyTmpfs) {
  ::mkdir((root_ + "/rw/state").c_str(), 0700);
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/rw"};
  auto plan = make_plan(p, root_ + "/rw", "", {root_ + "/rw/state", root_ + "/elsewhere"});
  ASSERT_TRUE(plan) << plan.error().describe();
  const MountOp* hidden = find(*plan, root_ + "/rw/state");
  ASSERT_NE(hidden, nullptr);
  EXPECT_EQ(hidden->kind, MountOp::Kind::kTmpfs);
  EXPECT_TRUE(hidden->read_only);
  EXPECT_GT(index(*plan, root_ + "/rw/state"), index(*plan, root_ + "/rw"));
  EXPECT_EQ(find(*plan, root_ + "/elsewhere"), nullptr);
}

// Found in review: the comparison was of path strings, so a policy path through a symlinked
// parent (/home -> var/home) showed the state directory; and a socket kept outside it (a
// gateway's --socket) could not be hidden at all.
TEST_F(PlanTest, HiddenPathsAreComparedResolvedAndFilesGetDevNull) {
  ::mkdir((root_ + "/rw/sub").c_str(), 0755);
  ::mkdir((root_ + "/rw/sub/state").c_str(), 0700);
  std::ofstream(root_ + "/rw/sub/api.sock") << "";
  ASSERT_EQ(::symlink((root_ + "/rw").c_str(), (root_ + "/alias").c_str()), 0);
  policy::Policy p;
  p.filesystem.read_write = {root_ + "/alias/sub"};  // bound at that path, through the link
  auto plan =
      make_plan(p, root_ + "/ro", "", {root_ + "/rw/sub/state", root_ + "/rw/sub/api.sock"});
  ASSERT_TRUE(plan) << plan.error().describe();
  const MountOp* dir = find(*plan, root_ + "/alias/sub/state");
  ASSERT_NE(dir, nullptr);
  EXPECT_EQ(dir->kind, MountOp::Kind::kTmpfs);
  EXPECT_TRUE(dir->read_only);
  const MountOp* sock = find(*plan, root_ + "/alias/sub/api.sock");
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ(sock->kind, MountOp::Kind::kBind);
  EXPECT_EQ(sock->source, "/dev/null");
  EXPECT_FALSE(sock->allow_devices);
  EXPECT_TRUE(sock->read_only);
  EXPECT_GT(index(*plan, root_ + "/alias/sub/api.sock"), index(*plan, root_ + "/alias/sub"));
}

}  // namespace
}  // namespace ward::sandbox
