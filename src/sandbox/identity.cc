#include "sandbox/identity.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <optional>

namespace ward::sandbox {
namespace {

std::optional<unsigned long> numeric(const std::string& s) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<uid_t> lookup_user(const std::string& name, gid_t* primary_gid, std::string* user_name) {
  if (auto id = numeric(name)) {
    if (struct passwd* pw = ::getpwuid(static_cast<uid_t>(*id))) {
      *primary_gid = pw->pw_gid;
      *user_name = pw->pw_name;
    }
    return static_cast<uid_t>(*id);
  }
  struct passwd* pw = ::getpwnam(name.c_str());
  if (!pw) return fail("process.run_as_user: no user named '" + name + "' on this host");
  *primary_gid = pw->pw_gid;
  *user_name = pw->pw_name;
  return pw->pw_uid;
}

Result<gid_t> lookup_group(const std::string& name) {
  if (auto id = numeric(name)) return static_cast<gid_t>(*id);
  struct group* gr = ::getgrnam(name.c_str());
  if (!gr) return fail("process.run_as_group: no group named '" + name + "' on this host");
  return gr->gr_gid;
}

std::string name_of(uid_t uid) {
  if (struct passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return "sandbox";
}

}  // namespace

Result<Identity> resolve_identity(const policy::ProcessPolicy& process) {
  Identity id;
  id.host_uid = ::geteuid();
  id.host_gid = ::getegid();
  id.rootless = id.host_uid != 0;

  std::optional<uid_t> uid;
  gid_t primary_gid = kDefaultUnprivilegedId;
  std::string user_name;
  if (process.run_as_user) {
    auto u = lookup_user(*process.run_as_user, &primary_gid, &user_name);
    if (!u) return tl::unexpected(u.error());
    if (*u == 0)
      return fail("process.run_as_user resolves to uid 0: the workload never runs as root");
    uid = *u;
  }
  std::optional<gid_t> gid;
  if (process.run_as_group) {
    auto g = lookup_group(*process.run_as_group);
    if (!g) return tl::unexpected(g.error());
    if (*g == 0)
      return fail("process.run_as_group resolves to gid 0: the workload never runs as root");
    gid = *g;
  } else if (uid) {
    gid = primary_gid;
  }

  if (id.rootless) {
    // One mapping each: the inside id (the caller's own, or the policy's) is the caller outside.
    id.uid = uid.value_or(id.host_uid);
    id.gid = gid.value_or(id.host_gid);
    id.uid_map = std::to_string(id.uid) + " " + std::to_string(id.host_uid) + " 1\n";
    id.gid_map = std::to_string(id.gid) + " " + std::to_string(id.host_gid) + " 1\n";
  } else {
    // Root maps itself (so that the init can build the root) and the unprivileged workload id.
    id.uid = id.host_uid = uid.value_or(kDefaultUnprivilegedId);
    id.gid = id.host_gid = gid.value_or(kDefaultUnprivilegedId);
    if (id.gid == 0) id.gid = id.host_gid = kDefaultUnprivilegedId;
    id.uid_map = "0 0 1\n" + std::to_string(id.uid) + " " + std::to_string(id.uid) + " 1\n";
    id.gid_map = "0 0 1\n" + std::to_string(id.gid) + " " + std::to_string(id.gid) + " 1\n";
  }
  id.user_name = user_name.empty() ? name_of(id.rootless ? id.host_uid : id.uid) : user_name;
  return id;
}

}  // namespace ward::sandbox
