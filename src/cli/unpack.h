// Unpacking a directory download: the tar archive a gateway sends (the sandbox's files, so the
// agent's to shape), written beneath the directory the user named and nowhere else.
//
// libarchive reads the archive (archive_read, tar only) and writes each entry (archive_write_disk,
// with its SECURE_SYMLINKS, SECURE_NODOTDOT, SECURE_NOABSOLUTEPATHS and NO_OVERWRITE checks, no
// owners, no ACLs, xattrs or file flags). What is written is ward's decision, made on each entry
// before libarchive sees it, because libarchive's checks alone let a download replace things:
// it removes a symlink that stands where an entry goes, and NO_OVERWRITE skips an existing file
// without a word. So ward walks every entry's path one name at a time from the directory, without
// following anything: an entry that meets a symlink on its way or anything already at its place
// (but a directory, for a directory) is refused, as is everything beneath it, the rest is written,
// and the download fails naming them. A symlink entry is made only when its target, read from
// where the link is, stays inside the downloaded tree (relative, its `..` climbing no higher than
// the tree's top): absolute ones and ones that climb out are left out and named, as are device
// nodes and FIFOs. Hard links are made only to files this download wrote. Modes are the
// archive's without set-id or sticky bits, under the umask; modification times kept.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

struct archive;
struct archive_entry;

namespace ward::cli {

// archive_write_disk's options for a download (ARCHIVE_EXTRACT_*): times; nothing overwritten; no
// symlink on the way, no ".." and no absolute names; and no owners, ACLs, xattrs or file flags.
// libarchive's own line of defence, behind the checks the Unpacker makes first.
int write_disk_options();

class Unpacker {
 public:
  // The most an archive may hold: the gateway's limit for a packed directory.
  static constexpr std::size_t kMaxArchive = 64u << 20;

  // `root`: the destination directory, open (O_DIRECTORY).
  explicit Unpacker(UniqueFd root);

  // The archive's next bytes, as they come; they are held until finish() (libarchive reads at its
  // own pace). Fails past kMaxArchive.
  Result<void> feed(std::string_view bytes);
  // The archive's end: unpacks it. libarchive writes relative to the working directory, so that
  // is the destination while this runs, and the one before again when it returns. Fails on an
  // archive that is not tar or is cut short, on an error writing (a full disk), or when an entry
  // was refused (refused() says which).
  Result<void> finish();

  // "path -> target (why)" or "path (a FIFO)": what was not unpacked on purpose.
  const std::vector<std::string>& left_out() const { return left_out_; }
  // "path: why": what could not be written because something was in the way.
  const std::vector<std::string>& refused() const { return refused_; }

 private:
  enum class Way { kClear, kThere, kBlocked };

  Result<void> unpack();
  Result<void> entry(archive* in, archive* out, archive_entry* e);
  // Whether `parts` may be written: each directory on the way, as far as they exist, a directory
  // and not a symlink, and nothing at the end (kThere: a directory, and `directory` is asked
  // for). kBlocked refuses the entry.
  Way way_to(const std::vector<std::string>& parts, const std::string& shown, bool directory);
  bool beneath_refused(const std::vector<std::string>& parts) const;
  void refuse(const std::vector<std::string>& parts, const std::string& shown, std::string why);

  UniqueFd root_;
  std::string archive_;
  std::set<std::vector<std::string>> written_;        // regular files this download wrote
  std::set<std::vector<std::string>> refused_paths_;  // nothing is written beneath these
  std::vector<std::string> left_out_, refused_;
};

}  // namespace ward::cli
