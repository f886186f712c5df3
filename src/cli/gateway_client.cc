#include "cli/gateway_client.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "base/log.h"
#include "base/strings.h"
#include "cli/egress_setup.h"
#include "creds/scan.h"

namespace ward::cli {
namespace {

// "2026-12-04T05:00:00Z" or with fractional seconds / an offset; nullopt when unreadable.
std::optional<std::time_t> parse_time(const std::string& text) {
  std::tm tm{};
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  if (*rest == '.')
    for (++rest; *rest >= '0' && *rest <= '9';) ++rest;
  long offset = 0;
  if ((*rest == '+' || *rest == '-') && std::strlen(rest) >= 6) {
    const long h = std::strtol(rest + 1, nullptr, 10), m = std::strtol(rest + 4, nullptr, 10);
    offset = (*rest == '+' ? 1 : -1) * (h * 3600 + m * 60);
  }
  return ::timegm(&tm) - offset;
}

// yaml-cpp writes "123", "true" or "2026-12-04T05:00:00Z" plain, which a reader takes for a number,
// a boolean or a timestamp: such strings are quoted (a few more than needed, never fewer).
bool looks_like_non_string(const std::string& s) {
  if (s.empty()) return false;  // yaml-cpp quotes "" itself
  const char c = s[0];
  if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') return true;
  std::string lower;
  for (char ch : s) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  for (const char* word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"})
    if (lower == word) return true;
  return false;
}

// yaml-cpp writes a literal block as "|" with no indentation indicator: it keeps text as is only
// when the text ends in exactly one newline, its first line is not indented, no line ends in blanks
// and it holds no other control character than a tab.
bool literal_block_safe(const std::string& s) {
  if (s.size() < 2 || s.back() != '\n' || s[s.size() - 2] == '\n') return false;
  if (s[0] == ' ' || s[0] == '\t') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return false;
    if (c == '\n' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) return false;
  }
  return true;
}

void emit_yaml(YAML::Emitter& out, const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
      if (value.empty()) out << YAML::Flow;  // "{}", not an empty block
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key << key << YAML::Value;
        emit_yaml(out, item);
      }
      out << YAML::EndMap;
      break;
    case Json::value_t::array:
      if (value.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : value) emit_yaml(out, item);
      out << YAML::EndSeq;
      break;
    case Json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      if (text.find('\n') != std::string::npos && literal_block_safe(text))
        out << YAML::Literal;  // a policy's text reads best as a block
      else if (looks_like_non_string(text))
        out << YAML::DoubleQuoted;
      out << text;
      break;
    }
    case Json::value_t::boolean:
      out << value.get<bool>();
      break;
    case Json::value_t::null:
    case Json::value_t::discarded:
      out << YAML::Null;
      break;
    default:  // numbers print the same in both
      out << value.dump();
      break;
  }
}

}  // namespace

client::Endpoint gateway_endpoint(const std::string& flag) {
  client::Endpoint endpoint;
  if (!flag.empty())
    endpoint.address = flag;
  else if (const char* env = std::getenv("WARD_GATEWAY"); env && *env)
    endpoint.address = env;
  else
    endpoint.address = state_dir("") + "/gateway.sock";
  if (endpoint.is_tcp())
    if (const char* token = std::getenv("WARD_GATEWAY_TOKEN")) endpoint.token = token;
  if (endpoint.is_tls())
    if (const char* ca = std::getenv("WARD_GATEWAY_CA")) endpoint.ca_file = ca;
  return endpoint;
}

void add_gateway_options(CLI::App* command, GatewayOptions& options) {
  command->add_option("--gateway", options.gateway,
                      "The gateway: its socket, or http(s)://HOST:PORT with the token in "
                      "$WARD_GATEWAY_TOKEN and a private CA in $WARD_GATEWAY_CA (default: "
                      "$WARD_GATEWAY, else gateway.sock in ward's state directory)");
  command->add_option("-o,--output", options.output, "table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
}

GatewayClient connect_client(const GatewayOptions& options) {
  return GatewayClient(gateway_endpoint(options.gateway));
}

int report_transport_error(const GatewayClient& client, const Error& error) {
  if (error.err == ENOENT || error.err == ECONNREFUSED)
    std::fprintf(stderr,
                 "ward: no gateway is running at %s: start one with 'ward gateway' (or set "
                 "--gateway / WARD_GATEWAY)\n",
                 client.address().c_str());
  else
    std::fprintf(stderr, "ward: %s\n", error.describe().c_str());
  return 1;
}

int report_api_error(const Response& response, std::string_view policy_file) {
  auto error = Json::parse(response.body, nullptr, false);
  if (!error.is_object() || !error.contains("error")) {
    std::string text = response.body.substr(0, response.body.find('\n'));
    std::fprintf(stderr, "ward: the gateway answered %u%s%s\n", response.status,
                 text.empty() ? "" : ": ", text.c_str());
    return 1;
  }
  // invalid_policy: every diagnostic, in the policy linter's shape and naming the file, then
  // the verdict (the message repeats the first diagnostic, under the gateway's name for it).
  if (auto d = error.find("diagnostics"); field(error, "error") == "invalid_policy" &&
                                          d != error.end() && d->is_array() && !d->empty()) {
    const std::string file = printable(policy_file);
    for (const auto& item : *d)
      std::fprintf(stderr, "%s:%s:%s: error: %s%s%s\n", file.c_str(), field(item, "line").c_str(),
                   field(item, "column").c_str(), printable(field(item, "key")).c_str(),
                   field(item, "key").empty() ? "" : ": ",
                   printable(field(item, "message")).c_str());
    std::fprintf(stderr, "ward: %s: invalid policy, refused by the gateway (%zu error%s)\n",
                 file.c_str(), d->size(), d->size() == 1 ? "" : "s");
    return 1;
  }
  std::fprintf(stderr, "ward: %s (%s)\n", field(error, "message").c_str(),
               field(error, "error").c_str());
  // A --listen address without the token, or with another: where the token comes from.
  if (response.status == 401) {
    const char* token = std::getenv("WARD_GATEWAY_TOKEN");
    std::fprintf(stderr, "ward: %s\n",
                 token && *token
                     ? "the token in WARD_GATEWAY_TOKEN is not this gateway's (its token file: "
                       "STATE/token on the gateway's host, or its --token-file)"
                     : "set WARD_GATEWAY_TOKEN to the gateway's bearer token (its token file: "
                       "STATE/token on the gateway's host, or its --token-file)");
  }
  // A command that could not start (connect): its exit code, as exec's would be.
  if (auto code = error.find("code");
      field(error, "error") == "command_failed" && code != error.end() && code->is_number_integer())
    return code->get<int>();
  return 1;
}

std::optional<Json> call(const GatewayOptions& options, const Request& request,
                         std::string_view policy_file) {
  GatewayClient client = connect_client(options);
  auto answer = client.request(request);
  if (!answer) {
    report_transport_error(client, answer.error());
    return std::nullopt;
  }
  if (!answer->ok()) {
    report_api_error(*answer, policy_file);
    return std::nullopt;
  }
  auto value = Json::parse(answer->body, nullptr, false);
  if (value.is_discarded()) {
    std::fprintf(stderr, "ward: the gateway's answer to %s %s is not JSON\n",
                 request.method.c_str(), request.target.c_str());
    return std::nullopt;
  }
  return value;
}

int guarded(const std::function<int()>& action) {
  try {
    return action();
  } catch (const Json::exception& e) {
    std::fprintf(stderr, "ward: the gateway's answer is not what ward expects: %s\n", e.what());
    return 1;
  }
}

std::string json_body(const Json& body, std::string_view what) {
  try {
    return body.dump();
  } catch (const Json::type_error&) {
    log::warn("{} is not UTF-8 text: its invalid bytes are sent as U+FFFD", what);
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

std::string to_yaml(const Json& value) {
  YAML::Emitter out;
  emit_yaml(out, value);
  return std::string(out.c_str()) + "\n";
}

bool print_structured(const Json& value, const GatewayOptions& options) {
  if (options.output == "json")
    std::printf("%s\n", value.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
  else if (options.output == "yaml")
    std::fputs(to_yaml(value).c_str(), stdout);
  else
    return false;
  return true;
}

void print_stream_item(const Json& value, const GatewayOptions& options) {
  if (options.output == "yaml")
    std::printf("---\n%s", to_yaml(value).c_str());
  else
    std::printf("%s\n", value.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  std::fflush(stdout);
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

void print_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size() + 1);
  for (const auto& [key, value] : fields)
    std::printf("%-*s %s\n", static_cast<int>(width), (key + ":").c_str(), value.c_str());
}

std::string field(const Json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  if (it == object.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return "";
}

const Json& member(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string age(const std::string& rfc3339) {
  auto then = parse_time(rfc3339);
  if (!then) return "-";
  const long s = std::max<long>(0, static_cast<long>(std::time(nullptr) - *then));
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "m";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string percent_encode(std::string_view s) {
  return creds::detail::percent_encode(s);
}

Result<std::pair<std::string, std::string>> split_assignment(const std::string& text,
                                                             bool from_env) {
  const auto eq = text.find('=');
  if (eq == 0) return fail("'" + text + "': the name before '=' is empty");
  if (eq != std::string::npos) return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
  if (!from_env) return fail("'" + text + "' is not of the form KEY=VALUE");
  const char* value = std::getenv(text.c_str());
  if (!value) return fail("'" + text + "' has no '=' and is not set in ward's environment");
  return std::make_pair(text, std::string(value));
}

}  // namespace ward::cli
