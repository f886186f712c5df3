#include "audit/ocsf.h"

#include <fmt/core.h>

#include "base/strings.h"

namespace ward::audit {
namespace {

constexpr int kNetworkActivity = 4001;
constexpr int kHttpActivity = 4002;
constexpr int kCategoryNetwork = 4;
constexpr int kApiActivity = 6003;
constexpr int kCategoryApplication = 6;

// OCSF activity ids: Network Activity 1 Open, 2 Close, 4 Fail, 5 Refuse; HTTP Activity 99 Other is
// not used: the method names the activity (1 Connect ... 8 Trace), 0 Unknown otherwise.
int network_activity_id(const NetworkEvent& e) {
  if (e.action == Action::kDenied) return 5;
  if (e.failed) return 4;
  return e.closed ? 2 : 1;
}

int http_activity_id(const std::string& method) {
  static constexpr const char* kMethods[] = {"CONNECT", "DELETE", "GET", "HEAD",
                                             "OPTIONS", "POST",   "PUT", "TRACE"};
  for (int i = 0; i < 8; ++i)
    if (method == kMethods[i]) return i + 1;
  if (method == "PATCH") return 99;
  return 0;
}

nlohmann::json common(int class_uid, int activity_id, const NetworkEvent& e) {
  const bool allowed = e.action == Action::kAllowed;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.time.time_since_epoch());
  nlohmann::json r = {
      {"class_uid", class_uid},
      {"category_uid", kCategoryNetwork},
      {"activity_id", activity_id},
      {"type_uid", class_uid * 100 + activity_id},
      {"time", ms.count()},
      {"severity_id", allowed ? 1 : 3},  // informational / medium
      {"action_id", allowed ? 1 : 2},    // allowed / denied
      {"disposition_id", allowed ? 1 : 2},
      {"status_id", allowed && !e.failed ? 1 : 2},  // success / failure
      {"message", e.reason},
      {"metadata",
       {{"version", "1.7.0"}, {"product", {{"name", "ward"}, {"vendor_name", "ward"}}}}},
      {"actor", {{"process", {{"pid", e.pid}, {"file", {{"path", e.binary}}}}}}},
      {"dst_endpoint", {{"hostname", e.host}, {"port", e.port}}},
      {"unmapped", {{"sandbox_id", e.sandbox_id}, {"rule", e.rule}}},
  };
  if (!e.address.empty()) r["dst_endpoint"]["ip"] = e.address;
  if (e.closed) {
    r["traffic"] = {{"bytes_in", e.bytes_in}, {"bytes_out", e.bytes_out}};
    r["duration"] = e.duration.count();
  }
  return r;
}

// "[INFO] ALLOWED", "[MED] DENIED", or "[LOW] FAILED" (allowed, but the upstream failed).
std::string verdict(const NetworkEvent& e) {
  if (e.action == Action::kDenied) return "[MED] DENIED";
  return e.failed ? "[LOW] FAILED" : "[INFO] ALLOWED";
}

std::string where(const NetworkEvent& e) {
  return fmt::format("{}({}) -> {}:{} [policy:{} engine:ward]", e.binary.empty() ? "-" : e.binary,
                     e.pid, e.host, e.port, e.rule.empty() ? "-" : e.rule);
}

// API Activity ids: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other. A generation (chat
// completion, message, embedding) is what OpenAI's and Anthropic's references call "Create"; the
// models list is a Read. 0 Unknown when the path was refused before any protocol was known.
int api_activity_id(const std::string& protocol) {
  if (protocol.empty()) return 0;
  constexpr std::string_view kModels = "_models";
  if (protocol.size() > kModels.size() &&
      protocol.compare(protocol.size() - kModels.size(), kModels.size(), kModels) == 0)
    return 2;
  return 1;
}

// "https://api.example.com:443" → hostname and port ("[::1]" loses its brackets).
nlohmann::json endpoint_of(const std::string& backend) {
  std::string_view rest = backend;
  std::size_t scheme = rest.find("://");
  if (scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
  std::size_t colon = rest.rfind(':');
  std::string_view host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  nlohmann::json out = {{"hostname", host}};
  if (colon != std::string_view::npos) {
    int port = 0;
    for (char c : rest.substr(colon + 1)) {
      if (c < '0' || c > '9' || port > 65535) break;
      port = port * 10 + (c - '0');
    }
    if (port > 0 && port <= 65535) out["port"] = port;
  }
  return out;
}

}  // namespace

std::string redact_query(const std::string& target) {
  size_t q = target.find('?');
  if (q == std::string::npos || q + 1 == target.size()) return target;
  return target.substr(0, q) + "?<redacted>";
}

nlohmann::json network_activity(const NetworkEvent& e) {
  return common(kNetworkActivity, network_activity_id(e), e);
}

nlohmann::json http_activity(const HttpEvent& e) {
  nlohmann::json r = common(kHttpActivity, http_activity_id(e.method), e.network);
  std::string target = redact_query(e.target);
  size_t q = target.find('?');
  nlohmann::json url = {
      {"hostname", e.network.host}, {"port", e.network.port}, {"path", target.substr(0, q)}};
  if (q != std::string::npos) url["query_string"] = target.substr(q + 1);
  r["http_request"] = {{"http_method", e.method}, {"url", url}};
  if (e.status) r["http_response"] = {{"code", e.status}};
  auto& unmapped = r["unmapped"];
  unmapped["decision"] = e.network.action == Action::kDenied ? "denied"
                         : e.audited_violation               ? "audit_violation"
                                                             : "allowed";
  if (!e.l7_rule.empty()) unmapped["l7_rule"] = e.l7_rule;
  if (e.intercepted) unmapped["tls"] = "intercepted";
  if (!e.credentials.empty()) unmapped["credentials"] = e.credentials;
  if (e.masked) unmapped["credentials_masked"] = e.masked;
  if (e.duration.count() > 0) {
    r["duration"] = e.duration.count() / 1000;
    unmapped["duration_us"] = e.duration.count();
  }
  return r;
}

nlohmann::json api_activity(const ApiEvent& e) {
  nlohmann::json r = common(kApiActivity, api_activity_id(e.protocol), e.network);
  r["category_uid"] = kCategoryApplication;
  const bool ok =
      e.network.action == Action::kAllowed && !e.network.failed && e.status > 0 && e.status < 400;
  r["status_id"] = ok ? 1 : 2;
  r["duration"] = e.latency.count();
  r.erase("dst_endpoint");
  if (!e.backend.empty()) {
    r["dst_endpoint"] = endpoint_of(e.backend);
    if (!e.network.address.empty()) r["dst_endpoint"]["ip"] = e.network.address;
  }
  nlohmann::json api = {{"operation", e.protocol.empty() ? "-" : e.protocol}};
  if (!e.route.empty()) api["service"] = {{"name", e.route}};
  r["api"] = std::move(api);
  if (e.status) r["http_response"] = {{"code", e.status}, {"latency", e.latency.count()}};
  if (!e.model.empty()) r["resources"] = {{{"type", "model"}, {"name", e.model}}};
  auto& unmapped = r["unmapped"];
  if (e.network.rule.empty()) unmapped.erase("rule");
  if (!e.backend.empty()) unmapped["backend"] = e.backend;
  unmapped["streaming"] = e.streaming;
  if (e.input_tokens || e.output_tokens) {
    nlohmann::json usage = nlohmann::json::object();
    if (e.input_tokens) usage["input_tokens"] = *e.input_tokens;
    if (e.output_tokens) usage["output_tokens"] = *e.output_tokens;
    unmapped["usage"] = std::move(usage);
  }
  if (!e.tried.empty()) unmapped["tried"] = e.tried;
  return r;
}

std::string shorthand(const NetworkEvent& e) {
  std::string kind = e.closed ? "NET:CLOSE" : "NET:OPEN";
  std::string line = fmt::format("{} {} {}", kind, verdict(e), where(e));
  if (e.closed)
    line += fmt::format(" [in:{} out:{} {}ms]", e.bytes_in, e.bytes_out, e.duration.count());
  if (!e.reason.empty()) line += " [reason:" + e.reason + "]";
  return printable(line);  // names the sandbox chose: one line, no escapes
}

std::string shorthand(const HttpEvent& e) {
  std::string line = fmt::format("HTTP:{} {} {} {} {}", e.method, verdict(e.network),
                                 where(e.network), redact_query(e.target), e.status);
  if (!e.l7_rule.empty()) line += " [l7:" + e.l7_rule + "]";
  if (e.audited_violation) line += " [audit:violation]";
  if (!e.network.reason.empty()) line += " [reason:" + e.network.reason + "]";
  return printable(line);  // names the sandbox chose: one line, no escapes
}

std::string shorthand(const ApiEvent& e) {
  const NetworkEvent& n = e.network;
  std::string line = fmt::format(
      "API:{} {} {}({}) -> {} {} [route:{} model:{} {}ms", e.protocol.empty() ? "-" : e.protocol,
      verdict(n), n.binary.empty() ? "-" : n.binary, n.pid, e.backend.empty() ? "-" : e.backend,
      e.status, e.route.empty() ? "-" : e.route, e.model.empty() ? "-" : e.model,
      e.latency.count());
  if (e.streaming) line += " stream";
  if (e.input_tokens) line += fmt::format(" in:{}", *e.input_tokens);
  if (e.output_tokens) line += fmt::format(" out:{}", *e.output_tokens);
  line += ']';
  if (!e.tried.empty()) {
    line += " [tried:";
    for (std::size_t i = 0; i < e.tried.size(); ++i) line += (i ? "; " : "") + e.tried[i];
    line += ']';
  }
  if (!n.reason.empty()) line += " [reason:" + n.reason + "]";
  return printable(line);  // names the sandbox chose: one line, no escapes
}

}  // namespace ward::audit
