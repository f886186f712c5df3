// The fixtures of the MCP conformance suite (@modelcontextprotocol/conformance 0.1.16): the
// test_* tools, test:// resources and test_* prompts with the fixed payloads its scenarios check.
// Served only in a test mode (`ward gateway --mcp-fixtures`, `ward mcp --fixtures`), never by
// default.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "mcp/server.h"

namespace ward::mcp::fixtures {

using json = nlohmann::json;

json tools();
json resources();
json resource_templates();
// A result, {"error": {code, message}}, or nullopt when `name` is not a fixture tool.
std::optional<json> call_tool(const std::string& name, const json& args, Session& session,
                              Stream& stream, const json& progress_token);
// resources/read's `contents`, or nullopt.
std::optional<json> read_resource(const std::string& uri);
// prompts/*, completion/complete, resources/(un)subscribe: a result, {"error": ...}, or nullopt
// for other methods.
std::optional<json> handle(const std::string& method, const json& params, Session& session,
                           Stream& stream);

}  // namespace ward::mcp::fixtures
