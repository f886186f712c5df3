#include "mcp/fixtures.h"

#include <regex>
#include <thread>

namespace ward::mcp::fixtures {
namespace {

// A 1×1 PNG and a tiny WAV: the payloads the suite compares.
constexpr const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg"
    "==";
constexpr const char* kWav = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

json text(const std::string& t) {
  return {{"content", json::array({{{"type", "text"}, {"text", t}}})}};
}

json empty_schema() {
  return {{"type", "object"}, {"properties", json::object()}};
}

json tool(const char* name, const char* description, json schema = empty_schema()) {
  return {{"name", name}, {"description", description}, {"inputSchema", std::move(schema)}};
}

json notification(const char* method, json params) {
  return {{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
}

// Asks the client (sampling, elicitation) on the tool call's stream.
std::optional<json> ask(Session& session, Stream& stream, const char* method, json params) {
  auto answer = session.ask(stream, {{"method", method}, {"params", std::move(params)}},
                            std::chrono::seconds(30));
  if (!answer || !answer->contains("result")) return std::nullopt;
  return (*answer)["result"];
}

std::string elicited(const json& r) {
  return "action=" + string_member(r, "action") +
         ", content=" + r.value("content", json::object()).dump();
}

json string_with(const char* description) {
  return {{"type", "string"}, {"description", description}};
}

}  // namespace

json tools() {
  return json::array({
      tool("test_simple_text", "Tests simple text content response"),
      tool("test_image_content", "Tests image content response"),
      tool("test_audio_content", "Tests audio content response"),
      tool("test_embedded_resource", "Tests embedded resource content response"),
      tool("test_multiple_content_types",
           "Tests response with multiple content types (text, image, resource)"),
      tool("test_tool_with_logging", "Tests tool that emits log messages during execution"),
      tool("test_tool_with_progress", "Tests tool that reports progress notifications"),
      tool("test_error_handling", "Tests error response handling"),
      tool("test_sampling", "Tests server-initiated sampling (LLM completion request)",
           {{"type", "object"},
            {"properties", {{"prompt", string_with("The prompt to send to the LLM")}}},
            {"required", {"prompt"}}}),
      tool("test_elicitation", "Tests server-initiated elicitation (user input request)",
           {{"type", "object"},
            {"properties", {{"message", string_with("The message to show the user")}}},
            {"required", {"message"}}}),
      tool("test_elicitation_sep1034_defaults",
           "Tests elicitation with default values per SEP-1034"),
      tool("test_elicitation_sep1330_enums",
           "Tests elicitation with enum schema improvements per SEP-1330"),
      tool("json_schema_2020_12_tool",
           "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
           {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
            {"type", "object"},
            {"$defs",
             {{"address",
               {{"type", "object"},
                {"properties",
                 {{"street", {{"type", "string"}}}, {"city", {{"type", "string"}}}}}}}}},
            {"properties",
             {{"name", {{"type", "string"}}}, {"address", {{"$ref", "#/$defs/address"}}}}},
            {"additionalProperties", false}}),
  });
}

std::optional<json> call_tool(const std::string& name, const json& args, Session& session,
                              Stream& stream, const json& progress_token) {
  if (name == "test_simple_text") return text("This is a simple text response for testing.");
  if (name == "test_image_content")
    return json{
        {"content", json::array({{{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}}})}};
  if (name == "test_audio_content")
    return json{
        {"content", json::array({{{"type", "audio"}, {"data", kWav}, {"mimeType", "audio/wav"}}})}};
  if (name == "test_embedded_resource")
    return json{
        {"content", json::array({{{"type", "resource"},
                                  {"resource",
                                   {{"uri", "test://embedded-resource"},
                                    {"mimeType", "text/plain"},
                                    {"text", "This is an embedded resource content."}}}}})}};
  if (name == "test_multiple_content_types")
    return json{
        {"content", json::array({{{"type", "text"}, {"text", "Multiple content types test:"}},
                                 {{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}},
                                 {{"type", "resource"},
                                  {"resource",
                                   {{"uri", "test://mixed-content-resource"},
                                    {"mimeType", "application/json"},
                                    {"text", "{\"test\":\"data\",\"value\":123}"}}}}})}};
  if (name == "test_tool_with_logging") {
    bool first = true;
    for (const char* m :
         {"Tool execution started", "Tool processing data", "Tool execution completed"}) {
      if (!first) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      first = false;
      if (session.log_level <= Session::level_rank("info"))
        stream.send(notification("notifications/message", {{"level", "info"}, {"data", m}}));
    }
    return text("Tool with logging executed successfully");
  }
  if (name == "test_tool_with_progress") {
    const json token = progress_token.is_null() ? json(0) : progress_token;
    for (int p : {0, 50, 100}) {
      if (p) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      stream.send(notification("notifications/progress",
                               {{"progressToken", token},
                                {"progress", p},
                                {"total", 100},
                                {"message", "Completed step " + std::to_string(p) + " of 100"}}));
    }
    return text(token.is_string() ? token.get<std::string>() : token.dump());
  }
  if (name == "test_error_handling")
    return json{
        {"isError", true},
        {"content",
         json::array({{{"type", "text"},
                       {"text", "This tool intentionally returns an error for testing"}}})}};
  if (name == "test_sampling") {
    const std::string prompt = string_member(args, "prompt");
    auto r =
        ask(session, stream, "sampling/createMessage",
            {{"messages",
              json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", prompt}}}}})},
             {"maxTokens", 100}});
    if (!r) return json{{"error", {{"code", -32603}, {"message", "the client did not answer"}}}};
    const json content = r->value("content", json::object());
    return text("LLM response: " + (content.is_object() && content.contains("text")
                                        ? content["text"].get<std::string>()
                                        : std::string("No response")));
  }
  if (name == "test_elicitation") {
    auto r = ask(session, stream, "elicitation/create",
                 {{"message", string_member(args, "message")},
                  {"requestedSchema",
                   {{"type", "object"},
                    {"properties",
                     {{"username", string_with("User's response")},
                      {"email", string_with("User's email address")}}},
                    {"required", {"username", "email"}}}}});
    if (!r) return json{{"error", {{"code", -32603}, {"message", "the client did not answer"}}}};
    return text("User response: " + elicited(*r));
  }
  if (name == "test_elicitation_sep1034_defaults") {
    json props = {
        {"name", {{"type", "string"}, {"description", "User name"}, {"default", "John Doe"}}},
        {"age", {{"type", "integer"}, {"description", "User age"}, {"default", 30}}},
        {"score", {{"type", "number"}, {"description", "User score"}, {"default", 95.5}}},
        {"status",
         {{"type", "string"},
          {"description", "User status"},
          {"enum", {"active", "inactive", "pending"}},
          {"default", "active"}}},
        {"verified",
         {{"type", "boolean"}, {"description", "Verification status"}, {"default", true}}}};
    auto r = ask(session, stream, "elicitation/create",
                 {{"mode", "form"},
                  {"message", "Please review and update the form fields with defaults"},
                  {"requestedSchema",
                   {{"type", "object"}, {"properties", props}, {"required", json::array()}}}});
    if (!r) return json{{"error", {{"code", -32603}, {"message", "the client did not answer"}}}};
    return text("Elicitation completed: " + elicited(*r));
  }
  if (name == "test_elicitation_sep1330_enums") {
    auto titled = [](const char* a, const char* b, const char* c, const char* ta, const char* tb,
                     const char* tc) {
      return json::array({{{"const", a}, {"title", ta}},
                          {{"const", b}, {"title", tb}},
                          {{"const", c}, {"title", tc}}});
    };
    json props = {{"untitledSingle",
                   {{"type", "string"},
                    {"description", "Select one option"},
                    {"enum", {"option1", "option2", "option3"}}}},
                  {"titledSingle",
                   {{"type", "string"},
                    {"description", "Select one option with titles"},
                    {"oneOf", titled("value1", "value2", "value3", "First Option", "Second Option",
                                     "Third Option")}}},
                  {"legacyEnum",
                   {{"type", "string"},
                    {"description", "Select one option (legacy)"},
                    {"enum", {"opt1", "opt2", "opt3"}},
                    {"enumNames", {"Option One", "Option Two", "Option Three"}}}},
                  {"untitledMulti",
                   {{"type", "array"},
                    {"description", "Select multiple options"},
                    {"minItems", 1},
                    {"maxItems", 3},
                    {"items", {{"type", "string"}, {"enum", {"option1", "option2", "option3"}}}}}},
                  {"titledMulti",
                   {{"type", "array"},
                    {"description", "Select multiple options with titles"},
                    {"minItems", 1},
                    {"maxItems", 3},
                    {"items",
                     {{"anyOf", titled("value1", "value2", "value3", "First Choice",
                                       "Second Choice", "Third Choice")}}}}}};
    auto r = ask(session, stream, "elicitation/create",
                 {{"mode", "form"},
                  {"message", "Please select options from the enum fields"},
                  {"requestedSchema",
                   {{"type", "object"}, {"properties", props}, {"required", json::array()}}}});
    if (!r) return json{{"error", {{"code", -32603}, {"message", "the client did not answer"}}}};
    return text("Elicitation completed: " + elicited(*r));
  }
  if (name == "json_schema_2020_12_tool")
    return text("JSON Schema 2020-12 tool called with: " + args.dump());
  return std::nullopt;
}

json resources() {
  auto r = [](const char* uri, const char* name, const char* title, const char* description,
              const char* mime) {
    return json{{"uri", uri},
                {"name", name},
                {"title", title},
                {"description", description},
                {"mimeType", mime}};
  };
  return json::array({r("test://static-text", "static-text", "Static Text Resource",
                        "A static text resource for testing", "text/plain"),
                      r("test://static-binary", "static-binary", "Static Binary Resource",
                        "A static binary resource (image) for testing", "image/png"),
                      r("test://watched-resource", "watched-resource", "Watched Resource",
                        "A resource that auto-updates every 3 seconds", "text/plain")});
}

json resource_templates() {
  return json::array({{{"uriTemplate", "test://template/{id}/data"},
                       {"name", "template"},
                       {"title", "Resource Template"},
                       {"description", "A resource template with parameter substitution"},
                       {"mimeType", "application/json"}}});
}

std::optional<json> read_resource(const std::string& uri) {
  if (uri == "test://static-text")
    return json::array({{{"uri", uri},
                         {"mimeType", "text/plain"},
                         {"text", "This is the content of the static text resource."}}});
  if (uri == "test://static-binary")
    return json::array({{{"uri", uri}, {"mimeType", "image/png"}, {"blob", kPng}}});
  if (uri == "test://watched-resource")
    return json::array(
        {{{"uri", uri}, {"mimeType", "text/plain"}, {"text", "Watched resource content"}}});
  static const std::regex kTemplate("test://template/([^/]+)/data");
  std::smatch m;
  if (std::regex_match(uri, m, kTemplate)) {
    const std::string id = m[1];
    json data = {{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}};
    return json::array({{{"uri", uri}, {"mimeType", "application/json"}, {"text", data.dump()}}});
  }
  return std::nullopt;
}

std::optional<json> handle(const std::string& method, const json& params, Session&, Stream&) {
  if (method == "resources/subscribe" || method == "resources/unsubscribe") return json::object();
  if (method == "completion/complete")
    return json{{"completion", {{"values", json::array()}, {"total", 0}, {"hasMore", false}}}};
  if (method == "prompts/list") {
    auto arg = [](const char* name, const char* description) {
      return json{{"name", name}, {"description", description}, {"required", true}};
    };
    return json{{"prompts",
                 json::array({{{"name", "test_simple_prompt"},
                               {"title", "Simple Test Prompt"},
                               {"description", "A simple prompt without arguments"}},
                              {{"name", "test_prompt_with_arguments"},
                               {"title", "Prompt With Arguments"},
                               {"description", "A prompt with required arguments"},
                               {"arguments", json::array({arg("arg1", "First test argument"),
                                                          arg("arg2", "Second test argument")})}},
                              {{"name", "test_prompt_with_embedded_resource"},
                               {"title", "Prompt With Embedded Resource"},
                               {"description", "A prompt that includes an embedded resource"},
                               {"arguments",
                                json::array({arg("resourceUri", "URI of the resource to embed")})}},
                              {{"name", "test_prompt_with_image"},
                               {"title", "Prompt With Image"},
                               {"description", "A prompt that includes image content"}}})}};
  }
  if (method == "prompts/get") {
    const std::string name = string_member(params, "name");
    const json args = params.value("arguments", json::object());
    auto user = [](json content) {
      return json{{"role", "user"}, {"content", std::move(content)}};
    };
    auto text_content = [](const std::string& t) { return json{{"type", "text"}, {"text", t}}; };
    auto arg = [&](const char* key) {
      return args.contains(key) && args[key].is_string() ? args[key].get<std::string>()
                                                         : std::string("undefined");
    };
    if (name == "test_simple_prompt")
      return json{
          {"messages", json::array({user(text_content("This is a simple prompt for testing."))})}};
    if (name == "test_prompt_with_arguments")
      return json{{"messages",
                   json::array({user(text_content("Prompt with arguments: arg1='" + arg("arg1") +
                                                  "', arg2='" + arg("arg2") + "'"))})}};
    if (name == "test_prompt_with_embedded_resource")
      return json{
          {"messages",
           json::array({user({{"type", "resource"},
                              {"resource",
                               {{"uri", arg("resourceUri")},
                                {"mimeType", "text/plain"},
                                {"text", "Embedded resource content for testing."}}}}),
                        user(text_content("Please process the embedded resource above."))})}};
    if (name == "test_prompt_with_image")
      return json{
          {"messages",
           json::array({user({{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}}),
                        user(text_content("Please analyze the image above."))})}};
    return json{{"error", {{"code", -32602}, {"message", "Prompt " + name + " not found"}}}};
  }
  return std::nullopt;
}

}  // namespace ward::mcp::fixtures
