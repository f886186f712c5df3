#include "audit/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/strings.h"

namespace ward::audit {

Result<Sink> Sink::open(const std::string& path, bool shorthand, std::size_t max_bytes) {
  Sink sink;
  sink.shorthand_ = shorthand;
  sink.path_ = path;
  sink.max_bytes_ = max_bytes;
  if (path.empty()) return sink;
  // Rotation renames the path and makes a regular file in its place: done to a FIFO a log
  // collector reads, to /dev/null, or to a symbolic link such as /dev/stdout (root may rename
  // those), it would break what else uses them. So a rotated file must be a regular file named
  // as it is: checked before the open (which would wait for a FIFO's reader), by the open itself
  // (no symlink followed, no waiting), and after it.
  auto not_rotatable = [&] {
    return fail("the audit file " + printable(path) +
                " is not a regular file (a FIFO, a device or a symbolic link): it cannot be "
                "rotated (--audit-max-mib)");
  };
  struct stat st;
  if (max_bytes && ::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) return not_rotatable();
  const int rotated = max_bytes ? O_NOFOLLOW | O_NONBLOCK : 0;
  // Nothing is ever created through a symbolic link: one a sandbox left in its workdir would
  // have ward (root, often) make a file wherever it points. A file that exists is opened as
  // found (a FIFO, /dev/stdout); a missing one is made where the path names it (O_EXCL does not
  // follow a final symlink), 0600: records name hosts and binaries, only ward's user reads them.
  const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | rotated;
  for (int attempt = 0; attempt < 2 && !sink.file_; ++attempt) {
    sink.file_.reset(::open(path.c_str(), flags));
    if (sink.file_ || errno != ENOENT) break;
    sink.file_.reset(::open(path.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    if (!sink.file_ && errno != EEXIST) break;  // EEXIST: made meanwhile, or a dangling symlink
  }
  if (!sink.file_ && errno == EEXIST)
    return fail("the audit file " + printable(path) +
                " is a symbolic link to a file that does not exist: ward creates no file "
                "through a symlink; give the file's real path");
  if (!sink.file_ && max_bytes && (errno == ELOOP || errno == ENXIO)) return not_rotatable();
  if (!sink.file_) return fail_errno("cannot open the audit file " + printable(path));
  if (::fstat(sink.file_.get(), &st) != 0) return fail_errno("cannot stat the audit file " + path);
  if (max_bytes && !S_ISREG(st.st_mode)) return not_rotatable();
  sink.size_ = static_cast<std::size_t>(st.st_size);
  return sink;
}

void Sink::rotate() {
  // The records so far become path.1 (the ones before them go); a new file takes the next.
  // Another writer of the same path may have rotated it already: then only the new file is
  // opened.
  struct stat mine, named;
  const bool renamed_by_other = ::fstat(file_.get(), &mine) == 0 &&
                                (::stat(path_.c_str(), &named) != 0 ||
                                 named.st_ino != mine.st_ino || named.st_dev != mine.st_dev);
  if (!reopen_pending_ && !renamed_by_other) {
    if (::rename(path_.c_str(), (path_ + ".1").c_str()) != 0) {
      if (!rotation_failed_)
        std::fprintf(stderr, "ward: warning: cannot rotate the audit file %s: %s\n",
                     printable(path_).c_str(), std::strerror(errno));
      rotation_failed_ = true;
      return;
    }
    reopen_pending_ = true;
  }
  UniqueFd next(
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!next) return;  // tried again at the next record (a descriptor may be free by then)
  struct stat st;
  file_ = std::move(next);
  size_ = ::fstat(file_.get(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
  reopen_pending_ = false;
  rotation_failed_ = false;
}

void Sink::append(const nlohmann::json& record) {
  // One write(2) per record with O_APPEND: lines from concurrent writers never interleave.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  if (max_bytes_ && (reopen_pending_ || (size_ > 0 && size_ + line.size() > max_bytes_))) {
    rotate();
    // A file that cannot be rotated takes no more than twice the limit: the disk stays bounded.
    if ((rotation_failed_ || reopen_pending_) && size_ + line.size() > 2 * max_bytes_) return;
  }
  ssize_t n = ::write(file_.get(), line.data(), line.size());
  // A full disk must not stop the proxy: the record is lost, the decision is not.
  if (n > 0) size_ += static_cast<std::size_t>(n);
}

void Sink::write(const NetworkEvent& e) {
  if (file_) append(network_activity(e));  // built only when written: it costs µs per request
  if (shorthand_) std::fprintf(stderr, "ward[audit]: %s\n", shorthand(e).c_str());
}

void Sink::write(const HttpEvent& e) {
  if (file_) append(http_activity(e));
  if (shorthand_) std::fprintf(stderr, "ward[audit]: %s\n", shorthand(e).c_str());
}

void Sink::write(const ApiEvent& e) {
  if (file_) append(api_activity(e));
  if (shorthand_) std::fprintf(stderr, "ward[audit]: %s\n", shorthand(e).c_str());
}

}  // namespace ward::audit
