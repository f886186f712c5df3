// Who the workload is, inside and outside the sandbox, and the user namespace maps that say so.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "policy/policy.h"

namespace ward::sandbox {

struct Identity {
  bool rootless = true;  // ward runs as an ordinary user: one uid and one gid can be mapped
  uid_t uid = 0;         // the workload's uid inside the sandbox
  gid_t gid = 0;         // the workload's gid inside the sandbox
  uid_t host_uid = 0;    // ... and what it is on the host
  gid_t host_gid = 0;
  std::string user_name;  // for USER / LOGNAME
  std::string uid_map;    // written to /proc/PID/uid_map by the parent
  std::string gid_map;
};

// The unprivileged id a workload gets when ward runs as root and the policy names nobody.
inline constexpr uid_t kDefaultUnprivilegedId = 65534;

// Rootless: the workload is the caller, seen inside as run_as_user's id when the policy names one
// (the host cannot grant a second uid without a setuid helper). As root: the workload runs as
// run_as_user / run_as_group, or as 65534, and never as root.
Result<Identity> resolve_identity(const policy::ProcessPolicy& process);

}  // namespace ward::sandbox
