// The mount plan and the Landlock rule list, computed in the parent from the policy and the host's
// filesystem before any fork. The init only walks these arrays.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "policy/policy.h"
#include "sandbox/landlock.h"

namespace ward::sandbox {

struct MountOp {
  enum class Kind {
    kBind,     // bind `source` (host path) at `target`, recursively, then set its attributes
    kSymlink,  // create a symlink at `target` pointing to `source` (as read from the host)
    kTmpfs,    // a fresh tmpfs at `target` (the private /tmp)
    kOverlay,  // a read-only overlay at `target`: the host directory `source` over what is there
  };
  Kind kind = Kind::kBind;
  std::string source;
  std::string target;  // absolute path inside the sandbox
  bool is_directory = true;
  bool read_only = true;
  bool allow_devices = false;  // an explicitly listed device node keeps working (no nodev)
  int tree_fd = -1;  // kBind: a prepared (idmapped) detached tree to attach instead of `source`
  bool self_bind = false;  // kBind: bind the sandbox's own view of `target` onto itself (a
                           // protected name, or a parent pinned so it cannot be renamed)
  const char* tmpfs_options = "mode=1777";  // kTmpfs
  // kBind: `source` was no symlink when planned, and must not have become one when it is bound
  // (opened with RESOLVE_NO_SYMLINKS, the tree cloned from that inode; else the start fails).
  bool no_follow = false;
};

// A protected name absent at start: ward creates it empty (so that it can be bound read-only and
// the workload cannot create it) and removes it afterwards if it still holds what ward put there.
// A protected name present as a file or directory may be another sandbox's placeholder: it is
// listed too (`present`), so that this sandbox holds it while it runs (launch.h: Placeholders)
// and the other cannot remove it.
struct Placeholder {
  std::string path;
  bool is_directory = false;
  bool present = false;
  // What a file placeholder holds where an empty one would not do: git dies on an empty
  // .git/commondir, and reads "." as the repository's own directory.
  std::string content;
};

struct Plan {
  std::vector<MountOp> mounts;            // in order: parents before children
  std::vector<Placeholder> placeholders;  // to create before the sandbox starts (see above)
  std::vector<landlock::Rule> landlock;   // paths inside the sandbox
  std::vector<std::string> skipped;       // best_effort: listed paths that do not exist
  std::string workdir;                    // initial working directory inside the sandbox
};

// Files and directories that hijack a user's later sessions (shell rc files, git config and
// hooks, agent and editor settings, credentials) are kept read-only inside every writable path, at
// its top and in directories up to two levels below (nested repositories; at most 1024
// directories read), with the config and hooks of git submodules and linked worktrees, and in
// each repository the names that would point git at another configuration (commondir,
// config.worktree) reserved; every directory between the
// writable root and a protected entry is pinned (made a mount point) so that the entry cannot be
// swapped out by renaming a parent. The list is in plan.cc.
//
// `workdir` must be absolute and normalised. Fails on a hard_requirement path that is missing, or
// a workdir of "/".
//
// `trust_layer` (optional): a host directory laid out like /etc that holds ward's CA bundle
// (ward/tls/ca-bundle.pem) and copies of it under the names of the system bundles the host has
// (ssl/certs/ca-certificates.crt, ...). The sandbox sees them at those paths under /etc: through a
// read-only overlay when /etc is bound read-only as a whole (its mount point /etc/ward cannot be
// created in the host's /etc), else through file binds. Where the host has mounts beneath /etc
// (Docker's /etc/resolv.conf, /etc/hosts and /etc/hostname; `ip netns exec`'s resolv.conf) the
// overlay cannot be made — in the sandbox's user namespace those mounts are locked, and overlayfs
// refuses a lower layer with locked mounts beneath it — so /etc is a read-only tmpfs holding a
// bind of each of the host's entries instead, and the bundles are bound into it.
//
// `hidden` (optional): host paths the sandbox must not see even where a listed path contains
// them (ward's state directories, with the CA key, provider secrets and a gateway's socket, inside
// a workdir such as $HOME), compared once symlinks are resolved: a directory gets an empty
// read-only tmpfs over it, anything else /dev/null without its device. Missing ones are skipped.
//
// `guarded` (optional): host files ward itself reads or writes while the sandbox runs (the policy
// file it reloads, the audit file): where a writable path shows one, it is bound read-only and
// every directory between it and that path's top is pinned, like a protected name.
// The path of `hidden` (as the kernel resolves it) that `real`, a resolved path, lies at or
// beneath; "" when none. For callers that refuse such a workdir before a plan is made.
std::string hidden_holding(const std::string& real, const std::vector<std::string>& hidden);

// True for what every sandbox has of its own whatever the policy lists: /proc and beneath, and
// the nodes of its minimal /dev (null, zero, full, random, urandom, tty, pts, ptmx, shm).
bool provided_by_sandbox(const std::string& path);

// A writable path that is a home (yours, one in /home, or a login account's) has its credential
// stores (.ssh, .gnupg, .aws, .kube, .docker, .netrc, .git-credentials, .pypirc, .config/gh)
// hidden the same way, unless the policy lists one of them itself.
Result<Plan> make_plan(const policy::Policy& policy, const std::string& workdir,
                       const std::string& trust_layer = "", std::vector<std::string> hidden = {},
                       const std::vector<std::string>& guarded = {});

}  // namespace ward::sandbox
