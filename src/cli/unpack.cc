#include "cli/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace ward::cli {
namespace {

struct FreeReader {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct FreeWriter {
  void operator()(archive* a) const { archive_write_free(a); }
};

// Whether a libarchive call went through (with a warning, perhaps). Not `r >= ARCHIVE_WARN`:
// ARCHIVE_RETRY (-10) sorts above ARCHIVE_WARN (-20), and is not success.
bool went_through(la_ssize_t r) {
  return r == ARCHIVE_OK || r == ARCHIVE_WARN;
}

// What libarchive last said about `a`.
std::string said(archive* a) {
  const char* message = archive_error_string(a);
  return message ? message : "an unknown error";
}

// A member's name as names, "" and "." dropped and a leading "/" ignored (as tar does). False
// when one of them is "..": it would not stay beneath the directory.
bool split(std::string_view name, std::vector<std::string>& parts) {
  parts.clear();
  std::size_t at = 0;
  while (at <= name.size()) {
    std::size_t slash = name.find('/', at);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(at, slash - at);
    if (part == "..") return false;
    if (!part.empty() && part != ".") parts.emplace_back(part);
    at = slash + 1;
  }
  return true;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

// Whether a symlink at depth `depth` below the tree's top (0: in the top directory) with this
// target leads to a place inside the tree, read as the kernel would from the directory the link
// is in: relative, and its ".." all leading, no more of them than `depth`. (A ".." after a name
// is not allowed: that name may itself be a symlink, and its ".." then another place's parent.)
// The names after them can be symlinks only where this download made them, under this same
// rule, or where they were already: nothing is written through any of them.
bool stays_inside(std::string_view target, std::size_t depth) {
  if (target.empty() || target[0] == '/') return false;
  std::size_t up = 0;
  bool descended = false;
  std::size_t at = 0;
  while (at <= target.size()) {
    std::size_t slash = target.find('/', at);
    if (slash == std::string_view::npos) slash = target.size();
    const std::string_view part = target.substr(at, slash - at);
    at = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part != "..") {
      descended = true;
      continue;
    }
    if (descended || ++up > depth) return false;
  }
  return true;
}

// What is in an entry's way, for a refusal.
std::string in_the_way(const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return "a symlink is there (not followed, not replaced)";
  if (S_ISDIR(st.st_mode)) return "a directory is there (not replaced)";
  return "a file is there (not replaced)";
}

}  // namespace

int write_disk_options() {
  return ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_NO_OVERWRITE | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
         ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
}

Unpacker::Unpacker(UniqueFd root) : root_(std::move(root)) {}

Result<void> Unpacker::feed(std::string_view bytes) {
  if (bytes.size() > kMaxArchive - archive_.size())
    return fail("the archive is larger than 64 MiB, the gateway's limit for a packed directory");
  archive_.append(bytes);
  return {};
}

Result<void> Unpacker::finish() {
  if (archive_.empty()) return fail("the archive ended early (it is empty)");
  // libarchive writes relative to the working directory: the destination, while it runs.
  UniqueFd before(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!before) return fail_errno("the working directory");
  if (::fchdir(root_.get()) != 0) return fail_errno("the download's directory");
  Result<void> done = unpack();
  if (::fchdir(before.get()) != 0 && done) done = fail_errno("back to the working directory");
  std::string().swap(archive_);
  if (!done) return done;
  if (!refused_.empty())
    return fail(std::to_string(refused_.size()) + " of the archive's entries could not be written");
  return {};
}

Result<void> Unpacker::unpack() {
  std::unique_ptr<archive, FreeReader> in(archive_read_new());
  std::unique_ptr<archive, FreeWriter> out(archive_write_disk_new());
  if (!in || !out) return fail("libarchive: out of memory");
  // Plain tar (ustar, GNU, pax) as the sandbox's /bin/tar makes it: no other format, no filters.
  archive_read_support_format_tar(in.get());
  if (archive_read_open_memory(in.get(), archive_.data(), archive_.size()) != ARCHIVE_OK)
    return fail("the download is not a tar archive (" + said(in.get()) + ")");
  // Without ARCHIVE_EXTRACT_PERM: no set-id bits, the umask obeyed (and ward strips them before).
  archive_write_disk_set_options(out.get(), write_disk_options());
  for (bool first = true;; first = false) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY (a header's checksum is wrong) would have libarchive look for the next
    // header in what follows, a file's contents perhaps: the archive is broken, stop.
    if (!went_through(r))
      return fail(first ? "the download is not a tar archive (" + said(in.get()) + ")"
                        : "the archive is damaged or ended early (" + said(in.get()) + ")");
    if (auto done = entry(in.get(), out.get(), e); !done) return done;
  }
  // Directories made get their modes and times here, deepest first.
  if (archive_write_close(out.get()) == ARCHIVE_FATAL) return fail(said(out.get()));
  return {};
}

Result<void> Unpacker::entry(archive* in, archive* out, archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  const std::string name = raw ? raw : "";
  std::vector<std::string> parts;
  if (!split(name, parts)) {
    refused_.push_back(name + ": leads out of the directory (\"..\")");
    return {};
  }
  if (parts.empty()) return {};  // the tree's top: the directory given, as it is
  const std::string shown = join(parts, parts.size());
  if (beneath_refused(parts)) {
    refuse(parts, shown, "beneath an entry that was not unpacked");
    return {};
  }
  const mode_t type = archive_entry_filetype(e);
  const char* hardlink = archive_entry_hardlink(e);
  bool file = false;
  if (hardlink) {
    std::vector<std::string> target;
    if (!split(hardlink, target) || !written_.contains(target)) {
      refuse(parts, shown,
             std::string("a hard link to ") + hardlink + ", which this download did not write");
      return {};
    }
    archive_entry_set_hardlink(e, join(target, target.size()).c_str());
  } else {
    switch (type) {
      case AE_IFREG:
        // A sparse entry may declare any size it likes in a few bytes (review): the gateway's
        // tar never makes one, so one is not written.
        if (archive_entry_sparse_count(e) > 0) {
          left_out_.push_back(shown + " (a sparse file)");
          refused_paths_.insert(parts);
          return {};
        }
        file = true;
        break;
      case AE_IFDIR:
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        const std::string link = target ? target : "";
        if (stays_inside(link, parts.size() - 1)) break;
        left_out_.push_back(shown + " -> " + link + " (a symlink that leads out of the download)");
        refused_paths_.insert(parts);
        return {};
      }
      case AE_IFCHR:
      case AE_IFBLK:
        left_out_.push_back(shown + " (a device node)");
        refused_paths_.insert(parts);
        return {};
      case AE_IFIFO:
        left_out_.push_back(shown + " (a FIFO)");
        refused_paths_.insert(parts);
        return {};
      default:
        left_out_.push_back(shown + " (an entry of a kind ward does not unpack)");
        refused_paths_.insert(parts);
        return {};
    }
  }
  // Refused, or a directory that is there already (it keeps its mode).
  if (way_to(parts, shown, type == AE_IFDIR && !hardlink) != Way::kClear) return {};
  archive_entry_set_pathname(e, shown.c_str());
  archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
  int r = archive_write_header(out, e);
  if (r == ARCHIVE_FATAL) return fail(shown + ": " + said(out));
  if (!went_through(r)) {
    refuse(parts, shown, said(out));
    return {};
  }
  if (file) written_.insert(parts);
  for (;;) {  // a file's contents (or a hard link's: pax lets one carry them)
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    r = archive_read_data_block(in, &block, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (!went_through(r))
      return fail("the archive is damaged or ended early (" + said(in) + "): " + shown);
    if (!went_through(archive_write_data_block(out, block, size, offset)))
      return fail(shown + ": " + said(out));
  }
  if (archive_write_finish_entry(out) == ARCHIVE_FATAL) return fail(shown + ": " + said(out));
  return {};
}

Unpacker::Way Unpacker::way_to(const std::vector<std::string>& parts, const std::string& shown,
                               bool directory) {
  UniqueFd dir(::openat(root_.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (std::size_t i = 0; dir && i < parts.size(); ++i) {
    struct stat st;
    if (::fstatat(dir.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Way::kClear;  // libarchive makes the directories missing
      break;
    }
    if (i + 1 == parts.size()) {
      if (directory && S_ISDIR(st.st_mode)) return Way::kThere;
      refuse(parts, shown, in_the_way(st));
      return Way::kBlocked;
    }
    if (!S_ISDIR(st.st_mode)) {
      refuse(parts, shown, join(parts, i + 1) + ": " + in_the_way(st));
      return Way::kBlocked;
    }
    dir.reset(::openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  refuse(parts, shown, std::strerror(errno));
  return Way::kBlocked;
}

bool Unpacker::beneath_refused(const std::vector<std::string>& parts) const {
  std::vector<std::string> prefix;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    prefix.push_back(parts[i]);
    if (refused_paths_.contains(prefix)) return true;
  }
  return false;
}

void Unpacker::refuse(const std::vector<std::string>& parts, const std::string& shown,
                      std::string why) {
  refused_.push_back(shown + ": " + why);
  refused_paths_.insert(parts);
}

}  // namespace ward::cli
