// Files of ward's state directory: created with their final mode from the start,
// replaced atomically, and written by one process at a time. Used by the CA, the gateway state and
// its secret store.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/result.h"

namespace ward::files {

// mkdir -p: every directory it creates gets `mode`; existing ones are left as they are.
Result<void> make_dirs(const std::string& path, mode_t mode);

// An exclusive flock(2) on `dir`/lock, held until the returned descriptor is closed. Serialises
// the processes that create or rewrite files of `dir`.
Result<UniqueFd> lock(const std::string& dir);

// The whole content of an open file; `path` names it in errors.
Result<std::string> read_all(int fd, const std::string& path);

// Replaces `dir`/`name` with `data`: written to a temporary file created with `mode` (so it is
// never more readable than that), synced, then renamed over `name`. The caller holds lock(dir).
Result<void> replace(const std::string& dir, const std::string& name, std::string_view data,
                     mode_t mode);

// rm -rf `path` through directory descriptors: each directory is opened relative to the one it
// is in (O_NOFOLLOW), and every unlink names an entry of a directory held open, so a tree that
// changes while it is removed — a directory swapped for a symlink — never leads the removal
// outside it; another filesystem mounted inside is not entered. Directories deeper than a few
// dozen levels are moved up to the top first, so that depth costs neither stack nor
// descriptors. `stop` (when given) is read between entries: true ends the removal early. False
// when something was left.
bool remove_tree(const std::string& path, const std::atomic<bool>* stop = nullptr);

}  // namespace ward::files
