// The tools every MCP session gets: Open Computer Use's five (bash_tool, str_replace,
// create_file, view, sub_agent: the same names and input schemas, ../shared/reference/mcp.md)
// and ward's own (sandbox_info, upload_file, download_file). Each runs in the session's sandbox,
// under its policy, through the gateway.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mcp/sandboxes.h"

namespace ward::mcp {

struct ToolLimits {
  std::chrono::seconds command_timeout{115};  // bash_tool
  std::chrono::seconds agent_timeout{1800};   // sub_agent
  std::chrono::seconds progress_every{15};    // notifications/progress while a tool runs
  std::size_t max_output = 30000;             // longer output keeps its first and last halves
  std::size_t max_file = 16 << 20;            // view, download_file, upload_file
};

// What a tool call needs from its session: its sandbox (made on first use), progress reports
// and whether the client cancelled it.
struct ToolCall {
  std::function<Result<SandboxRef>(bool reopen)> sandbox;
  std::function<void(double progress, const std::string& message)> progress;  // may be empty
  std::function<bool()> cancelled;
};

// tools/list's `tools`.
nlohmann::json tool_list();

// A CallToolResult: text content (plus image or resource content where the tool returns one),
// structuredContent {result: TEXT}, isError. Unknown tools and bad arguments are results with
// isError too; nullopt means `name` is not a tool here (the caller answers -32602).
std::optional<nlohmann::json> call_tool(Sandboxes& sandboxes, const ToolLimits& limits,
                                        const std::string& name, const nlohmann::json& args,
                                        const ToolCall& call);

// Helpers shared with the protocol layer.
nlohmann::json text_result(const std::string& text, bool is_error);
// Invalid UTF-8 sequences replaced by U+FFFD (a JSON string carries only UTF-8).
std::string valid_utf8(std::string_view bytes);
// Over `max` bytes: the first and last max/2, and a line saying how much was left out between.
std::string shorten(std::string_view text, std::size_t max);

}  // namespace ward::mcp
