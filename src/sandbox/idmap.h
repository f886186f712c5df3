// Idmapped mounts for a workload that runs as a different uid than the owner of its writable
// paths (ward as root: the workload is an unprivileged uid, the workdir belongs to root or to a
// user). The tree is cloned and idmapped in the parent (it needs CAP_SYS_ADMIN in the initial
// user namespace), handed to the init as a file descriptor and attached with move_mount(2).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace ward::sandbox {

class IdmapFactory {
 public:
  // The workload's ids, as the files should appear to it.
  IdmapFactory(uid_t uid, gid_t gid) : uid_(uid), gid_(gid) {}
  ~IdmapFactory();  // reaps the namespace holders (killed as soon as their namespace was taken)
  IdmapFactory(const IdmapFactory&) = delete;
  IdmapFactory& operator=(const IdmapFactory&) = delete;

  // A detached, recursive clone of `path` in which files owned by (owner, group) appear as the
  // workload's, and files it creates land as (owner, group) on disk.
  Result<UniqueFd> clone_tree(const std::string& path, uid_t owner, gid_t group);

 private:
  Result<int> userns_for(uid_t owner, gid_t group);

  uid_t uid_;
  gid_t gid_;
  std::map<std::pair<uid_t, gid_t>, UniqueFd> userns_;  // one per distinct owner
  std::vector<pid_t> holders_;
  static constexpr size_t kHolderStack = 16 * 1024;
  std::vector<std::unique_ptr<char[]>> holder_stacks_;  // freed after the holders are reaped
};

}  // namespace ward::sandbox
