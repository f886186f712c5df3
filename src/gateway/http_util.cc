#include "gateway/http_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <ctime>
#include <map>

#include <fmt/core.h>

#include "base/strings.h"
#include "creds/scan.h"

namespace ward::gateway {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::optional<Reply> check(const json& body, const std::vector<std::string>& allowed,
                           std::initializer_list<const char*> required) {
  for (auto& [key, value] : body.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return Reply::error(400, "unknown_field", "unknown field: " + key);
  for (const char* key : required)
    if (!body.contains(key))
      return Reply::error(400, "bad_request", std::string("missing field: ") + key);
  return std::nullopt;
}

int openat2_beneath(int dirfd, const std::string& path, int flags, mode_t mode) {
  struct open_how how = {};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
}

}  // namespace

Reply Reply::json(int status, const nlohmann::json& value) {
  Reply r;
  r.status = status;
  // Replaced, not thrown: whatever a record holds, the answer is made (the store refuses
  // invalid UTF-8 on the way in; this is the last guard).
  r.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return r;
}

Reply Reply::error(int status, std::string_view code, std::string_view message) {
  return json(status, {{"error", code}, {"message", message}});
}

Reply Reply::invalid_policy(const policy::LoadResult& loaded) {
  return invalid("invalid_policy", loaded.diagnostics);
}

Reply Reply::invalid(std::string_view code, const std::vector<policy::Diagnostic>& diagnostics) {
  nlohmann::json errors = nlohmann::json::array();
  std::string first;
  for (const auto& d : diagnostics) {
    if (d.severity != policy::Diagnostic::Severity::kError) continue;
    if (first.empty()) first = d.format();
    errors.push_back(
        {{"line", d.line}, {"column", d.column}, {"key", d.key_path}, {"message", d.message}});
  }
  return json(400, {{"error", code}, {"message", first}, {"diagnostics", errors}});
}

asio::awaitable<bool> write_reply(Socket& socket, Reply reply, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
  res.set(http::field::server, "ward");
  res.set(http::field::content_type, reply.content_type);
  if (reply.www_authenticate) res.set(http::field::www_authenticate, "Bearer");
  if (!reply.allow.empty()) res.set(http::field::allow, reply.allow);
  res.keep_alive(keep_alive);
  res.body() = std::move(reply.body);
  res.prepare_payload();
  auto [ec, n] = co_await http::async_write(socket, res, kNoThrow);
  co_return !ec;
}

std::optional<Reply> check_fields(const json& body, std::initializer_list<const char*> allowed,
                                  std::initializer_list<const char*> required) {
  return check(body, std::vector<std::string>(allowed.begin(), allowed.end()), required);
}

std::optional<Reply> check_fields(const json& body, const std::vector<std::string>& allowed,
                                  std::initializer_list<const char*> required) {
  return check(body, allowed, required);
}

std::optional<std::string> query_value(const Query& query, std::string_view key) {
  for (const auto& [k, v] : query)
    if (k == key) return v;
  return std::nullopt;
}

std::string rfc3339(std::int64_t t) {
  if (t <= 0) return "";
  std::time_t tt = static_cast<std::time_t>(t);
  struct tm tm;
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json provider_json(const ProviderRecord& p) {
  return {{"name", p.name},
          {"profile", p.profile},
          {"builtin_profile", p.profile_yaml.empty()},
          {"variables", p.variables},
          {"created_at", rfc3339(p.created_at)}};
}

json revision_json(const PolicyRevision& r, bool with_content) {
  json j = {{"revision", r.revision},
            {"hash", r.hash},
            {"status", r.status},
            {"created_at", rfc3339(r.created_at)}};
  if (with_content) j["policy"] = r.content;
  return j;
}

std::string base64(std::string_view data) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::encoded_size(data.size()), '\0');
  out.resize(b64::encode(out.data(), data.data(), data.size()));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  return creds::detail::base64_decode(text);
}

namespace {

// `text` and a newline as one chunk, appended to `out`.
void append_chunk(std::string& out, std::string_view text) {
  char size[24];
  const int len = std::snprintf(size, sizeof size, "%zx\r\n", text.size() + 1);
  out.append(size, static_cast<std::size_t>(len)).append(text).append("\n\r\n");
}

}  // namespace

asio::awaitable<bool> ChunkedWriter::begin(std::string_view content_type, const json& first) {
  std::string bytes =
      "HTTP/1.1 200 OK\r\nServer: ward\r\nContent-Type: " + std::string(content_type) +
      "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  if (!first.is_null()) append_chunk(bytes, first.dump());
  co_return co_await write(bytes);
}

asio::awaitable<bool> ChunkedWriter::line_text(std::string text) {
  std::string bytes;
  append_chunk(bytes, text);
  co_return co_await write(bytes);
}

asio::awaitable<bool> ChunkedWriter::end(const json& last) {
  std::string bytes;
  if (!last.is_null()) append_chunk(bytes, last.dump());
  bytes += "0\r\n\r\n";
  co_return co_await write(bytes);
}

asio::awaitable<bool> ChunkedWriter::write(const std::string& bytes) {
  if (!ok_) co_return false;
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), kNoThrow);
  ok_ = !ec;
  co_return ok_;
}

std::vector<std::string> LogFile::read_from(std::uint64_t offset, std::uint64_t limit) {
  std::vector<std::string> lines;
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return lines;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return lines;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  // Truncated, or another file now (the audit file rotated to .1): start over.
  if (size < offset || (ino_ != 0 && (st.st_ino != ino_ || st.st_dev != dev_))) {
    offset = 0;
    partial_.clear();
  }
  ino_ = st.st_ino;
  dev_ = st.st_dev;
  // At most `limit` bytes a call: the workload decides how large its logs grow, and one large
  // read would hold the gateway's memory and its one thread; the caller comes back for the rest.
  std::string data;
  data.resize(static_cast<std::size_t>(std::min(limit, size - offset)));
  std::size_t got = 0;
  ssize_t n;
  while (got < data.size() && (n = ::pread(fd.get(), data.data() + got, data.size() - got,
                                           static_cast<off_t>(offset + got))) > 0)
    got += static_cast<std::size_t>(n);
  data.resize(got);
  offset += got;
  offset_ = offset;
  pending_ = offset < size && got > 0;
  data.insert(0, partial_);
  partial_.clear();
  std::size_t start = 0;
  for (std::size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(data.substr(start, nl - start));
  partial_ = data.substr(start);
  if (partial_.size() > kLogChunk) {  // a line that never ends is cut, not kept whole
    lines.push_back(std::move(partial_));
    partial_.clear();
  }
  return lines;
}

std::vector<std::string> LogFile::initial(long tail) {
  constexpr std::uint64_t kWindow = 4 << 20;  // the tail of a large log: its last 4 MiB
  struct stat st;
  std::uint64_t from = 0;
  if (tail >= 0 && ::stat(path_.c_str(), &st) == 0 &&
      static_cast<std::uint64_t>(st.st_size) > kWindow)
    from = static_cast<std::uint64_t>(st.st_size) - kWindow;
  std::vector<std::string> lines = read_from(from, tail >= 0 ? kWindow : kLogChunk);
  if (from > 0 && !lines.empty()) lines.erase(lines.begin());  // a line cut by the window
  if (tail >= 0 && lines.size() > static_cast<std::size_t>(tail))
    lines.erase(lines.begin(), lines.end() - tail);
  return lines;
}

std::vector<std::string> LogFile::more() {
  return read_from(offset_, kLogChunk);
}

std::string LogFile::format(const std::string& line) const {
  if (source_ == "audit") return line;
  return json{{"stream", "output"}, {"line", line}}.dump(-1, ' ', false,
                                                         json::error_handler_t::replace);
}

Result<UniqueFd> open_in_workspace(const std::string& workdir, std::string rel, int flags,
                                   bool make_parents) {
  // Never waits: the workload can put a FIFO (open would wait for its other end) or a file with
  // a lease (open would wait out lease-break-time) where a transfer goes, and the gateway serves
  // every sandbox from one thread. Callers check what they got with fstat.
  flags |= O_NONBLOCK | O_NOCTTY;
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (rel.find('\0') != std::string::npos) return fail("the path holds a NUL byte");
  if (rel.empty()) rel = ".";
  UniqueFd root(::open(workdir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail_errno("the workspace " + workdir);
  const bool create = (flags & O_CREAT) || make_parents;
  if (create) {
    // Each parent made and entered beneath the workspace.
    std::vector<std::string> parts;
    for (auto p : split(rel, '/'))
      if (!p.empty() && p != ".") parts.emplace_back(p);
    if (parts.empty() && (flags & O_CREAT)) return fail("a file path is needed");
    const std::size_t dirs = (flags & O_CREAT) ? parts.size() - 1 : parts.size();
    UniqueFd at = std::move(root);
    for (std::size_t i = 0; i < dirs; ++i) {
      if (parts[i] == "..") return fail("'..' is not allowed in an upload path");
      ::mkdirat(at.get(), parts[i].c_str(), 0755);
      int next = openat2_beneath(at.get(), parts[i], O_PATH | O_DIRECTORY, 0);
      if (next < 0)
        return fail(errno == EXDEV ? "the path leads outside the workspace"
                                   : "cannot enter " + parts[i] + ": " + std::strerror(errno));
      at.reset(next);
    }
    if (!(flags & O_CREAT)) {
      int fd = openat2_beneath(at.get(), ".", flags, 0);
      if (fd < 0) return fail_errno("open " + rel);
      return UniqueFd(fd);
    }
    if (parts.back() == "..") return fail("'..' is not allowed in an upload path");
    int fd = openat2_beneath(at.get(), parts.back(), flags | O_NOFOLLOW, 0644);
    if (fd < 0)
      return fail(errno == EXDEV || errno == ELOOP ? "the path leads outside the workspace"
                                                   : "open " + rel + ": " + std::strerror(errno));
    return UniqueFd(fd);
  }
  int fd = openat2_beneath(root.get(), rel, flags, 0);
  if (fd < 0)
    return fail(errno == EXDEV ? "the path leads outside the workspace"
                               : rel + ": " + std::strerror(errno));
  return UniqueFd(fd);
}

Result<void> write_in_workspace(const std::string& workdir, const std::string& rel,
                                std::string_view data) {
  if (rel.find('\0') != std::string::npos) return fail("the path holds a NUL byte");
  const auto slash = rel.find_last_of('/');
  const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (name.empty() || name == "." || name == "..")
    return fail("a file path is needed ('" + rel + "' names a directory)");
  auto dir = open_in_workspace(workdir, slash == std::string::npos ? "." : rel.substr(0, slash),
                               O_RDONLY | O_DIRECTORY, true);
  if (!dir) return tl::unexpected(dir.error());
  // What is there now: replaced only if it is a regular file, and the new one gets its owner
  // and permissions (not setuid/setgid: writing a file clears those too).
  struct stat st;
  const bool existing = ::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (existing && S_ISLNK(st.st_mode)) return fail("the path leads outside the workspace");
  if (existing && !S_ISREG(st.st_mode)) return fail(rel + ": not a regular file");
  unsigned char random[8];
  if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random))
    return fail_errno("getrandom");
  std::string temp = ".ward-upload-";
  for (unsigned char b : random) temp += fmt::format("{:02x}", b);
  UniqueFd fd(::openat(dir->get(), temp.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                       existing ? st.st_mode & 0777 : 0644));
  if (!fd) return fail_errno("create a file beside " + rel);
  if (existing) {
    int ignored = ::fchown(fd.get(), st.st_uid, st.st_gid);  // as root; a user's are its own
    (void)ignored;
  }
  auto abandon = [&](const std::string& what) {
    const int err = errno;
    ::unlinkat(dir->get(), temp.c_str(), 0);
    return fail(what + ": " + std::strerror(err), err);
  };
  for (std::size_t at = 0; at < data.size();) {
    const ssize_t n = ::write(fd.get(), data.data() + at, data.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return abandon("write " + rel);
    at += static_cast<std::size_t>(n);
  }
  if (::close(fd.release()) != 0) return abandon("write " + rel);
  if (::renameat(dir->get(), temp.c_str(), dir->get(), name.c_str()) != 0)
    return abandon("replace " + rel);
  return {};
}

void Histogram::observe(double seconds) {
  for (std::size_t i = 0; i < std::size(kBounds); ++i)
    if (seconds <= kBounds[i]) ++counts_[i];
  ++total_;
  sum_ += seconds;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  for (std::size_t i = 0; i < std::size(kBounds); ++i)
    out += name + "_bucket{le=\"" + fmt::format("{}", kBounds[i]) + "\"} " +
           std::to_string(counts_[i]) + "\n";
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(total_) + "\n";
  out += name + "_sum " + fmt::format("{}", sum_) + "\n";
  out += name + "_count " + std::to_string(total_) + "\n";
  return out;
}

std::string proxy_metrics(const std::string& sandboxes_dir) {
  struct Counted {
    LogFile file;
    std::map<std::pair<std::string, std::string>, std::uint64_t> decisions;  // (action, rule)
  };
  static std::map<std::string, Counted> by_sandbox;
  static Histogram latency;  // every sandbox's, since the gateway started
  if (DIR* d = ::opendir(sandboxes_dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string id = e->d_name;
      if (id.rfind("sb-", 0) != 0) continue;
      auto [it, fresh] = by_sandbox.try_emplace(
          id, Counted{LogFile(sandboxes_dir + "/" + id + "/audit.jsonl", "audit"), {}});
      for (const std::string& line : it->second.file.more()) {
        json record = json::parse(line, nullptr, false);
        if (!record.is_object() || !record.contains("action_id")) continue;
        const std::string action = record["action_id"] == 1 ? "allowed" : "denied";
        std::string rule;
        if (record.contains("unmapped") && record["unmapped"].is_object())
          rule = record["unmapped"].value("rule", "");
        ++it->second.decisions[{action, rule}];
        // Relayed HTTP requests carry their latency.
        if (record.value("class_uid", 0) == 4002 && record["unmapped"].is_object() &&
            record["unmapped"].contains("duration_us") &&
            record["unmapped"]["duration_us"].is_number())
          latency.observe(record["unmapped"]["duration_us"].get<double>() / 1e6);
      }
    }
    ::closedir(d);
  }
  std::string out =
      "# HELP ward_egress_decisions_total Egress proxy decisions by sandbox, action and rule.\n"
      "# TYPE ward_egress_decisions_total counter\n";
  for (auto it = by_sandbox.begin(); it != by_sandbox.end();) {
    struct stat st;
    if (::stat((sandboxes_dir + "/" + it->first).c_str(), &st) != 0) {
      it = by_sandbox.erase(it);  // deleted
      continue;
    }
    for (const auto& [key, n] : it->second.decisions)
      out += "ward_egress_decisions_total{sandbox=\"" + it->first + "\",action=\"" + key.first +
             "\",rule=\"" + key.second + "\"} " + std::to_string(n) + "\n";
    ++it;
  }
  return out + latency.render("ward_egress_request_duration_seconds",
                              "HTTP requests relayed by the egress proxies, from the request's "
                              "head to the end of the response");
}

}  // namespace ward::gateway
