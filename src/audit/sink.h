// Where audit records go: JSON lines appended to a file (`--audit FILE`) and, for people, the
// one-line shorthand on stderr (`-v`). Used from the proxy's thread only.
#pragma once

#include <string>

#include "audit/ocsf.h"
#include "base/fd.h"
#include "base/result.h"

namespace ward::audit {

class Sink {
 public:
  Sink() = default;
  // `path` "" writes no file; `shorthand` prints the one-line form on stderr.
  static Result<Sink> open(const std::string& path, bool shorthand);

  // Whether anyone reads records: when not, the proxy builds none.
  bool enabled() const { return file_.valid() || shorthand_; }
  void write(const NetworkEvent& e);
  void write(const HttpEvent& e);
  void write(const ApiEvent& e);

 private:
  void append(const nlohmann::json& record);

  UniqueFd file_;
  bool shorthand_ = false;
};

}  // namespace ward::audit
