#include "sandbox/plan.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "base/log.h"
#include "base/strings.h"

namespace ward::sandbox {
namespace {

// Protected entries named directly in a directory, wherever the search finds them. Inside .git
// (config, hooks, submodules) and .config (git) the walk below looks by itself; the names that
// only a home's owner runs (kHomeOnlyNames, .config's and .local's other entries) are held in
// homes only (add_placeholders), where a symlink among them is not met in every project.
constexpr const char* kProtectedNames[] = {
    ".bashrc",   ".bash_profile", ".bash_login", ".bash_logout", ".zshrc",
    ".zprofile", ".zshenv",       ".profile",    ".gitconfig",   ".gitmodules",
    ".mcp.json", ".claude",       ".codex",      ".vscode",      ".idea",
    ".ssh",      ".aws",          ".kube",       ".claude.json", nullptr};

// In a home, beside kProtectedNames: more shells' start-up files, editors' and terminal
// multiplexers' (which run commands), npm's (script-shell, node-options), the credential stores
// (a planted entry sends a later login elsewhere), gpg's.
constexpr const char* kHomeOnlyNames[] = {
    ".bash_aliases", ".zlogin", ".zlogout",         ".pam_environment", ".xprofile",  ".xsessionrc",
    ".vimrc",        ".exrc",   ".emacs",           ".emacs.d",         ".tmux.conf", ".npmrc",
    ".yarnrc",       ".netrc",  ".git-credentials", ".docker",          ".gnupg"};

// In a home, what holds a person's credentials: hidden from any sandbox that sees the home
// (make_plan), as well as protected where it is writable.
constexpr const char* kCredentialStores[] = {".ssh",
                                             ".gnupg",
                                             ".aws",
                                             ".kube",
                                             ".docker",
                                             ".netrc",
                                             ".git-credentials",
                                             ".pypirc",
                                             ".npmrc",
                                             ".pgpass",
                                             ".vault-token",
                                             ".password-store",
                                             ".azure",
                                             ".config/gh",
                                             ".config/gcloud",
                                             ".cargo/credentials",
                                             ".cargo/credentials.toml",
                                             ".local/share/keyrings",
                                             ".terraform.d/credentials.tfrc.json"};

// In ~/.config: git's user configuration, the user's systemd units and session environment, the
// desktop's autostart entries, shells' and editors' configurations that run commands.
constexpr const char* kConfigNames[] = {"git",  "systemd", "environment.d", "autostart",
                                        "fish", "nvim",    "Code"};
// In ~/.local: bin/ comes first on PATH in Debian's ~/.profile; lib/ holds the user's Python
// site-packages, whose .pth files run at every interpreter start.
constexpr const char* kLocalNames[] = {"bin", "lib"};

}  // namespace

std::string hidden_holding(const std::string& real, const std::vector<std::string>& hidden) {
  for (const std::string& h : hidden) {
    char resolved[PATH_MAX];
    if (::realpath(h.c_str(), resolved) && path_within(real, resolved)) return resolved;
  }
  return {};
}

bool provided_by_sandbox(const std::string& path) {
  static const char* const kDev[] = {"/dev",        "/dev/null",    "/dev/zero", "/dev/full",
                                     "/dev/random", "/dev/urandom", "/dev/tty",  "/dev/pts",
                                     "/dev/ptmx",   "/dev/shm",     nullptr};
  if (path_within(path, "/proc")) return true;
  for (const char* const* d = kDev; *d; ++d)
    if (path == *d || (std::string(*d) == "/dev/pts" && path_within(path, *d))) return true;
  return false;
}

namespace {

struct Listed {
  std::string path;
  bool read_only;
};

// How far below a writable root protected names are looked for (workdir/a/b/.git), and how many
// directories may be read: a bound on start-up cost in big trees. Each directory costs one
// getdents pass (~10 us); names are matched in memory. A root with more refuses the start: a
// workload that made that many directories would otherwise hide the nested repository behind
// them from the next run's search.
constexpr int kProtectMaxDepth = 2;
constexpr int kProtectMaxDirs = 16384;

// Directories never searched for nested projects: large, and not opened by people's tools.
bool skip_dir(std::string_view name) {
  for (const char* heavy : {"node_modules", ".git", ".cache", ".venv", "venv", "__pycache__",
                            "target", "vendor", "build", "dist", ".tox", ".gradle", ".next"})
    if (name == heavy) return true;
  return false;
}

bool is_protected_name(std::string_view name) {
  for (const char* const* p = kProtectedNames; *p; ++p)
    if (name == *p) return true;
  return false;
}

struct Protector {
  const std::string& root;
  std::vector<MountOp>& out;
  std::vector<std::string>& symlinks;  // protected names found as symlinks (cannot be held)
  std::set<std::string> pinned;
  int dirs = 0;
  std::vector<std::string> git_dirs;  // the repository directories found (protect_git_dir)

  // Every directory between the writable root and `path` becomes a mount point (bound onto
  // itself, writable): a mount point cannot be renamed or removed, so the protected entry cannot
  // be swapped out by renaming one of its parents.
  void pin_parents(const std::string& path) {
    for (size_t slash = path.find('/', root.size() + 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string dir = path.substr(0, slash);
      if (pinned.insert(dir).second)
        out.push_back({MountOp::Kind::kBind, dir, dir, true, false, false, -1, true});
    }
  }

  void protect(const std::string& path, bool is_directory) {
    pin_parents(path);
    if (is_directory) pinned.insert(path);  // never re-bound writable below
    out.push_back({MountOp::Kind::kBind, path, path, is_directory, true, false, -1, true});
  }

  // `path` if it exists; a symlink is noted instead (nothing can be mounted on one).
  void protect_if_present(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISLNK(st.st_mode))
      symlinks.push_back(path);
    else
      protect(path, S_ISDIR(st.st_mode));
  }

  // What git takes its configuration and hooks from in a repository directory: `config` and
  // `hooks`, and `commondir` and `config.worktree`, which point it at another configuration (a
  // commondir naming a directory of the workload's would be git's repository from then on,
  // config, hooks and all). The missing ones are reserved by protect_tree.
  void protect_git_dir(const std::string& dir) {
    for (const char* name : {"/config", "/hooks", "/commondir", "/config.worktree"})
      protect_if_present(dir + name);
    git_dirs.push_back(dir);
  }

  // Each directory of `parent` whose entries name git's configuration: the submodules kept in
  // .git/modules (nested: modules/a/modules/b), the linked worktrees of .git/worktrees (whose
  // `gitdir` says where the worktree is).
  void check_git_dirs(const std::string& parent, int depth, bool modules) {
    if (depth > 3) return;
    DIR* d = ::opendir(parent.c_str());
    if (!d) return;
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || e->d_type != DT_DIR) continue;
      std::string dir = parent + "/" + e->d_name;
      protect_git_dir(dir);
      if (modules)
        check_git_dirs(dir + "/modules", depth + 1, true);
      else
        protect_if_present(dir + "/gitdir");
    }
    ::closedir(d);
  }

  void walk(const std::string& dir, int depth) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> subdirs;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = dir + "/" + e->d_name;
      if (e->d_type == DT_UNKNOWN) {  // a filesystem that does not fill d_type
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) continue;
        e->d_type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
      }
      if (e->d_type == DT_LNK) {
        if (is_protected_name(name)) symlinks.push_back(path);
        continue;
      }
      if (name == ".git" && e->d_type == DT_DIR) {
        protect_git_dir(path);
        check_git_dirs(path + "/modules", 0, true);
        check_git_dirs(path + "/worktrees", 0, false);
      } else if (name == ".git" && e->d_type == DT_REG) {
        // A worktree's or a submodule's link to its repository ("gitdir: PATH"): repointed at a
        // directory of the workload's, the next git command there would run its config.
        protect(path, false);
        continue;
      } else if (name == ".config" && e->d_type == DT_DIR) {
        protect_if_present(path + "/git");
      } else if (is_protected_name(name)) {
        protect(path, e->d_type == DT_DIR);
        continue;  // read-only as a whole: nothing below needs a look
      }
      if (e->d_type == DT_DIR && depth < kProtectMaxDepth && !skip_dir(name))
        subdirs.push_back(std::move(path));
    }
    ::closedir(d);
    for (const std::string& sub : subdirs) {
      if (++dirs > kProtectMaxDirs) return;
      walk(sub, depth + 1);
    }
  }
};

// Names that hijack the tools a person later runs in a project directory (agents, editors,
// git), and those that only matter in a home directory.
constexpr const char* kProjectNames[] = {".mcp.json", ".claude", ".codex",
                                         ".vscode",   ".idea",   ".gitmodules"};
constexpr const char* kHomeNames[] = {
    ".bashrc",  ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile",   ".zshenv",
    ".profile", ".gitconfig",    ".ssh",        ".aws",         ".kube",  ".claude.json"};

// The homes of the accounts /etc/passwd gives a login shell, read once per process.
const std::vector<std::string>& login_homes() {
  static const std::vector<std::string> homes = [] {
    std::vector<std::string> out;
    std::ifstream passwd("/etc/passwd");
    for (std::string line; std::getline(passwd, line);) {
      std::vector<std::string_view> fields;  // name:password:uid:gid:gecos:home:shell
      for (std::size_t at = 0; at <= line.size();) {
        const std::size_t colon = std::min(line.find(':', at), line.size());
        fields.push_back(std::string_view(line).substr(at, colon - at));
        at = colon + 1;
      }
      if (fields.size() == 7 && fields[5].size() > 1 && !fields[6].ends_with("nologin") &&
          !fields[6].ends_with("false"))
        out.emplace_back(fields[5]);
    }
    return out;
  }();
  return homes;
}

// Whether `root` is a home directory, whose start-up files a person's next login reads: the
// caller's ($HOME), one directly in /home, or that of any account with a login shell (root
// working in a user's home with HOME=/root, as after `sudo -i`).
bool is_home(const std::string& root, const std::string& home) {
  if (root == home) return true;
  if (root.size() > 6 && root.rfind("/home/", 0) == 0 && root.find('/', 6) == std::string::npos)
    return true;
  const auto& homes = login_homes();
  return std::find(homes.begin(), homes.end(), root) != homes.end();
}

// True when a directory above `root` has a .git (a directory, or a worktree's file).
bool inside_repository(const std::string& root) {
  for (auto slash = root.rfind('/'); slash != std::string::npos && slash > 0;
       slash = root.rfind('/', slash - 1)) {
    struct stat st;
    if (::lstat((root.substr(0, slash) + "/.git").c_str(), &st) == 0) return true;
  }
  struct stat st;
  return ::lstat("/.git", &st) == 0;
}

bool is_directory_name(std::string_view name) {
  for (const char* dir : {".claude", ".codex", ".vscode", ".idea", ".ssh", ".aws", ".kube", "hooks",
                          ".docker", ".gnupg", ".emacs.d"})
    if (name == dir) return true;
  return false;
}

// `path` reserved: a placeholder made for it when missing (with its mount), held when present
// (protect_tree protects it; another sandbox's placeholder must not be removed under this one).
// A symlink is noted instead: nothing can be mounted on one.
void reserve(const std::string& path, bool directory, const std::string& content,
             std::vector<Placeholder>& placeholders, std::vector<MountOp>& out,
             std::vector<std::string>& symlinks) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return;
    placeholders.push_back({path, directory, false, content});
    out.push_back({MountOp::Kind::kBind, path, path, directory, true, false, -1, true});
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    symlinks.push_back(path);
    return;
  }
  // Held if it could be a placeholder, that is a file or a directory of the expected kind — a
  // file too whose content differs now: another sandbox's placeholder written on the host
  // meanwhile must not be removed under this one.
  if (directory ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))
    placeholders.push_back({path, directory, true, content});
}

// Placeholders for the protected names missing at the top of a writable root: the project names
// everywhere, the home names only in the caller's home, and .git/hooks in a repository.
void add_placeholders(const std::string& root, const std::string& home,
                      std::vector<Placeholder>& placeholders, std::vector<MountOp>& out,
                      std::vector<std::string>& symlinks) {
  auto add = [&](const std::string& path, bool directory) {
    reserve(path, directory, "", placeholders, out, symlinks);
  };
  for (const char* name : kProjectNames) add(root + "/" + name, is_directory_name(name));
  if (is_home(root, home)) {
    for (const char* name : kHomeNames) add(root + "/" + name, is_directory_name(name));
    // The names only a home holds: reserved when missing, held read-only when present (the
    // search does not look for them).
    auto hold = [&](const std::string& path, bool directory) {
      add(path, directory);
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) return;
      if (S_ISLNK(st.st_mode)) {
        if (std::find(symlinks.begin(), symlinks.end(), path) == symlinks.end())
          symlinks.push_back(path);
      } else if (std::none_of(out.begin(), out.end(),
                              [&](const MountOp& m) { return m.target == path; })) {
        out.push_back(
            {MountOp::Kind::kBind, path, path, S_ISDIR(st.st_mode), true, false, -1, true});
      }
    };
    for (const char* name : kHomeOnlyNames) hold(root + "/" + name, is_directory_name(name));
    // ~/.config/git, ~/.config/systemd, ... and ~/.local/bin, ~/.local/lib: each held, or
    // ~/.config (~/.local) itself reserved where there is none (pinned when present, so that it
    // cannot be renamed away and made again around directories of the workload's).
    auto reserve_within = [&](const char* parent, const auto& names) {
      const std::string dir = root + "/" + parent;
      struct stat st;
      if (::lstat(dir.c_str(), &st) != 0) {
        add(dir, true);
      } else if (S_ISDIR(st.st_mode)) {
        if (std::none_of(out.begin(), out.end(), [&](const MountOp& m) { return m.target == dir; }))
          out.push_back({MountOp::Kind::kBind, dir, dir, true, false, false, -1, true});
        for (const char* name : names) hold(dir + "/" + name, true);
      }
    };
    reserve_within(".config", kConfigNames);
    reserve_within(".local", kLocalNames);
  }
  struct stat git;
  const bool has_git = ::lstat((root + "/.git").c_str(), &git) == 0;
  if (!has_git && inside_repository(root)) {
    // A root below a repository's top (the workdir is repo/sub): a .git made there would be
    // the repository of every git command the user runs in it later, with the workload's
    // config (core.fsmonitor, hooks). Reserved like the names above.
    add(root + "/.git", true);
  }
  if (has_git && S_ISDIR(git.st_mode)) {
    // .git itself is pinned when it holds a protected entry; a new hooks directory needs it too.
    bool pinned = std::any_of(out.begin(), out.end(),
                              [&](const MountOp& op) { return op.target == root + "/.git"; });
    size_t before = out.size();
    add(root + "/.git/hooks", true);
    if (!pinned && out.size() > before)
      out.insert(out.end() - 1, {MountOp::Kind::kBind, root + "/.git", root + "/.git", true, false,
                                 false, -1, true});
  }
}

Result<void> protect_tree(const std::string& root, std::vector<MountOp>& out,
                          std::vector<std::string>& symlinks,
                          std::vector<Placeholder>& placeholders) {
  Protector p{root, out, symlinks, {}, 0, {}};
  p.walk(root, 0);
  // In every repository found, the names that would point git elsewhere are reserved, its
  // directory pinned.
  for (const std::string& dir : p.git_dirs) {
    p.pin_parents(dir + "/commondir");
    reserve(dir + "/commondir", false, ".\n", placeholders, out, symlinks);
    reserve(dir + "/config.worktree", false, "", placeholders, out, symlinks);
  }
  if (p.dirs > kProtectMaxDirs)
    return fail(fmt::format(
        "{} holds more than {} directories within two levels: ward cannot look through them all "
        "for files that would hijack your later sessions (a nested repository's .git/hooks); "
        "run in a smaller directory, list fewer paths read-write, or remove what made them",
        root, kProtectMaxDirs));
  return {};
}

// The homes a sandbox with these binds sees: each bind that is one, $HOME and every directory of
// /home a bind holds.
std::vector<std::string> homes_shown(const std::vector<MountOp>& ops, const std::string& home) {
  std::vector<std::string> homes;
  auto add = [&](const std::string& h) {
    if (std::find(homes.begin(), homes.end(), h) == homes.end()) homes.push_back(h);
  };
  for (const MountOp& op : ops) {
    if (op.kind != MountOp::Kind::kBind || !op.is_directory) continue;
    if (is_home(op.target, home)) add(op.target);
    if (!home.empty() && home != "/" && path_within(home, op.target)) add(home);
    if (path_within("/home", op.target)) {
      if (DIR* d = ::opendir("/home")) {
        while (struct dirent* e = ::readdir(d))
          if (e->d_name[0] != '.' && e->d_type == DT_DIR) add(std::string("/home/") + e->d_name);
        ::closedir(d);
      }
    }
  }
  return homes;
}

bool beneath_writable(const std::string& path, const std::vector<Listed>& listed) {
  for (const Listed& l : listed)
    if (!l.read_only && l.path != path && path_within(path, l.path)) return true;
  return false;
}

bool has_symlink_component(const std::string& path) {
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how);
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return false;
  }
  return errno == ELOOP;
}

std::string resolve(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return {};
  return buf;
}

// Where the sandbox sees the host path `real` (resolved): through each directory bind of `ops`
// whose source holds it (a policy path may reach it through a symlinked parent, /home ->
// var/home), at that bind's target. One view a bind. `sources`: the binds' sources resolved,
// filled on first use (one realpath a bind for a whole plan).
std::vector<std::pair<std::string, const MountOp*>> views_of(
    const std::string& real, const std::vector<MountOp>& ops,
    std::vector<std::optional<std::string>>& sources) {
  std::vector<std::pair<std::string, const MountOp*>> views;
  sources.resize(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const MountOp& op = ops[i];
    if (op.kind != MountOp::Kind::kBind || !op.is_directory) continue;
    if (!sources[i]) sources[i] = resolve(op.source);
    const std::string& source = *sources[i];
    if (source.empty() || !path_within(real, source)) continue;
    const std::string rest = source == "/" ? real : real.substr(source.size());
    views.emplace_back(op.target == "/" ? rest : op.target + rest, &op);
  }
  return views;
}

// Whether the host has anything mounted beneath `dir` (its own mount excluded).
bool has_submounts(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  const std::string prefix = dir + "/";
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;  // escaped as \040, which no prefix holds
    if (point.starts_with(prefix)) return true;
  }
  return false;
}

// /etc as the sandbox would see a recursive bind of it, built as a tmpfs (made read-only once
// everything is mounted) holding a bind of each host entry — the host's mounts beneath /etc
// included — and a copy of each symlink, so that /etc/ward can be made in it (see make_plan).
std::vector<MountOp> shadowed_etc(const MountOp& etc) {
  std::vector<MountOp> ops = {{MountOp::Kind::kTmpfs, "tmpfs", "/etc", true, true, false}};
  ops.front().tmpfs_options = "mode=0755";
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/etc")) {
    while (struct dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        names.emplace_back(e->d_name);
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = "/etc/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      const ssize_t n = ::readlink(path.c_str(), target, sizeof target);
      if (n > 0) ops.push_back({MountOp::Kind::kSymlink, std::string(target, n), path});
      continue;
    }
    MountOp bind{MountOp::Kind::kBind, path, path, S_ISDIR(st.st_mode), etc.read_only, false};
    bind.no_follow = true;  // an entry swapped for a symlink meanwhile must not be followed
    ops.push_back(bind);
  }
  return ops;
}

}  // namespace

// The files a trust layer may hold, relative to /etc (see make_plan in plan.h).
constexpr const char* kTrustFiles[] = {"ward/tls/ca-bundle.pem", "ssl/certs/ca-certificates.crt",
                                       "pki/tls/certs/ca-bundle.crt"};

// Shows ward's CA bundle inside the sandbox. `ops` are the policy's mounts, final and in order.
// `hidden_in_etc`: a hidden path lies beneath /etc. Its cover would be mounted beneath the overlay,
// which shows its lower layers' own contents and not what is mounted in them: the shadowed /etc
// is used instead, whose binds the cover lands on.
void add_trust(const std::string& layer, std::vector<MountOp>& mounts,
               std::vector<landlock::Rule>& rules, int abi, bool hidden_in_etc) {
  auto etc = std::find_if(mounts.begin(), mounts.end(), [](const MountOp& op) {
    return op.kind == MountOp::Kind::kBind && op.target == "/etc";
  });
  // Overlay options separate paths with ':' and ','; such a layer path takes the bind route.
  const bool plain = layer.find_first_of(":,\\") == std::string::npos;
  if (etc != mounts.end() && etc->read_only && plain && !hidden_in_etc && !has_submounts("/etc")) {
    // Right after /etc itself: binds beneath /etc come later and land on top of the overlay.
    mounts.insert(etc + 1, MountOp{MountOp::Kind::kOverlay, layer, "/etc", true, true, false});
    return;
  }
  if (etc != mounts.end() && etc->read_only) {
    // In its place, so that binds beneath /etc (listed paths, hidden ones) still come after.
    const std::vector<MountOp> shadow = shadowed_etc(*etc);
    etc = mounts.erase(etc);
    mounts.insert(etc, shadow.begin(), shadow.end());
  }
  for (const char* name : kTrustFiles) {
    const std::string source = layer + "/" + name;
    const std::string target = std::string("/etc/") + name;
    if (::access(source.c_str(), R_OK) != 0) continue;
    // Beneath a bound directory the mount point must already exist: ward never creates files
    // in the host's directories. Elsewhere the root tmpfs takes it.
    bool covered = false;
    for (const MountOp& op : mounts)
      covered = covered || (op.kind == MountOp::Kind::kBind && op.is_directory &&
                            path_within(target, op.target));
    if (covered && ::access(target.c_str(), F_OK) != 0) {
      log::warn(
          "{} cannot be shown inside the sandbox (/etc is bound read-write); use the "
          "system bundle or SSL_CERT_FILE",
          target);
      continue;
    }
    mounts.push_back({MountOp::Kind::kBind, source, target, false, true, false});
    rules.push_back({target, -1, landlock::rule_access(landlock::Mode::kReadOnly, false, abi)});
  }
}

Result<Plan> make_plan(const policy::Policy& policy, const std::string& workdir,
                       const std::string& trust_layer, std::vector<std::string> hidden,
                       const std::vector<std::string>& guarded) {
  const bool strict = policy.landlock == policy::Compatibility::kHardRequirement;
  const int abi = landlock::abi_version();
  Plan plan;

  std::vector<Listed> listed;
  for (const auto& p : policy.filesystem.read_only) listed.push_back({p, true});
  for (const auto& p : policy.filesystem.read_write) listed.push_back({p, false});
  const bool bind_workdir = policy.filesystem.include_workdir;
  if (bind_workdir) {
    if (workdir == "/") return fail("the workdir is /: that would make the whole host writable");
    if (provided_by_sandbox(workdir))
      return fail("the workdir is " + workdir +
                  ", which the sandbox provides itself (its own /proc and /dev): choose another");
    listed.push_back({workdir, false});
  }

  // ward's own state stays out of reach whatever the policy lists: a listed path at or beneath a
  // hidden one would be bound on top of its cover (a state directory's tls/ with the CA key, a
  // gateway's socket). The workdir may lie there: a gateway's managed workspace is in its state
  // directory (the gateway and `ward run` refuse any other workdir beneath a hidden path).
  // (hidden_holding's check, with `hidden` resolved once for every listed path.)
  std::vector<std::string> hidden_real;
  for (const std::string& h : hidden)
    if (std::string real = resolve(h); !real.empty()) hidden_real.push_back(std::move(real));
  auto hider_of = [&](const std::string& path) -> std::string {
    const std::string real = resolve(path);
    for (const std::string& h : hidden_real)
      if (!real.empty() && path_within(real, h)) return h;
    return {};
  };

  // The private /tmp is always there; a policy that lists /tmp read-write gets it writable.
  bool tmp_writable = false;
  std::vector<MountOp> ops;
  for (const Listed& l : listed) {
    if (l.path == "/tmp") {
      tmp_writable = tmp_writable || !l.read_only;
      continue;
    }
    if (provided_by_sandbox(l.path)) continue;
    if (!(bind_workdir && l.path == workdir && !l.read_only)) {
      if (std::string h = hider_of(l.path); !h.empty()) {
        if (strict)
          return fail("policy path " + l.path + " is inside " + h +
                      ", ward's own state, which no sandbox may see (landlock: hard_requirement)");
        log::warn("{} is inside {}, ward's own state, which no sandbox may see: left out", l.path,
                  h);
        plan.skipped.push_back(l.path);
        continue;
      }
    }
    // A path beneath a writable one may have been replaced with a symlink by an earlier sandbox
    // (to /, or to ~/.ssh): beneath writable paths, no component may be a symlink.
    if (beneath_writable(l.path, listed) && has_symlink_component(l.path)) {
      if (strict)
        return fail("policy path " + l.path +
                    " goes through a symlink inside a writable path; "
                    "it is not followed (landlock: hard_requirement)");
      log::warn("{} goes through a symlink inside a writable path: not followed, left out", l.path);
      plan.skipped.push_back(l.path);
      continue;
    }
    // The loader refuses / as written; a path that leads there (a symlink to /, or through one)
    // is refused as well: the sandbox's root is ward's to build.
    if (resolve(l.path) == "/")
      return fail("policy path " + l.path + " leads to / through a symlink: " +
                  (l.read_only ? "list the directories the sandbox needs instead"
                               : "that would make the whole host writable"));
    struct stat st;
    if (::lstat(l.path.c_str(), &st) != 0) {
      if (strict)
        return fail("policy path " + l.path + " does not exist (landlock: hard_requirement)",
                    errno);
      plan.skipped.push_back(l.path);
      continue;
    }
    if (S_ISLNK(st.st_mode)) {
      // /lib -> usr/lib on merged-/usr systems: recreate the link and expose what it points to.
      char target[PATH_MAX];
      ssize_t n = ::readlink(l.path.c_str(), target, sizeof target - 1);
      std::string resolved = resolve(l.path);
      if (n < 0 || resolved.empty()) {
        if (strict) return fail("policy path " + l.path + " is a dangling symlink", errno);
        plan.skipped.push_back(l.path);
        continue;
      }
      ops.push_back({MountOp::Kind::kSymlink, std::string(target, n), l.path, false, true, false});
      if (::stat(resolved.c_str(), &st) != 0) continue;
      if (!provided_by_sandbox(resolved))
        ops.push_back({MountOp::Kind::kBind, resolved, resolved, S_ISDIR(st.st_mode), l.read_only,
                       S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)});
      continue;
    }
    ops.push_back({MountOp::Kind::kBind, l.path, l.path, S_ISDIR(st.st_mode), l.read_only,
                   S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)});
  }

  // A path listed twice, or already exposed with the same rights by a listed parent, needs no
  // mount of its own; read_write wins over read_only for the same path.
  std::sort(ops.begin(), ops.end(), [](const MountOp& a, const MountOp& b) {
    if (a.target != b.target) return a.target < b.target;
    return a.read_only < b.read_only;  // writable first, so the duplicate dropped is read-only
  });
  ops.erase(std::unique(ops.begin(), ops.end(),
                        [](const MountOp& a, const MountOp& b) { return a.target == b.target; }),
            ops.end());

  // A bind inside another bind of the same kind adds nothing: the parent's bind is recursive.
  auto redundant = [&](const MountOp& op) {
    if (op.kind != MountOp::Kind::kBind) return false;
    for (const MountOp& parent : ops)
      if (&parent != &op && parent.kind == MountOp::Kind::kBind && parent.target != op.target &&
          path_within(op.target, parent.target) && parent.read_only == op.read_only &&
          parent.allow_devices == op.allow_devices)
        return true;
    return false;
  };
  std::vector<MountOp> kept;
  std::vector<std::string> nested;  // writable directories folded into a writable parent
  for (const MountOp& op : ops) {
    if (!redundant(op))
      kept.push_back(op);
    else if (op.kind == MountOp::Kind::kBind && !op.read_only && op.is_directory)
      nested.push_back(op.target);
  }
  ops = std::move(kept);

  // Protected names inside each writable directory, nested repositories included.
  std::vector<MountOp> protect;
  std::vector<std::string> symlinks;
  const char* home = ::getenv("HOME");
  // A home's credential stores are hidden like ward's own state wherever the sandbox sees the
  // home (read-only or not: a read-only mount does not stop connect(2) to the sockets beside
  // the keys, and an ssh ControlMaster's runs commands on your servers), unless the policy lists
  // one itself.
  for (const std::string& h : homes_shown(ops, home ? home : "")) {
    for (const char* name : kCredentialStores) {
      const std::string path = h + "/" + name;
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0 &&
          std::none_of(listed.begin(), listed.end(),
                       [&](const Listed& l) { return l.path == path; }))
        hidden.push_back(path);
    }
  }
  for (const MountOp& op : ops) {
    if (op.kind != MountOp::Kind::kBind || op.read_only || !op.is_directory) continue;
    if (auto r = protect_tree(op.target, protect, symlinks, plan.placeholders); !r)
      return tl::unexpected(r.error());
    add_placeholders(op.target, home ? home : "", plan.placeholders, protect, symlinks);
  }
  // A writable directory inside a writable parent (the workdir in a listed ~/work, say) needs no
  // bind of its own, but it is a root for the protected names all the same: searched from its own
  // top and given placeholders, or the workload could create .mcp.json or .claude/ in it. It
  // becomes a mount point, with every directory between it and its parent's root pinned, so that
  // it cannot be renamed away and made again around a fresh .claude/.
  for (const std::string& root : nested) {
    const MountOp* outer = nullptr;
    for (const MountOp& op : ops)
      if (op.kind == MountOp::Kind::kBind && !op.read_only && op.is_directory &&
          path_within(root, op.target) && (!outer || op.target.size() > outer->target.size()))
        outer = &op;
    if (!outer) continue;
    Protector pins{outer->target, protect, symlinks, {}, 0, {}};
    pins.pin_parents(root + "/");
    if (auto r = protect_tree(root, protect, symlinks, plan.placeholders); !r)
      return tl::unexpected(r.error());
    add_placeholders(root, home ? home : "", plan.placeholders, protect, symlinks);
  }
  // ward's own files in a writable path (the policy file it reloads, the audit file): held
  // read-only like a protected name, their parents pinned, so that they cannot be edited, moved
  // or replaced from inside.
  std::vector<std::optional<std::string>> sources;  // views_of's
  for (const std::string& path : guarded) {
    if (path.empty()) continue;
    // A link on the way to it inside a writable path could be repointed from inside (and the
    // next reload would read what it points to then): refused.
    char cwd[PATH_MAX];
    const std::string given =
        path.front() == '/' || !::getcwd(cwd, sizeof cwd) ? path : std::string(cwd) + "/" + path;
    for (const MountOp& op : ops) {
      if (op.kind != MountOp::Kind::kBind || op.read_only || !op.is_directory ||
          !path_within(given, op.target))
        continue;
      for (std::size_t next = given.find('/', op.target == "/" ? 1 : op.target.size() + 1);;
           next = given.find('/', next + 1)) {
        const std::string part = given.substr(0, next);
        struct stat st;
        if (::lstat(part.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
          return fail(path + " is reached through the symlink " + part +
                      " inside a writable path: the sandbox could point it elsewhere, and ward "
                      "reads that file while the sandbox runs. Give its real path");
        if (next == std::string::npos) break;
      }
    }
    const std::string real = resolve(path);
    struct stat st;
    if (real.empty() || ::stat(real.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    for (const auto& [target, op] : views_of(real, ops, sources)) {
      if (op->read_only) continue;
      Protector{op->target, protect, symlinks, {}, 0, {}}.protect(target, false);
    }
  }
  // The searches overlap where a nested root lies within reach of its parent's: one mount each.
  std::set<std::string> seen;
  std::erase_if(protect, [&](const MountOp& op) { return !seen.insert(op.target).second; });
  // A protected name that is a symlink cannot be held read-only (nothing can be mounted on a
  // symlink), and the workload could replace it with a file of its own: refuse to start.
  if (!symlinks.empty()) {
    std::sort(symlinks.begin(), symlinks.end());
    symlinks.erase(std::unique(symlinks.begin(), symlinks.end()), symlinks.end());
    std::string list;
    for (const std::string& path : symlinks) list += (list.empty() ? "" : ", ") + path;
    return fail("protected name" + std::string(symlinks.size() > 1 ? "s " : " ") + list +
                (symlinks.size() > 1 ? " are symlinks" : " is a symlink") +
                " in a writable path: a symlink cannot be kept read-only, and the sandbox could "
                "replace it with a file that runs in your later sessions. Replace it with what "
                "it points to, or run ward where it is not writable");
  }

  // The private /tmp comes first so that listed paths beneath it (a workdir under /tmp) are
  // mounted on top of it; the remaining order is lexical, which puts parents before children.
  plan.mounts.push_back({MountOp::Kind::kTmpfs, "tmpfs", "/tmp", true, !tmp_writable, false});
  std::stable_sort(ops.begin(), ops.end(), [](const MountOp& a, const MountOp& b) {
    auto depth = [](const std::string& s) { return std::count(s.begin(), s.end(), '/'); };
    return depth(a.target) < depth(b.target);
  });
  plan.mounts.insert(plan.mounts.end(), ops.begin(), ops.end());
  plan.mounts.insert(plan.mounts.end(), protect.begin(), protect.end());

  // Landlock: the same lists, rights tailored to each inode's type. Protected names cannot be
  // expressed (Landlock only adds rights down a hierarchy): the read-only mounts carry them.
  using landlock::Mode;
  auto rule = [&](const std::string& path, Mode mode, bool dir) {
    plan.landlock.push_back({path, -1, landlock::rule_access(mode, dir, abi)});
  };
  rule("/", Mode::kListOnly, true);
  rule("/tmp", tmp_writable ? Mode::kReadWrite : Mode::kReadOnly, true);
  rule("/proc", Mode::kProc, true);
  rule("/dev", Mode::kReadOnly, true);
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                          "/dev/tty", "/dev/ptmx"})
    rule(dev, Mode::kDevice, false);
  rule("/dev/pts", Mode::kDevice, true);
  rule("/dev/shm", Mode::kReadWrite, true);
  for (const MountOp& op : ops) {
    if (op.kind != MountOp::Kind::kBind) continue;
    Mode mode = op.allow_devices ? Mode::kDevice
                : op.read_only   ? Mode::kReadOnly
                                 : Mode::kReadWrite;
    rule(op.target, mode, op.is_directory);
  }

  if (!trust_layer.empty()) {
    const bool hidden_in_etc = std::any_of(hidden.begin(), hidden.end(), [](const std::string& h) {
      const std::string real = resolve(h);
      return !real.empty() && path_within(real, "/etc") && ::access(real.c_str(), F_OK) == 0;
    });
    add_trust(trust_layer, plan.mounts, plan.landlock, abi, hidden_in_etc);
  }
  // Compared as the kernel resolves them, and covered wherever the sandbox sees them.
  std::vector<std::string> covered;
  sources.clear();  // `ops` has been sorted since
  for (const std::string& path : hidden) {
    const std::string real = resolve(path);
    struct stat st;
    if (real.empty() || ::stat(real.c_str(), &st) != 0) continue;
    // The innermost bind that shows it (views come outermost first): a deeper one mounted after
    // the cover would hide the cover.
    auto views = views_of(real, ops, sources);
    for (auto view = views.rbegin(); view != views.rend(); ++view) {
      const auto& [target, op] = *view;
      if (std::find(covered.begin(), covered.end(), target) != covered.end()) continue;
      covered.push_back(target);
      std::vector<MountOp> covers;
      // Inside a writable path, every directory between its top and the cover is pinned: a
      // mount point cannot be renamed, but its parent can, and the cover would move away with
      // it, leaving room for a new directory (a gateway started later would use it).
      if (!op->read_only) {
        std::vector<std::string> unused;
        Protector{op->target, covers, unused, {}, 0, {}}.pin_parents(target);
        std::erase_if(covers, [&](const MountOp& pin) {
          return std::any_of(plan.mounts.begin(), plan.mounts.end(), [&](const MountOp& m) {
            return m.self_bind && m.target == pin.target;
          });
        });
      }
      // A directory gets an empty tmpfs; a socket or a file, /dev/null without its device
      // (nodev: opening it fails, connecting to it is refused).
      if (S_ISDIR(st.st_mode))
        covers.push_back({MountOp::Kind::kTmpfs, "tmpfs", target, true, true, false});
      else
        covers.push_back({MountOp::Kind::kBind, "/dev/null", target, false, true, false});
      // Right after the bind that shows it, so that binds beneath it (a gateway's managed
      // workspace inside its state directory) are mounted on the cover, not hidden by it.
      auto at = std::find_if(plan.mounts.begin(), plan.mounts.end(), [&](const MountOp& m) {
        return m.kind == MountOp::Kind::kBind && !m.self_bind && m.target == op->target;
      });
      plan.mounts.insert(at == plan.mounts.end() ? at : std::next(at), covers.begin(),
                         covers.end());
    }
  }

  plan.workdir = "/";
  for (const MountOp& op : plan.mounts)
    if (op.kind == MountOp::Kind::kBind && path_within(workdir, op.target)) plan.workdir = workdir;
  return plan;
}

}  // namespace ward::sandbox
