// Where audit records go: JSON lines appended to a file (`--audit FILE`) and, for people, the
// one-line shorthand on stderr (`-v`). Used from the proxy's thread only.
#pragma once

#include <cstddef>
#include <string>

#include "audit/ocsf.h"
#include "base/fd.h"
#include "base/result.h"

namespace ward::audit {

class Sink {
 public:
  Sink() = default;
  // `path` "" writes no file; `shorthand` prints the one-line form on stderr. Past `max_bytes`
  // (0: no limit) the file is renamed to `path`.1 (replacing the one before) and a new one is
  // started: however many records a sandbox provokes, its audit takes at most twice that.
  static Result<Sink> open(const std::string& path, bool shorthand, std::size_t max_bytes = 0);

  // Whether anyone reads records: when not, the proxy builds none.
  bool enabled() const { return file_.valid() || shorthand_; }
  void write(const NetworkEvent& e);
  void write(const HttpEvent& e);
  void write(const ApiEvent& e);

 private:
  void append(const nlohmann::json& record);
  void rotate();

  UniqueFd file_;
  bool shorthand_ = false;
  std::string path_;
  std::size_t max_bytes_ = 0;
  std::size_t size_ = 0;          // of the file being written, as far as this sink knows
  bool reopen_pending_ = false;   // renamed, the new file not opened yet
  bool rotation_failed_ = false;  // the rename failed (said once)
};

}  // namespace ward::audit
