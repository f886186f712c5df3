// Provider secret values, kept apart from the SQLite state (store.h): one JSON file of mode 0600,
//   {"providers": {NAME: {VARIABLE: VALUE}}}
// rewritten atomically on every change (a 0600 temporary file beside it, synced, renamed over
// it, the directory synced). Nothing here logs a value, and no error message carries one.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "base/result.h"

namespace ward::gateway {

class SecretStore {
 public:
  using Values = std::map<std::string, std::string>;  // variable name -> secret value

  // Reads `path`; a missing file is an empty store (created by the first put). Refuses a file
  // that is not a regular file (a symbolic link included), that another uid owns, or whose mode
  // lets the group or others in.
  static Result<SecretStore> open(std::string path);

  // Sets the values of `provider` (replacing any it had) and rewrites the file. On failure the
  // file and this store are unchanged.
  Result<void> put(const std::string& provider, Values values);
  std::optional<Values> get(const std::string& provider) const;
  // Removes `provider`; the file is rewritten only when it was there.
  Result<void> erase(const std::string& provider);

  const std::string& path() const { return path_; }

 private:
  using Providers = std::map<std::string, Values>;
  SecretStore(std::string path, Providers providers)
      : path_(std::move(path)), providers_(std::move(providers)) {}
  Result<void> save(const Providers& providers) const;

  std::string path_;
  Providers providers_;
};

}  // namespace ward::gateway
