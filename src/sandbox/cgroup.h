// Resource limits for a whole sandbox: cgroup v2 where a writable delegated hierarchy exists, else
// writable cgroup v1 controllers, else per-process rlimits (weaker: documented in the README).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "policy/policy.h"

namespace ward::sandbox {

struct CgroupProbe {
  // v2: the directory of ward's own cgroup, when it is writable and can delegate the controllers.
  std::string v2_dir;
  std::vector<std::string> v2_controllers;  // usable there (memory, pids, cpu)
  // v1: per controller, the directory of ward's own cgroup when writable ("" when not).
  std::string v1_memory, v1_pids, v1_cpu;
  std::string why_not_v2;  // a sentence for `ward doctor` when v2 is unusable
};
CgroupProbe probe_cgroups();

class Cgroups {
 public:
  enum class Mode { kNone, kV2, kV1 };

  // Creates the sandbox's cgroup(s) for the limits in `resources` and writes them. A limit no
  // cgroup can carry leaves its *_in_cgroup flag false: the caller falls back to an rlimit.
  static Result<Cgroups> create(const policy::Resources& resources, const std::string& name);

  Cgroups() = default;
  Cgroups(Cgroups&&) = default;
  Cgroups& operator=(Cgroups&&) = default;
  ~Cgroups() { remove(); }

  Mode mode() const { return mode_; }
  const std::string& name() const { return name_; }
  std::vector<int> parent_fds() const;
  // The cgroup.procs of each of the sandbox's cgroups, opened for writing by ward, for the
  // workload to join them itself (child.h). The kernel checks such a write against the rights of
  // whoever opened the file (Linux 5.16+), so it works whatever the writer may do by then.
  std::vector<int> procs_fds() const;
  bool oom_killed() const;
  void remove();  // idempotent; the sandbox's processes must be gone

  bool memory_in_cgroup = false, pids_in_cgroup = false, cpu_in_cgroup = false;
  std::string description;  // "cgroup v1 (memory, pids)" etc., for -v and doctor

 private:
  struct Dir {
    std::string path;  // the sandbox's cgroup directory
    UniqueFd parent;   // its parent, for the init's cleanup
    UniqueFd procs;    // its cgroup.procs (see procs_fds)
  };
  Mode mode_ = Mode::kNone;
  std::string name_;
  std::vector<Dir> dirs_;
  std::string memory_dir_;
};

}  // namespace ward::sandbox
