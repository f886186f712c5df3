// The gateway's state in SQLite (WAL): sandboxes, policy revisions, providers (without their
// values), settings. One Store per gateway process, used from one thread.
//
// Provider secret values do not live here: see secrets.h (a 0600 file of their own).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace ward::gateway {

struct SandboxRecord {
  std::string id;      // "sb-" + 16 hex digits
  std::string name;    // unique
  std::string status;  // creating | running | stopped | error
  std::string reason;
  std::int64_t created_at = 0;  // unix seconds
  std::int64_t updated_at = 0;
  std::string spec;  // JSON text: what create was given (command, env, workdir, ...)
  std::string workdir;
  bool managed_workspace = false;
  std::map<std::string, std::string> labels;
  std::vector<std::string> providers;
  // The main process's end, once it ended.
  std::optional<int> exit_code;
  int exit_signal = 0;
  std::int64_t exit_at = 0;
};

struct PolicyRevision {
  std::string sandbox_id;
  int revision = 0;
  std::string hash;     // sha256 hex of content
  std::string content;  // the policy text
  std::string status;   // active | superseded | refused
  std::int64_t created_at = 0;
};

struct ProviderRecord {
  std::string name;
  std::string profile;       // the profile id (built-in or loaded)
  std::string profile_yaml;  // a user-defined profile's file as given; "" for a built-in one
  std::vector<std::string> variables;
  std::int64_t created_at = 0;
};

class Store {
 public:
  // Opens (creating when missing) `path`, mode 0600, journal_mode=WAL, foreign keys on, schema
  // created or migrated (a schema_version setting).
  static Result<Store> open(const std::string& path);
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Sandboxes. insert fails (Error with message "already exists") on a duplicate name or id.
  Result<void> insert_sandbox(const SandboxRecord& record);
  Result<void> update_sandbox(const SandboxRecord& record);  // by id; every field
  Result<std::optional<SandboxRecord>> find_sandbox(const std::string& name_or_id);
  Result<std::vector<SandboxRecord>> list_sandboxes();  // ordered by created_at, then name
  Result<void> delete_sandbox(const std::string& id);   // its revisions too

  // Policy revisions per sandbox. add_revision: when the newest revision of the sandbox has the
  // same hash, nothing changes and it is returned (changed=false); else a new revision number
  // (newest + 1, starting at 1) becomes active and the previous active one superseded.
  struct Added {
    PolicyRevision revision;
    bool changed = false;
  };
  Result<Added> add_revision(const std::string& sandbox_id, const std::string& content);
  Result<std::optional<PolicyRevision>> active_revision(const std::string& sandbox_id);
  Result<std::vector<PolicyRevision>> revisions(const std::string& sandbox_id);  // oldest first

  // Providers (names only: values are kept apart).
  Result<void> insert_provider(const ProviderRecord& record);  // "already exists" on duplicate
  Result<std::optional<ProviderRecord>> find_provider(const std::string& name);
  Result<std::vector<ProviderRecord>> list_providers();
  Result<bool> delete_provider(const std::string& name);  // false when there was none

  // Settings: small key/value pairs (the gateway-wide default policy lives here).
  Result<std::optional<std::string>> setting(const std::string& key);
  Result<void> set_setting(const std::string& key, const std::string& value);

 private:
  explicit Store(sqlite3* db);
  sqlite3* db_ = nullptr;
  std::unique_ptr<class StatementCache> statements_;  // finalized before db_ closes
};

// sha256 of `data`, as 64 lower-case hex digits (OpenSSL).
std::string sha256_hex(const std::string& data);

}  // namespace ward::gateway
