// The static sections: filesystem_policy, landlock, process, and ward's resources and environment.
#include <fmt/core.h>

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "base/strings.h"
#include "policy/reader.h"
#include "policy/values.h"

namespace ward::policy::detail {
namespace {

constexpr std::size_t kMaxPathLength = 4096;  // PATH_MAX
constexpr std::size_t kMaxPaths = 256;        // read_only + read_write together

// One filesystem path, checked and normalised; nullopt (reported) when refused.
std::optional<std::string> read_fs_path(Sink& sink, const Field& f, bool writable) {
  std::optional<std::string> raw = read_string(sink, f, "an absolute path");
  if (!raw) return std::nullopt;
  const std::string& p = *raw;
  if (p.empty()) {
    sink.error(f, "empty path");
    return std::nullopt;
  }
  if (p.find('\0') != std::string::npos) {
    sink.error(f, fmt::format("path {} contains a NUL byte", quote(p)));
    return std::nullopt;
  }
  if (p.size() > kMaxPathLength) {
    sink.error(
        f, fmt::format("path is {} characters long; the limit is {}", p.size(), kMaxPathLength));
    return std::nullopt;
  }
  if (p[0] != '/') {
    sink.error(f,
               fmt::format("relative path {}: filesystem paths must be absolute (start with '/')",
                           quote(p)));
    return std::nullopt;
  }
  std::optional<std::string> norm = normalize_absolute_path(p);
  if (!norm) {
    // normalize_absolute_path refuses only relative paths (handled above) and `..`. A `..` is
    // never resolved lexically: /a/b/.. is not /a when b is a symlink.
    sink.error(f, fmt::format("path {} has a '..' component; write the path without it", quote(p)));
    return std::nullopt;
  }
  if (*norm == "/") {
    sink.error(f, writable ? "read_write: / would make the whole host writable; list the "
                             "directories the workload needs"
                           : "read_only: / cannot be bound: the sandbox's root is ward's to build "
                             "(its own /proc, /dev and /tmp); list the directories the workload "
                             "needs");
    return std::nullopt;
  }
  return norm;
}

struct PathEntry {
  std::string path;
  Field field;
};

std::vector<PathEntry> read_path_list(Sink& sink, const Entry* e, bool writable,
                                      std::size_t& count) {
  std::vector<PathEntry> out;
  std::unordered_map<std::string, std::string> seen;  // path -> key path of its first entry
  if (!e) return out;
  std::optional<std::vector<Field>> items = read_list(sink, e->value, "a list of absolute paths");
  if (!items) return out;
  count += items->size();
  for (const Field& item : *items) {
    std::optional<std::string> p = read_fs_path(sink, item, writable);
    if (!p) continue;
    if (auto [it, inserted] = seen.emplace(*p, item.path); !inserted) {
      sink.warning(item, fmt::format("{} is listed twice (first at {})", quote(*p), it->second));
      continue;
    }
    out.push_back(PathEntry{*p, item});
  }
  return out;
}

// A user or group: a name, or a decimal id other than 0. `what` is "user" or "group".
std::optional<std::string> read_identity(Sink& sink, const Field& f, std::string_view what) {
  std::optional<std::string> s = read_string(sink, f, fmt::format("a {} name or numeric id", what));
  if (!s) return std::nullopt;
  const std::string& v = *s;
  if (!v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::optional<std::uint64_t> id = parse_decimal(v);
    if (id && *id == 0) {
      sink.error(f, fmt::format("{} id 0 is root: the workload must not run as root", what));
      return std::nullopt;
    }
    // 4294967295 is (uid_t)-1, which setresuid() reads as "leave unchanged".
    if (!id || *id > 4294967294ULL) {
      sink.error(f, fmt::format("{} id {} is out of range 1..4294967294", what, quote(v)));
      return std::nullopt;
    }
    return std::to_string(*id);
  }
  if (v == "root") {
    sink.error(f, fmt::format("{} 'root': the workload must not run as root", what));
    return std::nullopt;
  }
  // The POSIX portable user-name set ([A-Za-z0-9._-], not starting with '-'), plus the trailing
  // '$' of Samba machine accounts. Names are resolved at run time, not here.
  bool ok = !v.empty() && v.size() <= 32 && v[0] != '-';
  for (std::size_t i = 0; ok && i < v.size(); ++i) {
    char c = v[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || (c == '$' && i + 1 == v.size() && i > 0);
  }
  if (!ok) {
    sink.error(f,
               fmt::format("{} is not a valid {} name or id: use letters, digits, '.', '_' and '-' "
                           "(at most 32), or a number from 1 to 4294967294",
                           quote(v), what));
    return std::nullopt;
  }
  return v;
}

bool is_name_char(char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

bool is_env_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_name_char(s[i], i == 0)) return false;
  }
  return true;
}

// A name or a glob over names: name characters plus * ? and bracket expressions [A-Z] [!_].
std::optional<std::string> env_pattern_problem(std::string_view s) {
  if (s.empty()) return "empty variable name";
  bool in_bracket = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_bracket) {
      if (c == ']') {
        in_bracket = false;
      } else if (!is_name_char(c, false) && c != '-' && c != '!' && c != '^') {
        return fmt::format("{} is not allowed inside [...]", quote(std::string_view(&c, 1)));
      }
      continue;
    }
    if (c == '[') {
      in_bracket = true;
    } else if (c != '*' && c != '?' && !is_name_char(c, i == 0)) {
      return i == 0 && c >= '0' && c <= '9'
                 ? std::string("a variable name cannot start with a digit")
                 : fmt::format(
                       "{} is not allowed in a variable name (letters, digits, '_'; globs * ? [ ])",
                       quote(std::string_view(&c, 1)));
    }
  }
  if (in_bracket) return "'[' without a closing ']'";
  return std::nullopt;
}

}  // namespace

void read_filesystem(Sink& sink, const Field& f, FilesystemPolicy& out) {
  auto entries =
      read_map(sink, f, "filesystem_policy", {"include_workdir", "read_only", "read_write"});
  if (!entries) return;
  if (const Entry* e = find(*entries, "include_workdir")) {
    if (auto b = read_bool(sink, e->value)) out.include_workdir = *b;
  }
  std::size_t count = 0;
  std::vector<PathEntry> ro = read_path_list(sink, find(*entries, "read_only"), false, count);
  std::vector<PathEntry> rw = read_path_list(sink, find(*entries, "read_write"), true, count);
  if (count > kMaxPaths) {
    sink.error(f, fmt::format("{} paths in read_only and read_write together; the limit is {}",
                              count, kMaxPaths));
  }
  // read_write wins: the path was plainly meant to be visible, and the writable listing is the
  // more specific intent. A warning rather than an error so that files written for OpenShell load.
  std::unordered_map<std::string_view, const PathEntry*> writable;
  for (const PathEntry& w : rw) writable.emplace(w.path, &w);
  for (const PathEntry& r : ro) {
    auto in_rw = writable.find(r.path);
    if (in_rw != writable.end()) {
      sink.warning(r.field, fmt::format("{} is also in read_write ({}); read_write wins",
                                        quote(r.path), in_rw->second->field.path));
      continue;
    }
    out.read_only.push_back(r.path);
  }
  for (const PathEntry& w : rw) out.read_write.push_back(w.path);
}

void read_landlock(Sink& sink, const Field& f, Compatibility& out) {
  auto entries = read_map(sink, f, "landlock", {"compatibility"});
  if (!entries) return;
  if (const Entry* e = find(*entries, "compatibility")) {
    if (auto c = read_choice(sink, e->value, {"best_effort", "hard_requirement"})) {
      out = *c == "hard_requirement" ? Compatibility::kHardRequirement : Compatibility::kBestEffort;
    }
  }
}

void read_process(Sink& sink, const Field& f, ProcessPolicy& out) {
  auto entries = read_map(sink, f, "process", {"run_as_user", "run_as_group"});
  if (!entries) return;
  if (const Entry* e = find(*entries, "run_as_user"))
    out.run_as_user = read_identity(sink, e->value, "user");
  if (const Entry* e = find(*entries, "run_as_group"))
    out.run_as_group = read_identity(sink, e->value, "group");
}

void read_resources(Sink& sink, const Field& f, Resources& out) {
  auto entries = read_map(sink, f, "resources", {"memory", "pids", "cpus", "cpu", "timeout"});
  if (!entries) return;
  if (const Entry* e = find(*entries, "memory")) {
    if (auto s = read_string(sink, e->value, "a size such as 512M")) {
      Result<std::uint64_t> bytes = parse_size(*s);
      if (!bytes) {
        sink.error(e->value, bytes.error().message);
      } else if (*bytes < (1u << 20)) {
        sink.error(e->value,
                   fmt::format("memory {} is below the minimum of 1M (1048576 bytes)", quote(*s)));
      } else {
        out.memory_bytes = *bytes;
      }
    }
  }
  if (const Entry* e = find(*entries, "pids")) {
    if (auto n = read_uint(sink, e->value, 1, std::numeric_limits<std::uint64_t>::max()))
      out.pids = *n;
  }
  // `cpu` is accepted as another spelling of `cpus`: both appear in the wild (docker --cpus,
  // Kubernetes resources.cpu), and there is only one thing it can mean.
  const Entry* cpus = find(*entries, "cpus");
  const Entry* cpu = find(*entries, "cpu");
  if (cpus && cpu) {
    sink.error(cpu->value, "cpu and cpus are two spellings of one setting; give one");
  } else if (const Entry* e = cpus ? cpus : cpu) {
    if (auto s = read_string(sink, e->value, "a number of CPU cores")) {
      Result<double> c = parse_cpus(*s);
      if (c) {
        out.cpus = *c;
      } else {
        sink.error(e->value, c.error().message);
      }
    }
  }
  if (const Entry* e = find(*entries, "timeout")) {
    if (auto s = read_string(sink, e->value, "a duration such as 30s or 5m")) {
      Result<std::chrono::milliseconds> d = parse_duration(*s);
      if (!d) {
        sink.error(e->value, d.error().message);
      } else if (d->count() <= 0) {
        sink.error(e->value, "timeout must be greater than zero (leave it out for no timeout)");
      } else {
        out.timeout = *d;
      }
    }
  }
}

void read_environment(Sink& sink, const Field& f, Environment& out) {
  auto entries = read_map(sink, f, "environment", {"pass", "set"});
  if (!entries) return;
  if (const Entry* e = find(*entries, "pass")) {
    if (auto items = read_list(sink, e->value, "a list of variable names or globs")) {
      std::unordered_set<std::string> seen;
      for (const Field& item : *items) {
        std::optional<std::string> name = read_string(sink, item, "a variable name or glob");
        if (!name) continue;
        if (auto problem = env_pattern_problem(*name)) {
          sink.error(item, fmt::format("{}: {}", quote(*name), *problem));
          continue;
        }
        if (std::all_of(name->begin(), name->end(), [](char c) { return c == '*' || c == '?'; })) {
          sink.warning(
              item,
              fmt::format("{} matches every variable of ward's environment (secret-like names "
                          "still need an exact entry)",
                          quote(*name)));
        }
        if (seen.insert(*name).second) out.pass.push_back(*name);
      }
    }
  }
  if (const Entry* e = find(*entries, "set")) {
    // Keys free-form here; each is checked as a variable name below.
    auto vars = read_map(sink, e->value, "environment.set", {});
    if (!vars) return;
    for (const Entry& v : *vars) {
      Field key_field{v.value.node, v.value.path, v.key_at};
      if (!is_env_name(v.key)) {
        sink.error(key_field,
                   fmt::format("{} is not a variable name: letters, digits and '_', not starting "
                               "with a digit",
                               quote(v.key)));
        continue;
      }
      // Scalars as written: `PORT: 8080` sets "8080", `DEBUG: true` sets "true".
      std::optional<std::string> value =
          read_string(sink, v.value, "a value (write \"\" for an empty one)");
      if (!value) continue;
      if (value->find('\0') != std::string::npos) {
        sink.error(v.value, "the value contains a NUL byte, which an environment cannot hold");
        continue;
      }
      out.set.emplace_back(v.key, *value);
    }
  }
}

}  // namespace ward::policy::detail
