#include "gateway/store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "base/fd.h"

namespace ward::gateway {

// The prepared statements of one connection, by their SQL: each is compiled once
// (SQLITE_PREPARE_PERSISTENT) and reset after every use, where the gateway used to parse and plan
// the same dozen statements at every request.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  ~StatementCache() {
    for (auto& [sql, entry] : entries_) sqlite3_finalize(entry.stmt);
  }
  sqlite3* db() const { return db_; }

  struct Entry {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  // The cached entry for `sql`, compiled now if it is new; null (rc set) when it does not compile,
  // or when it is in use already (a statement run inside another's loop): the caller then
  // prepares one of its own.
  Entry* take(std::string_view sql, int& rc) {
    rc = SQLITE_OK;
    auto found = entries_.find(sql);
    if (found == entries_.end()) {
      sqlite3_stmt* stmt = nullptr;
      rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return nullptr;
      }
      found = entries_.emplace(std::string(sql), Entry{stmt}).first;
    }
    if (found->second.in_use) return nullptr;
    found->second.in_use = true;
    return &found->second;
  }

 private:
  sqlite3* db_;
  std::map<std::string, Entry, std::less<>> entries_;
};

namespace {

using nlohmann::json;

constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kCreateSettings =
    "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

// kMigrations[i] takes the schema from version i to version i + 1; the `settings` table (which
// holds schema_version) exists before any of them runs. Append, never edit.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE sandboxes (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL UNIQUE,
  status            TEXT NOT NULL,
  reason            TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  spec              TEXT NOT NULL,     -- JSON
  workdir           TEXT NOT NULL,
  managed_workspace INTEGER NOT NULL,
  labels            TEXT NOT NULL,     -- JSON object of strings
  providers         TEXT NOT NULL,     -- JSON array of strings
  exit_code         INTEGER,           -- NULL until the main process ended
  exit_signal       INTEGER NOT NULL,
  exit_at           INTEGER NOT NULL
);
CREATE INDEX sandboxes_by_creation ON sandboxes (created_at, name);
CREATE TABLE policy_revisions (
  sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
  revision   INTEGER NOT NULL,
  hash       TEXT NOT NULL,
  content    TEXT NOT NULL,
  status     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (sandbox_id, revision)
);
CREATE TABLE providers (
  name       TEXT PRIMARY KEY,
  profile    TEXT NOT NULL,
  variables  TEXT NOT NULL,            -- JSON array of strings
  created_at INTEGER NOT NULL
);
)sql",
    // A provider made from a user-defined profile keeps that profile's YAML ('' for a built-in).
    "ALTER TABLE providers ADD COLUMN profile_yaml TEXT NOT NULL DEFAULT ''",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

std::int64_t now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

tl::unexpected<Error> db_error(sqlite3* db, const std::string& what) {
  return fail(what + ": " + sqlite3_errmsg(db));
}

bool is_duplicate(sqlite3* db) {
  int code = sqlite3_extended_errcode(db);
  return code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY;
}

Result<void> exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK) return {};
  std::string text = message ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  return fail("database: " + text);
}

// A prepared statement: the cache's, or its own when the cache's is in use. Binding keeps the
// first error, which step() then reports.
class Statement {
 public:
  Statement(StatementCache& cache, std::string_view sql) : db_(cache.db()) {
    entry_ = cache.take(sql, rc_);
    if (entry_)
      stmt_ = entry_->stmt;
    else if (rc_ == SQLITE_OK)
      rc_ = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (!entry_) {
      sqlite3_finalize(stmt_);
      return;
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    entry_->in_use = false;
  }

  void bind(int i, const std::string& value) {
    keep(sqlite3_bind_text(stmt_, i, value.data(), static_cast<int>(value.size()),
                           SQLITE_TRANSIENT));
  }
  void bind(int i, std::int64_t value) { keep(sqlite3_bind_int64(stmt_, i, value)); }
  void bind(int i, std::optional<int> value) {
    keep(value ? sqlite3_bind_int64(stmt_, i, *value) : sqlite3_bind_null(stmt_, i));
  }

  // True while a row is ready, false once the statement is done.
  Result<bool> step() {
    if (rc_ != SQLITE_OK) return db_error(db_, "database");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return db_error(db_, "database");
  }
  // For statements that return no row.
  Result<void> run() {
    auto r = step();
    if (!r) return tl::unexpected(r.error());
    return {};
  }

  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  void keep(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
  }

  sqlite3* db_;
  StatementCache::Entry* entry_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// BEGIN IMMEDIATE on construction; rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Result<void> begin() {
    auto r = exec(db_, "BEGIN IMMEDIATE");
    open_ = r.has_value();
    return r;
  }
  Result<void> commit() {
    auto r = exec(db_, "COMMIT");
    if (r) open_ = false;
    return r;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

// JSON columns. dump() throws on invalid UTF-8: that is bad input, reported as an Error.
Result<std::string> dump(const json& value, const std::string& what) {
  try {
    return value.dump();
  } catch (const json::exception&) {
    return fail(what + " is not valid UTF-8");
  }
}

Result<std::vector<std::string>> string_list(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return fail("corrupt " + what + " in the database");
  std::vector<std::string> out;
  for (const json& item : j) {
    if (!item.is_string()) return fail("corrupt " + what + " in the database");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> string_map(const std::string& text,
                                                      const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return fail("corrupt " + what + " in the database");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) return fail("corrupt " + what + " in the database");
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// The columns of `sandboxes`, in the order bind_sandbox() binds them (?1..?14).
constexpr std::string_view kSandboxColumns =
    "id, name, status, reason, created_at, updated_at, spec, workdir, managed_workspace, labels, "
    "providers, exit_code, exit_signal, exit_at";

std::string select_sandboxes(std::string_view tail) {
  return std::string("SELECT ").append(kSandboxColumns).append(" FROM sandboxes ").append(tail);
}

Result<void> bind_sandbox(Statement& s, const SandboxRecord& r) {
  auto labels = dump(json(r.labels), "a label of sandbox " + r.name);
  if (!labels) return tl::unexpected(labels.error());
  auto providers = dump(json(r.providers), "a provider of sandbox " + r.name);
  if (!providers) return tl::unexpected(providers.error());
  s.bind(1, r.id);
  s.bind(2, r.name);
  s.bind(3, r.status);
  s.bind(4, r.reason);
  s.bind(5, r.created_at);
  s.bind(6, r.updated_at);
  s.bind(7, r.spec);
  s.bind(8, r.workdir);
  s.bind(9, std::int64_t{r.managed_workspace ? 1 : 0});
  s.bind(10, *labels);
  s.bind(11, *providers);
  s.bind(12, r.exit_code);
  s.bind(13, std::int64_t{r.exit_signal});
  s.bind(14, r.exit_at);
  return {};
}

Result<SandboxRecord> read_sandbox(const Statement& s) {
  SandboxRecord r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.status = s.text(2);
  r.reason = s.text(3);
  r.created_at = s.integer(4);
  r.updated_at = s.integer(5);
  r.spec = s.text(6);
  r.workdir = s.text(7);
  r.managed_workspace = s.integer(8) != 0;
  auto labels = string_map(s.text(9), "labels of sandbox " + r.id);
  if (!labels) return tl::unexpected(labels.error());
  r.labels = std::move(*labels);
  auto providers = string_list(s.text(10), "providers of sandbox " + r.id);
  if (!providers) return tl::unexpected(providers.error());
  r.providers = std::move(*providers);
  if (!s.is_null(11)) r.exit_code = static_cast<int>(s.integer(11));
  r.exit_signal = static_cast<int>(s.integer(12));
  r.exit_at = s.integer(13);
  return r;
}

constexpr std::string_view kSelectRevisions =
    "SELECT sandbox_id, revision, hash, content, status, created_at FROM policy_revisions "
    "WHERE sandbox_id = ?1 ";

PolicyRevision read_revision(const Statement& s) {
  return PolicyRevision{.sandbox_id = s.text(0),
                        .revision = static_cast<int>(s.integer(1)),
                        .hash = s.text(2),
                        .content = s.text(3),
                        .status = s.text(4),
                        .created_at = s.integer(5)};
}

// Runs a revisions query (bound to `sandbox_id`) and collects its rows.
Result<std::vector<PolicyRevision>> query_revisions(StatementCache& cache,
                                                    const std::string& sandbox_id,
                                                    std::string_view tail) {
  Statement s(cache, std::string(kSelectRevisions).append(tail));
  s.bind(1, sandbox_id);
  std::vector<PolicyRevision> out;
  for (;;) {
    auto row = s.step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    out.push_back(read_revision(s));
  }
}

Result<ProviderRecord> read_provider(const Statement& s) {
  ProviderRecord r{.name = s.text(0),
                   .profile = s.text(1),
                   .profile_yaml = s.text(4),
                   .created_at = s.integer(3)};
  auto variables = string_list(s.text(2), "variables of provider " + r.name);
  if (!variables) return tl::unexpected(variables.error());
  r.variables = std::move(*variables);
  return r;
}

// The database file exists with mode 0600 before SQLite opens it: SQLite then gives its -wal and
// -shm files the same mode.
Result<void> prepare_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("cannot open database " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail_errno("cannot stat database " + path);
  if (!S_ISREG(st.st_mode)) return fail("database " + path + " is not a regular file");
  if ((st.st_mode & 07777) != 0600 && ::fchmod(fd.get(), 0600) != 0)
    return fail_errno("cannot make database " + path + " mode 0600");
  return {};
}

}  // namespace

Result<Store> Store::open(const std::string& path) {
  if (auto r = prepare_file(path); !r) return tl::unexpected(r.error());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return fail("cannot open database " + path + ": " + message);
  }
  Store store(db);  // owns `db` from here on
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);

  {
    Statement wal(*store.statements_, "PRAGMA journal_mode = WAL");
    auto row = wal.step();
    if (!row) return fail("database " + path + ": " + row.error().message);
    if (!*row || wal.text(0) != "wal")
      return fail("database " + path + ": cannot switch to WAL journal mode");
  }
  // Outside any transaction, where SQLite honours it.
  if (auto r = exec(db, "PRAGMA foreign_keys = ON"); !r) return tl::unexpected(r.error());

  Transaction tx(db);
  if (auto r = tx.begin(); !r) return tl::unexpected(r.error());
  if (auto r = exec(db, kCreateSettings); !r) return tl::unexpected(r.error());
  auto version_text = store.setting("schema_version");
  if (!version_text) return tl::unexpected(version_text.error());
  int version = 0;
  if (*version_text) {
    const std::string& v = **version_text;
    if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos)
      return fail("database " + path + ": bad schema_version setting");
    version = std::stoi(v);
  }
  if (version > kSchemaVersion) {
    return fail("database " + path + " has schema version " + std::to_string(version) +
                ", newer than this ward's (" + std::to_string(kSchemaVersion) + ")");
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    if (auto r = exec(db, kMigrations[v]); !r) return tl::unexpected(r.error());
  }
  if (version != kSchemaVersion) {
    if (auto r = store.set_setting("schema_version", std::to_string(kSchemaVersion)); !r)
      return tl::unexpected(r.error());
  }
  if (auto r = tx.commit(); !r) return tl::unexpected(r.error());
  return store;
}

Store::Store(sqlite3* db) : db_(db), statements_(std::make_unique<StatementCache>(db)) {}

Store::Store(Store&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), statements_(std::move(other.statements_)) {}

Store& Store::operator=(Store&& other) noexcept {
  if (this != &other) {
    statements_.reset();  // finalized before their connection closes
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    statements_ = std::move(other.statements_);
  }
  return *this;
}

Store::~Store() {
  statements_.reset();
  sqlite3_close_v2(db_);
}

Result<void> Store::insert_sandbox(const SandboxRecord& record) {
  Statement s(*statements_,
              std::string("INSERT INTO sandboxes (")
                  .append(kSandboxColumns)
                  .append(") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                          "?14)"));
  if (auto r = bind_sandbox(s, record); !r) return r;
  auto r = s.run();
  if (!r && is_duplicate(db_)) return fail("already exists");
  return r;
}

Result<void> Store::update_sandbox(const SandboxRecord& record) {
  Statement s(*statements_,
              "UPDATE sandboxes SET name = ?2, status = ?3, reason = ?4, created_at = ?5, "
              "updated_at = ?6, spec = ?7, workdir = ?8, managed_workspace = ?9, labels = ?10, "
              "providers = ?11, exit_code = ?12, exit_signal = ?13, exit_at = ?14 WHERE id = ?1");
  if (auto r = bind_sandbox(s, record); !r) return r;
  auto r = s.run();
  if (!r && is_duplicate(db_)) return fail("already exists");
  if (!r) return r;
  if (sqlite3_changes(db_) == 0) return fail("no sandbox " + record.id);
  return {};
}

Result<std::optional<SandboxRecord>> Store::find_sandbox(const std::string& name_or_id) {
  // A name may look like an id ("sb-" + 16 hex digits are valid name characters): the id wins.
  Statement s(*statements_,
              select_sandboxes("WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1"));
  s.bind(1, name_or_id);
  auto row = s.step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::nullopt;
  auto record = read_sandbox(s);
  if (!record) return tl::unexpected(record.error());
  return std::move(*record);
}

Result<std::vector<SandboxRecord>> Store::list_sandboxes() {
  Statement s(*statements_, select_sandboxes("ORDER BY created_at, name"));
  std::vector<SandboxRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    auto record = read_sandbox(s);
    if (!record) return tl::unexpected(record.error());
    out.push_back(std::move(*record));
  }
}

Result<void> Store::delete_sandbox(const std::string& id) {
  // policy_revisions go with it (ON DELETE CASCADE; foreign keys are on).
  Statement s(*statements_, "DELETE FROM sandboxes WHERE id = ?1");
  s.bind(1, id);
  return s.run();
}

Result<Store::Added> Store::add_revision(const std::string& sandbox_id,
                                         const std::string& content) {
  std::string hash = sha256_hex(content);
  Transaction tx(db_);
  if (auto r = tx.begin(); !r) return tl::unexpected(r.error());
  auto newest = query_revisions(*statements_, sandbox_id, "ORDER BY revision DESC LIMIT 1");
  if (!newest) return tl::unexpected(newest.error());
  if (!newest->empty() && newest->front().hash == hash) return Added{newest->front(), false};

  PolicyRevision added{.sandbox_id = sandbox_id,
                       .revision = newest->empty() ? 1 : newest->front().revision + 1,
                       .hash = std::move(hash),
                       .content = content,
                       .status = "active",
                       .created_at = now()};
  Statement supersede(*statements_,
                      "UPDATE policy_revisions SET status = 'superseded' "
                      "WHERE sandbox_id = ?1 AND status = 'active'");
  supersede.bind(1, sandbox_id);
  if (auto r = supersede.run(); !r) return tl::unexpected(r.error());
  Statement insert(*statements_,
                   "INSERT INTO policy_revisions (sandbox_id, revision, hash, content, status, "
                   "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  insert.bind(1, added.sandbox_id);
  insert.bind(2, std::int64_t{added.revision});
  insert.bind(3, added.hash);
  insert.bind(4, added.content);
  insert.bind(5, added.status);
  insert.bind(6, added.created_at);
  if (auto r = insert.run(); !r) {
    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_FOREIGNKEY)
      return fail("no sandbox " + sandbox_id);
    return tl::unexpected(r.error());
  }
  if (auto r = tx.commit(); !r) return tl::unexpected(r.error());
  return Added{std::move(added), true};
}

Result<std::optional<PolicyRevision>> Store::active_revision(const std::string& sandbox_id) {
  auto rows = query_revisions(*statements_, sandbox_id,
                              "AND status = 'active' ORDER BY revision DESC "
                              "LIMIT 1");
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return std::nullopt;
  return std::move(rows->front());
}

Result<std::vector<PolicyRevision>> Store::revisions(const std::string& sandbox_id) {
  return query_revisions(*statements_, sandbox_id, "ORDER BY revision");
}

Result<void> Store::insert_provider(const ProviderRecord& record) {
  auto variables = dump(json(record.variables), "a variable of provider " + record.name);
  if (!variables) return tl::unexpected(variables.error());
  Statement s(*statements_,
              "INSERT INTO providers (name, profile, variables, created_at, profile_yaml) "
              "VALUES (?1, ?2, ?3, ?4, ?5)");
  s.bind(1, record.name);
  s.bind(2, record.profile);
  s.bind(3, *variables);
  s.bind(4, record.created_at);
  s.bind(5, record.profile_yaml);
  auto r = s.run();
  if (!r && is_duplicate(db_)) return fail("already exists");
  return r;
}

Result<std::optional<ProviderRecord>> Store::find_provider(const std::string& name) {
  Statement s(
      *statements_,
      "SELECT name, profile, variables, created_at, profile_yaml FROM providers WHERE name = ?1");
  s.bind(1, name);
  auto row = s.step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::nullopt;
  auto record = read_provider(s);
  if (!record) return tl::unexpected(record.error());
  return std::move(*record);
}

Result<std::vector<ProviderRecord>> Store::list_providers() {
  Statement s(*statements_,
              "SELECT name, profile, variables, created_at, profile_yaml FROM providers "
              "ORDER BY name");
  std::vector<ProviderRecord> out;
  for (;;) {
    auto row = s.step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    auto record = read_provider(s);
    if (!record) return tl::unexpected(record.error());
    out.push_back(std::move(*record));
  }
}

Result<bool> Store::delete_provider(const std::string& name) {
  Statement s(*statements_, "DELETE FROM providers WHERE name = ?1");
  s.bind(1, name);
  if (auto r = s.run(); !r) return tl::unexpected(r.error());
  return sqlite3_changes(db_) > 0;
}

Result<std::optional<std::string>> Store::setting(const std::string& key) {
  Statement s(*statements_, "SELECT value FROM settings WHERE key = ?1");
  s.bind(1, key);
  auto row = s.step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::nullopt;
  return s.text(0);
}

Result<void> Store::set_setting(const std::string& key, const std::string& value) {
  Statement s(*statements_,
              "INSERT INTO settings (key, value) VALUES (?1, ?2) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  s.bind(1, key);
  s.bind(2, value);
  return s.run();
}

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    // Only a broken OpenSSL installation fails here: an invariant, not bad input.
    std::fputs("ward: OpenSSL cannot compute SHA-256\n", stderr);
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

}  // namespace ward::gateway
