#include "base/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace ward::files {

Result<void> make_dirs(const std::string& path, mode_t mode) {
  if (path.empty()) return fail("empty directory path");
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    std::string prefix = path.substr(0, end);
    if (!prefix.empty() && prefix.back() != '/' && ::mkdir(prefix.c_str(), mode) != 0 &&
        errno != EEXIST)
      return fail_errno("cannot create directory " + prefix);
    if (end == std::string::npos) break;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return fail_errno("cannot stat " + path);
  if (!S_ISDIR(st.st_mode)) return fail(path + " is not a directory");
  return {};
}

Result<UniqueFd> lock(const std::string& dir) {
  std::string path = dir + "/lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return fail_errno("cannot open lock file " + path);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return fail_errno("cannot lock " + path);
  }
  return fd;
}

Result<std::string> read_all(int fd, const std::string& path) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

namespace {

Result<void> write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot write " + path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Result<void> replace(const std::string& dir, const std::string& name, std::string_view data,
                     mode_t mode) {
  UniqueFd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return fail_errno("cannot open directory " + dir);
  // A fixed temporary name: the caller holds the lock, and a crash leaves at most one behind,
  // which the next writer removes.
  std::string tmp = "." + name + ".tmp";
  std::string tmp_path = dir + "/" + tmp;
  if (::unlinkat(dirfd.get(), tmp.c_str(), 0) != 0 && errno != ENOENT)
    return fail_errno("cannot remove " + tmp_path);
  UniqueFd fd(::openat(dirfd.get(), tmp.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return fail_errno("cannot create " + tmp_path);
  auto written = [&]() -> Result<void> {
    // The umask may have removed bits that `mode` asks for (never added any).
    if (::fchmod(fd.get(), mode) != 0) return fail_errno("cannot chmod " + tmp_path);
    if (auto w = write_all(fd.get(), data, tmp_path); !w) return w;
    if (::fsync(fd.get()) != 0) return fail_errno("cannot sync " + tmp_path);
    if (::renameat(dirfd.get(), tmp.c_str(), dirfd.get(), name.c_str()) != 0)
      return fail_errno("cannot rename " + tmp_path + " to " + name);
    return {};
  }();
  if (!written) {
    ::unlinkat(dirfd.get(), tmp.c_str(), 0);
    return written;
  }
  ::fsync(dirfd.get());  // the rename itself durable; a failure here loses nothing yet written
  return {};
}

namespace {

constexpr int kMaxDepth = 32;

struct Removal {
  int top;  // the tree's top directory
  dev_t dev;
  const std::atomic<bool>* stop;
  unsigned moved = 0;     // directories moved up to `top`
  unsigned attempts = 0;  // names tried for them (.ward-deep-N)
  bool stopped() const { return stop && stop->load(std::memory_order_relaxed); }
};

// Empties the directory `dir` (at `depth` below the top). False when something was left.
bool empty_dir(Removal& r, int dir, int depth) {
  std::vector<std::string> subdirs;
  bool ok = true;
  {
    const int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
    DIR* d = copy >= 0 ? ::fdopendir(copy) : nullptr;
    if (!d) {
      if (copy >= 0) ::close(copy);
      return false;
    }
    ::rewinddir(d);  // the copy shares its offset with `dir`, which an earlier pass read to the end
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (r.stopped()) {
        ::closedir(d);
        return false;
      }
      if (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) continue;
      // A directory its owner made read-only (a sandbox may): made writable, tried again.
      if (errno == EACCES && ::fchmod(dir, 0700) == 0 &&
          (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT))
        continue;
      if (errno == EISDIR)
        subdirs.push_back(name);
      else
        ok = false;
    }
    ::closedir(d);
  }
  for (const std::string& name : subdirs) {
    if (r.stopped()) return false;
    if (depth >= kMaxDepth) {
      // Moved up to the top, to be emptied from there on the next pass. Only a move that
      // happened counts: the passes end when one moves nothing.
      const std::string up = ".ward-deep-" + std::to_string(r.attempts++);
      auto move_up = [&] {
        return ::syscall(SYS_renameat2, dir, name.c_str(), r.top, up.c_str(), RENAME_NOREPLACE) ==
               0;
      };
      bool moved = move_up();
      // Both parents must be writable, and the directory itself (its ".." changes).
      if (!moved && errno == EACCES && ::fchmod(dir, 0700) == 0 && ::fchmod(r.top, 0700) == 0 &&
          ::fchmodat(dir, name.c_str(), 0700, 0) == 0)
        moved = move_up();
      if (moved)
        ++r.moved;
      else
        ok = false;
      continue;
    }
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd sub(::openat(dir, name.c_str(), kFlags));
    if (!sub && errno == EACCES && ::fchmodat(dir, name.c_str(), 0700, AT_SYMLINK_NOFOLLOW) == 0)
      sub.reset(::openat(dir, name.c_str(), kFlags));
    struct stat st;
    if (!sub || ::fstat(sub.get(), &st) != 0 || st.st_dev != r.dev) {
      ok = false;  // gone meanwhile, no longer a directory, or another filesystem's
      continue;
    }
    ok = empty_dir(r, sub.get(), depth + 1) && ok;
    bool removed = ::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0;
    if (!removed && errno == EACCES && ::fchmod(dir, 0700) == 0)
      removed = ::unlinkat(dir, name.c_str(), AT_REMOVEDIR) == 0;
    ok = removed && ok;
  }
  return ok;
}

}  // namespace

bool remove_tree(const std::string& path, const std::atomic<bool>* stop) {
  UniqueFd top(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!top) {
    if (errno == ENOENT) return true;
    return (errno == ENOTDIR || errno == ELOOP) && ::unlink(path.c_str()) == 0;
  }
  struct stat st;
  if (::fstat(top.get(), &st) != 0) return false;
  Removal r{top.get(), st.st_dev, stop};
  bool ok = false;
  // Passes until one moves nothing up: each empties what the one before moved.
  for (unsigned moved = ~0u; moved != r.moved;) {
    moved = r.moved;
    ok = empty_dir(r, top.get(), 0);
    if (r.stopped()) return false;
  }
  return ::rmdir(path.c_str()) == 0 && ok;
}

}  // namespace ward::files
