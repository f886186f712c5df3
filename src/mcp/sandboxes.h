// The sandboxes MCP sessions work in, reached through the gateway's API (docs/gateway-api.md):
// one sandbox per chat, created on first use, started again when it was stopped, its commands
// run with `exec`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "client/client.h"

namespace ward::mcp {

using json = nlohmann::json;

// Keeps the first `head` and the last `tail` bytes of what is appended, and counts the rest.
class Capture {
 public:
  Capture(std::size_t head, std::size_t tail) : head_limit_(head), tail_limit_(tail) {}
  void append(std::string_view bytes);
  std::uint64_t total() const { return total_; }
  bool truncated() const { return total_ > head_.size() + ring_.size(); }
  const std::string& head() const { return head_; }
  std::string tail() const;  // in order

 private:
  std::size_t head_limit_, tail_limit_;
  std::string head_;
  std::string ring_;  // the tail, as a ring buffer once full
  std::size_t ring_at_ = 0;
  std::uint64_t total_ = 0;
};

struct ExecRequest {
  std::vector<std::string> argv;
  std::string stdin_data;  // UTF-8 (a JSON string carries it)
  std::string workdir;     // "": the sandbox's workdir
  std::chrono::milliseconds timeout{0};
  // Called about once a second while the command runs; false cancels it (its process group is
  // killed).
  std::function<bool()> tick;
  // stdout and stderr go to one capture, in the order they arrive, unless `separate_stderr`.
  bool separate_stderr = false;
  std::size_t head = 8 << 20, tail = 0;
};

struct ExecResult {
  int code = 0;
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  Capture out{0, 0};
  Capture err{0, 0};
};

// A chat's sandbox.
struct SandboxRef {
  std::string name;
  std::string workdir;  // the workspace: the same path inside and outside
};

struct SandboxesOptions {
  std::string policy;  // YAML for new sandboxes; "": the gateway's default policy
  std::chrono::seconds idle_ttl{900};
  std::chrono::seconds remove_after{24 * 3600};  // a stopped chat sandbox is deleted after this
};

class Sandboxes {
 public:
  Sandboxes(client::Endpoint gateway, SandboxesOptions options)
      : client_(std::move(gateway)), options_(std::move(options)) {}

  // A chat id is 1-128 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
  static bool valid_chat_id(std::string_view id);
  // The sandbox name of a chat: "mcp-" and 20 hex digits of the id's SHA-256. The chat id is
  // kept in the sandbox's labels and checked on every use, so two ids never share a sandbox.
  static std::string name_for(std::string_view chat_id);

  // The chat's sandbox, running: created or started as needed. The answer is remembered; with
  // `fresh` (after an exec found it stopped or gone) it is looked up again.
  Result<SandboxRef> open(const std::string& chat_id, bool fresh = false);
  // Deletes the chat's sandbox (its workspace too); no error when there is none.
  Result<void> remove(const std::string& chat_id);

  // Fails with err ESRCH when the sandbox is not running (stopped while idle).
  Result<ExecResult> exec(const SandboxRef& sandbox, const ExecRequest& request);

  // The workspace's files (confined to it by the gateway).
  Result<void> upload(const SandboxRef& sandbox, const std::string& path, std::string bytes);
  Result<std::string> download(const SandboxRef& sandbox, const std::string& path);

  // The sandbox object, and its active policy's YAML.
  Result<json> describe(const SandboxRef& sandbox);
  Result<std::string> policy(const SandboxRef& sandbox);
  // The last `tail` audit records (JSON lines).
  Result<std::string> audit(const SandboxRef& sandbox, int tail);

  // Deletes chat sandboxes that have been stopped for longer than remove_after; returns how many.
  Result<int> sweep();

 private:
  Result<json> call(const client::Request& request, std::initializer_list<unsigned> ok = {});

  client::GatewayClient client_;
  SandboxesOptions options_;
  std::mutex mutex_;                         // one open() at a time
  std::map<std::string, SandboxRef> known_;  // chat id → its sandbox, as last opened
};

}  // namespace ward::mcp
