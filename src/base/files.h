// Files of ward's state directory: created with their final mode from the start,
// replaced atomically, and written by one process at a time. Used by the CA, the gateway state and
// its secret store.
#pragma once

#include <sys/types.h>

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

}  // namespace ward::files
