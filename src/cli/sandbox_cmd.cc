// The gateway's commands: `ward sandbox ...`, `ward logs`, `ward status`, `ward provider ...`.
// Each builds a request of docs/gateway-api.md, sends it over the gateway's socket and renders the
// answer as a table, JSON or YAML (-o).
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <utility>

#include "base/fd.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "cli/gateway_client.h"
#include "cli/options.h"
#include "cli/unpack.h"
#include "creds/profile.h"
#include "creds/scan.h"
#include "policy/reader.h"

namespace ward::cli {
namespace {

constexpr std::size_t kMaxUpload = 64u << 20;  // the gateway's limit for PUT /files
constexpr std::size_t kMaxBody = 1u << 20;     // the gateway's limit for a JSON body (exec's)
constexpr const char* kTar = "/bin/tar";

// A list of subcommands and what each does once parsed.
using Dispatch = std::vector<std::pair<CLI::App*, std::function<int()>>>;

Action dispatcher(std::shared_ptr<Dispatch> table) {
  return [table]() {
    for (auto& [command, action] : *table)
      if (command->parsed()) return guarded(action);
    return 2;
  };
}

std::string sandbox_path(const std::string& name) {
  return "/v1/sandboxes/" + percent_encode(name);
}

// ---- Rendering --------------------------------------------------------------------------------

// An argument as a shell would need it: plain when safe, else in single quotes.
std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789@%+=:,./_-") == std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join_strings(const Json& array, const std::string& sep, bool quote = false) {
  std::string out;
  if (!array.is_array()) return out;
  for (const auto& item : array) {
    if (!item.is_string()) continue;
    if (!out.empty()) out += sep;
    out += quote ? shell_quote(item.get<std::string>()) : item.get<std::string>();
  }
  return out;
}

std::string join_labels(const Json& labels) {
  std::string out;
  if (!labels.is_object()) return out;
  for (const auto& [key, value] : labels.items())
    out +=
        (out.empty() ? "" : ",") + key + "=" + (value.is_string() ? value.get<std::string>() : "");
  return out;
}

std::string or_dash(std::string s) {
  return s.empty() ? "-" : s;
}

// "45s", "5m20s", "2h1m", "3d4h": the two largest units; "none" for 0 (no limit).
std::string seconds_text(long s) {
  if (s <= 0) return "none";
  static constexpr std::pair<long, char> kUnits[] = {
      {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  std::string out;
  int shown = 0;
  for (const auto& [size, unit] : kUnits) {
    if (s < size && out.empty()) continue;
    if (s / size > 0) out += std::to_string(s / size) + unit;
    s %= size;
    if (++shown == 2) break;
  }
  return out;
}

std::string when(const std::string& rfc3339) {
  if (rfc3339.empty()) return "-";
  return rfc3339 + " (" + age(rfc3339) + " ago)";
}

std::string display_name(const Json& sandbox) {
  std::string name = field(sandbox, "name");
  return name.empty() ? field(sandbox, "id") : name;
}

void print_sandbox(const Json& sb) {
  std::vector<std::pair<std::string, std::string>> rows = {{"Name", or_dash(field(sb, "name"))},
                                                           {"ID", field(sb, "id")}};
  std::string status = field(sb, "status");
  if (!field(sb, "reason").empty()) status += " (" + field(sb, "reason") + ")";
  rows.emplace_back("Status", status);
  rows.emplace_back("Created", when(field(sb, "created_at")));
  rows.emplace_back("Updated", when(field(sb, "updated_at")));
  std::string workdir = field(sb, "workdir");
  if (sb.value("managed_workspace", false)) workdir += " (made by ward, removed on delete)";
  rows.emplace_back("Workdir", workdir);
  rows.emplace_back("Command", or_dash(join_strings(member(sb, "command"), " ", true)));
  rows.emplace_back("Labels", or_dash(join_labels(member(sb, "labels"))));
  rows.emplace_back("Providers", or_dash(join_strings(member(sb, "providers"), ", ")));
  rows.emplace_back("Policy revision", or_dash(field(sb, "policy_revision")));
  if (auto e = sb.find("exit"); e != sb.end() && e->is_object()) {
    const std::string signal = field(*e, "signal");
    std::string text = !signal.empty() && signal != "0" ? "signal " + signal
                                                        : "code " + or_dash(field(*e, "code"));
    if (!field(*e, "at").empty()) text += " at " + field(*e, "at");
    rows.emplace_back("Exit", text);
  }
  if (!field(sb, "init_pid").empty() && field(sb, "init_pid") != "0")
    rows.emplace_back("Init pid", field(sb, "init_pid"));
  rows.emplace_back("Max lifetime", seconds_text(sb.value("max_lifetime_s", 0L)));
  rows.emplace_back("Idle TTL", seconds_text(sb.value("idle_ttl_s", 0L)));
  print_fields(rows);
}

void print_sandbox_list(const Json& answer) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "STATUS", "AGE", "WORKDIR"}};
  for (const auto& sb : answer.value("sandboxes", Json::array()))
    rows.push_back({or_dash(field(sb, "name")), field(sb, "id"), field(sb, "status"),
                    age(field(sb, "created_at")), field(sb, "workdir")});
  print_table(rows);
}

// The answer as -o asks; `table` renders it otherwise.
int show(const std::optional<Json>& answer, const GatewayOptions& options,
         const std::function<void(const Json&)>& table) {
  if (!answer) return 1;
  if (!print_structured(*answer, options)) table(*answer);
  return 0;
}

// Until end of file or `most` bytes, whichever comes first: what is beyond is never read, so an
// endless input costs no more than `most`. `what` names it in errors.
Result<std::string> read_at_most(int fd, const std::string& what, std::size_t most) {
  std::string data;
  char chunk[65536];
  while (data.size() < most) {
    ssize_t n = ::read(fd, chunk, std::min(sizeof chunk, most - data.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno(what);
    if (n == 0) break;
    data.append(chunk, static_cast<std::size_t>(n));
  }
  return data;
}

// Everything until end of file, refused past `limit` bytes (a whole number of MiB).
Result<std::string> read_all(int fd, const std::string& what, std::size_t limit) {
  auto data = read_at_most(fd, what, limit + 1);
  if (data && data->size() > limit)
    return fail(what + " is larger than " + std::to_string(limit >> 20) +
                " MiB, the gateway's limit");
  return data;
}

Result<std::string> read_file(const std::string& path, std::size_t limit) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno(path);
  return read_all(fd.get(), path, limit);
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// KEY=VALUE options into a JSON object ("--env K" alone takes ward's value of K).
Result<Json> assignments(const std::vector<std::string>& items, const char* option, bool from_env) {
  Json out = Json::object();
  for (const auto& item : items) {
    auto kv = split_assignment(item, from_env);
    if (!kv) return fail(std::string(option) + " " + kv.error().message);
    out[kv->first] = kv->second;
  }
  return out;
}

// ---- sandbox create / list / get / stop / start / delete -----------------------------------

struct CreateArgs {
  std::string name;
  std::string policy_file;
  std::string workdir;
  std::vector<std::string> labels;
  std::vector<std::string> env;
  std::vector<std::string> providers;
  long max_lifetime = -1;
  long idle_ttl = -1;
  std::vector<std::string> command;
};

int create(const GatewayOptions& options, const CreateArgs& args) {
  Json body = Json::object();
  if (!args.name.empty()) body["name"] = args.name;
  if (!args.policy_file.empty()) {
    auto text = read_file(args.policy_file, 1u << 20);
    if (!text) {
      std::fprintf(stderr, "ward: -p: %s\n", text.error().describe().c_str());
      return 1;
    }
    body["policy"] = std::move(*text);
  }
  if (!args.workdir.empty()) {
    // The gateway wants an absolute host path; it runs on this host.
    char real[PATH_MAX];
    if (!::realpath(args.workdir.c_str(), real)) {
      std::fprintf(stderr, "ward: --workdir %s: %s\n", args.workdir.c_str(), std::strerror(errno));
      return 1;
    }
    body["workdir"] = real;
  }
  if (!args.command.empty()) body["command"] = args.command;
  auto env = assignments(args.env, "--env", true);
  auto labels = assignments(args.labels, "--label", false);
  for (const auto* r : {&env, &labels})
    if (!*r) {
      std::fprintf(stderr, "ward: %s\n", r->error().message.c_str());
      return 2;
    }
  if (!env->empty()) body["env"] = std::move(*env);
  if (!labels->empty()) body["labels"] = std::move(*labels);
  if (!args.providers.empty()) body["providers"] = args.providers;
  if (args.max_lifetime >= 0) body["max_lifetime_s"] = args.max_lifetime;
  if (args.idle_ttl >= 0) body["idle_ttl_s"] = args.idle_ttl;
  return show(
      call(options, {"POST", "/v1/sandboxes", json_body(body, "the policy")}, args.policy_file),
      options, print_sandbox);
}

int list(const GatewayOptions& options, const std::vector<std::string>& labels) {
  std::string target = "/v1/sandboxes";
  for (std::size_t i = 0; i < labels.size(); ++i)
    target += (i ? "&label=" : "?label=") + percent_encode(labels[i]);
  return show(call(options, {"GET", target}), options, print_sandbox_list);
}

int lifecycle(const GatewayOptions& options, const std::string& name, const std::string& verb) {
  if (verb == "delete")
    return show(call(options, {"DELETE", sandbox_path(name)}), options, [](const Json& answer) {
      std::printf("deleted %s\n", field(answer, "deleted").c_str());
    });
  // Idempotent both ways, as the API is: a sandbox already as asked is left alone, and the
  // answer says so (exit 0).
  std::optional<Json> now = call(options, {"GET", sandbox_path(name)});
  if (!now) return 1;
  const std::string status = field(*now, "status");
  const std::string already = verb == "start" && status == "running"  ? "already running"
                              : verb == "stop" && status == "stopped" ? "already stopped"
                                                                      : "";
  if (!already.empty())
    return show(now, options, [&](const Json& sb) {
      std::printf("%s: %s\n", display_name(sb).c_str(), already.c_str());
    });
  return show(call(options, {"POST", sandbox_path(name) + "/" + verb}), options,
              [](const Json& sb) {
                std::printf("%s: %s\n", display_name(sb).c_str(), field(sb, "status").c_str());
              });
}

// ---- sandbox exec ---------------------------------------------------------------------------

struct ExecArgs {
  std::string name;
  std::vector<std::string> env;
  std::string workdir;
  double timeout = 0;
  bool no_stdin = false;
  std::vector<std::string> command;
};

}  // namespace

int exit_status(const Json& event) {
  if (event.value("timed_out", false)) return 124;
  const int signal = event.value("signal", 0);
  if (signal > 0) return 128 + signal;
  return event.value("code", 1);
}

namespace {

int exec(const GatewayOptions& options, const ExecArgs& args) {
  if (args.command.empty()) {
    std::fprintf(stderr, "ward: sandbox exec: no command (ward sandbox exec NAME -- CMD ARGS)\n");
    return 2;
  }
  Json body = {{"command", args.command}};
  auto env = assignments(args.env, "--env", true);
  if (!env) {
    std::fprintf(stderr, "ward: %s\n", env.error().message.c_str());
    return 2;
  }
  if (!env->empty()) body["env"] = std::move(*env);
  if (!args.workdir.empty()) body["workdir"] = args.workdir;
  if (args.timeout > 0) body["timeout_ms"] = std::llround(args.timeout * 1000);
  // Piped input goes to the command whole; a terminal's does not (there is no interactive exec).
  // It travels as base64, always: any bytes arrive as they are (a JSON string holds only UTF-8),
  // and what fits is one number, however much JSON escaping would have inflated the text. That
  // number is what the rest of the request leaves of the gateway's body limit, 3 bytes for every
  // 4 characters; reading stops one byte past it, so an endless input is refused at once.
  if (!args.no_stdin && !::isatty(STDIN_FILENO)) {
    body["stdin_base64"] = "";
    const std::size_t rest = body.dump(-1, ' ', false, Json::error_handler_t::replace).size();
    const std::size_t most = rest < kMaxBody ? (kMaxBody - rest) / 4 * 3 : 0;
    body.erase("stdin_base64");
    auto input = read_at_most(STDIN_FILENO, "standard input", most + 1);
    if (!input) {
      std::fprintf(stderr, "ward: reading standard input: %s\n", input.error().describe().c_str());
      return 1;
    }
    if (input->size() > most) {
      std::fprintf(stderr,
                   "ward: sandbox exec: standard input is larger than %zu bytes (%zu KiB), all "
                   "that fits base64-encoded in the gateway's %zu MiB exec request; for more, "
                   "upload it (ward sandbox upload) and have the command read the file\n",
                   most, most >> 10, kMaxBody >> 20);
      return 2;
    }
    if (!input->empty()) body["stdin_base64"] = creds::detail::base64_encode(*input);
  }

  std::optional<int> status;
  bool broken = false;
  auto on_event = [&](std::string_view line) {
    if (line.empty()) return true;
    Json event = Json::parse(line, nullptr, false);
    if (!event.is_object()) {
      std::fprintf(stderr, "ward: the gateway sent an exec event that is not a JSON object\n");
      broken = true;
      return false;
    }
    if (!options.table()) print_stream_item(event, options);
    const std::string type = field(event, "type");
    if (type == "stdout" || type == "stderr") {
      if (!options.table()) return true;
      auto bytes = creds::detail::base64_decode(field(event, "data"));
      if (!bytes) {
        std::fprintf(stderr, "ward: the gateway sent %s data that is not base64\n", type.c_str());
        broken = true;
        return false;
      }
      write_all(type == "stdout" ? STDOUT_FILENO : STDERR_FILENO, *bytes);
    } else if (type == "exit") {
      status = exit_status(event);
      if (options.table() && *status == 124 && event.value("timed_out", false))
        std::fprintf(stderr, "ward: the command timed out after %gs and was killed\n",
                     args.timeout);
      return false;  // the last event
    } else if (type == "error") {
      status = event.value("code", 127);
      if (options.table()) std::fprintf(stderr, "ward: %s\n", field(event, "message").c_str());
      return false;
    }
    return true;  // "started", and kinds a newer gateway may add
  };
  GatewayClient client = connect_client(options);
  auto answer = client.stream_lines(
      {"POST", sandbox_path(args.name) + "/exec", json_body(body, "the command")}, on_event);
  if (!answer) return report_transport_error(client, answer.error());
  if (!answer->ok()) return report_api_error(*answer);
  if (broken) return 1;
  if (!status) {
    std::fprintf(stderr, "ward: the exec stream ended before the command's exit status\n");
    return 1;
  }
  return *status;
}

// ---- sandbox upload / download: files as they are, directories as tar ------------------------

struct Tar {
  pid_t pid = -1;
  UniqueFd pipe;  // tar's stdout
};

// Runs /bin/tar with `args`, no shell, to pack an upload; its stdout is the returned pipe.
// (Downloads are unpacked with libarchive, under ward's rules: cli/unpack.h.)
Result<Tar> spawn_tar(const std::vector<std::string>& args) {
  if (::access(kTar, X_OK) != 0) return fail_errno(std::string("a directory needs ") + kTar);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // Prepared before fork: the child only walks these.
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    if (::dup2(write_end.get(), STDOUT_FILENO) < 0) ::_exit(126);
    ::close_range(3, ~0u, 0);
    ::execv(kTar, argv.data());
    static const char kMessage[] = "ward: cannot execute /bin/tar\n";
    ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    (void)ignored;
    ::_exit(127);
  }
  return Tar{pid, std::move(read_end)};
}

// tar's end: GNU tar exits 1 when a file changed while it was read (the archive is still whole).
Result<void> wait_tar(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return fail_errno("waitpid");
  if (WIFEXITED(status) && WEXITSTATUS(status) <= 1) return {};
  if (WIFSIGNALED(status))
    return fail("tar was killed by signal " + std::to_string(WTERMSIG(status)));
  return fail("tar failed (exit " + std::to_string(WEXITSTATUS(status)) + ")");
}

std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.empty() || base == "/" || base == ".." ? "." : base;
}

Result<std::string> pack_directory(const std::string& dir) {
  auto tar = spawn_tar({"tar", "--create", "--file=-", "--directory=" + dir, "."});
  if (!tar) return tl::unexpected(tar.error());
  std::string archive;
  char chunk[65536];
  ssize_t n;
  while ((n = ::read(tar->pipe.get(), chunk, sizeof chunk)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || archive.size() + static_cast<std::size_t>(n) > kMaxUpload) {
      ::kill(tar->pid, SIGKILL);
      wait_tar(tar->pid);
      if (n < 0) return fail_errno("reading tar's output");
      return fail(dir + " packs to more than 64 MiB, the gateway's limit for an upload");
    }
    archive.append(chunk, static_cast<std::size_t>(n));
  }
  if (auto done = wait_tar(tar->pid); !done) return tl::unexpected(done.error());
  return archive;
}

int upload(const GatewayOptions& options, const std::string& name, const std::string& local,
           std::string remote) {
  struct stat st;
  if (::stat(local.c_str(), &st) != 0) {
    std::fprintf(stderr, "ward: %s: %s\n", local.c_str(), std::strerror(errno));
    return 1;
  }
  if (remote.empty()) remote = base_name(local);
  const bool directory = S_ISDIR(st.st_mode);
  auto bytes = directory ? pack_directory(local) : read_file(local, kMaxUpload);
  if (!bytes) {
    std::fprintf(stderr, "ward: %s\n", bytes.error().describe().c_str());
    return 1;
  }
  Request request{"PUT", sandbox_path(name) + "/files?path=" + percent_encode(remote),
                  std::move(*bytes), directory ? "application/x-tar" : "application/octet-stream"};
  return show(call(options, request), options, [&](const Json& answer) {
    std::printf("%s -> %s:%s (%s bytes%s)\n", local.c_str(), name.c_str(),
                or_dash(field(answer, "path")).c_str(), or_dash(field(answer, "bytes")).c_str(),
                directory ? ", unpacked from tar" : "");
  });
}

// Where a download goes, opened when its first bytes (or its end) show what it is: a file, a
// directory the archive is unpacked into (cli/unpack.h: beneath it and nowhere else, through no
// symlink, once the archive is whole), or standard output (LOCAL "-", the bytes or the tar as
// they come).
class Sink {
 public:
  Sink(std::string remote, std::string local)
      : remote_(std::move(remote)), local_(std::move(local)) {}

  Result<void> open(const Response& head) {
    opened_ = true;
    directory_ = head.content_type.rfind("application/x-tar", 0) == 0;
    if (local_ == "-") {
      fd_ = STDOUT_FILENO;
      return {};
    }
    if (local_.empty()) local_ = base_name(remote_);
    if (directory_) {
      // The directory the user named is the one place written; it may be a symlink of theirs.
      if (::mkdir(local_.c_str(), 0777) != 0 && errno != EEXIST) return fail_errno(local_);
      UniqueFd root(::open(local_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!root) return fail_errno(local_);
      unpacker_.emplace(std::move(root));
      return {};
    }
    struct stat st;
    if (::stat(local_.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      local_ += (local_.back() == '/' ? "" : "/") + base_name(remote_);
    // Written beside it and renamed over it once whole: a download that breaks off leaves the
    // file that was there as it was.
    partial_ = local_ + ".ward-XXXXXX";
    file_.reset(::mkostemp(partial_.data(), O_CLOEXEC));
    if (!file_) return fail_errno(local_);
    created_ = true;
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(file_.get(), 0666 & ~mask);  // what open(O_CREAT, 0666) would have given it
    fd_ = file_.get();
    return {};
  }

  Result<void> write(std::string_view bytes) {
    bytes_ += bytes.size();
    if (unpacker_) return unpacker_->feed(bytes);
    if (!write_all(fd_, bytes)) return fail_errno(local_);
    return {};
  }

  Result<void> finish() {
    if (unpacker_) return unpacker_->finish();
    if (file_ && ::close(file_.release()) != 0) return fail_errno(local_);
    if (created_ && ::rename(partial_.c_str(), local_.c_str()) != 0) return fail_errno(local_);
    created_ = false;
    return {};
  }

  // After a failure: a half-written file removed (a directory's archive is unpacked only once
  // whole: a transfer that broke off wrote nothing; what an unpacking that failed wrote stays).
  void abandon() {
    if (created_) {
      file_.reset();
      ::unlink(partial_.c_str());
    }
  }

  bool opened() const { return opened_; }
  bool directory() const { return directory_; }
  // A directory's entries not unpacked: on purpose (symlinks out of it, device nodes, FIFOs), and
  // because something was in their way. Each on a line of its own on stderr.
  std::vector<std::string> left_out() const {
    return unpacker_ ? unpacker_->left_out() : std::vector<std::string>{};
  }
  void report() const {
    if (!unpacker_) return;
    const std::string where = local_ + (local_.ends_with("/") ? "" : "/");
    for (const std::string& entry : unpacker_->left_out())
      std::fprintf(stderr, "ward: left out: %s%s\n", where.c_str(), entry.c_str());
    for (const std::string& entry : unpacker_->refused())
      std::fprintf(stderr, "ward: not written: %s%s\n", where.c_str(), entry.c_str());
  }
  const std::string& local() const { return local_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::string remote_, local_;
  std::string partial_;  // a file download's bytes until they are whole
  bool opened_ = false, directory_ = false, created_ = false;
  int fd_ = -1;
  UniqueFd file_;
  std::optional<Unpacker> unpacker_;
  std::size_t bytes_ = 0;
};

int download(const GatewayOptions& options, const std::string& name, const std::string& remote,
             const std::string& local) {
  ::signal(SIGPIPE, SIG_IGN);  // standard output may close early: a write then reports EPIPE
  Sink sink(remote, local);
  std::optional<Error> failure;
  auto on_data = [&](const Response& head, std::string_view bytes) {
    Result<void> r = sink.opened() ? Result<void>{} : sink.open(head);
    if (r) r = sink.write(bytes);
    if (!r) failure = r.error();
    return r.has_value();
  };
  GatewayClient client = connect_client(options);
  auto answer =
      client.stream({"GET", sandbox_path(name) + "/files?path=" + percent_encode(remote)}, on_data);
  if (!answer) {
    sink.abandon();
    return report_transport_error(client, answer.error());
  }
  if (!answer->ok()) return report_api_error(*answer);
  Result<void> done = failure ? Result<void>(tl::unexpected(*failure)) : Result<void>{};
  if (done && !sink.opened()) done = sink.open(*answer);  // an empty file
  if (done) done = sink.finish();
  sink.report();
  if (!done) {
    sink.abandon();
    std::fprintf(stderr, "ward: %s\n", done.error().describe().c_str());
    return 1;
  }
  Json result = {{"path", remote},
                 {"local", sink.local() == "-" ? "" : sink.local()},
                 {"bytes", sink.bytes()},
                 {"directory", sink.directory()},
                 {"left_out", sink.left_out()}};
  if (!print_structured(result, options) && sink.local() != "-")
    std::printf("%s:%s -> %s (%zu bytes%s)\n", name.c_str(), remote.c_str(), sink.local().c_str(),
                sink.bytes(), sink.directory() ? ", unpacked from tar" : "");
  return 0;
}

// ---- logs -----------------------------------------------------------------------------------

// OpenShell's shorthand for an OCSF record (audit/ocsf.h), from its JSON.
std::string audit_line(const Json& r) {
  const int klass = r.value("class_uid", 0), activity = r.value("activity_id", 0);
  std::string kind;
  if (klass == 4001)
    kind = activity == 2   ? "NET:CLOSE"
           : activity == 5 ? "NET:REFUSE"
           : activity == 4 ? "NET:FAIL"
                           : "NET:OPEN";
  else if (klass == 4002)
    kind = "HTTP:" + field(member(r, "http_request"), "http_method");
  else if (klass == 6003)
    kind = "API:" + field(member(r, "api"), "operation");
  else
    kind = "OCSF:" + std::to_string(klass);
  const std::string verdict = r.value("action_id", 0) == 2   ? "DENIED"
                              : r.value("status_id", 1) == 2 ? "FAILED"
                                                             : "ALLOWED";
  std::string stamp = "-";
  if (auto ms = r.find("time"); ms != r.end() && ms->is_number_integer()) {
    std::time_t t = ms->get<long long>() / 1000;
    char buf[32];
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    stamp = buf;
  }
  const Json& process = member(member(r, "actor"), "process");
  const Json& dst = member(r, "dst_endpoint");
  std::string line = stamp + " " + kind + " " + verdict + " " +
                     or_dash(field(member(process, "file"), "path")) + "(" +
                     or_dash(field(process, "pid")) + ") -> " + or_dash(field(dst, "hostname")) +
                     ":" + or_dash(field(dst, "port"));
  if (auto url = member(member(r, "http_request"), "url"); url.is_object())
    line += " " + field(url, "path");
  if (auto code = field(member(r, "http_response"), "code"); !code.empty()) line += " " + code;
  if (auto rule = field(member(r, "unmapped"), "rule"); !rule.empty())
    line += " [policy:" + rule + "]";
  if (auto message = field(r, "message"); !message.empty()) line += " [reason:" + message + "]";
  return printable(line);  // names a sandbox chose: one line, no terminal escapes
}

int logs(const GatewayOptions& options, const std::string& name, int tail, bool follow,
         const std::string& source) {
  std::string query;
  if (tail >= 0) query += "&tail=" + std::to_string(tail);
  if (follow) query += "&follow=1";
  if (!source.empty()) query += "&source=" + source;
  if (!query.empty()) query[0] = '?';
  auto on_line = [&](std::string_view line) {
    if (line.empty()) return true;
    Json record = Json::parse(line, nullptr, false);
    if (record.is_discarded())
      std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
    else if (!options.table())
      print_stream_item(record, options);
    else if (field(record, "stream") == "output")
      std::printf("%s\n", field(record, "line").c_str());
    else if (record.contains("class_uid"))
      std::printf("%s\n", audit_line(record).c_str());
    else
      std::printf("%s\n", record.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    std::fflush(stdout);
    return true;
  };
  GatewayClient client = connect_client(options);
  auto answer = client.stream_lines({"GET", sandbox_path(name) + "/logs" + query}, on_line);
  if (!answer) return report_transport_error(client, answer.error());
  if (!answer->ok()) return report_api_error(*answer);
  return 0;
}

// ---- status ---------------------------------------------------------------------------------

void print_status(const Json& s) {
  const Json counts = s.value("sandboxes", Json::object());
  std::string sandboxes;
  for (const char* state : {"running", "stopped", "creating", "error"})
    sandboxes += (sandboxes.empty() ? "" : ", ") + or_dash(field(counts, state)) + " " + state;
  const long up = s.value("uptime_s", 0L);
  print_fields({{"Gateway", "running, pid " + or_dash(field(s, "pid")) + ", up " +
                                (up > 0 ? seconds_text(up) : "0s")},
                {"Version", or_dash(field(s, "version"))},
                {"Socket", or_dash(field(s, "socket"))},
                {"State dir", or_dash(field(s, "state_dir"))},
                {"Sandboxes", sandboxes}});
}

// ---- provider -------------------------------------------------------------------------------

struct ProviderArgs {
  std::string name;
  std::string profile;
  std::string profile_file;  // --provider-profile: a user-defined profile
  bool from_existing = false;
  std::vector<std::string> values;
};

// --from-existing: the profile's variables that are set in ward's environment. `profile`: a
// user-defined one, else the built-in profile `id`.
Result<Json> values_from_environment(const std::string& id, const creds::Profile* profile) {
  if (!profile) profile = creds::builtin_profile(id);
  if (!profile) {
    std::string ids;
    for (const auto& b : creds::builtin_ids()) ids += (ids.empty() ? "" : ", ") + b;
    return fail("--from-existing knows the built-in profiles (" + ids + ") and the one given " +
                "with --provider-profile FILE, not '" + id +
                "': give its variables with --value VAR=VALUE");
  }
  Json values = Json::object();
  std::string all;
  for (const auto& credential : profile->credentials) {
    bool found = false;
    for (const auto& var : credential.env_vars) {
      all += (all.empty() ? "" : ", ") + var;
      const char* value = std::getenv(var.c_str());
      if (value && *value) {
        values[var] = value;
        found = true;
      }
    }
    if (!found && credential.required) {
      std::string vars;
      for (const auto& var : credential.env_vars) vars += (vars.empty() ? "" : " or ") + var;
      return fail("the " + id + " credential '" + credential.name + "' is required: set " + vars +
                  " in ward's environment");
    }
  }
  if (values.empty()) return fail("none of " + id + "'s variables (" + all + ") is set");
  return values;
}

int create_provider(const GatewayOptions& options, const ProviderArgs& args) {
  // A user-defined profile is checked here first, for errors that name its file; the gateway
  // keeps its text with the provider.
  std::optional<creds::Profile> profile;
  std::string profile_text;
  if (!args.profile_file.empty()) {
    auto text = policy::detail::read_config_file(args.profile_file, "provider profile", 1 << 20);
    if (!text) {
      std::fprintf(stderr, "ward: %s: %s\n", args.profile_file.c_str(),
                   text.error().describe().c_str());
      return 1;
    }
    auto loaded = creds::load_profile_string(*text, args.profile_file);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
      return 1;
    }
    for (const std::string& warning : loaded->warnings)
      std::fprintf(stderr, "%s\n", warning.c_str());
    profile = std::move(*loaded);
    profile_text = std::move(*text);
  }
  const std::string profile_id = profile                ? profile->id
                                 : args.profile.empty() ? args.name
                                                        : args.profile;
  // Without a profile of its own, a provider is one of the built-in ones: said here, in the
  // CLI's terms (the gateway's answer names its API field).
  if (!profile && !creds::builtin_profile(profile_id)) {
    std::string ids;
    for (const auto& b : creds::builtin_ids()) ids += (ids.empty() ? "" : ", ") + b;
    std::fprintf(stderr,
                 "ward: no built-in profile named %s (built-in: %s): give a profile of your own "
                 "with --provider-profile FILE, or a built-in one with --profile ID\n",
                 profile_id.c_str(), ids.c_str());
    return 2;
  }
  Json values = Json::object();
  if (args.from_existing) {
    auto found = values_from_environment(profile_id, profile ? &*profile : nullptr);
    if (!found) {
      std::fprintf(stderr, "ward: %s\n", found.error().message.c_str());
      return 1;
    }
    values = std::move(*found);
  }
  auto given = assignments(args.values, "--value", true);
  if (!given) {
    std::fprintf(stderr, "ward: %s\n", given.error().message.c_str());
    return 2;
  }
  values.update(*given);
  if (values.empty()) {
    std::fprintf(stderr,
                 "ward: provider %s: no values (give --value VAR=VALUE or --from-existing)\n",
                 args.name.c_str());
    return 2;
  }
  Json body = {{"name", args.name}, {"values", values}};
  if (!args.profile.empty()) body["profile"] = args.profile;
  if (profile) body["profile_yaml"] = profile_text;
  return show(call(options, {"POST", "/v1/providers", json_body(body, "a value")}), options,
              [](const Json& p) {
                std::printf("provider %s created (profile %s; variables %s)\n",
                            field(p, "name").c_str(), or_dash(field(p, "profile")).c_str(),
                            or_dash(join_strings(member(p, "variables"), ", ")).c_str());
              });
}

void print_provider(const Json& p) {
  print_fields({{"Name", field(p, "name")},
                {"Profile", or_dash(field(p, "profile")) +
                                (p.value("builtin_profile", true) ? "" : " (user-defined)")},
                {"Variables", or_dash(join_strings(member(p, "variables"), ", "))},
                {"Created", when(field(p, "created_at"))}});
}

void print_provider_list(const Json& answer) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "PROFILE", "VARIABLES", "AGE"}};
  for (const auto& p : answer.value("providers", Json::array()))
    rows.push_back({field(p, "name"), or_dash(field(p, "profile")),
                    or_dash(join_strings(member(p, "variables"), ",")),
                    age(field(p, "created_at"))});
  print_table(rows);
}

// A subcommand taking NAME (a sandbox's name or id) and the gateway options.
CLI::App* named(CLI::App* parent, const char* name, const char* help, std::string& target,
                GatewayOptions& options, const char* what = "The sandbox's name or id") {
  CLI::App* command = parent->add_subcommand(name, help);
  command->add_option("name", target, what)->required();
  add_gateway_options(command, options);
  return command;
}

}  // namespace

Action add_sandbox(CLI::App& app, std::vector<std::string> command_after_dashes,
                   std::string_view verb) {
  struct Args {
    GatewayOptions options;
    CreateArgs create;
    ExecArgs exec;
    std::string name, local, remote;
    std::vector<std::string> labels;
    std::vector<std::string> after_dashes;
  };
  auto args = std::make_shared<Args>();
  args->after_dashes = std::move(command_after_dashes);
  auto table = std::make_shared<Dispatch>();
  GatewayOptions& o = args->options;
  CLI::App* sandbox = app.add_subcommand("sandbox",
                                         "Create, run commands in and manage sandboxes "
                                         "of the gateway (ward gateway)");
  sandbox->require_subcommand(1);
  // Only the subcommand being run is registered (as main() does one level up), unless the word
  // is none of them: then all, for the usage and the error message.
  static constexpr std::string_view kVerbs[] = {"create", "list",    "ls",     "get",
                                                "exec",   "connect", "stop",   "start",
                                                "delete", "rm",      "upload", "download"};
  const bool all = std::find(std::begin(kVerbs), std::end(kVerbs), verb) == std::end(kVerbs);
  auto wanted = [&](std::string_view name, std::string_view alias = {}) {
    return all || verb == name || (!alias.empty() && verb == alias);
  };

  if (wanted("create")) {
    CLI::App* create_cmd = sandbox->add_subcommand("create", "Create a sandbox and start it");
    CreateArgs& c = args->create;
    create_cmd->add_option(
        "name", c.name, "Its name (1-63 of a-z 0-9 -); without it, its id (sb- and 16 hex digits)");
    create_cmd
        ->add_option("-p,--policy", c.policy_file,
                     "Policy file (YAML or JSON); without it, the gateway's default")
        ->check(readable_file());
    create_cmd
        ->add_option("-w,--workdir", c.workdir,
                     "An existing host directory to use as the workspace (default: one ward "
                     "makes and removes on delete)")
        ->check(CLI::ExistingDirectory);
    create_cmd->add_option("--label", c.labels, "A label k=v (repeatable)")
        ->allow_extra_args(false);
    create_cmd
        ->add_option("--env", c.env,
                     "A variable K=V for the workload, or K for ward's value (repeatable)")
        ->allow_extra_args(false);
    create_cmd
        ->add_option("--provider", c.providers,
                     "A provider (ward provider create) whose credentials the sandbox gets "
                     "as placeholders (repeatable)")
        ->allow_extra_args(false);
    create_cmd
        ->add_option("--max-lifetime", c.max_lifetime, "Seconds before the sandbox is stopped")
        ->check(whole_number_between(0, kTenYears));
    create_cmd
        ->add_option("--idle-ttl", c.idle_ttl,
                     "Seconds without activity before the sandbox is stopped")
        ->check(whole_number_between(0, kTenYears));
    create_cmd->footer("The main process, if any, follows --: ward sandbox create box -- sleep 1d");
    add_gateway_options(create_cmd, o);
    table->emplace_back(create_cmd, [args] {
      args->create.command = args->after_dashes;
      return create(args->options, args->create);
    });
  }

  if (wanted("list", "ls")) {
    CLI::App* list_cmd = sandbox->add_subcommand("list", "List sandboxes");
    list_cmd->alias("ls");
    list_cmd->add_option("--label", args->labels, "Only those with this label k=v (repeatable)")
        ->allow_extra_args(false);
    add_gateway_options(list_cmd, o);
    table->emplace_back(list_cmd, [args] { return list(args->options, args->labels); });
  }

  if (wanted("get")) {
    CLI::App* get_cmd = named(sandbox, "get", "Show a sandbox", args->name, o);
    table->emplace_back(get_cmd, [args] {
      return show(call(args->options, {"GET", sandbox_path(args->name)}), args->options,
                  print_sandbox);
    });
  }

  if (wanted("exec")) {
    ExecArgs& e = args->exec;
    CLI::App* exec_cmd = sandbox->add_subcommand("exec", "Run a command in a running sandbox");
    exec_cmd->add_option("name", e.name, "The sandbox's name or id")->required();
    exec_cmd
        ->add_option("--env", e.env,
                     "A variable K=V for the command, or K for ward's value (repeatable)")
        ->allow_extra_args(false);
    exec_cmd->add_option("-w,--workdir", e.workdir, "The command's working directory");
    exec_cmd->add_option("--timeout", e.timeout, "Seconds before the command is killed (then 124)")
        ->check(number_between(0, kTenYears, "seconds", true));
    exec_cmd->add_flag("-n,--no-stdin", e.no_stdin,
                       "Send no input even when ward's standard input is not a terminal");
    exec_cmd->prefix_command();  // the command starts at the first argument after NAME
    exec_cmd->footer(
        "ward sandbox exec NAME [OPTIONS] -- CMD ARGS... Input that is not a terminal is read "
        "whole and sent to the command. Exit status: the command's own, 128+N when signal N "
        "ended it, 124 on --timeout, 125 when it could not be started (a -w directory it cannot "
        "enter, the sandbox gone), 126/127 when it cannot be executed / found, 2 for a usage "
        "error, 1 when ward or the gateway failed.");
    add_gateway_options(exec_cmd, o);
    table->emplace_back(exec_cmd, [args, exec_cmd] {
      std::vector<std::string> command = exec_cmd->remaining();
      if (!command.empty() && command[0].size() > 1 && command[0][0] == '-') {
        std::fprintf(stderr, "ward: sandbox exec: unknown option %s (the command goes after --)\n",
                     command[0].c_str());
        return 2;
      }
      if (!command.empty() && !args->after_dashes.empty()) command.push_back("--");
      command.insert(command.end(), args->after_dashes.begin(), args->after_dashes.end());
      args->exec.command = std::move(command);
      return exec(args->options, args->exec);
    });
  }

  if (wanted("connect")) {
    CLI::App* connect_cmd =
        sandbox->add_subcommand("connect", "An interactive terminal in a running sandbox");
    connect_cmd->add_option("name", args->name, "The sandbox's name or id")->required();
    connect_cmd->add_option("-w,--workdir", args->exec.workdir, "The shell's working directory");
    connect_cmd->prefix_command();
    connect_cmd->footer(
        "ward sandbox connect NAME [-- CMD ARGS...]: a shell (bash when the sandbox has it) or CMD "
        "on a terminal, under the sandbox's policy. The local terminal is raw meanwhile: Ctrl-C "
        "and the window size go to the sandbox. Exit status: the command's own.");
    add_gateway_options(connect_cmd, o);
    table->emplace_back(connect_cmd, [args, connect_cmd] {
      std::vector<std::string> command = connect_cmd->remaining();
      if (!command.empty() && command[0].size() > 1 && command[0][0] == '-') {
        std::fprintf(stderr,
                     "ward: sandbox connect: unknown option %s (the command goes after --)\n",
                     command[0].c_str());
        return 2;
      }
      command.insert(command.end(), args->after_dashes.begin(), args->after_dashes.end());
      return guarded(
          [&] { return connect_terminal(args->options, args->name, command, args->exec.workdir); });
    });
  }

  for (const char* each : {"stop", "start", "delete"}) {
    const std::string v = each;
    if (!wanted(v, v == "delete" ? "rm" : "")) continue;
    const char* help = v == "stop"    ? "Stop a sandbox's processes (its workspace stays)"
                       : v == "start" ? "Start a stopped sandbox again"
                                      : "Stop a sandbox and remove it";
    CLI::App* command = named(sandbox, each, help, args->name, o);
    if (v == "delete") command->alias("rm");
    table->emplace_back(command, [args, v] { return lifecycle(args->options, args->name, v); });
  }

  if (wanted("upload")) {
    CLI::App* up = sandbox->add_subcommand(
        "upload", "Copy a file or a directory (as tar) into a sandbox's workspace");
    up->add_option("name", args->name, "The sandbox's name or id")->required();
    up->add_option("local", args->local, "The file or directory to send")->required();
    up->add_option("remote", args->remote,
                   "Where in the workspace (relative; default: LOCAL's base name)");
    add_gateway_options(up, o);
    table->emplace_back(
        up, [args] { return upload(args->options, args->name, args->local, args->remote); });
  }

  if (wanted("download")) {
    CLI::App* down = sandbox->add_subcommand(
        "download", "Copy a file or a directory (as tar) out of a sandbox's workspace");
    down->add_option("name", args->name, "The sandbox's name or id")->required();
    down->add_option("remote", args->remote, "The path in the workspace (relative)")->required();
    down->add_option("local", args->local,
                     "Where to put it (default: REMOTE's base name; - for standard output)");
    add_gateway_options(down, o);
    table->emplace_back(
        down, [args] { return download(args->options, args->name, args->remote, args->local); });
  }

  return dispatcher(table);
}

Action add_logs(CLI::App& app) {
  struct Args {
    GatewayOptions options;
    std::string name;
    int tail = -1;
    bool follow = false;
    std::string source;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = app.add_subcommand("logs", "Show a sandbox's audit records and output");
  command->add_option("name", args->name, "The sandbox's name or id")->required();
  command->add_option("--tail", args->tail, "Start with the last N lines")
      ->check(whole_number_between(0, INT_MAX));
  command->add_flag("-f,--follow", args->follow, "Keep printing new lines as they are written");
  command
      ->add_option("--source", args->source,
                   "audit (egress decisions), output (the main process's) or all")
      ->check(CLI::IsMember({"audit", "output", "all"}));
  add_gateway_options(command, args->options);
  return [args] {
    return guarded(
        [&] { return logs(args->options, args->name, args->tail, args->follow, args->source); });
  };
}

Action add_status(CLI::App& app) {
  auto options = std::make_shared<GatewayOptions>();
  CLI::App* command = app.add_subcommand("status", "Show the gateway's state");
  add_gateway_options(command, *options);
  return [options] {
    return guarded([&] {
      return show(call(*options, {"GET", "/v1/status"}), *options, print_status);
    });
  };
}

Action add_provider(CLI::App& app) {
  auto args = std::make_shared<ProviderArgs>();
  auto options = std::make_shared<GatewayOptions>();
  auto table = std::make_shared<Dispatch>();
  CLI::App* provider =
      app.add_subcommand("provider", "Store credentials in the gateway for sandboxes to use");
  provider->require_subcommand(1);

  CLI::App* create_cmd = provider->add_subcommand("create", "Store a provider's credentials");
  create_cmd->add_option("name", args->name, "The provider's name")->required();
  create_cmd->add_option("--profile", args->profile,
                         "Its profile (which variables, which endpoints; default: NAME)");
  create_cmd
      ->add_option("--provider-profile", args->profile_file,
                   "A profile of your own (OpenShell's provider-profile YAML: id, credentials, "
                   "endpoints), kept by the gateway with the provider")
      ->check(readable_file())
      ->excludes(create_cmd->get_option("--profile"));
  create_cmd->add_flag("--from-existing", args->from_existing,
                       "Take the profile's variables from ward's environment (built-in profiles: "
                       "anthropic, github, gitlab, npm, openai, pypi; or --provider-profile's)");
  create_cmd
      ->add_option("--value", args->values,
                   "A variable VAR=VALUE, or VAR for ward's value (repeatable)")
      ->allow_extra_args(false);
  add_gateway_options(create_cmd, *options);
  table->emplace_back(create_cmd, [args, options] { return create_provider(*options, *args); });

  CLI::App* list_cmd = provider->add_subcommand("list", "List providers (never their values)");
  list_cmd->alias("ls");
  add_gateway_options(list_cmd, *options);
  table->emplace_back(list_cmd, [options] {
    return show(call(*options, {"GET", "/v1/providers"}), *options, print_provider_list);
  });

  CLI::App* get_cmd =
      named(provider, "get", "Show a provider", args->name, *options, "The provider's name");
  table->emplace_back(get_cmd, [args, options] {
    return show(call(*options, {"GET", "/v1/providers/" + percent_encode(args->name)}), *options,
                print_provider);
  });

  CLI::App* delete_cmd =
      named(provider, "delete", "Remove a provider", args->name, *options, "The provider's name");
  delete_cmd->alias("rm");
  table->emplace_back(delete_cmd, [args, options] {
    return show(
        call(*options, {"DELETE", "/v1/providers/" + percent_encode(args->name)}), *options,
        [](const Json& answer) { std::printf("deleted %s\n", field(answer, "deleted").c_str()); });
  });
  return dispatcher(table);
}

}  // namespace ward::cli
