// Unpacking a directory download: the tar archive a gateway sends (the sandbox's files, so the
// agent's to shape), written beneath the directory the user named and nowhere else.
//
// Every path is walked one name at a time from that directory, each step opened with O_NOFOLLOW:
// no symlink is ever followed, whether the archive made it a moment ago or it was there before
// (an earlier download's, an older ward's, the user's own). Nothing that exists is replaced
// (files are created with O_EXCL), so a member that meets something in its way, or lies beneath
// a symlink, is refused and the download fails once the rest is written. A symlink member is
// made only when its target, read from where the link is, stays inside the downloaded tree
// (relative, its `..` climbing no higher than the tree's top): absolute ones and ones that climb
// out are left out and named, as are device nodes and FIFOs. Hard links are made only to files
// this download wrote. No owners; modes as `tar --no-same-permissions` gives them (the archive's,
// without set-id bits, under the umask); modification times kept.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace ward::cli {

class Unpacker {
 public:
  // `root`: the destination directory, open (O_DIRECTORY).
  explicit Unpacker(UniqueFd root);

  // The archive's next bytes, as they come. Fails on an archive that is not tar, or on an error
  // writing (a full disk): then stop.
  Result<void> feed(std::string_view bytes);
  // The archive's end: directories get their modes and times. Fails when the archive was cut
  // short or a member was refused (refused() says which).
  Result<void> finish();

  // "path -> target (why)" or "path (a FIFO)": what was not unpacked on purpose.
  const std::vector<std::string>& left_out() const { return left_out_; }
  // "path: why": what could not be written because something was in the way.
  const std::vector<std::string>& refused() const { return refused_; }

 private:
  enum class State { kHeader, kBody, kPadding, kEnd };
  enum class Body { kSkip, kFile, kLongName, kLongLink, kPax };
  struct Directory {
    std::vector<std::string> parts;
    mode_t mode;
    std::int64_t mtime;
  };

  Result<void> header(const unsigned char* block);
  Result<void> member(char type, const std::string& name, const std::string& link, mode_t mode,
                      std::int64_t mtime);
  Result<void> body(std::string_view bytes);
  Result<void> end_of_body();
  Result<void> parse_pax();
  // The directory holding `parts`' last name, walked (and made where missing) without following
  // symlinks; invalid, and the member refused, when something else is in the way.
  Result<UniqueFd> parent_of(const std::vector<std::string>& parts, const std::string& name);
  bool beneath_refused(const std::vector<std::string>& parts) const;
  void refuse(const std::vector<std::string>& parts, const std::string& name, std::string why);

  UniqueFd root_;
  mode_t umask_;
  State state_ = State::kHeader;
  Body body_ = Body::kSkip;
  std::string block_;  // a header's bytes until it is whole
  std::uint64_t remaining_ = 0, padding_ = 0;
  std::string meta_;  // a GNU long name, long link or pax header's bytes
  std::string long_name_, long_link_, pax_path_, pax_link_;
  bool has_pax_size_ = false, has_pax_mtime_ = false;
  std::uint64_t pax_size_ = 0;
  std::int64_t pax_mtime_ = 0;
  UniqueFd file_;  // the regular file being written
  std::int64_t file_mtime_ = 0;
  std::string file_name_;
  std::vector<Directory> directories_;          // made by this download: modes and times at the end
  std::set<std::vector<std::string>> written_;  // regular files this download wrote
  std::set<std::vector<std::string>> refused_paths_;  // nothing is written beneath these
  std::vector<std::string> left_out_, refused_;
};

}  // namespace ward::cli
