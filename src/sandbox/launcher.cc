// run(): everything prepared before clone, then the parent's side of the sync protocol.
#include <elf.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/log.h"
#include "base/strings.h"
#include "sandbox/cgroup.h"
#include "sandbox/child.h"
#include "sandbox/environment.h"
#include "sandbox/identity.h"
#include "sandbox/idmap.h"
#include "sandbox/launch.h"
#include "sandbox/plan.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

extern char** environ;

namespace ward::sandbox {
namespace {

char* g_title_start = nullptr;
char* g_title_end = nullptr;
std::chrono::steady_clock::time_point g_main_started = std::chrono::steady_clock::now();

long micros_since(std::chrono::steady_clock::time_point t) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t)
          .count());
}

// Whether this process has a controlling terminal that has not hung up.
bool has_terminal() {
  int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

Result<> write_proc(pid_t pid, const char* file, const std::string& value) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return fail_errno("write " + path);
  return {};
}

// The caller's terminal or redirected files on fds 0-2 stay usable through /dev/stdin, /dev/tty
// and /proc/self/fd (a re-open goes through Landlock): one rule per fd, for exactly that file.
void add_std_fd_rules(std::vector<landlock::Rule>& rules, std::vector<UniqueFd>& keep, int abi) {
  for (int fd = 0; fd <= 2; ++fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) continue;
    if (!S_ISCHR(st.st_mode) && !S_ISREG(st.st_mode)) continue;  // pipes and sockets need no rule
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) continue;
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    UniqueFd path(::open(self.c_str(), O_PATH | O_CLOEXEC));
    if (!path) continue;
    using landlock::Mode;
    // A terminal: read, write, ioctl. A redirected file: what its fd allows, plus truncation for
    // a writable one (`> /dev/stdout` opens with O_TRUNC); never execute.
    std::uint64_t access = landlock::rule_access(Mode::kDevice, false, abi);
    if (S_ISREG(st.st_mode)) {
      std::uint64_t writable = landlock::rule_access(Mode::kReadWrite, false, abi);
      std::uint64_t read_only = landlock::rule_access(Mode::kReadOnly, false, abi);
      access = ((flags & O_ACCMODE) == O_RDONLY ? read_only : writable) &
               ~static_cast<std::uint64_t>(LANDLOCK_ACCESS_FS_EXECUTE);
    }
    rules.push_back({self, path.get(), access});
    keep.push_back(std::move(path));
  }
}

int init_entry(void* spec) {
  init_main(static_cast<ChildSpec*>(spec));
}

}  // namespace

namespace {

// The program an executable needs to run: an ELF's PT_INTERP, a script's #! line ("" when
// neither, or the file cannot be read).
// `path` is the sandbox's: read on the host only when it is absolute (where a gateway's workspace
// is the same path), and only a regular file, never blocking on what the workload put there.
std::string interpreter_of(const char* path) {
  if (path[0] != '/') return {};
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  char head[256] = {};
  const ssize_t n = ::pread(fd.get(), head, sizeof head - 1, 0);
  if (n >= 2 && head[0] == '#' && head[1] == '!') {
    std::string_view line(head + 2, static_cast<std::size_t>(n) - 2);
    line = line.substr(0, line.find('\n'));
    const std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) return {};
    line = line.substr(start);
    return std::string(line.substr(0, line.find_first_of(" \t")));
  }
  Elf64_Ehdr eh;
  if (::pread(fd.get(), &eh, sizeof eh, 0) != sizeof eh ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr))
    return {};
  for (int i = 0; i < eh.e_phnum && i < 64; ++i) {
    Elf64_Phdr ph;
    if (::pread(fd.get(), &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph)) !=
        sizeof ph)
      return {};
    if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) continue;
    std::string interp(ph.p_filesz, '\0');
    if (::pread(fd.get(), interp.data(), interp.size(), static_cast<off_t>(ph.p_offset)) !=
        static_cast<ssize_t>(interp.size()))
      return {};
    interp.resize(std::strlen(interp.c_str()));
    return interp;
  }
  return {};
}

}  // namespace

std::pair<int, std::string> exec_failure(const ChildError& e) {
  const std::string path = e.path;
  if (e.err == ENOENT && e.file_exists) {
    const std::string interp = interpreter_of(e.path);
    const std::string dir = interp.substr(0, interp.rfind('/'));
    return {kExitNotExecutable,
            "cannot execute " + path + " inside the sandbox: " +
                (interp.empty() ? std::string("the program it needs to run is not there")
                 : ::access(interp.c_str(), F_OK) != 0
                     ? "its interpreter " + interp + " does not exist"
                     : "its interpreter " + interp + " is not there (list " +
                           (dir.empty() ? interp : dir) + " in filesystem_policy.read_only)")};
  }
  if (e.err == ENOENT) return {kExitNotFound, "command not found inside the sandbox: " + path};
  return {kExitNotExecutable, "cannot execute " + path + ": " + std::strerror(e.err)};
}

std::string describe_error(const ChildError& e) {
  std::string s = std::string(step_name(e.step)) + " failed: " + e.syscall;
  if (e.path[0]) s += "(" + std::string(e.path) + ")";
  if (e.err) s += ": " + std::string(std::strerror(e.err));
  return s;
}

ssize_t receive_message(int sock, Message& m, std::vector<UniqueFd>* fds) {
  struct iovec iov = {&m, sizeof m};
  alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (got <= 0) return got;
  for_each_passed_fd(msg, [&](int fd) {
    if (fds)
      fds->emplace_back(fd);
    else
      ::close(fd);
  });
  return got;
}

namespace {

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string env_value(const std::vector<std::string>& env, const std::string& name) {
  for (const auto& e : env)
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
      return e.substr(name.size() + 1);
  return {};
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes % (1ULL << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  if (bytes % (1ULL << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

void remember_title_area(int argc, char** argv) {
  g_main_started = std::chrono::steady_clock::now();
  if (argc <= 0) return;
  g_title_start = argv[0];
  char* end = argv[argc - 1] + std::strlen(argv[argc - 1]) + 1;
  for (char** e = environ; e && *e && *e == end; ++e) end = *e + std::strlen(*e) + 1;
  g_title_end = end;
}

namespace {

constexpr char kPlaceholderMark[] = "user.ward.placeholder";

// How long a placeholder may stay locked exclusively before ward gives up: a ward that is
// ending holds that lock only while it removes the placeholder (microseconds); anyone holding
// it for longer (any process that can open the name can lock it) would otherwise stall every
// start in that directory.
constexpr auto kLockPatience = std::chrono::seconds(2);

// A shared lock on `fd`, waiting at most until `deadline`. 0, or the errno: EWOULDBLOCK past
// the deadline, something else where the filesystem has no flock(2).
int lock_shared(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) return errno;
    ::usleep(1000);
  }
}

// Opens the placeholder into h.fd (creating and marking it when missing) with a shared lock on
// it. False, errno set, when it cannot be had. Everything goes through h.parent, the directory
// opened once: a path whose parents another sandbox renames or swaps for a symlink meanwhile
// cannot send the removal somewhere else. A filesystem without flock(2) (some network
// filesystems) gets what ward did before the lock: the placeholder held unlocked, removed by its
// maker only.
bool hold_placeholder(Placeholders::Held& h, std::chrono::steady_clock::time_point deadline) {
  const Placeholder& p = h.placeholder;
  const int dir = h.parent->get();
  const char* name = h.name.c_str();
  const int flags =
      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (p.is_directory ? O_DIRECTORY : 0);
  bool create = !p.present;  // what the plan found missing is made first
  for (int attempt = 0; attempt < 16; ++attempt) {
    h.made = false;
    h.fd.reset();
    if (create && p.is_directory) {
      h.made = ::mkdirat(dir, name, 0755) == 0;
      if (!h.made && errno != EEXIST) return false;
      if (h.made) {
        h.fd.reset(::openat(dir, name, flags));
        if (!h.fd) {
          int err = errno;
          ::unlinkat(dir, name, AT_REMOVEDIR);
          errno = err;
          return false;
        }
      }
    } else if (create) {
      h.fd.reset(::openat(dir, name, flags | O_CREAT | O_EXCL, 0644));
      h.made = h.fd.valid();
      if (!h.made && errno != EEXIST) return false;
    }
    if (!h.fd) {  // present (another sandbox made it first, or it was there): hold that one
      h.fd.reset(::openat(dir, name, flags));
      create = !h.fd && errno == ENOENT;  // removed meanwhile: make it
      if (create) continue;
      if (!h.fd) return false;
    }
    const int err = lock_shared(h.fd.get(), deadline);
    if (err == EWOULDBLOCK) {
      errno = EWOULDBLOCK;
      return false;
    }
    h.locked = err == 0;
    if (h.made) {  // a new inode: no other sandbox held it, so none can have removed it
      if (!p.content.empty()) {
        UniqueFd w(::openat(dir, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!w || ::write(w.get(), p.content.data(), p.content.size()) !=
                      static_cast<ssize_t>(p.content.size())) {
          const int err = errno ? errno : EIO;
          ::unlinkat(dir, name, 0);
          errno = err;
          return false;
        }
      }
      ::fsetxattr(h.fd.get(), kPlaceholderMark, "1", 1, 0);  // best effort (no xattrs)
      return true;
    }
    // A sandbox that was ending may have removed it between open and flock: then again.
    struct stat held, now;
    if (::fstat(h.fd.get(), &held) == 0 && ::fstatat(dir, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
        held.st_dev == now.st_dev && held.st_ino == now.st_ino)
      return true;
    create = true;
  }
  errno = EBUSY;
  return false;
}

}  // namespace

Result<void> Placeholders::create(Plan& plan) {
  const auto deadline = std::chrono::steady_clock::now() + kLockPatience;
  std::string parent_path;
  std::shared_ptr<const UniqueFd> parent;
  for (const Placeholder& p : plan.placeholders) {
    const auto slash = p.path.rfind('/');
    const std::string dir = slash == 0 ? "/" : p.path.substr(0, slash);
    if (!parent || dir != parent_path) {
      parent_path = dir;
      parent =
          std::make_shared<const UniqueFd>(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    Held h{p, parent, p.path.substr(slash + 1), {}, false, false};
    if (*parent && hold_placeholder(h, deadline)) {
      held_.push_back(std::move(h));
      continue;
    }
    if (errno == EWOULDBLOCK)
      return fail(p.path + " has been locked by another process for " +
                  std::to_string(kLockPatience.count()) +
                  " s (ward holds one only while removing it); not starting a sandbox that could "
                  "not keep it read-only");
    if (p.present) continue;  // still protected by its own mount, just not held
    log::warn("{}: cannot reserve it ({}); the sandbox could create it", p.path,
              std::strerror(errno));
    std::erase_if(plan.mounts, [&](const MountOp& op) { return op.target == p.path; });
  }
  return {};
}

std::vector<std::string> Placeholders::wards() const {
  std::vector<std::string> paths;
  char mark;
  for (const Held& h : held_)
    if (h.made || ::fgetxattr(h.fd.get(), kPlaceholderMark, &mark, 1) == 1)
      paths.push_back(h.placeholder.path);
  return paths;
}

Placeholders::~Placeholders() {
  for (Held& h : held_) {
    // Another sandbox still holding it (no exclusive lock) removes it when it ends. Only
    // EWOULDBLOCK says so: on a filesystem that refuses this lock otherwise (NFS wants a file
    // open for writing), its maker removes it, as without flock(2).
    bool mine = h.made;
    if (h.locked) {
      int rc;
      do rc = ::flock(h.fd.get(), LOCK_EX | LOCK_NB);
      while (rc != 0 && errno == EINTR);
      char mark;
      if (rc == 0)
        mine = h.made || ::fgetxattr(h.fd.get(), kPlaceholderMark, &mark, 1) == 1;
      else if (errno == EWOULDBLOCK)
        mine = false;
    }
    if (!mine) continue;
    struct stat held, now;
    if (::fstat(h.fd.get(), &held) != 0 ||
        ::fstatat(h.parent->get(), h.name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
        held.st_dev != now.st_dev || held.st_ino != now.st_ino)
      continue;
    if (h.placeholder.is_directory) {
      ::unlinkat(h.parent->get(), h.name.c_str(), AT_REMOVEDIR);  // fails if not empty
      continue;
    }
    // Only while it holds what ward put there: what someone wrote into it meanwhile stays.
    const std::string& content = h.placeholder.content;
    if (held.st_size != static_cast<off_t>(content.size())) continue;
    std::string holds(content.size(), '\0');
    if (!content.empty() &&
        ::pread(h.fd.get(), holds.data(), holds.size(), 0) != static_cast<ssize_t>(holds.size()))
      continue;
    if (holds == content) ::unlinkat(h.parent->get(), h.name.c_str(), 0);
  }
}

InitStack::InitStack()
    : base_(::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                   -1, 0)) {}
InitStack::~InitStack() {
  if (base_ != MAP_FAILED) ::munmap(base_, kSize);
}
InitStack::operator bool() const {
  return base_ != MAP_FAILED;
}

Result<std::unique_ptr<Launch>> Launch::prepare(const RunOptions& options, bool persistent) {
  const policy::Policy& policy = *options.policy;
  if (options.argv.empty() && !persistent) return fail("no command given");
  // A directory as stdin, stdout or stderr (`ward run -- cmd < DIR`) would let the workload list
  // a directory the policy may hide (getdents on the fd): refused, said.
  if (!persistent) {
    for (int fd = 0; fd <= 2; ++fd) {
      struct stat st;
      if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        return fail(std::string(fd == 0   ? "stdin"
                                : fd == 1 ? "stdout"
                                          : "stderr") +
                    " is a directory, which the sandbox could list: redirect a file instead");
    }
  }
  auto launch = std::make_unique<Launch>();
  Launch& l = *launch;
  l.options = &options;

  auto plan =
      make_plan(policy, options.workdir, options.trust_layer, options.hidden, options.guarded);
  if (!plan) return tl::unexpected(plan.error());
  l.plan = std::move(*plan);
  for (const auto& path : l.plan.skipped)
    log::info("skipping {}: it does not exist on this host (landlock: best_effort)", path);

  auto id = resolve_identity(policy.process);
  if (!id) return tl::unexpected(id.error());
  l.id = std::move(*id);
  if (auto held = l.placeholders.create(l.plan); !held) return tl::unexpected(held.error());

  // As root the workload is an unprivileged uid: its writable paths are idmapped so that their
  // owner's files are its own (and what it creates lands as the owner's).
  IdmapFactory idmap(l.id.uid, l.id.gid);
  if (!l.id.rootless) {
    for (MountOp& op : l.plan.mounts) {
      if (op.kind != MountOp::Kind::kBind || op.read_only) continue;
      struct stat st;
      if (::stat(op.source.c_str(), &st) != 0 || (st.st_uid == l.id.uid && st.st_gid == l.id.gid))
        continue;
      auto tree = idmap.clone_tree(op.source, st.st_uid, st.st_gid);
      if (!tree) {
        log::warn("{}: {}; the workload (uid {}) may be unable to write there", op.target,
                  tree.error().describe(), l.id.uid);
        continue;
      }
      op.tree_fd = tree->get();
      l.trees.push_back(std::move(*tree));
    }
  }

  const int abi = landlock::abi_version();
  if (abi == 0) {
    if (policy.landlock == policy::Compatibility::kHardRequirement)
      return fail("this kernel has no Landlock and the policy says landlock: hard_requirement");
    log::warn("this kernel has no Landlock: running with mount isolation only (best_effort)");
  }
  // A long-lived sandbox's commands get their own stdio from exec requests, never ward's.
  if (abi > 0 && !persistent) add_std_fd_rules(l.plan.landlock, l.std_fd_paths, abi);

  // HOME: the caller's home when the policy exposes it, else the workdir.
  std::string home = options.workdir;
  if (const char* h = ::getenv("HOME")) {
    for (const auto& op : l.plan.mounts)
      if (op.kind == MountOp::Kind::kBind && path_within(h, op.target)) home = h;
  }
  std::vector<std::string> host_env;
  for (char** e = environ; e && *e; ++e) host_env.emplace_back(*e);
  EnvContext env_context{home, l.id.user_name, l.plan.workdir, options.egress_port};
  if (!options.trust_layer.empty()) env_context.ca_bundle = "/etc/ward/tls/ca-bundle.pem";
  env_context.secrets = options.secret_env;
  env_context.inference = options.inference;
  l.env = build_environment(policy.environment, host_env, env_context);
  l.argv = options.argv;
  const std::string path_var = env_value(l.env, "PATH");
  for (auto dir : split(path_var, ':'))
    if (!dir.empty()) l.search.emplace_back(dir);
  l.argv_c = c_strings(l.argv);
  l.env_c = c_strings(l.env);
  l.search_c = c_strings(l.search);

  // A memory limit caps the writable tmpfs mounts too (the private /tmp, /dev/shm): their pages
  // are no process's memory, so RLIMIT_AS never counts them, and each would otherwise hold up to
  // half the host's RAM. Each gets half the limit, so that together they hold at most the limit
  // without a cgroup, and where a memory cgroup charges them one full tmpfs still leaves the
  // processes room (a long-lived sandbox whose cgroup a forgotten file filled would OOM-kill
  // every later command, `rm` included). The kernel rounds the size up to whole pages.
  if (policy.resources.memory_bytes) {
    const std::string size = ",size=" + std::to_string(*policy.resources.memory_bytes / 2);
    for (MountOp& op : l.plan.mounts)
      if (op.kind == MountOp::Kind::kTmpfs && !op.read_only)
        op.tmpfs_options = l.tmpfs_options.emplace_back(op.tmpfs_options + size).c_str();
    l.spec.shm_options = l.tmpfs_options.emplace_back(l.spec.shm_options + size).c_str();
  }

  const std::string cgroup_name =
      options.cgroup_name.empty() ? "ward-" + std::to_string(::getpid()) : options.cgroup_name;
  auto cgroups = Cgroups::create(policy.resources, cgroup_name);
  if (!cgroups) return tl::unexpected(cgroups.error());
  l.cgroups.emplace(std::move(*cgroups));

  ChildSpec& spec = l.spec;
  spec.persistent = persistent;
  spec.mounts = l.plan.mounts.data();
  spec.mount_count = l.plan.mounts.size();
  spec.landlock_abi = abi;
  spec.landlock_rules = l.plan.landlock.data();
  spec.landlock_rule_count = l.plan.landlock.size();
  auto program = seccomp::embedded();
  spec.seccomp = program.data();
  spec.seccomp_len = static_cast<unsigned short>(program.size());
  spec.argv = persistent ? nullptr : l.argv_c.data();
  spec.envp = l.env_c.data();
  spec.search_path = l.search_c.data();
  spec.workdir = l.plan.workdir.c_str();
  spec.set_groups = !l.id.rootless;
  spec.new_process_group = persistent || !::isatty(STDIN_FILENO);
  spec.new_session = !persistent && !::isatty(STDIN_FILENO) && !::isatty(STDOUT_FILENO) &&
                     !::isatty(STDERR_FILENO);
  spec.uid = l.id.uid;
  spec.gid = l.id.gid;
  spec.rlimits[spec.rlimit_count++] = {RLIMIT_CORE, 0};
  const auto& res = policy.resources;
  if (res.memory_bytes && !l.cgroups->memory_in_cgroup)
    spec.rlimits[spec.rlimit_count++] = {RLIMIT_AS, *res.memory_bytes};
  if (res.pids && !l.cgroups->pids_in_cgroup)
    spec.rlimits[spec.rlimit_count++] = {RLIMIT_NPROC, *res.pids};
  if (res.cpus && !l.cgroups->cpu_in_cgroup)
    log::warn("no writable cgroup cpu controller: the cpu limit is not enforced");
  if (res.timeout) spec.timeout_ms = res.timeout->count();
  spec.grace_ms = options.grace.count();
  std::vector<int> cgroup_fds = l.cgroups->parent_fds();
  for (int fd : cgroup_fds) spec.cgroup_parent_fds[spec.cgroup_count++] = fd;
  std::vector<int> procs_fds = l.cgroups->procs_fds();
  for (std::size_t i = 0; i < procs_fds.size(); ++i) spec.cgroup_procs_fds[i] = procs_fds[i];
  spec.cgroup_name = l.cgroups->name().c_str();
  spec.title_start = g_title_start;
  spec.title_end = g_title_end;
  spec.egress_port = options.egress_port;
  spec.workload_cgroup_ns = l.cgroups->mode() != Cgroups::Mode::kNone;

  if (options.verbose) {
    log::debug("identity: {} uid {} gid {} inside, uid {} on the host",
               l.id.rootless ? "rootless" : "root", l.id.uid, l.id.gid, l.id.host_uid);
    log::debug("landlock: {}", abi ? "ABI " + std::to_string(abi) : std::string("unavailable"));
    log::debug("seccomp: {} BPF instructions", program.size());
    log::debug("limits: {}", l.cgroups->description.empty() ? std::string("rlimits only")
                                                            : l.cgroups->description);
    for (const auto& op : l.plan.mounts)
      log::debug("mount {} {} ({})", op.target,
                 op.kind == MountOp::Kind::kSymlink   ? "-> " + op.source
                 : op.kind == MountOp::Kind::kOverlay ? "+ " + op.source
                                                      : std::string(),
                 op.kind == MountOp::Kind::kTmpfs     ? "tmpfs"
                 : op.kind == MountOp::Kind::kOverlay ? "read-only overlay"
                 : op.read_only                       ? "ro"
                                                      : "rw");
  }
  return launch;
}

Result<void> Launch::start() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return fail_errno("socketpair");
  sock.reset(pair[0]);
  UniqueFd child_sock(pair[1]);
  spec.sock = child_sock.get();
  spec.parent_sock = sock.get();

  // Signals are blocked before clone so that none is lost in between; both sides read them
  // through a signalfd.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int sig : kForwardedSignals) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, &old_mask);
  mask_saved = true;
  sigfd.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sigfd) {
    int err = errno;
    abort();
    return fail("signalfd", err);
  }

  const unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                              CLONE_NEWUTS | CLONE_NEWIPC |
                              (spec.workload_cgroup_ns ? 0 : CLONE_NEWCGROUP) | SIGCHLD;
  // CLONE_VM: the init runs in ward's own memory, on a stack of its own. Nothing is copied, no
  // copy-on-write fault hits either side afterwards, and there is no second address space to
  // tear down when the sandbox ends (measured: ~4 ms of a ~16 ms start here). The init's code is
  // written for it: raw syscalls only (sys.h), no allocation, only `spec` and its own stack.
  if (!stack) {
    int err = errno;
    abort();
    return fail("mmap (the init's stack)", err);
  }
  long pid = ::clone(init_entry, stack.top(), static_cast<int>(flags | CLONE_VM), &spec);
  if (pid < 0) {
    int err = errno;
    abort();
    if (err == EPERM || err == ENOSPC || err == EUSERS)
      return fail(
          "cannot create the sandbox's namespaces (are unprivileged user namespaces "
          "enabled? see `ward doctor`)",
          err);
    return fail("clone", err);
  }
  init = static_cast<pid_t>(pid);
  cloned = std::chrono::steady_clock::now();
  child_sock.reset();
  std_fd_paths.clear();
  trees.clear();

  auto failed = [&](Error e) -> Result<void> {
    abort();
    return tl::unexpected(std::move(e));
  };
  // Sync 2: id maps, go. (The init joins no cgroup: child.h.)
  if (id.rootless) {
    if (auto r = write_proc(init, "setgroups", "deny"); !r) return failed(r.error());
  }
  if (auto r = write_proc(init, "uid_map", id.uid_map); !r) return failed(r.error());
  if (auto r = write_proc(init, "gid_map", id.gid_map); !r) return failed(r.error());
  Message go;
  go.type = Message::kGo;
  if (::send(sock.get(), &go, sizeof go, MSG_NOSIGNAL) != sizeof go)
    return failed(Error{"cannot reach the sandbox init", errno});
  return {};
}

void Launch::abort() {
  if (init > 0) {
    ::kill(init, SIGKILL);
    ::waitpid(init, nullptr, 0);
    init = 0;
  }
  if (mask_saved) {
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    mask_saved = false;
  }
}

Launch::~Launch() {
  // The init runs on memory this object owns: it must be gone first.
  abort();
}

Result<Outcome> run(const RunOptions& options) {
  const policy::Policy& policy = *options.policy;
  auto prepared = Launch::prepare(options, false);
  if (!prepared) return tl::unexpected(prepared.error());
  Launch& l = **prepared;
  const long prepare_us = micros_since(g_main_started);
  struct rusage before_clone;
  ::getrusage(RUSAGE_SELF, &before_clone);
  if (auto started = l.start(); !started) return tl::unexpected(started.error());
  const pid_t init = l.init;
  const std::int64_t clone_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(l.cloned.time_since_epoch()).count();
  long setup_us = 0;
  UniqueFd& sock = l.sock;
  UniqueFd& sigfd = l.sigfd;
  auto& cgroups = l.cgroups;

  // Sync 3 .. 5: wait for the init's reports while forwarding signals.
  const bool shares_group = !l.spec.new_process_group && !l.spec.new_session;
  const bool had_terminal = has_terminal();
  Outcome outcome;
  bool exit_reported = false, ready = false;
  int init_status = 0;
  Message report;
  // The socket is read until the init closes it (it exits, or it has nothing more to say); from
  // then on only SIGCHLD matters. A closed socket stays readable: polling it again would spin
  // while the kernel tears the init's namespaces down.
  bool sock_open = true;
  // The egress listener waits here until a connection is queued on it, then goes to on_egress.
  EgressEndpoint egress;
  for (bool init_alive = true; init_alive;) {
    struct pollfd fds[3] = {{sigfd.get(), POLLIN, 0},
                            {sock_open ? sock.get() : -1, POLLIN, 0},
                            {egress.listener ? egress.listener.get() : -1, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) {
      // Cannot happen with valid fds; the init runs on memory this function owns, so it must be
      // gone before we return.
      ::kill(init, SIGKILL);
      ::waitpid(init, &init_status, 0);
      l.init = 0;
      break;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      Message m;
      std::vector<UniqueFd> fds;
      ssize_t got = receive_message(sock.get(), m, &fds);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) sock_open = false;
      if (got == sizeof m) {
        if (m.type == Message::kReady) {
          ready = true;
          if (fds.size() == 2 && options.on_egress)
            egress = EgressEndpoint{std::move(fds[0]), std::move(fds[1]), init};
          setup_us = micros_since(l.cloned);
          if (options.verbose) {
            std::string steps, costs;
            std::int64_t prev = clone_ns;
            for (int i = 0; i < m.trace.count; ++i) {
              steps += (i ? " > " : "") + std::string(step_name(m.trace.steps[i]));
              costs += fmt::format("{}{} {} us", i ? ", " : "", step_name(m.trace.steps[i]),
                                   (m.trace.done_ns[i] - prev) / 1000);
              prev = m.trace.done_ns[i];
            }
            log::debug("setup steps: {}", steps);
            log::debug("setup step costs (from clone): {}", costs);
          }
        }
        if (m.type == Message::kSetupError || m.type == Message::kExit) {
          report = m;
          exit_reported = true;
        }
      }
    }
    if (fds[2].revents & POLLIN) options.on_egress(std::move(egress));
    struct signalfd_siginfo si;
    while (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
      int sig = static_cast<int>(si.ssi_signo);
      if (sig == SIGCHLD) {
        if (::waitpid(init, &init_status, WNOHANG) == init) {
          init_alive = false;
          l.init = 0;
        }
        continue;
      }
      // Forward what a process sent us (kill(1), a supervisor). A terminal's key (SI_KERNEL:
      // Ctrl-C, Ctrl-\) reaches our whole process group, the init included, which passes it on
      // to a workload in a group of its own: not forwarded twice. A hang-up goes to the session
      // leader alone: when that is ward, nobody else has it.
      const bool from_terminal = si.ssi_code > 0;
      if (from_terminal && (shares_group || sig != SIGHUP)) continue;
      // SIGHUP from a process asks for a reload, unless the terminal it would come from is gone:
      // then it is the hang-up a shell passes on to its jobs, and the workload must hear it.
      if (sig == SIGHUP && options.on_sighup && !from_terminal &&
          !(had_terminal && !has_terminal())) {
        options.on_sighup();
        continue;
      }
      ::kill(init, sig);
    }
  }
  // The kExit message may still be queued when SIGCHLD arrives first.
  if (!exit_reported) {
    Message m;
    while (::recv(sock.get(), &m, sizeof m, MSG_DONTWAIT) == sizeof m)
      if (m.type == Message::kSetupError || m.type == Message::kExit) {
        report = m;
        exit_reported = true;
      }
  }
  l.abort();  // the init is gone: this restores the signal mask
  const bool oom = cgroups->oom_killed();
  cgroups->remove();
  if (options.verbose) {
    struct rusage children;
    ::getrusage(RUSAGE_CHILDREN, &children);
    auto cpu_us = [](const struct timeval& t) { return t.tv_sec * 1000000L + t.tv_usec; };
    log::debug(
        "timing: {} us from ward's start to clone, {} us from clone to the workload's "
        "execve, {} us in all; CPU before clone {} us user + {} us system, sandbox "
        "processes {} us user + {} us system",
        prepare_us, setup_us, micros_since(g_main_started), cpu_us(before_clone.ru_utime),
        cpu_us(before_clone.ru_stime), cpu_us(children.ru_utime), cpu_us(children.ru_stime));
  }

  if (!exit_reported) {
    outcome.kind = Outcome::Kind::kSetupFailed;
    outcome.exit_code = kExitSetupFailed;
    outcome.message = ready ? "the sandbox init died unexpectedly"
                            : "the sandbox init died before reporting (status " +
                                  std::to_string(init_status) + ")";
    return outcome;
  }
  if (report.type == Message::kSetupError) {
    const ChildError& e = report.error;
    outcome.kind = Outcome::Kind::kSetupFailed;
    if (e.step == Step::kExec) {
      std::tie(outcome.exit_code, outcome.message) = exec_failure(e);
    } else {
      outcome.exit_code = kExitSetupFailed;
      outcome.message = "cannot start the sandbox: " + describe_error(e);
    }
    return outcome;
  }
  const int status = report.value;
  if (WIFSIGNALED(status)) {
    outcome.kind = Outcome::Kind::kSignaled;
    outcome.signal = WTERMSIG(status);
    outcome.exit_code = 128 + outcome.signal;
  } else {
    outcome.exit_code = WEXITSTATUS(status);
  }
  if (oom) {
    outcome.kind = Outcome::Kind::kOutOfMemory;
    outcome.message = "the workload ran out of memory (limit " +
                      format_bytes(*policy.resources.memory_bytes) + ") and was killed";
  } else if (report.ended == 1) {
    outcome.kind = Outcome::Kind::kTimedOut;
    outcome.exit_code = kExitTimeout;
    outcome.message = "the sandbox was stopped: it reached its " +
                      std::to_string(policy.resources.timeout->count()) + " ms time limit";
  }
  return outcome;
}

}  // namespace ward::sandbox
