// The sandbox init (PID 1) and the workload's last steps before execve.
//
// Runs after clone(): raw syscalls on prepared data only — no allocation, no stdio, no locks. Each
// failure is reported as (step, syscall, sys::last_err, path) to the parent, which prints it.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <linux/mount.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "base/fd.h"
#include "sandbox/child.h"
#include "sandbox/sys.h"

#ifndef MOUNT_ATTR_NOSUID
#error "linux/mount.h too old"
#endif

namespace ward::sandbox {
namespace {

constexpr char kOldRoot[] = "/oldroot";
constexpr char kNewRoot[] = "/newroot";

// ---- small async-signal-safe helpers ----

void copy_str(char* dst, size_t cap, const char* src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; ++i) dst[i] = src[i];
  dst[i] = '\0';
}

// dst = a + b (+ c); false when it does not fit.
bool join(char* dst, size_t cap, const char* a, const char* b, const char* c = "") {
  size_t la = std::strlen(a), lb = std::strlen(b), lc = std::strlen(c);
  if (la + lb + lc + 1 > cap) return false;
  std::memcpy(dst, a, la);
  std::memcpy(dst + la, b, lb);
  std::memcpy(dst + la + lb, c, lc);
  dst[la + lb + lc] = '\0';
  return true;
}

struct Failure {
  ChildError* out;
  // Records the failure; returns false so call sites read `return f(...)`.
  bool operator()(Step step, const char* syscall, int err, const char* path = nullptr) const {
    out->step = step;
    out->err = err;
    copy_str(out->syscall, sizeof out->syscall, syscall);
    copy_str(out->path, sizeof out->path, path ? path : "");
    return false;
  }
};

int sys_pivot_root(const char* new_root, const char* put_old) {
  return static_cast<int>(sys::call(SYS_pivot_root, new_root, put_old));
}

int sys_mount_setattr(const char* path, unsigned flags, std::uint64_t set) {
  struct mount_attr attr = {};
  attr.attr_set = set;
  return static_cast<int>(sys::call(SYS_mount_setattr, AT_FDCWD, path, flags, &attr, sizeof attr));
}

// mkdir -p for an absolute path (every component created 0755).
bool mkdir_p(const char* path) {
  char buf[PATH_MAX];
  copy_str(buf, sizeof buf, path);
  for (char* p = buf + 1; *p; ++p) {
    if (*p != '/') continue;
    *p = '\0';
    if (sys::mkdir(buf, 0755) != 0 && sys::last_err != EEXIST) return false;
    *p = '/';
  }
  return sys::mkdir(buf, 0755) == 0 || sys::last_err == EEXIST;
}

// The parent directory of `path` created, then `path` itself as a directory or an empty file.
bool make_mountpoint(const char* path, bool directory) {
  if (directory) return mkdir_p(path);
  char parent[PATH_MAX];
  copy_str(parent, sizeof parent, path);
  char* slash = std::strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    if (!mkdir_p(parent)) return false;
  }
  if (sys::access(path, F_OK) == 0) return true;  // an existing file (a self-bind) is its own
  int fd = sys::open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return sys::last_err == EEXIST;
  sys::close(fd);
  return true;
}

bool send_message(int sock, const Message& m) {
  ssize_t n;
  do n = sys::send(sock, &m, sizeof m, MSG_NOSIGNAL);
  while (n < 0 && sys::last_err == EINTR);
  return n == static_cast<ssize_t>(sizeof m);
}

std::int64_t now_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// ---- building the root (init) ----

bool bind_one(const MountOp& op, const Failure& f) {
  char src[PATH_MAX], dst[PATH_MAX];
  // A self-bind takes the sandbox's own view (an idmapped workdir stays idmapped beneath it).
  if (!join(src, sizeof src, op.self_bind ? kNewRoot : kOldRoot, op.source.c_str()) ||
      !join(dst, sizeof dst, kNewRoot, op.target.c_str()))
    return f(Step::kBind, "join", ENAMETOOLONG, op.target.c_str());
  if (!make_mountpoint(dst, op.is_directory))
    return f(Step::kBind, "mkdir", sys::last_err, op.target.c_str());
  if (op.tree_fd >= 0) {
    if (sys::call(SYS_move_mount, op.tree_fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0)
      return f(Step::kBind, "move_mount", sys::last_err, op.target.c_str());
  } else if (op.no_follow) {
    // Planned as no symlink: opened without following any, and the tree cloned from that very
    // inode, so that one swapped in meanwhile cannot point the bind elsewhere.
    struct open_how how = {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS;
    const int at = static_cast<int>(sys::call(SYS_openat2, AT_FDCWD, src, &how, sizeof how));
    if (at < 0) return f(Step::kBind, "openat2", sys::last_err, op.target.c_str());
    const int tree = static_cast<int>(sys::call(
        SYS_open_tree, at, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH));
    const int opened = sys::last_err;
    sys::close(at);
    if (tree < 0) return f(Step::kBind, "open_tree", opened, op.target.c_str());
    const long moved = sys::call(SYS_move_mount, tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH);
    const int move_err = sys::last_err;
    sys::close(tree);
    if (moved != 0) return f(Step::kBind, "move_mount", move_err, op.target.c_str());
  } else if (sys::mount(src, dst, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return f(Step::kBind, "mount", sys::last_err, op.target.c_str());
  }
  std::uint64_t attrs = MOUNT_ATTR_NOSUID;
  if (!op.allow_devices) attrs |= MOUNT_ATTR_NODEV;
  if (op.read_only) attrs |= MOUNT_ATTR_RDONLY;
  // AT_RECURSIVE: mounts beneath a bound directory get the same attributes (a plain remount
  // would leave them writable).
  if (sys_mount_setattr(dst, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, attrs) != 0)
    return f(Step::kBind, "mount_setattr", sys::last_err, op.target.c_str());
  return true;
}

// A read-only overlay: the host directory `op.source` over what `dst` shows now (a bind made
// just before). Unprivileged overlay mounts need Linux 5.11.
bool overlay_one(const MountOp& op, const char* dst, const Failure& f) {
  char upper[PATH_MAX], options[2 * PATH_MAX + 16];
  if (!join(upper, sizeof upper, kOldRoot, op.source.c_str()) ||
      !join(options, sizeof options, "lowerdir=", upper, ":") ||
      std::strlen(options) + std::strlen(dst) + 1 > sizeof options)
    return f(Step::kBind, "join", ENAMETOOLONG, op.target.c_str());
  std::strcat(options, dst);
  if (sys::mount("overlay", dst, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, options) != 0)
    return f(Step::kBind, "mount overlay", sys::last_err, op.target.c_str());
  return true;
}

// The step a tmpfs of the plan belongs to, for errors and timings: the private /tmp, or the
// binds (a hidden path's cover, a shadowed /etc).
Step tmpfs_step(const MountOp& op) {
  return op.target == "/tmp" ? Step::kPrivateTmp : Step::kBind;
}

bool mount_tmpfs(const char* target, const char* options, unsigned long flags, Step step,
                 const Failure& f) {
  if (!mkdir_p(target)) return f(step, "mkdir", sys::last_err, target);
  if (sys::mount("tmpfs", target, "tmpfs", flags, options) != 0)
    return f(step, "mount", sys::last_err, target);
  return true;
}

bool build_dev(const ChildSpec& spec, const Failure& f) {
  constexpr char kDev[] = "/newroot/dev";
  if (!mount_tmpfs(kDev, "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC, Step::kDev, f)) return false;
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    char src[64], dst[64];
    join(src, sizeof src, kOldRoot, "/dev/", node);
    join(dst, sizeof dst, kDev, "/", node);
    if (!make_mountpoint(dst, false)) return f(Step::kDev, "open", sys::last_err, dst + 8);
    if (sys::mount(src, dst, nullptr, MS_BIND, nullptr) != 0) {
      if (std::strcmp(node, "tty") == 0) {  // no controlling terminal on the host: leave it out
        sys::unlinkat(-100 /*AT_FDCWD*/, dst, 0);
        continue;
      }
      return f(Step::kDev, "mount", sys::last_err, dst + 8);
    }
  }
  if (!mkdir_p("/newroot/dev/pts")) return f(Step::kDev, "mkdir", sys::last_err, "/dev/pts");
  if (sys::mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620") != 0)
    return f(Step::kDev, "mount", sys::last_err, "/dev/pts");
  if (!mount_tmpfs("/newroot/dev/shm", spec.shm_options, MS_NOSUID | MS_NODEV, Step::kDev, f))
    return false;
  struct {
    const char* target;
    const char* link;
  } links[] = {{"pts/ptmx", "/newroot/dev/ptmx"},
               {"/proc/self/fd", "/newroot/dev/fd"},
               {"/proc/self/fd/0", "/newroot/dev/stdin"},
               {"/proc/self/fd/1", "/newroot/dev/stdout"},
               {"/proc/self/fd/2", "/newroot/dev/stderr"}};
  for (const auto& l : links)
    if (sys::symlink(l.target, l.link) != 0)
      return f(Step::kDev, "symlink", sys::last_err, l.link + 8);
  return true;
}

bool build_root(const ChildSpec& spec, StepTrace& trace, const Failure& f) {
  if (sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return f(Step::kMountPrivate, "mount", sys::last_err, "/");
  trace.add(Step::kMountPrivate);

  // Pivot through a scratch tmpfs (mounted over the host's /tmp in this namespace only) so that
  // the host root stays reachable at /oldroot while the new root is assembled at /newroot.
  if (sys::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64k") != 0)
    return f(Step::kBaseTmpfs, "mount", sys::last_err, "/tmp");
  if (sys::chdir("/tmp") != 0) return f(Step::kBaseTmpfs, "chdir", sys::last_err, "/tmp");
  if (sys::mkdir("newroot", 0755) != 0 || sys::mkdir("oldroot", 0755) != 0)
    return f(Step::kBaseTmpfs, "mkdir", sys::last_err, "/tmp");
  trace.add(Step::kBaseTmpfs);
  if (sys_pivot_root(".", "oldroot") != 0)
    return f(Step::kPivotBase, "pivot_root", sys::last_err, "/tmp");
  if (sys::chdir("/") != 0) return f(Step::kPivotBase, "chdir", sys::last_err, "/");
  trace.add(Step::kPivotBase);

  if (!mount_tmpfs(kNewRoot, "mode=0755", MS_NOSUID | MS_NODEV, Step::kRootTmpfs, f)) return false;
  trace.add(Step::kRootTmpfs);

  for (std::size_t i = 0; i < spec.mount_count; ++i) {
    const MountOp& op = spec.mounts[i];
    char dst[PATH_MAX];
    if (!join(dst, sizeof dst, kNewRoot, op.target.c_str()))
      return f(Step::kBind, "join", ENAMETOOLONG, op.target.c_str());
    switch (op.kind) {
      case MountOp::Kind::kTmpfs:
        // Mounted writable: paths listed beneath it (a workdir in /tmp) need mount points. A
        // read-only /tmp is made so once everything is mounted. (The others: the covers of
        // hidden paths and a shadowed /etc, reported as binds.)
        if (!mount_tmpfs(dst, op.tmpfs_options, MS_NOSUID | MS_NODEV, tmpfs_step(op), f))
          return false;
        if (tmpfs_step(op) == Step::kPrivateTmp) trace.add(Step::kPrivateTmp);
        break;
      case MountOp::Kind::kSymlink: {
        char parent[PATH_MAX];
        copy_str(parent, sizeof parent, dst);
        *std::strrchr(parent, '/') = '\0';
        if (!mkdir_p(parent)) return f(Step::kSymlink, "mkdir", sys::last_err, op.target.c_str());
        if (sys::symlink(op.source.c_str(), dst) != 0 && sys::last_err != EEXIST)
          return f(Step::kSymlink, "symlink", sys::last_err, op.target.c_str());
        break;
      }
      case MountOp::Kind::kBind:
        if (!bind_one(op, f)) return false;
        break;
      case MountOp::Kind::kOverlay:
        if (!overlay_one(op, dst, f)) return false;
        break;
    }
  }
  for (std::size_t i = 0; i < spec.mount_count; ++i) {
    const MountOp& op = spec.mounts[i];
    if (op.kind != MountOp::Kind::kTmpfs || !op.read_only) continue;
    char dst[PATH_MAX];
    join(dst, sizeof dst, kNewRoot, op.target.c_str());
    if (sys_mount_setattr(dst, 0, MOUNT_ATTR_RDONLY) != 0)
      return f(tmpfs_step(op), "mount_setattr", sys::last_err, op.target.c_str());
  }
  trace.add(Step::kBind);

  if (!mkdir_p("/newroot/proc")) return f(Step::kProc, "mkdir", sys::last_err, "/proc");
  if (sys::mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return f(Step::kProc, "mount", sys::last_err, "/proc");
  // /proc/sys stays readable (programs read their limits there) but not writable.
  if (sys::mount("/newroot/proc/sys", "/newroot/proc/sys", nullptr, MS_BIND | MS_REC, nullptr) !=
          0 ||
      sys_mount_setattr(
          "/newroot/proc/sys", AT_RECURSIVE,
          MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC) != 0)
    return f(Step::kProc, "mount", sys::last_err, "/proc/sys");
  trace.add(Step::kProc);

  if (!build_dev(spec, f)) return false;
  trace.add(Step::kDev);

  if (sys::chdir(kNewRoot) != 0) return f(Step::kPivotRoot, "chdir", sys::last_err, kNewRoot);
  // pivot_root(".", "."): the scratch root ends up stacked on top and is detached at once, and
  // with it the host's tree at /oldroot beneath it. One detach, not two: each one that unmounts
  // something waits for an expedited RCU grace period (0.1-1 ms on a 2-vCPU VM).
  if (sys_pivot_root(".", ".") != 0) return f(Step::kPivotRoot, "pivot_root", sys::last_err, "/");
  if (sys::umount2(".", MNT_DETACH) != 0) return f(Step::kPivotRoot, "umount2", sys::last_err, "/");
  if (sys::chdir("/") != 0) return f(Step::kPivotRoot, "chdir", sys::last_err, "/");
  trace.add(Step::kPivotRoot);
  if (sys::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 nullptr) != 0)
    return f(Step::kRootReadOnly, "mount", sys::last_err, "/");
  trace.add(Step::kRootReadOnly);
  return true;
}

bool bring_up_loopback(const Failure& f) {
  int fd = sys::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return f(Step::kLoopback, "socket", sys::last_err);
  struct ifreq ifr = {};
  copy_str(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  bool ok = sys::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ok = sys::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  int err = sys::last_err;
  sys::close(fd);
  return ok || f(Step::kLoopback, "ioctl", err, "lo");
}

// The egress listener: 127.0.0.1:port inside the sandbox's network namespace, the only way out
// (the proxy accepts on it from ward's namespace). With it, a NETLINK_SOCK_DIAG socket of the same
// namespace, through which the proxy finds the socket (and so the process) behind a connection.
// Both go to the parent with kReady; the init closes its copies.
struct EgressFds {
  int listener = -1;
  int diag = -1;
};

bool create_egress(const ChildSpec& spec, EgressFds& out, const Failure& f) {
  out.listener = sys::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (out.listener < 0) return f(Step::kEgressListener, "socket", sys::last_err);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(spec.egress_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (sys::bind(out.listener, &addr, sizeof addr) != 0)
    return f(Step::kEgressListener, "bind", sys::last_err, "127.0.0.1");
  if (sys::listen(out.listener, 4096) != 0)
    return f(Step::kEgressListener, "listen", sys::last_err);
  out.diag = sys::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (out.diag < 0) return f(Step::kEgressListener, "socket(NETLINK_SOCK_DIAG)", sys::last_err);
  return true;
}

// kReady, with the egress fds attached when there are any.
bool send_ready(int sock, const Message& m, const EgressFds& egress) {
  struct iovec iov = {const_cast<Message*>(&m), sizeof m};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  const int fds[2] = {egress.listener, egress.diag};
  if (egress.listener >= 0) attach_fds(msg, control, fds, 2);
  ssize_t n;
  do n = sys::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && sys::last_err == EINTR);
  return n == static_cast<ssize_t>(sizeof m);
}

constexpr int kLandlockOff = -2;

// Returns the ruleset fd, kLandlockOff when Landlock is off, -1 on failure.
int build_landlock(const ChildSpec& spec, const Failure& f) {
  if (spec.landlock_abi <= 0) return kLandlockOff;
  int ruleset = landlock::create_ruleset(spec.landlock_abi);
  if (ruleset < 0) return f(Step::kLandlockRuleset, "landlock_create_ruleset", -ruleset), -1;
  for (std::size_t i = 0; i < spec.landlock_rule_count; ++i) {
    const landlock::Rule& r = spec.landlock_rules[i];
    if (r.access == 0) continue;
    int rc = r.fd >= 0 ? landlock::add_fd_rule(ruleset, r.fd, r.access)
                       : landlock::add_path_rule(ruleset, r.path.c_str(), r.access);
    // A device the host lacks (/dev/tty without a terminal) simply gets no rule.
    if (rc == -ENOENT) continue;
    if (rc < 0) return f(Step::kLandlockRuleset, "landlock_add_rule", -rc, r.path.c_str()), -1;
  }
  return ruleset;
}

// ---- the workload's last steps ----

struct WorkloadArgs {
  ChildSpec* spec;
  int landlock_fd;
  char* const* argv;
  char* const* envp;
  const char* workdir;
  int stdio[3];      // persistent mode: become fds 0, 1, 2 (-1: keep the init's)
  bool tty = false;  // stdin is a terminal: a session of its own, the terminal its controlling one
  // Started by the spawner thread (below): the cgroup namespace, the emptied bounding set,
  // no_new_privs and the seccomp filter are inherited from it.
  bool inherits_setup = false;
};

bool drop_bounding_set(const Failure& f) {
  for (int cap = 0; cap <= 63; ++cap) {
    if (sys::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (sys::last_err == EINVAL) break;  // past the kernel's last capability
      return f(Step::kCapabilities, "prctl(PR_CAPBSET_DROP)", sys::last_err);
    }
  }
  return true;
}

bool drop_all_capabilities(const Failure& f) {
  if (sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && sys::last_err != EINVAL)
    return f(Step::kDropCapabilities, "prctl(PR_CAP_AMBIENT)", sys::last_err);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (sys::call(SYS_capset, &header, data) != 0)
    return f(Step::kDropCapabilities, "capset", sys::last_err);
  return true;
}

// execve's ENOENT for a file that is there: its interpreter is missing. Noted, with the file.
bool note_missing_interpreter(const char* path, const Failure& f) {
  if (sys::last_err != ENOENT || sys::call(SYS_faccessat, AT_FDCWD, path, F_OK) != 0) return false;
  f(Step::kExec, "execve", ENOENT, path);
  f.out->file_exists = true;
  return true;
}

void exec_command(const ChildSpec& spec, const WorkloadArgs& args, const Failure& f) {
  const char* file = args.argv[0];
  if (std::strchr(file, '/')) {
    sys::execve(file, args.argv, args.envp);
    if (!note_missing_interpreter(file, f)) f(Step::kExec, "execve", sys::last_err, file);
    return;
  }
  int err = ENOENT;
  bool interpreter_missing = false;  // noted by the first such file found
  for (const char* const* dir = spec.search_path; dir && *dir; ++dir) {
    char path[PATH_MAX];
    if (!join(path, sizeof path, *dir, "/", file)) continue;
    sys::execve(path, args.argv, args.envp);
    // Like execvp: keep looking past ENOENT/ENOTDIR, remember a permission problem (and a file
    // that was there but could not run, for the message).
    if (!interpreter_missing && note_missing_interpreter(path, f)) {
      interpreter_missing = true;
      continue;
    }
    if (sys::last_err == EACCES)
      err = EACCES;
    else if (sys::last_err != ENOENT && sys::last_err != ENOTDIR)
      err = sys::last_err;
  }
  if (interpreter_missing && err == ENOENT) return;  // what note_missing_interpreter said
  f.out->file_exists = false;
  f(Step::kExec, "execve", err, file);
}

// Moves the calling process into the sandbox's cgroups ("0": the writer's own thread group).
// Only a process of its own may do this: moving a thread of the init would move the init too.
// Until it execs, the caller shares ward's memory, but a vfork child is never the OOM killer's
// pick (it skips a task in the middle of vfork), so ward cannot die with it in the meantime.
bool join_cgroups(const ChildSpec& spec) {
  for (int i = 0; i < spec.cgroup_count; ++i)
    if (sys::write(spec.cgroup_procs_fds[i], "0", 1) != 1) return false;
  return true;
}

bool load_seccomp(const ChildSpec& spec) {
  struct sock_fprog prog = {spec.seccomp_len, const_cast<sock_filter*>(spec.seccomp)};
  return sys::call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

int workload_main(void* arg) {
  auto* args = static_cast<WorkloadArgs*>(arg);
  ChildSpec& spec = *args->spec;
  Failure f{&spec.workload_error};

  // The init's blocked set must not leak into the workload. (No handler is installed in ward or
  // its init, and execve resets handlers; an ignored signal inherited from ward's own parent stays
  // ignored, as across any exec.)
  sigset_t none;
  sigemptyset(&none);
  sys::sigprocmask(SIG_SETMASK, &none, nullptr);
  sys::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

  StepTrace& trace = spec.trace;
  if (args->tty || spec.new_session)
    sys::call(SYS_setsid);  // its own session and process group, as the signals expect
  else if (spec.new_process_group)
    sys::call(SYS_setpgid, 0, 0);
  for (int i = 0; i < 3; ++i)
    if (args->stdio[i] >= 0 && sys::call(SYS_dup3, args->stdio[i], i, 0) < 0)
      return f(Step::kSpawn, "dup3", sys::last_err), 1;
  if (args->tty && sys::call(SYS_ioctl, 0, TIOCSCTTY, 0) < 0)
    return f(Step::kSpawn, "ioctl(TIOCSCTTY)", sys::last_err), 1;
  // The cgroups first, so that the namespace made next has them at its root.
  if (!join_cgroups(spec))
    return f(Step::kCgroupNamespace, "write(cgroup.procs)", sys::last_err), 1;
  if (spec.workload_cgroup_ns && !args->inherits_setup && sys::unshare(CLONE_NEWCGROUP) != 0)
    return f(Step::kCgroupNamespace, "unshare(CLONE_NEWCGROUP)", sys::last_err), 1;
  trace.add(Step::kCgroupNamespace);

  for (int i = 0; i < spec.rlimit_count; ++i) {
    struct rlimit rl = {spec.rlimits[i].value, spec.rlimits[i].value};
    if (sys::prlimit(spec.rlimits[i].resource, &rl) != 0)
      return f(Step::kRlimits, "setrlimit", sys::last_err), 1;
  }
  trace.add(Step::kRlimits);

  if (!args->inherits_setup && !drop_bounding_set(f)) return 1;
  trace.add(Step::kCapabilities);
  if (spec.set_groups && sys::setgroups_none() != 0)
    return f(Step::kIds, "setgroups", sys::last_err), 1;
  if (sys::setresgid(spec.gid) != 0) return f(Step::kIds, "setresgid", sys::last_err), 1;
  if (sys::setresuid(spec.uid) != 0) return f(Step::kIds, "setresuid", sys::last_err), 1;
  trace.add(Step::kIds);
  if (!drop_all_capabilities(f)) return 1;
  trace.add(Step::kDropCapabilities);

  if (sys::chdir(args->workdir) != 0)
    return f(Step::kChdir, "chdir", sys::last_err, args->workdir), 1;
  trace.add(Step::kChdir);
  if (!args->inherits_setup && sys::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return f(Step::kNoNewPrivs, "prctl(PR_SET_NO_NEW_PRIVS)", sys::last_err), 1;
  trace.add(Step::kNoNewPrivs);
  if (args->landlock_fd >= 0) {
    if (int rc = landlock::restrict_self(args->landlock_fd); rc < 0)
      return f(Step::kLandlock, "landlock_restrict_self", -rc), 1;
    trace.add(Step::kLandlock);
  }
  if (sys::call(SYS_close_range, 3U, ~0U, 0U) != 0)
    return f(Step::kCloseFds, "close_range", sys::last_err), 1;
  trace.add(Step::kCloseFds);

  if (!args->inherits_setup && !load_seccomp(spec))
    return f(Step::kSeccomp, "seccomp", sys::last_err), 1;
  trace.add(Step::kSeccomp);
  trace.add(Step::kExec);  // last: a successful execve does not return

  exec_command(spec, *args, f);
  return 1;
}

// A stack for the workload, which shares the init's memory until it execs (CLONE_VM|CLONE_VFORK:
// no page-table copy).
alignas(64) char g_workload_stack[256 * 1024];

// Starts a workload (the main command, or an exec slot's) and waits until it has exec'd or
// failed: CLONE_VFORK suspends the init meanwhile, and the workload's error lands in our memory.
// Returns -1 with the error in sys::last_err (libc's clone wrapper sets errno).
pid_t spawn(ChildSpec& spec, WorkloadArgs& args) {
  spec.workload_error = ChildError{};
  const pid_t pid =
      static_cast<pid_t>(::clone(workload_main, g_workload_stack + sizeof g_workload_stack,
                                 CLONE_VM | CLONE_VFORK | SIGCHLD, &args));
  if (pid < 0) sys::last_err = errno;
  return pid;
}

// ---- the spawner (long-lived sandboxes) ----
//
// Every command a long-lived sandbox starts would load the seccomp filter again — the kernel
// converts and JIT-compiles a filter at each load, ~2 us per instruction on the 2-vCPU VM of
// docs/benchmarks.md, ~0.5 ms for ward's — enter a cgroup namespace of its own, empty its
// bounding set (41 prctl calls, each a new set of credentials: ~0.1 ms there) and set
// no_new_privs. A thread of the init does these once, at the first exec, and vforks the
// commands: they inherit each of them, since each is the thread's own (a thread's bounding set,
// no_new_privs and seccomp filter — without TSYNC — are per thread; the commands still join the
// sandbox's cgroups each, as the thread cannot: see enter_commands_cgroup_ns). The init's other
// thread stays as it was: it unshares nothing, and removes the cgroups when ward dies. What the
// thread keeps (its effective capabilities, its ids) each command drops, and each command enters
// the Landlock domain itself: a thread inside the domain could be signalled by the commands
// (Landlock scopes signals to the domain, and a command in the thread's own domain is inside it —
// the gateway's hardening test caught that). The commands are children of the init's thread
// group, so the init reaps them as before.
//
// One request at a time, handed over through `state` (a futex word) in the memory the thread
// shares with the init: the init writes `args`, sets kRequest and sleeps until kDone. So the
// init, the thread and a workload not yet exec'd never run ward's code at the same time, which
// is what sys::last_err and the shared workload stack assume.
struct Spawner {
  enum : int { kIdle = 0, kRequest = 1, kDone = 2, kFailed = 3 };
  int state = kIdle;
  ChildSpec* spec = nullptr;
  WorkloadArgs* args = nullptr;
  pid_t pid = 0;
  bool started = false;
  bool unusable = false;  // its set-up failed: commands load the filter themselves
};
Spawner g_spawner;
alignas(64) char g_spawner_stack[32 * 1024];

void futex_wait(int* word, int value) {
  sys::raw(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAIT_PRIVATE, value, 0);
}
void futex_wake(int* word) {
  sys::raw(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAKE_PRIVATE, 1);
}
int load(const int* word) {
  return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}
void store(int* word, int value) {
  __atomic_store_n(word, value, __ATOMIC_RELEASE);
}

int cgroup_ns_helper(void* ns_fd) {
  if (!join_cgroups(*g_spawner.spec) || sys::unshare(CLONE_NEWCGROUP) != 0) return 1;
  *static_cast<int*>(ns_fd) =
      static_cast<int>(sys::open("/proc/self/ns/cgroup", O_RDONLY | O_CLOEXEC));
  return 0;
}

// The commands' cgroup namespace must have the sandbox's cgroups at its root, and a namespace is
// rooted where its maker is; but the thread cannot join them (a move takes its whole thread group,
// and the init must stay out: child.h). So a helper process joins them, makes the namespace and
// opens it into the descriptor table it shares with the thread, which enters it. The helper is
// vforked onto the workload stack, which no command uses yet.
bool enter_commands_cgroup_ns() {
  int ns = -1;
  const long pid = ::clone(cgroup_ns_helper, g_workload_stack + sizeof g_workload_stack,
                           CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &ns);
  if (pid <= 0) return false;
  sys::wait4(static_cast<pid_t>(pid), nullptr, 0);
  const bool entered = ns >= 0 && sys::call(SYS_setns, ns, CLONE_NEWCGROUP) == 0;
  if (ns >= 0) sys::close(ns);
  return entered;
}

int spawner_main(void*) {
  ChildSpec& spec = *g_spawner.spec;
  sys::prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("ward-spawn"));
  ChildError ignored;  // a set-up that fails is done again by every command, which reports it
  const Failure f{&ignored};
  const bool ready = (!spec.workload_cgroup_ns || enter_commands_cgroup_ns()) &&
                     drop_bounding_set(f) && sys::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
                     load_seccomp(spec);
  store(&g_spawner.state, ready ? Spawner::kIdle : Spawner::kFailed);
  futex_wake(&g_spawner.state);
  if (!ready) return 0;  // the thread ends; the init sees kFailed
  for (;;) {
    for (int v; (v = load(&g_spawner.state)) != Spawner::kRequest;) futex_wait(&g_spawner.state, v);
    g_spawner.pid = spawn(spec, *g_spawner.args);
    store(&g_spawner.state, Spawner::kDone);
    futex_wake(&g_spawner.state);
  }
}

// A workload started by the spawner thread, or by the init itself when that thread cannot be had.
pid_t spawn_command(ChildSpec& spec, WorkloadArgs& args) {
  if (!g_spawner.started && !g_spawner.unusable) {
    g_spawner.spec = &spec;
    store(&g_spawner.state, Spawner::kRequest);  // "not yet set up"
    long tid = ::clone(
        spawner_main, g_spawner_stack + sizeof g_spawner_stack,
        CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, nullptr);
    if (tid > 0)
      for (int v; (v = load(&g_spawner.state)) == Spawner::kRequest;)
        futex_wait(&g_spawner.state, v);
    g_spawner.started = tid > 0 && load(&g_spawner.state) == Spawner::kIdle;
    g_spawner.unusable = !g_spawner.started;
  }
  if (g_spawner.unusable) return spawn(spec, args);
  args.inherits_setup = true;
  g_spawner.args = &args;
  store(&g_spawner.state, Spawner::kRequest);
  futex_wake(&g_spawner.state);
  for (int v; (v = load(&g_spawner.state)) != Spawner::kDone;) futex_wait(&g_spawner.state, v);
  store(&g_spawner.state, Spawner::kIdle);
  return g_spawner.pid;  // on failure, the spawner's spawn() set sys::last_err
}

// ---- supervision (init) ----

struct Supervisor {
  ChildSpec& spec;
  pid_t main_pid;  // 0 in persistent mode: the sandbox lives until it is stopped
  int landlock_fd;
  int main_status = 0;
  bool main_done = false;
  int ended = 0;             // Message::kExit `ended`
  std::int64_t kill_at = 0;  // stop protocol: when SIGKILL follows SIGTERM; 0 = not stopping

  void begin_stop(int reason) {
    if (kill_at != 0) return;
    if (reason) ended = reason;
    sys::kill(-1, SIGTERM);  // every process of the sandbox but the init
    sys::kill(-1, SIGCONT);  // a stopped one gets it now, not at the SIGKILL
    kill_at = now_ms() + spec.grace_ms;
  }

  // Reaps every exited child; returns true when none is left.
  bool reap() {
    for (;;) {
      int status;
      pid_t pid = sys::wait4(-1, &status, WNOHANG);
      if (pid > 0) {
        if (pid == main_pid) {
          main_status = status;
          main_done = true;
        }
        exec_ended(pid, status);
        continue;
      }
      return pid < 0 && sys::last_err == ECHILD;
    }
  }

  void exec_ended(pid_t pid, int status) {
    for (int i = 0; i < kMaxExecs; ++i) {
      if (spec.execs[i].pid != pid) continue;
      spec.execs[i].pid = 0;
      Message m;
      m.type = Message::kExecExit;
      m.slot = i;
      m.value = status;
      send_message(spec.sock, m);
      return;
    }
  }

  // kExec: the slot's command, with the three fds that came with the request as its stdio.
  void exec(int slot, const int (&fds)[3]) {
    Message reply;
    reply.slot = slot;
    if (slot < 0 || slot >= kMaxExecs || spec.execs[slot].pid != 0 || !spec.execs[slot].argv ||
        kill_at != 0) {
      reply.type = Message::kExecFailed;
      Failure{&reply.error}(Step::kSpawn, "exec slot", kill_at ? ESHUTDOWN : EINVAL);
    } else {
      const ExecSlot& e = spec.execs[slot];
      WorkloadArgs args{&spec, landlock_fd, e.argv, e.envp, e.workdir, {fds[0], fds[1], fds[2]},
                        e.tty};
      pid_t pid = spawn_command(spec, args);
      if (pid < 0) {
        reply.type = Message::kExecFailed;
        Failure{&reply.error}(Step::kSpawn, "clone", sys::last_err);
      } else if (spec.workload_error.step != Step::kNone) {
        sys::wait4(pid, nullptr, 0);
        reply.type = Message::kExecFailed;
        reply.error = spec.workload_error;
      } else {
        spec.execs[slot].pid = pid;
        reply.type = Message::kExecStarted;
        reply.value = pid;
      }
    }
    for (int fd : fds)
      if (fd >= 0) sys::close(fd);
    send_message(spec.sock, reply);
  }

  // One request from the parent (persistent mode). False when the parent is gone.
  bool request() {
    Message m;
    int fds[3] = {-1, -1, -1};
    struct iovec iov = {&m, sizeof m};
    alignas(struct cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got = sys::recvmsg(spec.sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got < 0) return sys::last_err == EINTR || sys::last_err == EAGAIN;
    if (got == 0) return false;
    int n = 0;
    for_each_passed_fd(msg, [&](int fd) {
      if (n < 3)
        fds[n++] = fd;
      else
        sys::close(fd);
    });
    if (got != static_cast<ssize_t>(sizeof m) || !spec.persistent) {
      for (int fd : fds)
        if (fd >= 0) sys::close(fd);
      return true;  // ward run sends nothing after kGo; a persistent parent only whole messages
    }
    switch (m.type) {
      case Message::kExec:
        exec(m.slot, fds);
        return true;
      case Message::kSignal:
        if (m.slot >= 0 && m.slot < kMaxExecs && spec.execs[m.slot].pid > 0)
          sys::kill(-spec.execs[m.slot].pid, m.value);  // its process group
        break;
      case Message::kStop:
        begin_stop(2);
        break;
      default:
        break;
    }
    for (int fd : fds)
      if (fd >= 0) sys::close(fd);
    return true;
  }
};

// Once every process of the sandbox is reaped the cgroups are empty (the init was never in them).
void remove_cgroups(const ChildSpec& spec) {
  for (int i = 0; i < spec.cgroup_count; ++i)
    sys::unlinkat(spec.cgroup_parent_fds[i], spec.cgroup_name, AT_REMOVEDIR);
}

[[noreturn]] void parent_died(const ChildSpec& spec) {
  sys::kill(-1, SIGKILL);
  while (sys::wait4(-1, nullptr, 0) > 0 || sys::last_err == EINTR) {
  }
  remove_cgroups(spec);
  ::_exit(1);
}

[[noreturn]] void supervise(ChildSpec& spec, pid_t main_pid, int sigfd, int landlock_fd) {
  Supervisor s{spec, main_pid, landlock_fd};
  std::int64_t deadline = spec.timeout_ms > 0 ? now_ms() + spec.timeout_ms : 0;
  for (;;) {
    // Done when nothing is left and either the main command ended or (persistent mode) the
    // sandbox is being stopped.
    if (s.reap() && (s.main_done || (main_pid == 0 && s.kill_at != 0))) {
      Message m;
      m.type = Message::kExit;
      m.value = s.main_status;
      m.ended = s.ended;
      send_message(spec.sock, m);
      ::_exit(0);
    }
    if (s.main_done) s.begin_stop(0);  // leftovers of a finished workload get the stop protocol

    std::int64_t now = now_ms();
    if (deadline && now >= deadline && s.kill_at == 0) {
      s.begin_stop(1);
      continue;  // with nothing left to end, no SIGCHLD would wake the wait below
    }
    if (s.kill_at && now >= s.kill_at) {
      sys::kill(-1, SIGKILL);
      s.kill_at = now + 60000;  // nothing can survive SIGKILL; just keep reaping
    }
    std::int64_t wake = s.kill_at ? s.kill_at : deadline;
    int timeout = wake ? static_cast<int>(wake > now ? wake - now : 0) : -1;

    struct pollfd fds[2] = {{sigfd, POLLIN, 0}, {spec.sock, POLLIN, 0}};
    struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
    int n = static_cast<int>(sys::ppoll(fds, 2, timeout < 0 ? nullptr : &ts));
    if (n < 0 && sys::last_err != EINTR) parent_died(spec);
    if (n <= 0) continue;

    // ward run sends nothing after kGo: there, the socket turns readable when ward is gone.
    if (fds[1].revents && !s.request()) parent_died(spec);
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (sys::read(sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) continue;  // reaped at the top of the loop
        // Forward only what ward (or someone on the host) sent: its sender is outside this pid
        // namespace, so it shows as pid 0. A terminal-generated signal (SI_KERNEL) reached the
        // workload's process group directly when it shares ours (ward's); otherwise it is passed
        // on — ward's copy of it may have merged with it, still pending here.
        const bool own_group = spec.new_process_group || spec.new_session;
        bool from_outside = si.ssi_pid == 0 && (si.ssi_code != SI_KERNEL || own_group);
        if (!from_outside || s.main_done) continue;
        if (sig == SIGTERM) {
          s.begin_stop(2);
        } else if (main_pid > 0) {
          sys::kill(main_pid, sig);
          // A hang-up, as a terminal's: a stopped workload is continued to receive it (else it
          // would wait, and ward with it, for a terminal that is gone).
          if (sig == SIGHUP) sys::kill(main_pid, SIGCONT);
        }
      }
    }
  }
}

}  // namespace

const char* step_name(Step step) {
  switch (step) {
    case Step::kNone:
      return "none";
    case Step::kMountPrivate:
      return "making mounts private";
    case Step::kBaseTmpfs:
      return "mounting the scratch tmpfs";
    case Step::kPivotBase:
      return "pivoting into the scratch tmpfs";
    case Step::kRootTmpfs:
      return "mounting the sandbox root";
    case Step::kBind:
      return "binding a policy path";
    case Step::kSymlink:
      return "recreating a symlinked policy path";
    case Step::kPrivateTmp:
      return "mounting the private /tmp";
    case Step::kProc:
      return "mounting /proc";
    case Step::kDev:
      return "building /dev";
    case Step::kPivotRoot:
      return "pivoting into the sandbox root";
    case Step::kRootReadOnly:
      return "making the root read-only";
    case Step::kHostname:
      return "setting the hostname";
    case Step::kLoopback:
      return "bringing up the loopback interface";
    case Step::kEgressListener:
      return "creating the egress listener";
    case Step::kLandlockRuleset:
      return "building the Landlock ruleset";
    case Step::kSpawn:
      return "starting the workload";
    case Step::kCgroupNamespace:
      return "entering a cgroup namespace";
    case Step::kRlimits:
      return "setting resource limits";
    case Step::kCapabilities:
      return "emptying the capability bounding set";
    case Step::kIds:
      return "switching to the workload's uid and gid";
    case Step::kDropCapabilities:
      return "dropping capabilities";
    case Step::kChdir:
      return "entering the working directory";
    case Step::kNoNewPrivs:
      return "setting no_new_privs";
    case Step::kLandlock:
      return "enforcing Landlock";
    case Step::kCloseFds:
      return "closing inherited file descriptors";
    case Step::kSeccomp:
      return "loading the seccomp filter";
    case Step::kExec:
      return "executing the command";
  }
  return "unknown";
}

void init_main(ChildSpec* spec) {
  sys::close(spec->parent_sock);
  Failure f{nullptr};
  Message report;
  report.type = Message::kSetupError;
  f.out = &report.error;

  // 1. Wait for the parent to write our id maps.
  Message go;
  ssize_t got;
  do got = sys::recv(spec->sock, &go, sizeof go, 0);
  while (got < 0 && sys::last_err == EINTR);
  if (got != static_cast<ssize_t>(sizeof go) || go.type != Message::kGo) ::_exit(1);

  // Not dumpable from here on: the workload can neither ptrace nor read /proc/1/{mem,environ}.
  // This alone keeps the workload away from /proc/1/mem and /proc/1/environ (ward's memory):
  // no sandbox without it.
  if (sys::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    f(Step::kMountPrivate, "prctl(PR_SET_DUMPABLE)", sys::last_err);
    send_message(spec->sock, report);
    ::_exit(1);
  }
  sys::prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("ward-init"));
  if (spec->title_start && spec->title_end > spec->title_start) {
    std::memset(spec->title_start, 0, spec->title_end - spec->title_start);
    copy_str(spec->title_start, spec->title_end - spec->title_start, "ward-init");
  }

  StepTrace& trace = spec->trace;
  int landlock_fd = -1;
  bool ok = build_root(*spec, trace, f);
  if (ok && sys::sethostname(spec->hostname, std::strlen(spec->hostname)) != 0)
    ok = f(Step::kHostname, "sethostname", sys::last_err);
  if (ok) trace.add(Step::kHostname);
  if (ok && (ok = bring_up_loopback(f))) trace.add(Step::kLoopback);
  EgressFds egress;
  if (ok && spec->egress_port && (ok = create_egress(*spec, egress, f)))
    trace.add(Step::kEgressListener);
  if (ok && (ok = (landlock_fd = build_landlock(*spec, f)) != -1))
    trace.add(Step::kLandlockRuleset);
  if (!ok) {
    report.trace = trace;
    send_message(spec->sock, report);
    ::_exit(1);
  }

  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
    sigaddset(&set, sig);
  sys::sigprocmask(SIG_BLOCK, &set, nullptr);
  int sigfd = sys::signalfd(&set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigfd < 0) {
    f(Step::kSpawn, "signalfd", sys::last_err);
    send_message(spec->sock, report);
    ::_exit(1);
  }

  trace.add(Step::kSpawn);
  pid_t pid = 0;
  if (!spec->persistent) {
    WorkloadArgs args{spec, landlock_fd, spec->argv, spec->envp, spec->workdir, {-1, -1, -1}};
    pid = spawn(*spec, args);
    if (pid < 0) {
      f(Step::kSpawn, "clone", sys::last_err);
      send_message(spec->sock, report);
      ::_exit(1);
    }
    // The workload has exec'd or exited by now. Its error, if any, is in our memory.
    if (spec->workload_error.step != Step::kNone) {
      sys::wait4(pid, nullptr, 0);
      report.error = spec->workload_error;
      report.trace = trace;
      send_message(spec->sock, report);
      ::_exit(1);
    }
    if (landlock_fd >= 0) sys::close(landlock_fd);
    landlock_fd = -1;
  }

  Message ready;
  ready.type = Message::kReady;
  ready.value = pid;
  ready.trace = trace;
  send_ready(spec->sock, ready, egress);
  if (egress.listener >= 0) sys::close(egress.listener);
  if (egress.diag >= 0) sys::close(egress.diag);
  // A long-lived sandbox keeps its Landlock ruleset: every command it starts is restricted by it.
  supervise(*spec, pid, sigfd, landlock_fd);
}

}  // namespace ward::sandbox
