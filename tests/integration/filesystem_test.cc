// Filesystem attacks (the "Filesystem" section of the scenarios): for each MUST there, attempts
// that a test shows failing, in both modes. Every attempt is one ward-probe invocation inside a
// real sandbox; many run in one sandbox through probe_script() to keep the suite fast.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

#include "base/fd.h"
#include "integration/harness.h"

namespace ward::test {
namespace {

// Files that hijack a user's later sessions, created in the workdir before ward starts.
constexpr const char* kProtectedFiles[] = {
    ".bashrc",     ".bash_profile", ".zshrc",      ".profile",    ".gitconfig",
    ".gitmodules", ".mcp.json",     ".git/config", ".bash_login", ".bash_logout",
    ".zprofile",   ".zshenv",       ".claude.json"};
// Protected directories, each with one file inside.
constexpr const char* kProtectedDirs[] = {".claude", ".codex", ".vscode", ".idea",
                                          ".ssh",    ".aws",   ".kube",   ".git/hooks"};

// A Unix socket listening at `path`, open to every uid (so that only the sandbox keeps it
// away); invalid when it cannot be made (errno says why).
UniqueFd listen_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::chmod(path.c_str(), 0777) != 0 || ::listen(fd.get(), 8) != 0)
    return UniqueFd();
  return fd;
}

// A shell command that connects to the Unix socket `path` (exit 0 when it could).
std::string unix_connect(const std::string& path) {
  return "python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' " +
         shell_quote(path);
}

class FilesystemTest : public WorkdirTest {
 protected:
  // A policy file outside the workdir (so the workload cannot see it).
  std::string policy(const std::string& read_only = "", const std::string& read_write = "",
                     const std::string& extra = "") {
    return dir_->write("policy.yaml", policy_yaml(read_only, read_write, extra));
  }

  std::string default_policy() override { return policy(); }

  // A file owned by the workload's own uid, readable only by it: what it could read on the host.
  std::string owned_by_workload(const std::string& name, const std::string& content) {
    std::string p = dir_->write(name, content, 0600);
    EXPECT_EQ(::chown(p.c_str(), workload_uid(mode()), workload_gid(mode())), 0) << p;
    return p;
  }

  // `ward run -p policy() -- /bin/sh -c SCRIPT` in the workdir, in the background; its output
  // goes to the directory log-NAME.
  std::unique_ptr<Background> start_shell(const std::string& name, const std::string& script) {
    RunOptions options;
    options.mode = mode();
    options.cwd = work_;
    std::string logs = dir_->mkdir("log-" + name);
    std::vector<std::string> args = {"run", "-p", policy(), "--", "/bin/sh", "-c", script};
    return std::make_unique<Background>(ward_background(args, options, logs), logs);
  }

  // `git init` on the host, the repository owned like the rest of the temporary directory.
  void git_init(const std::string& path) {
    std::string cmd = "git init -q " + shell_quote(path) + " && chown -R " +
                      std::to_string(test_uid(mode())) + ":" + std::to_string(test_gid(mode())) +
                      " " + shell_quote(path);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
};

TEST_P(FilesystemTest, WritesUnderReadOnlyPathsFail) {
  // Owned by the workload's uid: only the read-only mount stands in the way, not permissions.
  owned_by_workload("ro/existing.txt", "original\n");
  dir_->mkdir("ro/sub");
  std::string ro = dir_->file("ro");
  for (const std::string& d : {ro, ro + "/sub"})
    ASSERT_EQ(::chown(d.c_str(), workload_uid(mode()), workload_gid(mode())), 0);
  std::vector<ProbeAttempt> attempts = {
      {"create", {"write", ro + "/new.txt"}},
      {"overwrite", {"write", ro + "/existing.txt"}},
      {"append", {"append", ro + "/existing.txt"}},
      {"truncate", {"truncate", ro + "/existing.txt"}},
      {"mkdir", {"mkdir", ro + "/newdir"}},
      {"symlink", {"symlink", "/etc/passwd", ro + "/link"}},
      {"mkfifo", {"mknod-fifo", ro + "/fifo"}},
      {"rename", {"rename", ro + "/existing.txt", ro + "/moved.txt"}},
      {"unlink", {"unlink", ro + "/existing.txt"}},
      {"rmdir-by-rename", {"rename", ro + "/sub", ro + "/sub2"}},
      {"write-usr", {"write", "/usr/ward-probe-was-here"}},
      {"write-etc", {"write", "/etc/ward-probe-was-here"}},
      {"append-etc-passwd", {"append", "/etc/passwd"}},
      {"write-probe-dir", {"write", probe_dir() + "/ward-probe-was-here"}},
  };
  expect_refused(attempts, "", policy(ro));
  EXPECT_EQ(read_file(ro + "/existing.txt"), "original\n");
  EXPECT_FALSE(exists(ro + "/new.txt"));
  EXPECT_FALSE(exists("/usr/ward-probe-was-here"));
  EXPECT_FALSE(exists("/etc/ward-probe-was-here"));
}

TEST_P(FilesystemTest, WritesUnderReadWritePathsAndTheWorkdirSucceed) {
  dir_->write("rw/existing.txt", "original\n");
  dir_->write("rw/delete-me.txt", "x\n");
  dir_->write("work/existing.txt", "original\n");
  std::string rw = dir_->file("rw");
  std::string script =
      "set -e\n"
      "echo new > " +
      shell_quote(rw + "/new.txt") +
      "\n"
      "echo more >> " +
      shell_quote(rw + "/existing.txt") +
      "\n"
      "mkdir " +
      shell_quote(rw + "/newdir") +
      "\n"
      "rm " +
      shell_quote(rw + "/delete-me.txt") +
      "\n"
      "echo new > work-new.txt\n"
      "echo more >> existing.txt\n"
      "mkdir -p a/b/c && echo deep > a/b/c/file && mv a/b/c/file a/moved\n"
      "echo tmp > /tmp/scratch && cat /tmp/scratch\n";
  Result r = run({"/bin/sh", "-c", script}, policy("", rw));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "tmp\n");
  EXPECT_EQ(read_file(rw + "/new.txt"), "new\n");
  EXPECT_EQ(read_file(rw + "/existing.txt"), "original\nmore\n");
  EXPECT_TRUE(exists(rw + "/newdir"));
  EXPECT_FALSE(exists(rw + "/delete-me.txt"));
  EXPECT_EQ(read_file(w("work-new.txt")), "new\n");
  EXPECT_EQ(read_file(w("existing.txt")), "original\nmore\n");
  EXPECT_EQ(read_file(w("a/moved")), "deep\n");
  // What the workload created belongs, on the host, to the directory's owner.
  struct stat st;
  ASSERT_EQ(::stat(w("work-new.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, test_uid(mode()));
}

TEST_P(FilesystemTest, UnlistedPathsCannotBeReadOrListedEvenWhenOwned) {
  std::string secret = owned_by_workload("hidden/secret.txt", "hidden secret\n");
  std::string key = owned_by_workload("home/.ssh/id_ed25519", "PRIVATE KEY\n");
  std::string notes = owned_by_workload("home/notes.txt", "notes\n");
  for (const char* d : {"hidden", "home", "home/.ssh"})
    ASSERT_EQ(::chown(dir_->file(d).c_str(), workload_uid(mode()), workload_gid(mode())), 0);
  std::string hidden = dir_->file("hidden"), home = dir_->file("home");
  std::vector<ProbeAttempt> attempts = {
      {"read-hidden", {"read", secret}},
      {"list-hidden", {"list", hidden}},
      {"stat-hidden", {"stat", hidden}},
      {"read-home-key", {"read", key}},
      {"read-home-file", {"read", notes}},
      {"list-home", {"list", home}},
      {"list-home-ssh", {"list", home + "/.ssh"}},
      {"write-hidden", {"write", hidden + "/new.txt"}},
      {"stat-root-home", {"stat", "/root"}},
      {"list-var", {"list", "/var"}},
      {"list-home-dir", {"list", "/home"}},
      {"list-sys", {"list", "/sys"}},
      {"read-via-proc-self-root", {"read", "/proc/self/root" + secret}},
      {"read-via-proc-1-root", {"read", "/proc/1/root" + secret}},
      {"list-proc-1-root", {"list", "/proc/1/root/"}},
      {"read-via-proc-1-cwd", {"list", "/proc/1/cwd/"}},
  };
  // HOME points at the home-like directory in ward's environment, as it would for a user.
  expect_refused(attempts, "", policy(), {"HOME=" + home});

  // The workdir's parent shows nothing but the path down to the workdir.
  Result r = run({"/bin/ls", "-A", dir_->path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "work\n");
  // The attempts above are real: outside the sandbox the workload's user reads the file.
  EXPECT_EQ(read_file(secret), "hidden secret\n");
}

TEST_P(FilesystemTest, SymlinksInTheWorkdirReachNothingHidden) {
  std::string secret = owned_by_workload("hidden/secret.txt", "hidden secret\n");
  ASSERT_EQ(::chown(dir_->file("hidden").c_str(), workload_uid(mode()), workload_gid(mode())), 0);
  // Links planted before the sandbox starts (as a repository could ship them)...
  ASSERT_EQ(::symlink(secret.c_str(), w("abs-link").c_str()), 0);
  ASSERT_EQ(::symlink("../hidden/secret.txt", w("rel-link").c_str()), 0);
  ASSERT_EQ(::symlink(dir_->file("hidden").c_str(), w("dir-link").c_str()), 0);
  ASSERT_EQ(::symlink("/root", w("root-link").c_str()), 0);
  // ...and made by the workload itself.
  std::string prologue =
      "ln -s " + shell_quote(secret) + " own-link\nln -s /proc/1/root own-root\n";
  std::vector<ProbeAttempt> attempts = {
      {"absolute", {"read", w("abs-link")}},
      {"relative", {"read", w("rel-link")}},
      {"list-dir", {"list", w("dir-link")}},
      {"through-dir", {"read", w("dir-link/secret.txt")}},
      {"root-home", {"list", w("root-link")}},
      {"own-link", {"read", w("own-link")}},
      {"own-proc-root-link", {"list", w("own-root/")}},
      {"write-through-link", {"write", w("abs-link")}},
  };
  expect_refused(attempts, prologue);
  EXPECT_EQ(read_file(secret), "hidden secret\n");
}

TEST_P(FilesystemTest, HardLinksCannotReachOutsideTheWorkdir) {
  std::vector<ProbeAttempt> attempts = {
      {"etc-passwd", {"link", "/etc/passwd", w("passwd")}},
      {"etc-shadow", {"link", "/etc/shadow", w("shadow")}},
      {"bin-sh", {"link", "/bin/sh", w("sh")}},
      {"probe", {"link", probe_binary(), w("probe")}},
      {"into-tmp", {"link", "/etc/passwd", "/tmp/passwd"}},
      {"ln-command", {}, false, "ln /etc/passwd " + shell_quote(w("ln-passwd"))},
  };
  expect_refused(attempts);
  for (const char* name : {"passwd", "shadow", "sh", "probe", "ln-passwd"})
    EXPECT_FALSE(exists(w(name))) << name;
}

// The links above name root's files, which the kernel's fs.protected_hardlinks refuses to link
// anyway. These are the workload's own files, under a read-only path and under a path listed
// nowhere: nothing but the sandbox stands between them and a link in the workdir (the control
// shows the same link works on the host).
TEST_P(FilesystemTest, HardLinksToTheWorkloadsOwnFilesOutsideTheWorkdirFail) {
  const std::string ro_file = owned_by_workload("ro/mine.txt", "original\n");
  const std::string hidden_file = owned_by_workload("hidden/mine.txt", "hidden\n");
  std::vector<ProbeAttempt> attempts = {
      {"read-only", {"link", ro_file, w("ro-link")}},
      {"hidden", {"link", hidden_file, w("hidden-link")}},
      {"ln-read-only", {}, false, "ln " + shell_quote(ro_file) + " " + shell_quote(w("ln-link"))},
  };
  expect_refused(attempts, "", policy(dir_->file("ro")));
  EXPECT_EQ(read_file(ro_file), "original\n");
  for (const char* name : {"ro-link", "hidden-link", "ln-link"}) EXPECT_FALSE(exists(w(name)));
  ASSERT_EQ(::link(ro_file.c_str(), w("control-link").c_str()), 0) << std::strerror(errno);
  ::unlink(w("control-link").c_str());
}

TEST_P(FilesystemTest, DeviceNodesCannotBeCreated) {
  std::vector<ProbeAttempt> attempts = {
      {"char-in-workdir", {"mknod-char", w("null")}},
      {"char-in-tmp", {"mknod-char", "/tmp/null"}},
      {"char-in-dev-shm", {"mknod-char", "/dev/shm/null"}},
      {"mknod-command", {}, false, "mknod " + shell_quote(w("mem")) + " c 1 1"},
  };
  expect_refused(attempts);
  EXPECT_FALSE(exists(w("null")));
  EXPECT_FALSE(exists(w("mem")));
}

TEST_P(FilesystemTest, SetuidBinariesGrantNoPrivilege) {
  // A setuid-root copy of the probe, planted in the workdir by root before the sandbox starts.
  std::string suid = w("suid-probe");
  ASSERT_EQ(std::system(("cp " + probe_binary() + " " + suid).c_str()), 0);
  ASSERT_EQ(::chown(suid.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(suid.c_str(), 04755), 0);
  const std::string ids = std::to_string(workload_uid(mode()));
  const std::string expected = ids + " " + ids + " " + ids;

  Result r = run({"/bin/sh", "-c",
                  "./suid-probe ids; " + shell_quote(probe_binary()) +
                      " mount-flags .; cp ./suid-probe own && ! chmod 4755 own 2>/dev/null && "
                      "./own ids"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = r.out.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(r.out.substr(start, end - start));
  ASSERT_EQ(lines.size(), 3u) << r.out << r.err;
  EXPECT_EQ(lines[0].substr(0, expected.size()), expected) << "setuid-root copy: " << lines[0];
  EXPECT_NE(lines[1].find("nosuid"), std::string::npos) << "workdir mount: " << lines[1];
  // Making a setuid copy is refused outright (seccomp); the copy runs with the workload's ids.
  EXPECT_EQ(lines[2].substr(0, expected.size()), expected) << "own copy: " << lines[2];

  // Every mount the workload can execute from is nosuid, and setuid(0) fails.
  std::vector<ProbeAttempt> attempts = {{"setuid-0", {"setuid-root"}}};
  for (const char* path : {"/usr", "/etc", "/tmp", "/dev/shm", "/proc"}) {
    Result flags = run(probe("mount-flags", {path}));
    EXPECT_NE(flags.out.find("nosuid"), std::string::npos) << path << ": " << flags.out;
  }
  expect_refused(attempts);
}

TEST_P(FilesystemTest, SudoFails) {
  std::string sudo;
  for (const char* p : {"/usr/bin/sudo", "/bin/sudo", "/usr/sbin/sudo"})
    if (exists(p)) sudo = p;
  if (sudo.empty()) GTEST_SKIP() << "sudo is not installed on this host";
  Result r = run({"/bin/sh", "-c", sudo + " -n id -u </dev/null"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("0\n"), std::string::npos) << r.out;
}

TEST_P(FilesystemTest, MountUmountPivotRootAndChrootFail) {
  dir_->mkdir("work/mnt");
  std::vector<ProbeAttempt> attempts = {
      {"mount-tmpfs-workdir", {"mount-tmpfs", w("mnt")}},
      {"mount-tmpfs-tmp", {"mount-tmpfs", "/tmp"}},
      {"umount-proc", {"umount", "/proc"}},
      {"umount-workdir", {"umount", work_}},
      {"umount-usr", {"umount", "/usr"}},
      {"pivot-root", {"pivot-root", w("mnt"), w("mnt")}},
      {"chroot-workdir", {"chroot", work_}},
      {"chroot-root", {"chroot", "/"}},
      {"setns-user", {"setns", "/proc/1/ns/user"}},
      {"mount-command", {}, false, "mount -t tmpfs none " + shell_quote(w("mnt"))},
      {"umount-command", {}, false, "umount /proc"},
      {"chroot-command", {}, false, "chroot / /bin/true"},
  };
  expect_refused(attempts);
}

TEST_P(FilesystemTest, ProtectedFilesStayReadOnlyInTheWorkdir) {
  git_init(work_);
  for (const char* f : kProtectedFiles)
    if (std::string(f) != ".git/config") dir_->write(std::string("work/") + f, "# original\n");
  for (const char* d : kProtectedDirs)
    dir_->write(std::string("work/") + d + "/file", "original\n");
  dir_->write("work/.git/hooks/pre-commit", "#!/bin/sh\nexit 0\n", 0755);
  const std::string git_config = read_file(w(".git/config"));

  std::vector<ProbeAttempt> attempts;
  std::string prologue;
  int n = 0;
  auto add = [&](const std::string& label, std::vector<std::string> args) {
    attempts.push_back({label, std::move(args)});
  };
  // Changes in place first, destructive attempts (rename away, unlink) last.
  for (const char* f : kProtectedFiles) {
    std::string p = w(f), name = f;
    add("overwrite:" + name, {"write", p});
    add("append:" + name, {"append", p});
    add("truncate:" + name, {"truncate", p});
    add("hardlink:" + name, {"link", p, w("hardlink-" + std::to_string(n))});
    std::string evil = w("evil-" + std::to_string(n++));
    prologue += "echo evil > " + shell_quote(evil) + "\n";
    add("rename-over:" + name, {"rename", evil, p});
  }
  for (const char* d : kProtectedDirs) {
    std::string p = w(d), name = d;
    add("create-in:" + name, {"write", p + "/new"});
    add("mkdir-in:" + name, {"mkdir", p + "/newdir"});
    add("overwrite-in:" + name, {"write", p + "/file"});
    add("append-in:" + name, {"append", p + "/file"});
    std::string evil = w("evil-" + std::to_string(n++));
    prologue += "echo evil > " + shell_quote(evil) + "\n";
    add("rename-into:" + name, {"rename", evil, p + "/file"});
    add("unlink-in:" + name, {"unlink", p + "/file"});
  }
  add("create-hook", {"write", w(".git/hooks/post-checkout")});
  add("overwrite-hook", {"write", w(".git/hooks/pre-commit")});
  add("chmod-hook", {"chmod-setuid", w(".git/hooks/pre-commit")});
  for (const char* f : kProtectedFiles) {
    add("unlink:" + std::string(f), {"unlink", w(f)});
    add("rename-away:" + std::string(f), {"rename", w(f), w(std::string(f) + ".moved")});
  }
  for (const char* d : kProtectedDirs)
    add("rename-away:" + std::string(d), {"rename", w(d), w(std::string(d) + ".moved")});
  expect_refused(attempts, prologue);

  for (const char* f : kProtectedFiles) {
    if (std::string(f) == ".git/config")
      EXPECT_EQ(read_file(w(f)), git_config);
    else
      EXPECT_EQ(read_file(w(f)), "# original\n") << f;
  }
  for (const char* d : kProtectedDirs) {
    EXPECT_EQ(read_file(w(d) + "/file"), "original\n") << d;
    EXPECT_FALSE(exists(w(d) + "/new")) << d;
  }
  EXPECT_FALSE(exists(w(".git/hooks/post-checkout")));
}

// The protection must not be undone by moving the directory that holds a protected path: the
// workload renames .git away, makes a fresh .git with its own hooks and config, and the user's
// next `git commit` on the host runs them.
TEST_P(FilesystemTest, ProtectedPathsCannotBeReplacedByRenamingTheirParent) {
  git_init(work_);
  dir_->write("work/.config/git/config", "[core]\n");
  std::vector<ProbeAttempt> attempts = {
      {"rename-dot-git", {"rename", w(".git"), w(".git-old")}},
      {"rename-dot-config", {"rename", w(".config"), w(".config-old")}},
  };
  expect_refused(attempts);
  // Whatever happened inside, the host's repository still has its own hooks directory and config.
  EXPECT_TRUE(exists(w(".git/hooks")));
  EXPECT_TRUE(exists(w(".git/objects")));
  EXPECT_FALSE(exists(w(".git-old")));
  EXPECT_FALSE(exists(w(".config-old")));
}

// Two agents in one repository. Sandbox A starts first and creates the read-only placeholders of
// the missing names; B starts while A runs and finds them present. A ends: had it removed its
// placeholders, the kernel would have detached them from B's namespace too (a mount point
// removed in another namespace is unmounted there), and B could create .claude/settings.json or
// .mcp.json for the user's next session. They must stay read-only in B until B ends, and be gone
// once the last sandbox has.
TEST_P(FilesystemTest, PlaceholdersHoldWhileAnotherSandboxOfTheWorkdirEnds) {
  auto wait_for = [](const std::string& path) {
    return wait_until([&] { return exists(path); }, std::chrono::seconds(10));
  };
  const std::string names[] = {".claude", ".codex", ".vscode", ".idea", ".mcp.json", ".gitmodules"};

  auto a = start_shell("a", "touch a-ready; while [ ! -e release-a ]; do sleep 0.02; done");
  ASSERT_TRUE(wait_for(w("a-ready"))) << a->err();
  for (const std::string& n : names) ASSERT_TRUE(exists(w(n))) << n << " (A's placeholder)";

  std::vector<ProbeAttempt> attempts = {
      {"create-claude-settings", {"write", w(".claude/settings.json")}},
      {"create-codex-config", {"write", w(".codex/config.toml")}},
      {"create-vscode-tasks", {"write", w(".vscode/tasks.json")}},
      {"overwrite-mcp-json", {"write", w(".mcp.json")}},
      {"overwrite-gitmodules", {"write", w(".gitmodules")}},
      {"remove-claude", {"rename", w(".claude"), w("claude-away")}},
      {"unlink-mcp-json", {"unlink", w(".mcp.json")}},
  };
  auto b = start_shell("b", "touch b-ready; while [ ! -e release-b ]; do sleep 0.02; done\n" +
                                probe_script(attempts));
  ASSERT_TRUE(wait_for(w("b-ready"))) << b->err();

  dir_->write("work/release-a", "");
  ASSERT_EQ(a->wait(std::chrono::seconds(10)), 0) << a->err();
  for (const std::string& n : names) EXPECT_TRUE(exists(w(n))) << n << " removed under B";

  dir_->write("work/release-b", "");
  ASSERT_EQ(b->wait(std::chrono::seconds(20)), 0) << b->err();
  Result r{0, b->out(), b->err()};
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  EXPECT_FALSE(exists(w(".claude/settings.json")));
  EXPECT_FALSE(exists(w("claude-away")));
  // The last sandbox to end removed what ward had put there.
  for (const std::string& n : names) EXPECT_FALSE(exists(w(n))) << n << " left behind";
}

// A ward killed outright leaves its placeholders behind; the next sandbox of the workdir holds
// them like its own and removes them when it ends, while a user's own empty file stays.
TEST_P(FilesystemTest, PlaceholdersAKilledWardLeftAreRemovedByTheNextOne) {
  dir_->write("work/.gitmodules", "");  // the user's own, empty
  auto killed = start_shell("killed", "touch ready; sleep 60");
  ASSERT_TRUE(wait_until([&] { return exists(w("ready")); }, std::chrono::seconds(10)))
      << killed->err();
  ::kill(killed->pid(), SIGKILL);
  killed->wait(std::chrono::seconds(10));
  ASSERT_TRUE(exists(w(".claude"))) << "the killed ward's placeholder";
  // Its init, which shares ward's descriptors, holds them until it has noticed and ended.
  ASSERT_TRUE(wait_until(
      [&] {
        int fd = ::open(w(".claude").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        bool free = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
        if (fd >= 0) ::close(fd);
        return free;
      },
      std::chrono::seconds(10)));
  Result r = run({"/bin/sh", "-c", "echo x > .claude/new || echo refused"});
  EXPECT_EQ(r.out, "refused\n") << r.err;
  EXPECT_FALSE(exists(w(".claude")));
  EXPECT_FALSE(exists(w(".mcp.json")));
  EXPECT_TRUE(exists(w(".gitmodules"))) << "the user's own empty file was removed";
}

// Found in review: a workdir inside a listed writable directory (read_write: [~/work], ward run
// in ~/work/a/b/app) was folded into its parent: it got no placeholders, and protected names
// three levels below the listed directory were not looked for. Neither may be created or
// changed, and the workdir cannot be renamed away and made again around new ones.
TEST_P(FilesystemTest, AWorkdirInsideAWritableParentKeepsItsProtectedNames) {
  for (const char* d : {"work/a", "work/a/b", "work/a/b/app"}) dir_->mkdir(d);
  const std::string app = w("a/b/app");
  dir_->write("work/a/b/app/.vscode/settings.json", "{}\n");
  std::vector<ProbeAttempt> attempts = {
      {"mkdir-claude", {"mkdir", app + "/.claude"}},
      {"create-claude-settings", {"write", app + "/.claude/settings.json"}},
      {"create-mcp-json", {"write", app + "/.mcp.json"}},
      {"overwrite-vscode-settings", {"write", app + "/.vscode/settings.json"}},
      {"rename-workdir-away", {"rename", app, w("a/b/app-away")}},
      {"rename-its-parent-away", {"rename", w("a"), w("a-away")}},
  };
  Result r = run_sandbox(mode(), app, {"/bin/sh", "-c", probe_script(attempts)}, policy("", work_));
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  EXPECT_FALSE(exists(app + "/.mcp.json"));
  EXPECT_FALSE(exists(app + "/.claude")) << "the placeholder was left, or the workload made it";
  EXPECT_EQ(read_file(app + "/.vscode/settings.json"), "{}\n");
  EXPECT_FALSE(exists(w("a-away")));
  EXPECT_FALSE(exists(w("a/b/app-away")));
}

// Found in review: a protected name that is a symlink (a dotfile manager's ~/.bashrc, a shared
// .claude) was skipped, and the workload could replace it with a file of its own. Nothing can
// be mounted on a symlink, so ward refuses to start, naming it, and runs nothing.
TEST_P(FilesystemTest, AProtectedNameThatIsASymlinkRefusesTheStart) {
  dir_->mkdir("work/shared-claude");
  ASSERT_EQ(::symlink("shared-claude", w(".claude").c_str()), 0);
  Result r = run({"/bin/sh", "-c", "echo ran > ran"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(w(".claude")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("symlink"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(w("ran")));
  EXPECT_FALSE(exists(w(".mcp.json"))) << "a placeholder was made before the refusal";
}

// Found by a red-team: `read_write: [/]` is refused, but a listed path that is a symlink to / (or
// leads there through one) was bound as the host's root, read-write: /etc, /root and every home
// writable from inside. It is refused like / itself (read-only too), and nothing runs.
TEST_P(FilesystemTest, AWritablePathThatLeadsToTheRootIsRefusedLikeTheRoot) {
  const std::string link = dir_->path() + "/rootlink";
  ASSERT_EQ(::symlink("/", link.c_str()), 0);
  const std::string through = dir_->path() + "/through";
  ASSERT_EQ(::symlink(dir_->path().c_str(), through.c_str()), 0);
  // Not beneath /tmp, which policy() lists writable (symlinks there are not followed at all).
  auto listing = [&](const std::string& kind, const std::string& path) {
    const bool ro = kind == "read_only";
    return dir_->write("root-policy.yaml",
                       "version: 1\nfilesystem_policy:\n  include_workdir: true\n"
                       "  read_only: [/usr, /bin, /lib, /lib64, /etc, " +
                           probe_dir() + (ro ? ", " + path : "") + "]\n" +
                           (ro ? "" : "  read_write: [" + path + "]\n"));
  };
  for (const std::string& listed : {link, through + "/rootlink"}) {
    Result r = run({"/bin/sh", "-c", "echo ran > ran; touch /etc/ward-test-root-writable"},
                   listing("read_write", listed));
    EXPECT_EQ(r.exit_code, 125) << listed << ": " << r.err;
    EXPECT_NE(r.err.find("leads to /"), std::string::npos) << r.err;
    EXPECT_FALSE(exists(w("ran")));
    EXPECT_FALSE(exists("/etc/ward-test-root-writable"));
    ::unlink("/etc/ward-test-root-writable");
  }
  Result ro = run({"/bin/sh", "-c", "echo ran > ran"}, listing("read_only", link));
  EXPECT_EQ(ro.exit_code, 125) << ro.err;
  EXPECT_NE(ro.err.find("leads to /"), std::string::npos) << ro.err;
  EXPECT_FALSE(exists(w("ran")));
}

// Found in review: ward took its shared lock on a placeholder with a blocking flock(2), and any
// process able to open the name (another user where the directory is world-readable, a sandbox
// that has it read-only) could hold an exclusive lock and stall every start there for good.
// ward waits no longer than a ward that is removing it would hold it, then refuses to start.
TEST_P(FilesystemTest, APlaceholderLockedByAnotherProcessFailsTheStartInsteadOfHanging) {
  dir_->mkdir("work/.vscode");
  UniqueFd held(::open(w(".vscode").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(held);
  ASSERT_EQ(::flock(held.get(), LOCK_EX | LOCK_NB), 0);
  const auto began = std::chrono::steady_clock::now();
  Result r = run({"/bin/sh", "-c", "echo ran > ran"});
  const auto waited = std::chrono::steady_clock::now() - began;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(waited, std::chrono::seconds(10)) << "ward waited for the lock";
  EXPECT_NE(r.err.find(w(".vscode")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("locked"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(w("ran")));
  // What it made before giving up is gone; released, the next start works.
  EXPECT_FALSE(exists(w(".mcp.json")));
  ASSERT_EQ(::flock(held.get(), LOCK_UN), 0);
  EXPECT_EQ(run({"/bin/sh", "-c", "echo ran > ran"}).exit_code, 0);
  EXPECT_TRUE(exists(w("ran")));
}

// Found in review: the placeholders were checked and removed by path, so a workdir renamed (or
// one of its parents swapped for a symlink) while the sandbox ran sent the removal elsewhere.
// They are made, checked and removed through their directory, opened once: the ones ward made
// go with the directory, and a file of the same name where the path now leads stays.
TEST_P(FilesystemTest, PlaceholdersAreRemovedFromTheirOwnDirectoryWhereverItMoved) {
  auto s = start_shell("moved", "touch ready; while [ ! -e release ]; do sleep 0.02; done");
  ASSERT_TRUE(wait_until([&] { return exists(w("ready")); }, std::chrono::seconds(10))) << s->err();
  ASSERT_TRUE(exists(w(".mcp.json")));
  const std::string other = dir_->mkdir("other");
  dir_->write("other/.mcp.json", "");  // someone's own, empty and unmarked, elsewhere
  const std::string moved = dir_->file("work-moved");
  ASSERT_EQ(::rename(work_.c_str(), moved.c_str()), 0);
  ASSERT_EQ(::symlink(other.c_str(), work_.c_str()), 0);
  dir_->write("work-moved/release", "");
  EXPECT_EQ(s->wait(std::chrono::seconds(10)), 0) << s->err();
  EXPECT_TRUE(exists(other + "/.mcp.json")) << "a file where the old path leads was removed";
  for (const char* name : {".mcp.json", ".claude", ".gitmodules"})
    EXPECT_FALSE(exists(moved + "/" + name)) << name << " left in the moved workdir";
  ASSERT_EQ(::unlink(work_.c_str()), 0);
  ASSERT_EQ(::rename(moved.c_str(), work_.c_str()), 0);
}

// Found in review: a worktree's .git file could be repointed at a repository the workload made
// (its config runs with the user's next git command there), and in a workdir below a
// repository's top the workload could make a .git of its own that shadows the user's.
TEST_P(FilesystemTest, GitLinksAndNewRepositoriesInsideARepositoryAreRefused) {
  git_init(work_);
  for (const char* d : {"work/sub", "work/tree"}) dir_->mkdir(d);
  dir_->write("work/tree/.git", "gitdir: " + w(".git") + "\n");
  const std::string sub = w("sub");
  std::vector<ProbeAttempt> attempts = {
      {"mkdir-git-in-subdir", {"mkdir", sub + "/.git"}},
      {"write-git-config-in-subdir", {"write", sub + "/.git/config"}},
      {"repoint-worktree-link", {"write", w("tree/.git")}},
      {"unlink-worktree-link", {"unlink", w("tree/.git")}},
  };
  Result r = run_sandbox(mode(), sub, {"/bin/sh", "-c", probe_script(attempts)}, policy("", work_));
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  EXPECT_FALSE(exists(sub + "/.git")) << "a repository made in the subdirectory, or a placeholder";
  EXPECT_EQ(read_file(w("tree/.git")), "gitdir: " + w(".git") + "\n");
}

// Repositories below the workdir are as much a target as the workdir's own.
TEST_P(FilesystemTest, ProtectedPathsInANestedRepositoryStayReadOnly) {
  dir_->mkdir("work/project");
  git_init(w("project"));
  dir_->write("work/project/.vscode/settings.json", "{}\n");
  std::vector<ProbeAttempt> attempts = {
      {"create-hook", {"write", w("project/.git/hooks/pre-commit")}},
      {"append-config", {"append", w("project/.git/config")}},
      {"overwrite-vscode", {"write", w("project/.vscode/settings.json")}},
  };
  expect_refused(attempts);
  EXPECT_FALSE(exists(w("project/.git/hooks/pre-commit")));
}

// Found by a red-team: the search for nested repositories read at most 1024 directories and then
// only warned, so a workload that made 1100 directories beside `p/zzz` had the next run leave
// p/zzz/.git/hooks writable (a pre-commit hook for the user's next commit). A root the search
// cannot finish refuses the start, naming it; nothing runs and no hook can be planted.
TEST_P(FilesystemTest, ATreeTooBigToSearchRefusesTheStartInsteadOfLeavingARepositoryOpen) {
  dir_->mkdir("work/p/zzz");
  git_init(w("p/zzz"));
  dir_->mkdir("work/flood");
  // On a tmpfs of its own where the test may mount one: removing 16k directories from a disk
  // mounted with `discard` takes a minute.
  const bool mounted = ::mount("tmpfs", w("flood").c_str(), "tmpfs", 0, "mode=0755") == 0;
  for (int i = 0; i <= 16384; ++i)
    ASSERT_EQ(::mkdir(w("flood/d" + std::to_string(i)).c_str(), 0755), 0) << i;
  Result r = run({"/bin/sh", "-c", "echo hooked > p/zzz/.git/hooks/pre-commit; echo ran > ran"});
  if (mounted) ::umount2(w("flood").c_str(), MNT_DETACH);
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find("more than 16384 directories"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(w("p/zzz/.git/hooks/pre-commit")));
  EXPECT_FALSE(exists(w("ran")));
}

// Found by a red-team session: with .git/config read-only, git could still be pointed at a
// configuration of the workload's. `.git/commondir` names the directory git takes config, hooks
// and refs from, and `.git/config.worktree` is read once a sparse checkout sets
// extensions.worktreeConfig: the next `git status` on the host ran the workload's
// core.fsmonitor. Both are reserved in every repository (the workdir's, a nested one, a linked
// worktree's and a submodule's directories), and the attack, made in full, runs nothing.
TEST_P(FilesystemTest, GitCannotBePointedAtAConfigurationOfTheWorkloads) {
  git_init(work_);
  dir_->mkdir("work/nested");
  git_init(w("nested"));
  const std::string marker = dir_->path() + "/fsmonitor-ran";
  const std::string commit = "git -c user.name=a -c user.email=a@b commit -q --allow-empty -m one";
  const std::string host_setup =
      "set -e; export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory "
      "GIT_CONFIG_VALUE_0='*'; cd " +
      shell_quote(work_) + "; " + commit + "; git worktree add -q ../linked; " + "cd nested && " +
      commit + " && chown -R " + std::to_string(test_uid(mode())) + ":" +
      std::to_string(test_gid(mode())) + " " + shell_quote(work_) + " " +
      shell_quote(dir_->path() + "/linked");
  ASSERT_EQ(std::system(("/bin/sh -c " + shell_quote(host_setup)).c_str()), 0);
  const std::string linked_admin = w(".git/worktrees/linked");
  ASSERT_TRUE(exists(linked_admin + "/commondir"));
  // What the workload plants: a repository directory of its own whose config runs a command.
  const std::string evil = w(".git/objects/evil");
  const std::string prologue =
      "mkdir -p " + shell_quote(evil + "/objects/info") + " && cp -r " +
      shell_quote(w(".git/HEAD")) + " " + shell_quote(w(".git/refs")) + " " + shell_quote(evil) +
      " && echo " + shell_quote(w(".git/objects")) + " > " +
      shell_quote(evil + "/objects/info/alternates") +
      " && printf '[core]\\n\\tfsmonitor = \"touch " + marker + "; false\"\\n' > " +
      shell_quote(evil + "/config") + " && echo " + shell_quote(evil) + " > /tmp/evil-path\n";
  std::vector<ProbeAttempt> attempts;
  for (const std::string& dir : {w(".git"), w("nested/.git"), linked_admin}) {
    // The write last: made, it stays for the host's git below.
    attempts.push_back({"config.worktree:" + dir, {"write", dir + "/config.worktree"}});
    attempts.push_back({"unlink-commondir:" + dir, {"unlink", dir + "/commondir"}});
    attempts.push_back(
        {"commondir:" + dir, {}, false, "cat /tmp/evil-path > " + dir + "/commondir"});
  }
  attempts.push_back({"linked-gitdir", {"write", linked_admin + "/gitdir"}});
  expect_refused(attempts, prologue);
  // The host's git, in each place, runs nothing of the workload's and works as before.
  for (const std::string& where : {work_, w("nested"), dir_->path() + "/linked"}) {
    const std::string status = "git -c safe.directory='*' -c extensions.worktreeConfig=true -C " +
                               shell_quote(where) + " status --short >/dev/null 2>&1";
    EXPECT_EQ(std::system(status.c_str()), 0) << where;
  }
  EXPECT_FALSE(exists(marker)) << "the host's git ran the workload's core.fsmonitor";
  // The reservations are gone with the sandbox; the linked worktree's own files are as they were.
  EXPECT_FALSE(exists(w(".git/commondir")));
  EXPECT_FALSE(exists(w(".git/config.worktree")));
  EXPECT_FALSE(exists(w("nested/.git/commondir")));
  EXPECT_EQ(read_file(linked_admin + "/commondir"), "../..\n");
}

// With the workdir at $HOME, git's other user configuration (~/.config/git/config) and Claude
// Code's user settings (~/.claude.json, which names MCP servers it starts) cannot be made.
TEST_P(FilesystemTest, TheUserConfigurationOfGitAndClaudeCannotBeMadeInAHomeWorkdir) {
  for (bool has_config : {true, false}) {
    if (has_config) dir_->mkdir("work/.config");
    std::vector<ProbeAttempt> attempts = {
        {"mkdir-in-config-git", {"mkdir", w(".config/git/sub")}},
        {"write-git-config", {"write", w(".config/git/config")}},
        {"write-claude-json", {"write", w(".claude.json")}},
    };
    Result r = run_sandbox(mode(), work_, {"/bin/sh", "-c", probe_script(attempts)}, policy(),
                           {"HOME=" + work_});
    expect_all_refused(attempts, parse_probe_report(r.out), r);
    EXPECT_FALSE(exists(w(".config/git"))) << has_config;
    EXPECT_FALSE(exists(w(".claude.json"))) << has_config;
    EXPECT_EQ(exists(w(".config")), has_config) << "a placeholder left behind";
    if (has_config) ::rmdir(w(".config").c_str());
  }
}

// Found by a red-team: in a home workdir the workload could make the files a person's next login
// or tool runs — ~/.local/bin first on Debian's PATH, a .pth in ~/.local/lib's site-packages,
// ~/.zlogin, ~/.vimrc, ~/.tmux.conf, ~/.npmrc, credential stores, user systemd units, autostart
// entries. And a home was only $HOME: root working in a user's home (HOME=/root) left its missing
// dotfiles unreserved. Each is refused, in $HOME and in a directory of /home alike, and nothing
// is left behind.
TEST_P(FilesystemTest, ThePlacesALaterLoginRunsFromCannotBeMadeInAHome) {
  const std::string site = ".local/lib/python3/site-packages";
  auto attempts_in = [&](const std::string& home) {
    auto at = [&](const std::string& rel) { return home + "/" + rel; };
    return std::vector<ProbeAttempt>{
        {"local-bin", {"mkdir", at(".local/bin")}},
        {"local-site", {"mkdir", at(".local/lib")}},
        {"zlogin", {"write", at(".zlogin")}},
        {"vimrc", {"write", at(".vimrc")}},
        {"tmux", {"write", at(".tmux.conf")}},
        {"npmrc", {"write", at(".npmrc")}},
        {"git-credentials", {"write", at(".git-credentials")}},
        {"netrc", {"write", at(".netrc")}},
        {"docker", {"mkdir", at(".docker")}},
        {"gnupg", {"mkdir", at(".gnupg")}},
        {"bash-login", {"write", at(".bash_login")}},
        {"ssh", {"mkdir", at(".ssh")}},
    };
  };
  auto config_attempts = [&](const std::string& home) {
    return std::vector<ProbeAttempt>{
        {"systemd-unit", {"mkdir", home + "/.config/systemd"}},
        {"autostart", {"mkdir", home + "/.config/autostart"}},
        {"fish", {"mkdir", home + "/.config/fish"}},
        {"local-bin-existing", {"mkdir", home + "/.local/bin"}},
        {"local-lib-existing", {"mkdir", home + "/" + site}},
    };
  };
  auto check = [&](const std::string& home, const std::vector<std::string>& env) {
    for (bool existing : {false, true}) {
      if (existing) {
        ASSERT_EQ(::mkdir((home + "/.config").c_str(), 0755), 0);
        ASSERT_EQ(::mkdir((home + "/.local").c_str(), 0755), 0)
            << home << ": " << std::strerror(errno);
        ASSERT_EQ(::chown((home + "/.config").c_str(), workload_uid(mode()), workload_gid(mode())),
                  0);
        ASSERT_EQ(::chown((home + "/.local").c_str(), workload_uid(mode()), workload_gid(mode())),
                  0);
      }
      std::vector<ProbeAttempt> attempts = existing ? config_attempts(home) : attempts_in(home);
      Result r =
          run_sandbox(mode(), home, {"/bin/sh", "-c", probe_script(attempts)}, policy(), env);
      expect_all_refused(attempts, parse_probe_report(r.out), r);
      for (const char* left : {".zlogin", ".vimrc", ".npmrc", ".ssh", ".config/systemd",
                               ".config/autostart", ".local/bin", ".local/lib"})
        EXPECT_FALSE(exists(home + "/" + left)) << home << ": " << left << " left behind";
      EXPECT_EQ(exists(home + "/.config"), existing) << "a placeholder left behind";
    }
    ::rmdir((home + "/.config").c_str());
    ::rmdir((home + "/.local").c_str());
  };
  // ward's own state elsewhere: rootless, it would be ~/.local/state/ward.
  const std::string state_dir = dir_->mkdir("state");
  ASSERT_EQ(::chown(state_dir.c_str(), test_uid(mode()), test_gid(mode())), 0);
  const std::string state = "XDG_STATE_HOME=" + state_dir;
  check(work_, {"HOME=" + work_, state});
  // Another person's home, ward's HOME elsewhere.
  if (::access("/home", W_OK) != 0) GTEST_SKIP() << "cannot make a directory in /home";
  char other[] = "/home/ward-test-home-XXXXXX";
  ASSERT_NE(::mkdtemp(other), nullptr);
  ASSERT_EQ(::chmod(other, 0755), 0);
  ASSERT_EQ(::chown(other, workload_uid(mode()), workload_gid(mode())), 0);
  check(other, {"HOME=" + dir_->path(), state});
  EXPECT_EQ(::rmdir(other), 0) << "something was left in " << other;
}

// Found by a red-team: in a home workdir ~/.ssh was read-only, but its keys were readable and the
// socket of an ssh ControlMaster kept there could be connected to (a read-only mount does not
// stop connect(2)): commands on the user's servers, with no network at all. A home's credential
// stores are hidden like ward's own state; one the policy lists itself stays visible.
TEST_P(FilesystemTest, AHomesCredentialStoresAreHiddenSocketsIncluded) {
  dir_->write("work/.ssh/id_test", "PRIVATE-KEY-CANARY\n", 0644);
  dir_->write("work/.aws/credentials", "AWS-CANARY\n", 0644);
  dir_->write("work/.netrc", "machine x password NETRC-CANARY\n", 0644);
  const std::string sock = w(".ssh/cm-user@prod:22");
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  const std::string state = dir_->mkdir("state");
  ASSERT_EQ(::chown(state.c_str(), test_uid(mode()), test_gid(mode())), 0);
  const std::vector<std::string> env = {"HOME=" + work_, "XDG_STATE_HOME=" + state};
  std::vector<ProbeAttempt> attempts = {
      {"read-key", {"read", w(".ssh/id_test")}},
      {"read-aws", {"read", w(".aws/credentials")}},
      {"read-netrc", {"read", w(".netrc")}},
      {"control-master", {"connect-unix", sock}},
      {"write-ssh", {"write", w(".ssh/authorized_keys")}},
  };
  Result r = run_sandbox(mode(), work_, {"/bin/sh", "-c", probe_script(attempts)}, policy(), env);
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  for (const char* canary : {"PRIVATE-KEY-CANARY", "AWS-CANARY", "NETRC-CANARY"})
    EXPECT_EQ(r.out.find(canary), std::string::npos) << canary << " read: " << r.out;
  EXPECT_LT(::accept(listener.get(), nullptr, nullptr), 0) << "the sandbox reached the socket";
  EXPECT_FALSE(exists(w(".ssh/authorized_keys")));
  // The control: listed by the policy, ~/.ssh is shown (read-only), key and socket alike.
  std::vector<ProbeAttempt> listed = {{"read-key", {"read", w(".ssh/id_test")}}};
  Result shown =
      run_sandbox(mode(), work_, {"/bin/sh", "-c", probe_script(listed)}, policy(w(".ssh")), env);
  EXPECT_NE(shown.out.find("PRIVATE-KEY-CANARY"), std::string::npos) << shown.out << shown.err;
  // Found in review: a home listed read-only showed its keys (and its sockets stay connectable
  // however the mount is made), and stores such as ~/.npmrc were missing from the list.
  dir_->write("rohome/.ssh/id_test", "RO-KEY-CANARY\n", 0644);
  dir_->write("rohome/.npmrc", "//registry.npmjs.org/:_authToken=NPM-CANARY\n", 0644);
  const std::string ro_home = dir_->path() + "/rohome";
  std::vector<ProbeAttempt> ro = {{"read-ro-key", {"read", ro_home + "/.ssh/id_test"}},
                                  {"read-npmrc", {"read", ro_home + "/.npmrc"}}};
  Result r2 = run_sandbox(mode(), work_, {"/bin/sh", "-c", probe_script(ro)}, policy(ro_home),
                          {"HOME=" + ro_home, "XDG_STATE_HOME=" + state});
  expect_all_refused(ro, parse_probe_report(r2.out), r2);
  EXPECT_EQ(r2.out.find("CANARY"), std::string::npos) << r2.out;
}

// Found in review: the home-only names were looked for in every project, where a symlinked one
// (.local/bin -> /usr/local/bin, a dotfile manager's .config/nvim) refused the start.
TEST_P(FilesystemTest, HomeOnlyNamesDoNotRefuseAProjectThatSymlinksThem) {
  dir_->mkdir("work/.config");
  dir_->mkdir("work/.local");
  ASSERT_EQ(::symlink("/usr/local/bin", w(".local/bin").c_str()), 0);
  ASSERT_EQ(::symlink("/usr/share", w(".config/nvim").c_str()), 0);
  ASSERT_EQ(::symlink("/usr/share", w(".tmux.conf").c_str()), 0);
  Result r = run({"/bin/sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ran\n");
}

TEST_P(FilesystemTest, GitWorksWithItsInternalsWritable) {
  // An existing repository: .git/config and .git/hooks are protected, objects/refs/index are not.
  git_init(work_);
  const std::string config = read_file(w(".git/config"));
  dir_->write("work/a.txt", "a\n");
  std::string script =
      "set -e\n"
      "git add a.txt\n"
      "git -c user.name=agent -c user.email=agent@example.com commit -q -m one\n"
      "echo b > b.txt && git add b.txt\n"
      "git -c user.name=agent -c user.email=agent@example.com commit -q -m two\n"
      "git branch side && git tag v1\n"
      "echo objects > .git/objects/ward-probe && rm .git/objects/ward-probe\n"
      "echo refs > .git/refs/ward-probe && rm .git/refs/ward-probe\n"
      "git rev-list --count HEAD\n";
  Result r = run({"/bin/sh", "-c", script});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "2\n") << r.err;
  EXPECT_TRUE(exists(w(".git/index")));
  EXPECT_TRUE(exists(w(".git/refs/heads/side")));
  EXPECT_TRUE(exists(w(".git/refs/tags/v1")));
  EXPECT_EQ(read_file(w(".git/config")), config);
  EXPECT_EQ(std::system(
                ("git -c safe.directory='*' -C " + work_ + " log --oneline | grep -q two").c_str()),
            0);

  // A fresh repository made inside the sandbox (nothing to protect yet).
  dir_->mkdir("work/fresh");
  Result fresh = run({"/bin/sh", "-c",
                      "set -e; cd fresh; git init -q; echo x > x; git add x; "
                      "git -c user.name=a -c user.email=a@b commit -q -m init; "
                      "git rev-list --count HEAD"});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.out << fresh.err;
  EXPECT_EQ(fresh.out, "1\n") << fresh.err;
}

TEST_P(FilesystemTest, BestEffortSkipsAMissingPathAndKeepsDevices) {
  const std::string missing = "/does/not/exist-" + unique_marker();
  std::string p = policy("/dev/urandom, " + missing, "/dev/null");
  Result r = run(
      {"/bin/sh", "-c", "head -c 16 /dev/urandom | wc -c && echo discarded > /dev/null && echo ok"},
      p);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "16\nok\n") << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos)
      << "no log line names the skipped path: " << r.err;
}

TEST_P(FilesystemTest, HardRequirementRefusesAMissingPathButNotDevices) {
  const std::string missing = "/does/not/exist-" + unique_marker();
  const std::string strict = "landlock:\n  compatibility: hard_requirement\n";
  Result refused = run({"/bin/sh", "-c", "echo ran > ran.txt"}, policy(missing, "", strict));
  EXPECT_EQ(refused.exit_code, 125) << refused.err;
  EXPECT_NE(refused.err.find(missing), std::string::npos) << refused.err;
  EXPECT_FALSE(exists(w("ran.txt")));

  Result devices = run(
      {"/bin/sh", "-c", "head -c 16 /dev/urandom | wc -c && echo discarded > /dev/null && echo ok"},
      policy("/dev/urandom", "/dev/null", strict));
  EXPECT_EQ(devices.exit_code, 0) << devices.err;
  EXPECT_EQ(devices.out, "16\nok\n") << devices.err;
}

TEST_P(FilesystemTest, TmpIsPrivate) {
  const std::string marker = unique_marker();
  const std::string host_file = "/tmp/ward-host-file-" + marker;
  const std::string sandbox_file = "/tmp/ward-sandbox-file-" + marker;
  { std::ofstream(host_file) << "host\n"; }
  ::chmod(host_file.c_str(), 0644);
  std::vector<ProbeAttempt> attempts = {
      {"read-host-tmp-file", {"read", host_file}},
      {"stat-host-tmp-file", {"stat", host_file}},
  };
  Result r = run({"/bin/sh", "-c",
                  probe_script(attempts) + "echo sandbox > " + sandbox_file + " && cat " +
                      sandbox_file + " && ls -A /tmp | grep -c ward-host-file || true"});
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  EXPECT_NE(r.out.find("sandbox\n0\n"), std::string::npos) << r.out << r.err;
  EXPECT_FALSE(exists(sandbox_file)) << "the sandbox's /tmp leaked to the host";
  ::unlink(host_file.c_str());
  ::unlink(sandbox_file.c_str());
}

TEST_P(FilesystemTest, RootAndProcSysAreReadOnly) {
  std::vector<ProbeAttempt> attempts = {
      {"mkdir-root", {"mkdir", "/newdir"}},
      {"write-root", {"write", "/newfile"}},
      {"rename-usr", {"rename", "/usr", "/usr2"}},
      {"append-proc-sys-hostname", {"append", "/proc/sys/kernel/hostname"}},
      {"append-proc-sys-core-pattern", {"append", "/proc/sys/kernel/core_pattern"}},
      {"append-proc-sys-drop-caches", {"append", "/proc/sys/vm/drop_caches"}},
      {"append-sysrq-trigger", {"append", "/proc/sysrq-trigger"}},
  };
  expect_refused(attempts);
  Result flags = run(probe("mount-flags", {"/"}));
  EXPECT_EQ(flags.out.substr(0, 3), "ro ") << "/: " << flags.out;
  flags = run(probe("mount-flags", {"/proc/sys"}));
  EXPECT_EQ(flags.out.substr(0, 3), "ro ") << "/proc/sys: " << flags.out;
  // Still readable: programs read their limits there.
  Result read = run(probe("read", {"/proc/sys/kernel/pid_max"}));
  EXPECT_EQ(read.exit_code, 0) << read.out;
}

// Found in review: `ward run` without -p hid nothing, so a workdir holding ward's state directory
// ($HOME with ~/.local/state/ward) showed the workload a gateway's socket (the same uid may
// connect: a new sandbox with any policy), provider secrets and the CA key.
TEST_P(FilesystemTest, WardsStateDirectoryIsHiddenWithTheBuiltInPolicy) {
  for (const char* d : {"work/.local", "work/.local/state"}) dir_->mkdir(d, 0777);
  const std::string state = dir_->mkdir("work/.local/state/ward", 0777);
  dir_->write("work/.local/state/ward/secrets.json", "{\"github\": \"canary\"}\n", 0666);
  const std::string sock = state + "/gateway.sock";
  UniqueFd listener = listen_unix(sock);
  ASSERT_TRUE(listener.valid()) << sock << ": " << std::strerror(errno);
  // The built-in policy does not show the probe's directory: shell commands make the attempts.
  const std::string connect = unix_connect(sock);
  std::vector<ProbeAttempt> attempts = {
      {"read-secrets", {}, false, "cat " + shell_quote(state + "/secrets.json")},
      {"list-state", {}, false, "ls " + shell_quote(state) + " | grep -q ."},
      {"connect-socket", {}, false, connect},
      // The cover would move with its parent, and a directory made in its place would be where
      // a gateway started later puts its socket.
      {"move-parent", {}, false, "mv .local/state .local/moved"},
  };
  Result r = run_sandbox(mode(), work_, {"/bin/sh", "-c", probe_script(attempts)}, "",
                         {"WARD_STATE_DIR=" + state});
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  // The attempts are real: outside the sandbox the socket answers.
  EXPECT_EQ(std::system(connect.c_str()), 0);
}

// Found by a red-team session: a policy listing a path *inside* ward's state directory (its tls/,
// the CA key itself, a gateway's socket) had it bound on top of the cover, so a rootless workload
// read the CA key, or asked the gateway for a second sandbox with any policy. Such paths are left
// out (refused under hard_requirement), and a workdir inside the state directory is refused.
TEST_P(FilesystemTest, WardsStateDirectoryStaysHiddenWhereAPolicyListsAPathInsideIt) {
  const std::string state = dir_->mkdir("state", 0777);
  dir_->mkdir("state/tls", 0777);
  const std::string key = dir_->write("state/tls/ca.key", "-----BEGIN PRIVATE KEY-----\n", 0666);
  const std::string sock = state + "/gateway.sock";
  UniqueFd listener = listen_unix(sock);
  ASSERT_TRUE(listener.valid()) << sock << ": " << std::strerror(errno);
  const std::string listed = state + "/tls, " + key + ", " + sock;
  const std::string policy = dir_->write("inside.yaml", policy_yaml(listed));
  std::vector<ProbeAttempt> attempts = {
      {"read-ca-key", {"read", key}},
      {"list-tls", {"list", state + "/tls"}},
      {"connect-socket", {}, false, unix_connect(sock)},
  };
  const std::vector<std::string> env = {"WARD_STATE_DIR=" + state};
  Result r = run_sandbox(mode(), work_, {"/bin/sh", "-c", probe_script(attempts)}, policy, env);
  expect_all_refused(attempts, parse_probe_report(r.out), r);
  EXPECT_NE(r.err.find("ward's own state, which no sandbox may see: left out"), std::string::npos)
      << r.err;
  // Under hard_requirement the same policy does not start.
  const std::string strict = dir_->write(
      "strict.yaml", policy_yaml(listed, "", "landlock:\n  compatibility: hard_requirement\n"));
  Result refused = run_sandbox(mode(), work_, {"/bin/true"}, strict, env);
  EXPECT_EQ(refused.exit_code, 125) << refused.err;
  EXPECT_NE(refused.err.find("is inside " + state), std::string::npos) << refused.err;
  // Nor does a sandbox whose workdir is inside it.
  Result workdir = run_sandbox(mode(), state + "/tls", {"/bin/true"}, "", env);
  EXPECT_EQ(workdir.exit_code, 125) << workdir.err;
  EXPECT_NE(workdir.err.find("ward's own state"), std::string::npos) << workdir.err;
  // The attempts are real: outside the sandbox they succeed.
  EXPECT_EQ(read_file(key), "-----BEGIN PRIVATE KEY-----\n");
}

// A workdir the sandbox provides itself (its own /proc, its /dev) would be covered by it, and
// the command would start somewhere else: refused.
TEST_P(FilesystemTest, AWorkdirTheSandboxProvidesItselfIsRefused) {
  for (const char* dir : {"/proc", "/dev/shm"}) {
    Result r = run_sandbox(mode(), dir, {"/bin/pwd"});
    EXPECT_EQ(r.exit_code, 125) << dir << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("which the sandbox provides itself"), std::string::npos) << r.err;
  }
}

// A gateway socket kept outside any state directory (`ward gateway --socket`) is hidden where the
// CLI is told of it ($WARD_GATEWAY), whatever the policy lists around it.
TEST_P(FilesystemTest, TheGatewaySocketTheCliIsToldOfIsHidden) {
  const std::string run = dir_->mkdir("run", 0777);
  const std::string sock = run + "/gw.sock";
  UniqueFd listener = listen_unix(sock);
  ASSERT_TRUE(listener.valid()) << sock << ": " << std::strerror(errno);
  const std::string connect = unix_connect(sock) + " 2>/dev/null && echo connected || echo refused";
  const std::string p = policy(run);
  Result told = run_sandbox(mode(), work_, {"/bin/sh", "-c", connect}, p, {"WARD_GATEWAY=" + sock});
  EXPECT_EQ(told.out, "refused\n") << told.err;
  // The attempt is real: where ward is not told of it, the listed directory shows it.
  Result untold = run_sandbox(mode(), work_, {"/bin/sh", "-c", connect}, p);
  EXPECT_EQ(untold.out, "connected\n") << untold.err;
}

// Found in review: a policy file reached through a symlink in the workdir was held read-only at
// its target, but the link itself could be pointed elsewhere before the next reload.
TEST_P(FilesystemTest, APolicyFileReachedThroughALinkInTheWorkdirRefusesTheStart) {
  const std::string real = dir_->write("work/real.yaml", policy_yaml());
  ASSERT_EQ(::symlink("real.yaml", w("policy.yaml").c_str()), 0);
  Result r = run_sandbox(mode(), work_, {"/bin/true"}, w("policy.yaml"));
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find("is reached through the symlink " + w("policy.yaml")), std::string::npos)
      << r.err;
  // Given by its real path, the same file is fine.
  EXPECT_EQ(run_sandbox(mode(), work_, {"/bin/true"}, real).exit_code, 0);
}

WARD_INSTANTIATE_BOTH_MODES(FilesystemTest);

}  // namespace
}  // namespace ward::test
