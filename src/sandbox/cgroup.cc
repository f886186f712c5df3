#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "base/strings.h"

namespace ward::sandbox {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<> write_file(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open " + path);
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) return fail("write " + path, err);
  return {};
}

bool writable_dir(const std::string& dir) {
  return !dir.empty() && ::access(dir.c_str(), W_OK) == 0 &&
         ::access((dir + "/cgroup.procs").c_str(), W_OK) == 0;
}

struct Mounts {
  std::string v2;                         // mount point of cgroup2
  std::map<std::string, std::string> v1;  // controller -> mount point
};

Mounts find_mounts() {
  Mounts m;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ... mount_point ... - fstype source super_options
    auto fields = split(line, ' ');
    size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 5 || dash + 3 >= fields.size()) continue;
    std::string point(fields[4]);
    std::string_view type = fields[dash + 1];
    if (type == "cgroup2") {
      if (m.v2.empty()) m.v2 = point;
    } else if (type == "cgroup") {
      for (auto opt : split(fields[dash + 3], ','))
        if (opt == "memory" || opt == "pids" || opt == "cpu") m.v1.emplace(std::string(opt), point);
    }
  }
  return m;
}

// ward's own cgroup path per hierarchy: "" (v2) or a controller name -> path.
std::map<std::string, std::string> own_cgroups() {
  std::map<std::string, std::string> out;
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (controllers.empty()) out[""] = path;
    for (auto c : split(controllers, ',')) out[std::string(c)] = path;
  }
  return out;
}

// Removes `ward-<pid>` cgroups left behind by a ward and an init that were both killed at once
// (the init normally removes them when ward dies alone). Only empty ones can be removed, and only
// those whose ward is gone are tried.
void sweep_stale(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, "ward-", 5) != 0) continue;
    char* end = nullptr;
    long pid = std::strtol(e->d_name + 5, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    ::rmdir((parent + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

std::string join_path(const std::string& mount, const std::string& rel) {
  if (rel == "/" || rel.empty()) return mount;
  return mount + rel;
}

}  // namespace

CgroupProbe probe_cgroups() {
  CgroupProbe p;
  Mounts mounts = find_mounts();
  auto own = own_cgroups();
  if (!mounts.v2.empty() && own.count("")) {
    std::string dir = join_path(mounts.v2, own[""]);
    std::string available = read_file(dir + "/cgroup.controllers");
    std::vector<std::string> usable;
    for (const char* c : {"memory", "pids", "cpu"})
      for (auto have : split(available, ' '))
        if (have == c || have == std::string(c) + "\n") usable.push_back(c);
    if (!writable_dir(dir)) {
      p.why_not_v2 = "ward's cgroup " + dir + " is not writable (no delegation)";
    } else if (usable.empty()) {
      p.why_not_v2 = "no memory/pids/cpu controller is available in " + dir;
    } else {
      p.v2_dir = dir;
      p.v2_controllers = usable;
    }
  } else {
    p.why_not_v2 = "no cgroup2 hierarchy is mounted";
  }
  auto v1 = [&](const char* controller) -> std::string {
    auto mount = mounts.v1.find(controller);
    if (mount == mounts.v1.end() || !own.count(controller)) return {};
    std::string dir = join_path(mount->second, own[controller]);
    return writable_dir(dir) ? dir : std::string();
  };
  p.v1_memory = v1("memory");
  p.v1_pids = v1("pids");
  p.v1_cpu = v1("cpu");
  return p;
}

Result<Cgroups> Cgroups::create(const policy::Resources& r, const std::string& name) {
  Cgroups cg;
  cg.name_ = name;
  if (!r.memory_bytes && !r.pids && !r.cpus) return cg;  // no limit: no cgroup to pay for
  CgroupProbe probe = probe_cgroups();

  auto make = [&](const std::string& parent) -> Result<std::string> {
    sweep_stale(parent);
    std::string dir = parent + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0) return fail_errno("mkdir " + dir);
    Dir d{dir, UniqueFd(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)),
          UniqueFd(::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC))};
    const int err = errno;
    const bool opened = d.procs.valid();
    cg.dirs_.push_back(std::move(d));  // removed with `cg` if anything fails from here on
    if (!opened) return fail("open " + dir + "/cgroup.procs", err);
    return dir;
  };
  auto has = [&](const char* c) {
    return std::find(probe.v2_controllers.begin(), probe.v2_controllers.end(), c) !=
           probe.v2_controllers.end();
  };

  if (!probe.v2_dir.empty() && (!r.memory_bytes || has("memory")) && (!r.pids || has("pids"))) {
    // Enable what we need for the child; EBUSY means ward's cgroup holds processes (the "no
    // internal processes" rule), in which case v2 cannot be used from here.
    std::string enable;
    if (r.memory_bytes) enable += "+memory ";
    if (r.pids) enable += "+pids ";
    if (r.cpus && has("cpu")) enable += "+cpu ";
    if (write_file(probe.v2_dir + "/cgroup.subtree_control", enable)) {
      auto dir = make(probe.v2_dir);
      if (!dir) return tl::unexpected(dir.error());
      cg.mode_ = Mode::kV2;
      if (r.memory_bytes) {
        if (auto w = write_file(*dir + "/memory.max", std::to_string(*r.memory_bytes)); !w)
          return tl::unexpected(w.error());
        (void)write_file(*dir + "/memory.swap.max", "0");
        cg.memory_in_cgroup = true;
        cg.memory_dir_ = *dir;
      }
      if (r.pids) {
        if (auto w = write_file(*dir + "/pids.max", std::to_string(*r.pids)); !w)
          return tl::unexpected(w.error());
        cg.pids_in_cgroup = true;
      }
      if (r.cpus && has("cpu")) {
        long period = 100000;
        long quota = std::max(1000L, std::lround(*r.cpus * period));
        if (auto w =
                write_file(*dir + "/cpu.max", std::to_string(quota) + " " + std::to_string(period));
            !w)
          return tl::unexpected(w.error());
        cg.cpu_in_cgroup = true;
      }
      cg.description = "cgroup v2 (" + *dir + ")";
      return cg;
    }
  }

  // cgroup v1: one hierarchy per controller.
  std::vector<std::string> used;
  if (r.memory_bytes && !probe.v1_memory.empty()) {
    auto dir = make(probe.v1_memory);
    if (!dir) return tl::unexpected(dir.error());
    if (auto w = write_file(*dir + "/memory.limit_in_bytes", std::to_string(*r.memory_bytes)); !w)
      return tl::unexpected(w.error());
    // Without swap accounting this file is absent; with it, swap must not extend the limit.
    (void)write_file(*dir + "/memory.memsw.limit_in_bytes", std::to_string(*r.memory_bytes));
    cg.memory_in_cgroup = true;
    cg.memory_dir_ = *dir;
    used.push_back("memory");
  }
  if (r.pids && !probe.v1_pids.empty()) {
    auto dir = make(probe.v1_pids);
    if (!dir) return tl::unexpected(dir.error());
    if (auto w = write_file(*dir + "/pids.max", std::to_string(*r.pids)); !w)
      return tl::unexpected(w.error());
    cg.pids_in_cgroup = true;
    used.push_back("pids");
  }
  if (r.cpus && !probe.v1_cpu.empty()) {
    auto dir = make(probe.v1_cpu);
    if (!dir) return tl::unexpected(dir.error());
    long period = 100000;
    long quota = std::max(1000L, std::lround(*r.cpus * period));
    if (auto w = write_file(*dir + "/cpu.cfs_period_us", std::to_string(period)); !w)
      return tl::unexpected(w.error());
    if (auto w = write_file(*dir + "/cpu.cfs_quota_us", std::to_string(quota)); !w)
      return tl::unexpected(w.error());
    cg.cpu_in_cgroup = true;
    used.push_back("cpu");
  }
  if (!used.empty()) {
    cg.mode_ = Mode::kV1;
    cg.description = "cgroup v1 (";
    for (size_t i = 0; i < used.size(); ++i) cg.description += (i ? ", " : "") + used[i];
    cg.description += ")";
  }
  return cg;
}

std::vector<int> Cgroups::parent_fds() const {
  std::vector<int> fds;
  for (const Dir& d : dirs_) fds.push_back(d.parent.get());
  return fds;
}

std::vector<int> Cgroups::procs_fds() const {
  std::vector<int> fds;
  for (const Dir& d : dirs_) fds.push_back(d.procs.get());
  return fds;
}

bool Cgroups::oom_killed() const {
  if (memory_dir_.empty()) return false;
  std::string text =
      read_file(memory_dir_ + (mode_ == Mode::kV2 ? "/memory.events" : "/memory.oom_control"));
  std::istringstream in(text);
  std::string key;
  long long value;
  while (in >> key >> value)
    if (key == "oom_kill" && value > 0) return true;
  return false;
}

void Cgroups::remove() {
  for (Dir& d : dirs_) {
    // The kernel may take a moment to release a cgroup whose last task was just reaped.
    for (int i = 0; i < 100 && ::rmdir(d.path.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(1000);
  }
  dirs_.clear();
}

}  // namespace ward::sandbox
