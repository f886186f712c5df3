// libFuzzer target for the download unpacker (cli/unpack.h): libarchive reads the archive, ward
// decides on each entry, libarchive writes what ward lets through. The input's first byte is how
// many bytes each feed gets (the archive arrives in pieces), the rest is the archive. Every input
// is unpacked into a fresh directory beside a "victim" directory, with a symlink to the victim
// already in it (what an earlier download might have left). Invariants: nothing crashes; the victim
// stays empty and nothing appears beside the two; that symlink is still there (libarchive alone
// would replace it); no other symlink in the tree resolves to a place outside it. Built and run by
// bench/fuzz-unpack.sh.
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli/unpack.h"

namespace {

namespace fs = std::filesystem;

std::string make_base() {
  char tmpl[] = "/tmp/unpack-fuzz-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  char real[PATH_MAX];
  if (!::realpath(tmpl, real)) std::abort();
  std::string base = real;
  fs::create_directory(base + "/victim");
  return base;
}

void check(const std::string& base) {
  if (!fs::is_empty(base + "/victim")) {
    std::fprintf(stderr, "written into the victim\n");
    std::abort();
  }
  for (const auto& e : fs::directory_iterator(base)) {
    const std::string name = e.path().filename();
    if (name != "victim" && name != "root") {
      std::fprintf(stderr, "written beside the tree: %s\n", name.c_str());
      std::abort();
    }
  }
  const std::string root = base + "/root";
  std::error_code error;
  if (fs::read_symlink(root + "/old", error) != "../victim") {
    std::fprintf(stderr, "the symlink already there was replaced\n");
    std::abort();
  }
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (!it->is_symlink() || it->path().filename() == "old") continue;
    char real[PATH_MAX];
    if (!::realpath(it->path().c_str(), real)) continue;  // dangling, or a loop
    const std::string r = real;
    if (r != root && !r.starts_with(root + "/")) {
      std::fprintf(stderr, "a symlink out of the tree: %s -> %s\n", it->path().c_str(), real);
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string base = make_base();
  if (size < 1) return 0;
  const std::size_t piece = data[0] ? data[0] : 512;
  const std::string root = base + "/root";
  std::error_code ignored;
  fs::remove_all(root, ignored);
  fs::create_directory(root);
  if (::symlink("../victim", (root + "/old").c_str()) != 0) std::abort();
  {
    ward::cli::Unpacker unpacker(ward::UniqueFd(::open(root.c_str(), O_RDONLY | O_DIRECTORY)));
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    bool ok = true;
    while (ok && !rest.empty()) {
      const std::size_t n = std::min(piece, rest.size());
      ok = unpacker.feed(rest.substr(0, n)).has_value();
      rest.remove_prefix(n);
    }
    if (ok) static_cast<void>(unpacker.finish());
  }
  // What a mode took away (a directory without search rights) must not stop the check or removal.
  for (auto it = fs::recursive_directory_iterator(root, ignored);
       it != fs::recursive_directory_iterator(); it.increment(ignored))
    if (!it->is_symlink() && it->is_directory()) ::chmod(it->path().c_str(), 0700);
  check(base);
  return 0;
}
