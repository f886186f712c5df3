#include "gateway/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "gateway/secrets.h"

namespace ward::gateway {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ward-store-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

unsigned mode_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

Store open_store(const std::string& path) {
  auto s = Store::open(path);
  if (!s) {
    ADD_FAILURE() << s.error().describe();
    std::abort();
  }
  return std::move(*s);
}

// Runs one query returning text on its own connection (checks what the database really holds).
std::string query_text(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      if (!out.empty()) out += ",";
      const unsigned char* t = sqlite3_column_text(stmt, 0);
      out += t ? reinterpret_cast<const char*>(t) : "NULL";
    }
  } else {
    ADD_FAILURE() << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

SandboxRecord sandbox(std::string id, std::string name, std::int64_t created_at = 100) {
  SandboxRecord r;
  r.id = std::move(id);
  r.name = std::move(name);
  r.status = "running";
  r.created_at = created_at;
  r.updated_at = created_at;
  r.spec = R"({"command":["sleep","infinity"]})";
  r.workdir = "/var/lib/ward/workspaces/" + r.name;
  r.managed_workspace = true;
  r.labels = {{"team", "infra"}, {"tier", "dev's"}};
  r.providers = {"github", "anthropic"};
  return r;
}

void expect_same(const SandboxRecord& a, const SandboxRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.workdir, b.workdir);
  EXPECT_EQ(a.managed_workspace, b.managed_workspace);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.providers, b.providers);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.exit_signal, b.exit_signal);
  EXPECT_EQ(a.exit_at, b.exit_at);
}

const std::string kIdA = "sb-0123456789abcdef";
const std::string kIdB = "sb-fedcba9876543210";

TEST(Store, CreatesSchemaInWalModeWithMode0600) {
  TempDir dir;
  std::string path = dir / "state.db";
  {
    Store store = open_store(path);
    EXPECT_EQ(mode_of(path), 0600u);
    ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "a")));
    // While the connection is open, the WAL file exists, with the database's mode.
    EXPECT_EQ(mode_of(path + "-wal"), 0600u);
    EXPECT_EQ(mode_of(path + "-shm"), 0600u);
    auto version = store.setting("schema_version");
    ASSERT_TRUE(version);
    EXPECT_EQ(*version, std::optional<std::string>("2"));
  }
  EXPECT_EQ(query_text(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query_text(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
            "policy_revisions,providers,sandboxes,settings");
}

TEST(Store, TightensAnExistingFileTo0600) {
  TempDir dir;
  std::string path = dir / "state.db";
  write_file(path, "", 0644);
  Store store = open_store(path);
  EXPECT_EQ(mode_of(path), 0600u);
}

TEST(Store, RefusesANewerSchema) {
  TempDir dir;
  std::string path = dir / "state.db";
  ASSERT_TRUE(open_store(path).set_setting("schema_version", "99"));
  auto s = Store::open(path);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error().message, "schema version 99")) << s.error().message;
}

TEST(Store, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  std::string path = dir / "state.db";
  write_file(path, std::string(4096, 'x'), 0600);
  EXPECT_FALSE(Store::open(path));
}

TEST(Store, InsertThenFindByNameOrId) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  SandboxRecord a = sandbox(kIdA, "agent-1");
  a.exit_code = 3;
  a.exit_signal = 9;
  a.exit_at = 250;
  a.reason = "killed";
  ASSERT_TRUE(store.insert_sandbox(a));

  for (const std::string& key : {kIdA, std::string("agent-1")}) {
    auto found = store.find_sandbox(key);
    ASSERT_TRUE(found) << found.error().message;
    ASSERT_TRUE(found->has_value()) << key;
    expect_same(**found, a);
  }
  auto missing = store.find_sandbox("agent-2");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
  // A value that looks like SQL stays a value.
  auto injected = store.find_sandbox("x' OR '1'='1");
  ASSERT_TRUE(injected);
  EXPECT_FALSE(injected->has_value());
}

TEST(Store, NoExitCodeStaysNull) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  SandboxRecord a = sandbox(kIdA, "a");
  a.labels.clear();
  a.providers.clear();
  a.managed_workspace = false;
  ASSERT_TRUE(store.insert_sandbox(a));
  auto found = store.find_sandbox(kIdA);
  ASSERT_TRUE(found && found->has_value());
  expect_same(**found, a);
  EXPECT_FALSE((*found)->exit_code.has_value());
}

TEST(Store, AnIdWinsOverANameThatLooksLikeIt) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdB, kIdA, 100)));  // named like the other's id
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "real", 200)));
  auto found = store.find_sandbox(kIdA);
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->name, "real");
}

TEST(Store, DuplicateNameOrIdIsRefused) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "a")));
  auto same_name = store.insert_sandbox(sandbox(kIdB, "a"));
  ASSERT_FALSE(same_name);
  EXPECT_EQ(same_name.error().message, "already exists");
  auto same_id = store.insert_sandbox(sandbox(kIdA, "b"));
  ASSERT_FALSE(same_id);
  EXPECT_EQ(same_id.error().message, "already exists");
  auto all = store.list_sandboxes();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
  // The statement that failed twice serves the next insert: prepared once, reset after each use,
  // its bindings cleared.
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdB, "b")));
  all = store.list_sandboxes();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  auto b = store.find_sandbox("b");
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->id, kIdB);
}

TEST(Store, UpdateRewritesEveryField) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "a")));
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdB, "b")));
  SandboxRecord changed = sandbox(kIdA, "a2", 150);
  changed.status = "stopped";
  changed.reason = "stopped by request";
  changed.updated_at = 300;
  changed.spec = "{}";
  changed.workdir = "/srv/work";
  changed.managed_workspace = false;
  changed.labels = {{"team", "ml"}};
  changed.providers = {"openai"};
  changed.exit_code = 0;
  changed.exit_signal = 15;
  changed.exit_at = 299;
  ASSERT_TRUE(store.update_sandbox(changed));
  auto found = store.find_sandbox("a2");
  ASSERT_TRUE(found && found->has_value());
  expect_same(**found, changed);
  auto old_name = store.find_sandbox("a");
  ASSERT_TRUE(old_name);
  EXPECT_FALSE(old_name->has_value());

  // Clearing the exit code again.
  changed.exit_code.reset();
  ASSERT_TRUE(store.update_sandbox(changed));
  EXPECT_FALSE((*store.find_sandbox(kIdA))->exit_code.has_value());

  auto taken = store.update_sandbox(sandbox(kIdA, "b"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().message, "already exists");
  EXPECT_FALSE(store.update_sandbox(sandbox("sb-0000000000000000", "c")));
}

TEST(Store, ListIsOrderedByCreationThenName) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  ASSERT_TRUE(store.insert_sandbox(sandbox("sb-0000000000000001", "zeta", 200)));
  ASSERT_TRUE(store.insert_sandbox(sandbox("sb-0000000000000002", "beta", 200)));
  ASSERT_TRUE(store.insert_sandbox(sandbox("sb-0000000000000003", "omega", 100)));
  ASSERT_TRUE(store.insert_sandbox(sandbox("sb-0000000000000004", "alpha", 300)));
  auto all = store.list_sandboxes();
  ASSERT_TRUE(all) << all.error().message;
  std::vector<std::string> names;
  for (const SandboxRecord& r : *all) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"omega", "beta", "zeta", "alpha"}));
}

TEST(Store, DeleteTakesTheRevisionsAlong) {
  TempDir dir;
  std::string path = dir / "state.db";
  Store store = open_store(path);
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "a")));
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdB, "b")));
  ASSERT_TRUE(store.add_revision(kIdA, "one"));
  ASSERT_TRUE(store.add_revision(kIdA, "two"));
  ASSERT_TRUE(store.add_revision(kIdB, "one"));
  ASSERT_TRUE(store.delete_sandbox(kIdA));

  EXPECT_FALSE(store.find_sandbox(kIdA)->has_value());
  EXPECT_TRUE(store.revisions(kIdA)->empty());
  EXPECT_EQ(store.revisions(kIdB)->size(), 1u);
  EXPECT_EQ(query_text(path, "SELECT COUNT(*) FROM policy_revisions"), "1");
  EXPECT_TRUE(store.delete_sandbox(kIdA));  // already gone: nothing to do

  // The same id again starts from revision 1.
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "a")));
  auto again = store.add_revision(kIdA, "two");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->revision.revision, 1);
}

TEST(Store, RevisionsAreNumberedAndIdempotentByHash) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  ASSERT_TRUE(store.insert_sandbox(sandbox(kIdA, "a")));
  auto none = store.active_revision(kIdA);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());

  auto first = store.add_revision(kIdA, "version: 1\n");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->changed);
  EXPECT_EQ(first->revision.revision, 1);
  EXPECT_EQ(first->revision.status, "active");
  EXPECT_EQ(first->revision.hash, sha256_hex("version: 1\n"));
  EXPECT_EQ(first->revision.sandbox_id, kIdA);
  EXPECT_GT(first->revision.created_at, 0);

  auto same = store.add_revision(kIdA, "version: 1\n");
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed);
  EXPECT_EQ(same->revision.revision, 1);
  EXPECT_EQ(same->revision.status, "active");

  auto second = store.add_revision(kIdA, "version: 1\nnetwork: {}\n");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->changed);
  EXPECT_EQ(second->revision.revision, 2);

  // Back to the first content: only the newest counts, so it is a new revision.
  auto third = store.add_revision(kIdA, "version: 1\n");
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->changed);
  EXPECT_EQ(third->revision.revision, 3);

  auto all = store.revisions(kIdA);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].revision, 1);
  EXPECT_EQ((*all)[0].status, "superseded");
  EXPECT_EQ((*all)[1].revision, 2);
  EXPECT_EQ((*all)[1].status, "superseded");
  EXPECT_EQ((*all)[1].content, "version: 1\nnetwork: {}\n");
  EXPECT_EQ((*all)[2].revision, 3);
  EXPECT_EQ((*all)[2].status, "active");

  auto active = store.active_revision(kIdA);
  ASSERT_TRUE(active && active->has_value());
  EXPECT_EQ((*active)->revision, 3);
  EXPECT_EQ((*active)->content, "version: 1\n");
}

TEST(Store, RevisionOfAnUnknownSandboxIsRefused) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  auto r = store.add_revision(kIdA, "x");
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message, kIdA)) << r.error().message;
  EXPECT_TRUE(store.revisions(kIdA)->empty());
}

TEST(Store, ProvidersCrud) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  ProviderRecord gh{.name = "github",
                    .profile = "github",
                    .variables = {"GITHUB_TOKEN", "GH_TOKEN"},
                    .created_at = 42};
  ProviderRecord ai{.name = "anthropic-work",
                    .profile = "anthropic",
                    .variables = {"ANTHROPIC_API_KEY"},
                    .created_at = 43};
  ASSERT_TRUE(store.insert_provider(gh));
  ASSERT_TRUE(store.insert_provider(ai));
  auto dup = store.insert_provider(gh);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message, "already exists");

  auto found = store.find_provider("github");
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->profile, "github");
  EXPECT_EQ((*found)->variables, gh.variables);
  EXPECT_EQ((*found)->created_at, 42);
  EXPECT_FALSE(store.find_provider("openai")->has_value());

  auto all = store.list_providers();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "anthropic-work");
  EXPECT_EQ((*all)[1].name, "github");

  auto deleted = store.delete_provider("github");
  ASSERT_TRUE(deleted);
  EXPECT_TRUE(*deleted);
  auto again = store.delete_provider("github");
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_EQ(store.list_providers()->size(), 1u);
}

TEST(Store, Settings) {
  TempDir dir;
  Store store = open_store(dir / "state.db");
  auto missing = store.setting("default_policy");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store.set_setting("default_policy", "version: 1\n"));
  EXPECT_EQ(*store.setting("default_policy"), std::optional<std::string>("version: 1\n"));
  ASSERT_TRUE(store.set_setting("default_policy", "version: 2\n"));
  EXPECT_EQ(*store.setting("default_policy"), std::optional<std::string>("version: 2\n"));
}

TEST(Store, ReopeningKeepsEverything) {
  TempDir dir;
  std::string path = dir / "state.db";
  SandboxRecord a = sandbox(kIdA, "a");
  {
    Store first = open_store(path);
    Store store = std::move(first);  // a moved Store keeps working
    ASSERT_TRUE(store.insert_sandbox(a));
    ASSERT_TRUE(store.add_revision(kIdA, "one"));
    ASSERT_TRUE(store.add_revision(kIdA, "two"));
    ASSERT_TRUE(store.insert_provider({.name = "github", .profile = "github"}));
    ASSERT_TRUE(store.set_setting("k", "v"));
  }
  Store store = open_store(path);
  auto found = store.find_sandbox("a");
  ASSERT_TRUE(found && found->has_value());
  expect_same(**found, a);
  EXPECT_EQ(store.revisions(kIdA)->size(), 2u);
  EXPECT_EQ((*store.active_revision(kIdA))->content, "two");
  EXPECT_TRUE(store.find_provider("github")->has_value());
  EXPECT_EQ(*store.setting("k"), std::optional<std::string>("v"));
  EXPECT_EQ(*store.setting("schema_version"), std::optional<std::string>("2"));
}

// A database a version-1 gateway wrote (no profile_yaml column) opens, migrated, with its
// providers intact and marked built-in.
TEST(Store, MigratesAVersion1Database) {
  TempDir dir;
  const std::string path = dir / "state.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* v1 =
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO settings VALUES ('schema_version', '1');"
        "CREATE TABLE sandboxes (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, status TEXT NOT "
        "NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
        "spec TEXT NOT NULL, workdir TEXT NOT NULL, managed_workspace INTEGER NOT NULL, labels "
        "TEXT NOT NULL, providers TEXT NOT NULL, exit_code INTEGER, exit_signal INTEGER NOT "
        "NULL, exit_at INTEGER NOT NULL);"
        "CREATE TABLE policy_revisions (sandbox_id TEXT NOT NULL, revision INTEGER NOT NULL, "
        "hash TEXT NOT NULL, content TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER "
        "NOT NULL, PRIMARY KEY (sandbox_id, revision));"
        "CREATE TABLE providers (name TEXT PRIMARY KEY, profile TEXT NOT NULL, variables TEXT "
        "NOT NULL, created_at INTEGER NOT NULL);"
        "INSERT INTO providers VALUES ('github', 'github', '[\"GITHUB_TOKEN\"]', 7);";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  Store store = open_store(path);
  EXPECT_EQ(*store.setting("schema_version"), std::optional<std::string>("2"));
  auto found = store.find_provider("github");
  ASSERT_TRUE(found && found->has_value());
  EXPECT_EQ((*found)->variables, std::vector<std::string>{"GITHUB_TOKEN"});
  EXPECT_EQ((*found)->profile_yaml, "");
  ASSERT_TRUE(
      store.insert_provider({.name = "mine", .profile = "acme", .profile_yaml = "id: acme\n"}));
  EXPECT_EQ((*store.find_provider("mine"))->profile_yaml, "id: acme\n");
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Secrets.

const std::string kCanary = "ghp_CANARY_SECRET_5e1d";

SecretStore open_secrets(const std::string& path) {
  auto s = SecretStore::open(path);
  if (!s) {
    ADD_FAILURE() << s.error().describe();
    std::abort();
  }
  return std::move(*s);
}

std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

TEST(Secrets, MissingFileIsEmptyAndPutCreatesIt0600) {
  TempDir dir;
  std::string path = dir / "secrets.json";
  SecretStore secrets = open_secrets(path);
  EXPECT_FALSE(secrets.get("github"));
  EXPECT_FALSE(fs::exists(path));

  ::mode_t old_umask = ::umask(0);  // even with nothing masked, the file is 0600
  auto put = secrets.put("github", {{"GITHUB_TOKEN", kCanary}, {"GH_TOKEN", "other"}});
  ::umask(old_umask);
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(entries(dir.path()), std::set<std::string>{"secrets.json"});  // no temporary left
  auto values = secrets.get("github");
  ASSERT_TRUE(values);
  EXPECT_EQ(values->at("GITHUB_TOKEN"), kCanary);
}

TEST(Secrets, ValuesRoundTripThroughTheFile) {
  TempDir dir;
  std::string path = dir / "secrets.json";
  SecretStore::Values gh{{"GITHUB_TOKEN", kCanary}};
  SecretStore::Values ai{{"ANTHROPIC_API_KEY", "sk-ant-\"quoted\"\n\\ünïcode"}, {"EMPTY", ""}};
  {
    SecretStore secrets = open_secrets(path);
    ASSERT_TRUE(secrets.put("github", gh));
    ASSERT_TRUE(secrets.put("anthropic", ai));
  }
  SecretStore secrets = open_secrets(path);
  EXPECT_EQ(secrets.get("github"), gh);
  EXPECT_EQ(secrets.get("anthropic"), ai);
  EXPECT_FALSE(secrets.get("openai"));

  auto doc = read_file(path);
  EXPECT_TRUE(contains(doc, "\"providers\"")) << doc;
}

TEST(Secrets, EveryChangeReplacesTheFileAtomically) {
  TempDir dir;
  std::string path = dir / "secrets.json";
  SecretStore secrets = open_secrets(path);
  ASSERT_TRUE(secrets.put("github", {{"GITHUB_TOKEN", kCanary}}));
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  ASSERT_TRUE(secrets.put("github", {{"GITHUB_TOKEN", "rotated"}}));
  struct stat after;
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  // A new file renamed over the old one, never the old one rewritten in place.
  EXPECT_NE(before.st_ino, after.st_ino);
  EXPECT_EQ(after.st_mode & 07777, 0600u);
  EXPECT_FALSE(contains(read_file(path), kCanary));
  EXPECT_EQ(entries(dir.path()), std::set<std::string>{"secrets.json"});

  ASSERT_TRUE(secrets.erase("github"));
  EXPECT_FALSE(secrets.get("github"));
  EXPECT_FALSE(contains(read_file(path), "rotated"));
  EXPECT_TRUE(secrets.erase("github"));  // already gone: nothing to do
  EXPECT_FALSE(open_secrets(path).get("github"));
}

TEST(Secrets, AFailedPutChangesNothingAndNamesNoValue) {
  TempDir dir;
  std::string path = dir / "secrets.json";
  SecretStore secrets = open_secrets(path);
  ASSERT_TRUE(secrets.put("github", {{"GITHUB_TOKEN", kCanary}}));
  std::string before = read_file(path);
  std::string bad = kCanary + "\xff";  // not UTF-8: JSON cannot hold it
  auto r = secrets.put("github", {{"GITHUB_TOKEN", bad}});
  ASSERT_FALSE(r);
  EXPECT_FALSE(contains(r.error().describe(), kCanary)) << r.error().describe();
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(secrets.get("github")->at("GITHUB_TOKEN"), kCanary);
  EXPECT_EQ(entries(dir.path()), std::set<std::string>{"secrets.json"});
}

TEST(Secrets, RefusesAFileOthersCanRead) {
  TempDir dir;
  std::string path = dir / "secrets.json";
  write_file(path, R"({"providers": {"github": {"GITHUB_TOKEN": ")" + kCanary + "\"}}}", 0644);
  auto s = SecretStore::open(path);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error().message, "0644")) << s.error().message;
  EXPECT_FALSE(contains(s.error().describe(), kCanary));
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_FALSE(SecretStore::open(path));
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto ok = SecretStore::open(path);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->get("github")->at("GITHUB_TOKEN"), kCanary);
}

TEST(Secrets, RefusesAFileOfAnotherUid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another uid";
  TempDir dir;
  std::string path = dir / "secrets.json";
  write_file(path, R"({"providers": {}})", 0600);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  auto s = SecretStore::open(path);
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error().message, "uid 65534")) << s.error().message;
}

TEST(Secrets, RefusesASymlink) {
  TempDir dir;
  std::string target = dir / "real.json";
  write_file(target, R"({"providers": {}})", 0600);
  fs::create_symlink(target, dir / "secrets.json");
  auto s = SecretStore::open(dir / "secrets.json");
  ASSERT_FALSE(s);
  EXPECT_TRUE(contains(s.error().message, "symbolic link")) << s.error().message;
}

TEST(Secrets, MalformedFileIsRefusedWithoutQuotingIt) {
  TempDir dir;
  std::string path = dir / "secrets.json";
  for (const std::string& text :
       {R"({"providers": {"github": {"GITHUB_TOKEN": ")" + kCanary + "\"",
        R"({"providers": {"github": [")" + kCanary + "\"]}}",
        R"({"providers": {"github": {"GITHUB_TOKEN": ")" + kCanary + "\"}}, \"x\": 1}",
        R"([")" + kCanary + "\"]"}) {
    write_file(path, text, 0600);
    auto s = SecretStore::open(path);
    ASSERT_FALSE(s) << text;
    EXPECT_FALSE(contains(s.error().describe(), kCanary)) << s.error().describe();
  }
}

}  // namespace
}  // namespace ward::gateway
