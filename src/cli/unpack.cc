#include "cli/unpack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ward::cli {
namespace {

constexpr std::size_t kBlock = 512;
constexpr std::size_t kMaxMeta = 1u << 20;  // a long name or a pax header

// A header's numeric field: octal digits between spaces or NULs, or base-256 (GNU) when the
// first byte's top bit is set. False on anything else, or a negative or too large number.
bool number(const unsigned char* field, std::size_t size, std::uint64_t& out) {
  out = 0;
  if (field[0] & 0x80) {
    if (field[0] & 0x40) return false;
    out = field[0] & 0x3f;
    for (std::size_t i = 1; i < size; ++i) {
      if (out >> 55) return false;
      out = out << 8 | field[i];
    }
    return true;
  }
  std::size_t i = 0;
  while (i < size && (field[i] == ' ' || field[i] == 0)) ++i;
  for (; i < size && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (out >> 60) return false;
    out = out << 3 | static_cast<std::uint64_t>(field[i] - '0');
  }
  for (; i < size; ++i)
    if (field[i] != ' ' && field[i] != 0) return false;
  return true;
}

// A header's text field, up to its first NUL.
std::string text(const unsigned char* field, std::size_t size) {
  const auto* end = std::find(field, field + size, 0);
  return std::string(reinterpret_cast<const char*>(field), static_cast<std::size_t>(end - field));
}

// A member's name as names, "" and "." dropped and a leading "/" ignored (as tar does). False
// when one of them is ".." or the name holds a NUL: it would not stay beneath the directory.
bool split(std::string_view name, std::vector<std::string>& parts) {
  parts.clear();
  if (name.find('\0') != std::string_view::npos) return false;
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
bool stays_inside(const std::string& target, std::size_t depth) {
  if (target.empty() || target[0] == '/' || target.find('\0') != std::string::npos) return false;
  std::size_t up = 0;
  bool descended = false;
  std::size_t at = 0;
  while (at <= target.size()) {
    std::size_t slash = target.find('/', at);
    if (slash == std::string::npos) slash = target.size();
    const std::string_view part = std::string_view(target).substr(at, slash - at);
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

// What is at `name` in `dir`, for a refusal.
std::string in_the_way(int dir, const std::string& name) {
  struct stat st;
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::strerror(errno);
  if (S_ISLNK(st.st_mode)) return "a symlink is there (not followed, not replaced)";
  if (S_ISDIR(st.st_mode)) return "a directory is there (not replaced)";
  return "a file is there (not replaced)";
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

Unpacker::Unpacker(UniqueFd root) : root_(std::move(root)) {
  umask_ = ::umask(0);
  ::umask(umask_);
}

Result<void> Unpacker::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    switch (state_) {
      case State::kEnd:
        return {};  // the zero blocks that pad the archive's end
      case State::kHeader: {
        const std::size_t n = std::min(kBlock - block_.size(), bytes.size());
        block_.append(bytes.substr(0, n));
        bytes.remove_prefix(n);
        if (block_.size() < kBlock) break;
        auto r = header(reinterpret_cast<const unsigned char*>(block_.data()));
        block_.clear();
        if (!r) return r;
        break;
      }
      case State::kBody: {
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(bytes.size())));
        if (auto r = body(bytes.substr(0, n)); !r) return r;
        bytes.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ > 0) break;
        if (auto r = end_of_body(); !r) return r;
        state_ = padding_ ? State::kPadding : State::kHeader;
        break;
      }
      case State::kPadding: {
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(padding_, static_cast<std::uint64_t>(bytes.size())));
        bytes.remove_prefix(n);
        padding_ -= n;
        if (padding_ == 0) state_ = State::kHeader;
        break;
      }
    }
  }
  return {};
}

Result<void> Unpacker::header(const unsigned char* block) {
  if (std::all_of(block, block + kBlock, [](unsigned char c) { return c == 0; })) {
    state_ = State::kEnd;
    return {};
  }
  std::uint64_t stored = 0, unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    const unsigned char c = i >= 148 && i < 156 ? ' ' : block[i];
    unsigned_sum += c;
    signed_sum += static_cast<signed char>(c);
  }
  if (!number(block + 148, 8, stored) ||
      (stored != unsigned_sum && static_cast<std::int64_t>(stored) != signed_sum))
    return fail("the download is not a tar archive (a header's checksum is wrong)");
  std::uint64_t size = 0, mode = 0, mtime = 0;
  if (!number(block + 124, 12, size) || !number(block + 100, 8, mode) ||
      !number(block + 136, 12, mtime))
    return fail("the download is not a tar archive (a header's number is malformed)");
  const char type = static_cast<char>(block[156]);
  if (has_pax_size_) size = pax_size_;
  remaining_ = size;
  padding_ = (kBlock - size % kBlock) % kBlock;
  body_ = Body::kSkip;
  if (type == 'L' || type == 'K' || type == 'x') {
    if (size > kMaxMeta) return fail("the archive holds a name or header longer than 1 MiB");
    body_ = type == 'L' ? Body::kLongName : type == 'K' ? Body::kLongLink : Body::kPax;
  } else if (type != 'g' && type != 'V') {  // a pax global header, a volume label: nothing here
    std::string name = pax_path_.empty() ? long_name_ : pax_path_;
    if (name.empty()) {
      name = text(block, 100);
      // POSIX ustar keeps a long name's start in `prefix`; GNU's magic has that room for times.
      if (std::memcmp(block + 257, "ustar\0", 6) == 0) {
        const std::string prefix = text(block + 345, 155);
        if (!prefix.empty()) name = prefix + "/" + name;
      }
    }
    std::string link = pax_link_.empty() ? long_link_ : pax_link_;
    if (link.empty()) link = text(block + 157, 100);
    const std::int64_t when = has_pax_mtime_ ? pax_mtime_ : static_cast<std::int64_t>(mtime);
    long_name_.clear();
    long_link_.clear();
    pax_path_.clear();
    pax_link_.clear();
    has_pax_size_ = has_pax_mtime_ = false;
    if (auto r = member(type, name, link, static_cast<mode_t>(mode & 07777), when); !r) return r;
  }
  state_ = State::kBody;
  if (remaining_ > 0) return {};
  if (auto r = end_of_body(); !r) return r;
  state_ = State::kHeader;
  return {};
}

Result<void> Unpacker::member(char type, const std::string& name, const std::string& link,
                              mode_t mode, std::int64_t mtime) {
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
  const std::string& last = parts.back();
  switch (type) {
    case '5': {
      auto parent = parent_of(parts, shown);
      if (!parent) return tl::unexpected(parent.error());
      if (!*parent) return {};
      if (::mkdirat(parent->get(), last.c_str(), (mode & 0777) | S_IRWXU) == 0) {
        directories_.push_back({parts, static_cast<mode_t>(mode & 0777), mtime});
        return {};
      }
      struct stat st;
      if (errno == EEXIST &&
          ::fstatat(parent->get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISDIR(st.st_mode))
        return {};  // there already: it keeps its mode
      const std::string why =
          errno == EEXIST ? in_the_way(parent->get(), last) : std::string(std::strerror(errno));
      refuse(parts, shown, why);
      return {};
    }
    case '0':
    case '\0':
    case '7': {
      auto parent = parent_of(parts, shown);
      if (!parent) return tl::unexpected(parent.error());
      if (!*parent) return {};
      file_.reset(::openat(parent->get(), last.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777));
      if (!file_) {
        refuse(parts, shown,
               errno == EEXIST ? in_the_way(parent->get(), last) : std::strerror(errno));
        return {};
      }
      body_ = Body::kFile;
      file_mtime_ = mtime;
      file_name_ = shown;
      written_.insert(parts);
      return {};
    }
    case '2': {
      if (!stays_inside(link, parts.size() - 1)) {
        left_out_.push_back(shown + " -> " + link + " (a symlink that leads out of the download)");
        refused_paths_.insert(parts);
        return {};
      }
      auto parent = parent_of(parts, shown);
      if (!parent) return tl::unexpected(parent.error());
      if (!*parent) return {};
      if (::symlinkat(link.c_str(), parent->get(), last.c_str()) != 0)
        refuse(parts, shown,
               errno == EEXIST ? in_the_way(parent->get(), last) : std::strerror(errno));
      return {};
    }
    case '1': {
      std::vector<std::string> target;
      if (!split(link, target) || !written_.contains(target)) {
        refuse(parts, shown, "a hard link to " + link + ", which this download did not write");
        return {};
      }
      auto from = parent_of(target, shown);
      if (!from) return tl::unexpected(from.error());
      if (!*from) return {};
      auto parent = parent_of(parts, shown);
      if (!parent) return tl::unexpected(parent.error());
      if (!*parent) return {};
      if (::linkat(from->get(), target.back().c_str(), parent->get(), last.c_str(), 0) != 0)
        refuse(parts, shown,
               errno == EEXIST ? in_the_way(parent->get(), last) : std::strerror(errno));
      return {};
    }
    case '3':
    case '4':
      left_out_.push_back(shown + " (a device node)");
      break;
    case '6':
      left_out_.push_back(shown + " (a FIFO)");
      break;
    default:
      left_out_.push_back(shown + " (an entry of tar type '" + std::string(1, type) +
                          "', which ward does not unpack)");
      break;
  }
  refused_paths_.insert(parts);
  return {};
}

Result<UniqueFd> Unpacker::parent_of(const std::vector<std::string>& parts,
                                     const std::string& name) {
  UniqueFd dir(::openat(root_.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return fail_errno("the download's directory");
  constexpr int kFlags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const char* step = parts[i].c_str();
    UniqueFd next(::openat(dir.get(), step, kFlags));
    if (!next && errno == ENOENT && (::mkdirat(dir.get(), step, 0777) == 0 || errno == EEXIST))
      next.reset(::openat(dir.get(), step, kFlags));
    if (!next) {
      const std::vector<std::string> prefix(parts.begin(), parts.begin() + i + 1);
      const std::string why = errno == ENOTDIR || errno == ELOOP
                                  ? join(prefix, prefix.size()) + ": " + in_the_way(dir.get(), step)
                                  : std::string(std::strerror(errno));
      refuse(parts, name, why);
      return UniqueFd();
    }
    dir = std::move(next);
  }
  return dir;
}

bool Unpacker::beneath_refused(const std::vector<std::string>& parts) const {
  std::vector<std::string> prefix;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    prefix.push_back(parts[i]);
    if (refused_paths_.contains(prefix)) return true;
  }
  return false;
}

void Unpacker::refuse(const std::vector<std::string>& parts, const std::string& name,
                      std::string why) {
  refused_.push_back(name + ": " + why);
  refused_paths_.insert(parts);
}

Result<void> Unpacker::body(std::string_view bytes) {
  switch (body_) {
    case Body::kFile:
      if (!write_all(file_.get(), bytes)) return fail_errno(file_name_);
      break;
    case Body::kLongName:
    case Body::kLongLink:
    case Body::kPax:
      meta_.append(bytes);
      break;
    case Body::kSkip:
      break;
  }
  return {};
}

Result<void> Unpacker::end_of_body() {
  const Body was = std::exchange(body_, Body::kSkip);
  switch (was) {
    case Body::kFile: {
      const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(file_mtime_), 0}};
      ::futimens(file_.get(), times);
      if (::close(file_.release()) != 0) return fail_errno(file_name_);
      break;
    }
    case Body::kLongName:
      long_name_ = meta_.substr(0, meta_.find('\0'));
      break;
    case Body::kLongLink:
      long_link_ = meta_.substr(0, meta_.find('\0'));
      break;
    case Body::kPax:
      if (auto r = parse_pax(); !r) return r;
      break;
    case Body::kSkip:
      break;
  }
  meta_.clear();
  return {};
}

// Records "LENGTH key=value\n", LENGTH counting the whole record.
Result<void> Unpacker::parse_pax() {
  auto malformed = [] { return fail("the archive holds a malformed pax header"); };
  std::size_t at = 0;
  while (at < meta_.size()) {
    const std::size_t space = meta_.find(' ', at);
    if (space == std::string::npos || space == at || space - at > 7) return malformed();
    std::size_t length = 0;
    for (std::size_t i = at; i < space; ++i) {
      if (meta_[i] < '0' || meta_[i] > '9') return malformed();
      length = length * 10 + static_cast<std::size_t>(meta_[i] - '0');
    }
    if (length < space - at + 3 || length > meta_.size() - at || meta_[at + length - 1] != '\n')
      return malformed();
    const std::string record = meta_.substr(space + 1, at + length - 1 - (space + 1));
    at += length;
    const std::size_t equals = record.find('=');
    if (equals == std::string::npos) return malformed();
    const std::string key = record.substr(0, equals), value = record.substr(equals + 1);
    auto decimal = [&](std::uint64_t& out) {
      out = 0;
      std::size_t i = 0;
      for (; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
        if (out > (UINT64_MAX - 9) / 10) return false;
        out = out * 10 + static_cast<std::uint64_t>(value[i] - '0');
      }
      return i > 0 && (i == value.size() || value[i] == '.');
    };
    std::uint64_t n = 0;
    if (key == "path") {
      pax_path_ = value;
    } else if (key == "linkpath") {
      pax_link_ = value;
    } else if (key == "size") {
      if (!decimal(n)) return malformed();
      pax_size_ = n;
      has_pax_size_ = true;
    } else if (key == "mtime" && decimal(n)) {  // a time before 1970 keeps the header's
      pax_mtime_ = static_cast<std::int64_t>(std::min<std::uint64_t>(n, INT64_MAX));
      has_pax_mtime_ = true;
    }
  }
  return {};
}

Result<void> Unpacker::finish() {
  if (state_ != State::kEnd) return fail("the archive ended early");
  // Deepest first: a directory whose mode takes away its owner's search right would otherwise
  // stop the walk to the ones inside it.
  for (auto d = directories_.rbegin(); d != directories_.rend(); ++d) {
    if (beneath_refused(d->parts)) continue;
    UniqueFd dir(::openat(root_.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    for (std::size_t i = 0; dir && i < d->parts.size(); ++i)
      dir.reset(::openat(
          dir.get(), d->parts[i].c_str(),
          (i + 1 < d->parts.size() ? O_PATH : O_RDONLY) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) continue;  // removed meanwhile
    ::fchmod(dir.get(), d->mode & ~umask_);
    const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(d->mtime), 0}};
    ::futimens(dir.get(), times);
  }
  if (!refused_.empty())
    return fail(std::to_string(refused_.size()) + " of the archive's entries could not be written");
  return {};
}

}  // namespace ward::cli
