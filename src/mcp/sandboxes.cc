#include "mcp/sandboxes.h"

#include <openssl/sha.h>

#include <cctype>
#include <cerrno>
#include <ctime>

#include "creds/scan.h"

namespace ward::mcp {
namespace {

std::string encode(std::string_view s) {  // for a query value
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string api_error(const client::Response& r) {
  auto body = json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("message") && body["message"].is_string())
    return body["message"].get<std::string>();
  return "the gateway answered " + std::to_string(r.status);
}

}  // namespace

void Capture::append(std::string_view bytes) {
  total_ += bytes.size();
  const std::size_t to_head = std::min(bytes.size(), head_limit_ - head_.size());
  head_.append(bytes.substr(0, to_head));
  bytes.remove_prefix(to_head);
  if (tail_limit_ == 0 || bytes.empty()) return;
  if (bytes.size() >= tail_limit_) {
    ring_.assign(bytes.substr(bytes.size() - tail_limit_));
    ring_at_ = 0;
    return;
  }
  for (char c : bytes) {
    if (ring_.size() < tail_limit_) {
      ring_ += c;
    } else {
      ring_[ring_at_] = c;
      ring_at_ = (ring_at_ + 1) % tail_limit_;
    }
  }
}

std::string Capture::tail() const {
  if (ring_.size() < tail_limit_) return ring_;
  return ring_.substr(ring_at_) + ring_.substr(0, ring_at_);
}

bool Sandboxes::valid_chat_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.' || id[0] == '-') return false;
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::string Sandboxes::name_for(std::string_view chat_id) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(chat_id.data()), chat_id.size(), digest);
  static const char* kHex = "0123456789abcdef";
  std::string name = "mcp-";
  for (int i = 0; i < 10; ++i) {
    name += kHex[digest[i] >> 4];
    name += kHex[digest[i] & 15];
  }
  return name;
}

Result<json> Sandboxes::call(const client::Request& request, std::initializer_list<unsigned> ok) {
  auto r = client_.request(request);
  if (!r) return tl::unexpected(r.error());
  const bool fine = ok.size() ? std::find(ok.begin(), ok.end(), r->status) != ok.end() : r->ok();
  if (!fine) return fail(api_error(*r));
  auto body = json::parse(r->body, nullptr, false);
  if (body.is_discarded()) body = json::object();
  return body;
}

Result<SandboxRef> Sandboxes::open(const std::string& chat_id, bool fresh) {
  if (!valid_chat_id(chat_id)) return fail("not a valid chat id", EINVAL);
  std::lock_guard lock(mutex_);
  if (!fresh)
    if (auto it = known_.find(chat_id); it != known_.end()) return it->second;
  const std::string name = name_for(chat_id);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto got = client_.request({.method = "GET", .target = "/v1/sandboxes/" + name});
    if (!got) return tl::unexpected(got.error());
    json sandbox;
    if (got->status == 404) {
      json body = {{"name", name},
                   {"labels", {{"ward.mcp", "1"}, {"ward.mcp.chat", chat_id}}},
                   {"idle_ttl_s", options_.idle_ttl.count()}};
      if (!options_.policy.empty()) body["policy"] = options_.policy;
      auto created =
          client_.request({.method = "POST", .target = "/v1/sandboxes", .body = body.dump()});
      if (!created) return tl::unexpected(created.error());
      if (created->status == 409) continue;  // made meanwhile by another session
      if (!created->ok()) return fail("creating the chat's sandbox: " + api_error(*created));
      sandbox = json::parse(created->body, nullptr, false);
    } else if (got->ok()) {
      sandbox = json::parse(got->body, nullptr, false);
    } else {
      return fail(api_error(*got));
    }
    if (!sandbox.is_object()) return fail("the gateway's answer is not a sandbox");
    const json& labels = sandbox.value("labels", json::object());
    if (labels.value("ward.mcp.chat", "") != chat_id)
      return fail("sandbox " + name + " belongs to another chat; refusing to share it");
    if (sandbox.value("status", "") != "running") {
      auto started = call({.method = "POST", .target = "/v1/sandboxes/" + name + "/start"});
      if (!started) return fail("starting the chat's sandbox: " + started.error().message);
      sandbox = *started;
    }
    SandboxRef ref{name, sandbox.value("workdir", "")};
    known_[chat_id] = ref;
    return ref;
  }
  return fail("the chat's sandbox could not be created");
}

Result<void> Sandboxes::remove(const std::string& chat_id) {
  if (!valid_chat_id(chat_id)) return fail("not a valid chat id", EINVAL);
  const std::string name = name_for(chat_id);
  auto got = call({.method = "GET", .target = "/v1/sandboxes/" + name}, {200, 404});
  if (!got) return tl::unexpected(got.error());
  if (!got->contains("labels") || (*got)["labels"].value("ward.mcp.chat", "") != chat_id) return {};
  auto r = call({.method = "DELETE", .target = "/v1/sandboxes/" + name}, {200, 404});
  if (!r) return tl::unexpected(r.error());
  std::lock_guard lock(mutex_);
  known_.erase(chat_id);
  return {};
}

Result<ExecResult> Sandboxes::exec(const SandboxRef& sandbox, const ExecRequest& request) {
  json body = {{"command", request.argv}};
  if (!request.stdin_data.empty()) body["stdin"] = request.stdin_data;
  if (!request.workdir.empty()) body["workdir"] = request.workdir;
  if (request.timeout.count() > 0) body["timeout_ms"] = request.timeout.count();
  ExecResult result;
  result.out = Capture(request.head, request.tail);
  result.err = Capture(request.head, request.tail);
  bool ended = false;
  std::string failure;
  client::GatewayClient::Ticker ticker;
  if (request.tick) {
    ticker.every = std::chrono::milliseconds(1000);
    ticker.tick = [&] {
      if (request.tick()) return true;
      result.cancelled = true;
      return false;
    };
  }
  auto answer = client_.stream_lines(
      {.method = "POST",
       .target = "/v1/sandboxes/" + sandbox.name + "/exec",
       .body = body.dump(-1, ' ', false, json::error_handler_t::replace)},
      [&](std::string_view line) {
        auto event = json::parse(line, nullptr, false);
        if (!event.is_object()) return true;
        const std::string type = event.value("type", "");
        if (type == "stdout" || type == "stderr") {
          Capture& to = type == "stderr" && request.separate_stderr ? result.err : result.out;
          // The gateway's base64 of the output bytes; anything else in a stream is its fault.
          auto bytes = creds::detail::base64_decode(event.value("data", ""));
          if (!bytes) {
            failure = "the gateway sent output that is not base64";
            return false;
          }
          to.append(*bytes);
        } else if (type == "exit") {
          result.code = event.value("code", 0);
          result.signal = event.value("signal", 0);
          result.timed_out = event.value("timed_out", false);
          ended = true;
        } else if (type == "error") {
          failure = event.value("message", "the command failed");
          ended = true;
        }
        return true;
      },
      ticker);
  if (!answer) return tl::unexpected(answer.error());
  if (result.cancelled) return result;
  if (!answer->ok()) {
    auto error = json::parse(answer->body, nullptr, false);
    if (error.is_object() &&
        (error.value("error", "") == "not_running" || error.value("error", "") == "not_found"))
      return fail("the sandbox is not running", ESRCH);
    if (error.is_object() && error.contains("code") && error["code"].is_number_integer()) {
      result.code = error["code"];  // could not start: 126/127
      result.err.append(error.value("message", ""));
      return result;
    }
    return fail(api_error(*answer));
  }
  if (!failure.empty()) return fail(failure);
  if (!ended) return fail("the exec stream ended without an exit");
  return result;
}

Result<void> Sandboxes::upload(const SandboxRef& sandbox, const std::string& path,
                               std::string bytes) {
  auto r = call({.method = "PUT",
                 .target = "/v1/sandboxes/" + sandbox.name + "/files?path=" + encode(path),
                 .body = std::move(bytes),
                 .content_type = "application/octet-stream"});
  if (!r) return tl::unexpected(r.error());
  return {};
}

Result<std::string> Sandboxes::download(const SandboxRef& sandbox, const std::string& path) {
  auto r = client_.request(
      {.method = "GET", .target = "/v1/sandboxes/" + sandbox.name + "/files?path=" + encode(path)});
  if (!r) return tl::unexpected(r.error());
  if (!r->ok()) return fail(api_error(*r));
  if (r->content_type != "application/octet-stream")
    return fail(path + " is a directory; download its files one by one", EISDIR);
  return std::move(r->body);
}

Result<json> Sandboxes::describe(const SandboxRef& sandbox) {
  return call({.method = "GET", .target = "/v1/sandboxes/" + sandbox.name});
}

Result<std::string> Sandboxes::policy(const SandboxRef& sandbox) {
  auto r = call({.method = "GET", .target = "/v1/sandboxes/" + sandbox.name + "/policy"});
  if (!r) return tl::unexpected(r.error());
  return r->value("policy", "");
}

Result<std::string> Sandboxes::audit(const SandboxRef& sandbox, int tail) {
  auto r = client_.request({.method = "GET",
                            .target = "/v1/sandboxes/" + sandbox.name +
                                      "/logs?source=audit&tail=" + std::to_string(tail)});
  if (!r) return tl::unexpected(r.error());
  if (!r->ok()) return fail(api_error(*r));
  return std::move(r->body);
}

Result<int> Sandboxes::sweep() {
  auto list = call({.method = "GET", .target = "/v1/sandboxes?label=" + encode("ward.mcp=1")});
  if (!list) return tl::unexpected(list.error());
  int removed = 0;
  const std::time_t now = std::time(nullptr);
  for (const json& s : list->value("sandboxes", json::array())) {
    const std::string status = s.value("status", "");
    if (status != "stopped" && status != "error") continue;
    std::tm tm = {};
    const std::string updated = s.value("updated_at", "");
    if (!strptime(updated.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) continue;
    if (now - timegm(&tm) < options_.remove_after.count()) continue;
    if (!call({.method = "DELETE", .target = "/v1/sandboxes/" + s.value("name", "")}, {200, 404}))
      continue;
    ++removed;
    std::lock_guard lock(mutex_);
    known_.erase(s.value("labels", json::object()).value("ward.mcp.chat", ""));
  }
  return removed;
}

}  // namespace ward::mcp
