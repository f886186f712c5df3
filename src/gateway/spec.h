// What a sandbox's supervisor is given (DIR/spec.json, written by the gateway) and what it leaves
// behind for a gateway that was away (DIR/state.json).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace ward::gateway {

struct SandboxSpec {
  std::string id;
  std::string name;
  std::string policy_file;           // the active revision's text, DIR/policy.yaml
  std::string workdir;               // on the host; bound read-write at the same path
  std::vector<std::string> command;  // the main command; empty: none
  std::vector<std::string> env;      // "NAME=value" for every command, over the policy's
  std::string trust_layer;           // sandbox::RunOptions::trust_layer
  std::vector<std::string> hidden;   // sandbox::RunOptions::hidden
  std::vector<std::pair<std::string, std::string>> secret_env;  // placeholders, never values
  bool inference = false;
  std::int64_t max_lifetime_ms = 0;  // 0: none
  std::int64_t grace_ms = 3000;
  std::uint16_t egress_port = 3128;
};

struct MainExit {
  int code = 0;
  int signal = 0;
  std::int64_t at = 0;  // unix seconds
};

// The supervisor's account of its sandbox, rewritten (atomically) at each change.
struct SandboxState {
  std::string status;  // running | stopped | error
  std::string reason;
  int supervisor_pid = 0;
  int init_pid = 0;
  std::optional<MainExit> main;
};

Result<void> write_spec(const std::string& path, const SandboxSpec& spec);
Result<SandboxSpec> read_spec(const std::string& path);
Result<void> write_state(const std::string& path, const SandboxState& state);
Result<SandboxState> read_state(const std::string& path);

// Writes `data` to `path` through a temporary file and a rename, mode `mode`.
Result<void> write_file_atomic(const std::string& path, const std::string& data, int mode);

}  // namespace ward::gateway
