#include "sandbox/idmap.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace ward::sandbox {
namespace {

// The user namespace's only member: waits until the parent has taken a reference to the
// namespace, then is killed.
int hold(void*) {
  for (;;) ::pause();
}

Result<> write_file(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return fail_errno("write " + path);
  return {};
}

}  // namespace

Result<int> IdmapFactory::userns_for(uid_t owner, gid_t group) {
  auto key = std::make_pair(owner, group);
  if (auto it = userns_.find(key); it != userns_.end()) return it->second.get();

  // CLONE_VM: no page-table copy; the holder only ever runs pause(), on a stack of its own
  // (holders are killed asynchronously, so two may be alive at once).
  holder_stacks_.emplace_back(new char[kHolderStack]);
  pid_t pid = ::clone(hold, holder_stacks_.back().get() + kHolderStack,
                      CLONE_NEWUSER | CLONE_VM | SIGCHLD, nullptr);
  if (pid < 0) return fail_errno("clone(CLONE_NEWUSER) for an idmapped mount");
  std::string proc = "/proc/" + std::to_string(pid);
  auto result = [&]() -> Result<int> {
    // An idmapped mount reads an on-disk id as an id inside this namespace and shows the caller
    // what it maps to outside: "owner -> workload".
    std::string uid_map = std::to_string(owner) + " " + std::to_string(uid_) + " 1\n";
    std::string gid_map = std::to_string(group) + " " + std::to_string(gid_) + " 1\n";
    if (auto r = write_file(proc + "/uid_map", uid_map); !r) return tl::unexpected(r.error());
    if (auto r = write_file(proc + "/gid_map", gid_map); !r) return tl::unexpected(r.error());
    UniqueFd ns(::open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) return fail_errno("open " + proc + "/ns/user");
    int fd = ns.get();
    userns_.emplace(key, std::move(ns));
    return fd;
  }();
  // Not waited for here: its exit (and the namespace's teardown) overlaps the sandbox's start.
  ::kill(pid, SIGKILL);
  holders_.push_back(pid);
  return result;
}

IdmapFactory::~IdmapFactory() {
  for (pid_t pid : holders_) ::waitpid(pid, nullptr, 0);
}

Result<UniqueFd> IdmapFactory::clone_tree(const std::string& path, uid_t owner, gid_t group) {
  auto ns = userns_for(owner, group);
  if (!ns) return tl::unexpected(ns.error());
  UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path.c_str(),
                                           OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree) return fail_errno("open_tree " + path);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = static_cast<std::uint64_t>(*ns);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                sizeof attr) != 0)
    return fail_errno("idmapping " + path);
  return tree;
}

}  // namespace ward::sandbox
