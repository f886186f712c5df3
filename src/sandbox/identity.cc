#include "sandbox/identity.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <optional>

namespace ward::sandbox {
namespace {

// /etc/passwd and /etc/group read directly (fgetpwent/fgetgrent): ward is linked statically and
// glibc's NSS modules cannot be loaded into a static binary. Users that exist only in LDAP or
// similar must be given as numeric ids.
template <class Match>
bool find_user(Match match, struct passwd* out, std::string* name) {
  std::FILE* f = std::fopen("/etc/passwd", "re");
  if (!f) return false;
  bool found = false;
  while (struct passwd* pw = ::fgetpwent(f)) {
    if (match(*pw)) {
      *out = *pw;
      *name = pw->pw_name;
      found = true;
      break;
    }
  }
  std::fclose(f);
  return found;
}

template <class Match>
bool find_group(Match match, gid_t* gid) {
  std::FILE* f = std::fopen("/etc/group", "re");
  if (!f) return false;
  bool found = false;
  while (struct group* gr = ::fgetgrent(f)) {
    if (match(*gr)) {
      *gid = gr->gr_gid;
      found = true;
      break;
    }
  }
  std::fclose(f);
  return found;
}

std::optional<unsigned long> numeric(const std::string& s) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<uid_t> lookup_user(const std::string& name, gid_t* primary_gid, std::string* user_name) {
  struct passwd pw;
  if (auto id = numeric(name)) {
    auto uid = static_cast<uid_t>(*id);
    if (find_user([uid](const passwd& p) { return p.pw_uid == uid; }, &pw, user_name))
      *primary_gid = pw.pw_gid;
    return uid;
  }
  if (!find_user([&](const passwd& p) { return name == p.pw_name; }, &pw, user_name))
    return fail("process.run_as_user: no user named '" + name + "' in /etc/passwd");
  *primary_gid = pw.pw_gid;
  return pw.pw_uid;
}

Result<gid_t> lookup_group(const std::string& name) {
  if (auto id = numeric(name)) return static_cast<gid_t>(*id);
  gid_t gid;
  if (!find_group([&](const group& g) { return name == g.gr_name; }, &gid))
    return fail("process.run_as_group: no group named '" + name + "' in /etc/group");
  return gid;
}

std::string name_of(uid_t uid) {
  struct passwd pw;
  std::string name;
  if (find_user([uid](const passwd& p) { return p.pw_uid == uid; }, &pw, &name)) return name;
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
