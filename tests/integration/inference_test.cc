// inference.local (scenarios.md, "Inference"; issue 5): inside a sandbox run with --inference,
// https://inference.local (and plain http) is answered by ward from the routes file: the request
// goes to the route's backend with the backend's key and the route's model, falling back to the
// next route when a backend fails; streams are relayed as they come; every call is one OCSF 6003
// record, without prompts; the key never reaches the sandbox.
//
// The backend is tests/upstream/model_backend.py, a fake OpenAI- and Anthropic-compatible server,
// over TLS with the test CA's leaf for api.test (ward trusts the test CA through --upstream-ca),
// in the upstream namespace of the test network (egress_util.h). It demands the key (--api-key):
// a request ward did not key is answered 401. Clients inside the sandbox get no flag at all: curl,
// Python, and the official `openai` and `@anthropic-ai/sdk` npm clients (tests/clients, installed
// by tools/test.sh into build/npm-clients) with only what ward sets.
//
// Needs root (network namespaces); ward itself runs as root or as the unprivileged ward-test.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/egress_util.h"
#include "integration/harness.h"
#include "integration/netns.h"

namespace ward::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kChat = "https://inference.local/v1/chat/completions";
constexpr const char* kMessages = "https://inference.local/v1/messages";
constexpr const char* kModels = "https://inference.local/v1/models";
constexpr const char* kKeyVar = "WARD_MODEL_KEY";  // the backend's key, in ward's environment

// The fake backend's answer for a model (model_backend.py's reply_words), and its number of words:
// the output tokens it reports, the text events it streams.
std::string reply_for(const std::string& model) {
  return "Hello from the fake backend for " + model + ".";
}
constexpr int kReplyWords = 7;

// `prefix` and 24 random hex digits: a key, a canary.
std::string random_token(const std::string& prefix) {
  std::random_device rd;
  std::string out = prefix;
  for (int i = 0; i < 24; ++i) out += "0123456789abcdef"[rd() % 16];
  return out;
}

// tests/clients (the in-sandbox clients) and the npm clients tools/test.sh installs
// (WARD_TEST_NPM_CLIENTS overrides); "" when the npm clients are absent.
std::string clients_dir() {
  return WARD_CLIENTS_DIR;
}
std::string npm_clients() {
  const char* env = std::getenv("WARD_TEST_NPM_CLIENTS");
  std::string dir = env && *env ? env : WARD_NPM_CLIENTS;
  return exists(dir + "/node_modules/openai/package.json") &&
                 exists(dir + "/node_modules/@anthropic-ai/sdk/package.json")
             ? dir
             : "";
}

// curl, printing the body, a space and the status ("000" when no response came).
std::string call(const std::string& url, const std::string& args = "") {
  return std::string(kCurl) + " -s -w ' %{http_code}' " + args + " " + shell_quote(url);
}
// A JSON POST with curl; `args`: more curl arguments (headers).
std::string post(const std::string& url, const json& body, const std::string& args = "") {
  return call(url, "-H 'Content-Type: application/json' --data-binary " + shell_quote(body.dump()) +
                       " " + args);
}

// What call() printed.
struct Answer {
  int status = -1;
  std::string text;
  json body;  // discarded when not JSON
};
Answer answer(const ProbeOutcome& o) {
  Answer a;
  const size_t space = o.out.rfind(' ');
  a.status = std::atoi(o.out.c_str() + (space == std::string::npos ? 0 : space + 1));
  a.text = space == std::string::npos ? "" : o.out.substr(0, space);
  while (!a.text.empty() && a.text.back() == ' ') a.text.pop_back();  // a final newline
  a.body = parse_json(a.text);
  return a;
}
std::ostream& operator<<(std::ostream& os, const Answer& a) {
  return os << a.status << " " << a.text;
}

// An OpenAI chat request with `prompt`, for `model`.
json chat_body(const std::string& prompt, const std::string& model = "caller-model") {
  return {{"model", model}, {"messages", {{{"role", "user"}, {"content", prompt}}}}};
}
json messages_body(const std::string& prompt) {
  return {{"model", "caller-model"},
          {"max_tokens", 32},
          {"messages", {{{"role", "user"}, {"content", prompt}}}}};
}

// The milliseconds between the first and the last of `times`, and how many of the gaps between
// successive ones are at least `gap` ms.
struct Spread {
  long span = 0;
  int wide_gaps = 0;
};
Spread spread(const json& times, long gap) {
  Spread s;
  if (!times.is_array() || times.empty()) return s;
  s.span = times.back().get<long>() - times.front().get<long>();
  for (size_t i = 1; i < times.size(); ++i)
    if (times[i].get<long>() - times[i - 1].get<long>() >= gap) ++s.wide_gaps;
  return s;
}

class InferenceTest : public EgressFixture {
 protected:
  void SetUp() override {
    EgressFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(ward_run_help_lists("--inference"))
        << "this ward does not serve inference.local: `ward run --help` does not list --inference";
    ASSERT_NO_FATAL_FAILURE(make_test_certs());
    if (IsSkipped()) return;
    key_ = random_token("sk-ward-test-");
    ward_env_ = {std::string(kKeyVar) + "=" + key_};
  }

  // model_backend.py as `name` on `port` of api.test (the upstream namespace), TLS with the test
  // CA's leaf, demanding `key` (key_ when ""), `--chunk-ms` 60 between streamed events, plus
  // `extra` (--fail 503, ...). Its log: backend_requests(name).
  void start_backend(const std::string& name, int port, const std::vector<std::string>& extra = {},
                     const std::string& key = "", bool tls = true) {
    const std::string ready = dir_->file(name + ".ready"), out = dir_->file(name + ".out");
    std::vector<std::string> argv = {"/usr/bin/python3", upstream_dir() + "/model_backend.py"};
    const std::pair<const char*, std::string> options[] = {{"--addr", net_->upstream_ip()},
                                                           {"--port", std::to_string(port)},
                                                           {"--api-key", key.empty() ? key_ : key},
                                                           {"--chunk-ms", "60"},
                                                           {"--log", backend_log(name)},
                                                           {"--ready", ready}};
    for (const auto& [flag, value] : options) argv.insert(argv.end(), {flag, value});
    if (tls)
      argv.insert(argv.end(), {"--tls-cert", cert("leaf.pem"), "--tls-key", cert("leaf.key")});
    argv.insert(argv.end(), extra.begin(), extra.end());
    const pid_t pid = net_->spawn(net_->upstream_ns(), argv, out);
    ASSERT_GT(pid, 0) << "fork failed";
    // Ready, or exited (a zombie until the network reaps it).
    auto exited = [pid] {
      const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
      const size_t paren = stat.rfind(')');
      return paren == std::string::npos || stat.compare(paren, 3, ") Z") == 0;
    };
    wait_until([&] { return exists(ready) || exited(); }, seconds(15));
    ASSERT_TRUE(exists(ready)) << name << " did not start: " << read_file(out);
  }
  std::string backend_log(const std::string& name) const { return dir_->file(name + ".jsonl"); }
  // The requests the backend `name` logged, in order.
  std::vector<json> backend_requests(const std::string& name) const {
    std::vector<json> out;
    std::istringstream in(read_file(backend_log(name)));
    for (std::string line; std::getline(in, line);)
      if (json j = parse_json(line); at(j, "/event", "") == "request") out.push_back(j);
    return out;
  }
  // The one request of the backend `name` to `path` (null when none; a failure when several).
  json backend_request(const std::string& name, const std::string& path) const {
    json found;
    int n = 0;
    for (const json& r : backend_requests(name))
      if (at(r, "/path", "") == path) found = r, ++n;
    EXPECT_LE(n, 1) << name << " got " << n << " requests to " << path;
    return found;
  }

  // One route of a routes file: `name` served by the backend on api.test:`port`, with `model` and
  // `protocols`, keyed by `key` (a YAML line: api_key_env by default).
  static std::string route(const std::string& name, int port, const std::string& model,
                           const std::string& protocols,
                           const std::string& key = std::string("api_key_env: ") + kKeyVar) {
    return "  - name: " + name + "\n    endpoint: https://api.test:" + std::to_string(port) +
           "/v1\n    model: " + model + "\n    protocols: [" + protocols + "]\n    " + key + "\n";
  }
  // ward's options: the test CA, and a routes file made of `routes`.
  std::vector<std::string> serve(const std::string& routes, std::vector<std::string> more = {}) {
    const std::string file = dir_->write("routes.yaml", "routes:\n" + routes);
    more.insert(more.begin(), {"--upstream-ca", ca(), "--inference", file});
    return more;
  }
  // A policy with `rules` that lets the sandbox read the in-sandbox clients.
  std::string sandbox_policy(const std::string& rules = "") {
    std::string read_only = clients_dir();
    if (std::string npm = npm_clients(); !npm.empty()) read_only += ", " + npm;
    return dir_->write("policy.yaml", policy_text(rules, "", read_only));
  }

  // The 6003 records, in order.
  std::vector<json> api_records() const {
    std::vector<json> out;
    for (const json& r : audit())
      if (at(r, "/class_uid", 0) == 6003) out.push_back(r);
    return out;
  }
  // The one 6003 record of `operation` (protocol name) answered `status` (null when none; a
  // failure when several).
  json api_record(const std::string& operation, int status) const {
    json found;
    int n = 0;
    for (const json& r : api_records())
      if (at(r, "/api/operation", "") == operation && at(r, "/http_response/code", 0) == status)
        found = r, ++n;
    EXPECT_EQ(n, 1) << operation << " " << status << ": " << n << " records\n" << read_file(audit_);
    return found;
  }

  // python3 tests/clients/sse_timing.py: a streamed POST, with arrival times.
  static std::string sse_timing(const std::string& url, const json& body,
                                const std::string& headers = "") {
    return "/usr/bin/python3 " + clients_dir() + "/sse_timing.py " + shell_quote(url) + " " +
           shell_quote(body.dump()) + " " + headers;
  }

  std::string key_;
};

// The scenario: an OpenAI chat request reaches the backend with the backend's key (the caller's
// Authorization, x-api-key, cookies and other headers gone; OpenAI's own openai-organization kept)
// and the route's model; /v1/models and /v1/models/{id} are routed too, over plain http as well.
// One 6003 record per call: route, backend, model, status, latency, streaming, token counts.
TEST_P(InferenceTest, ChatReachesTheBackendWithItsKeyAndModel) {
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9443));
  auto options = serve(route("primary", 9443, "route-model", "openai_chat_completions"));
  const std::string caller =
      "-H 'Authorization: Bearer caller-token' -H 'x-api-key: caller-xkey' "
      "-H 'Cookie: session=caller-cookie' -H 'X-Trace: caller-trace' "
      "-H 'OpenAI-Organization: org-test'";
  auto report = attempts(
      {
          {"chat", post(kChat, chat_body("say hello to the test"), caller)},
          {"models", call(kModels)},
          {"model", call(std::string(kModels) + "/org/some-model")},
          {"plain_http", call("http://inference.local/v1/models")},
      },
      sandbox_policy(), options);

  Answer chat = answer(report["chat"]);
  ASSERT_EQ(chat.status, 200) << chat;
  EXPECT_EQ(at(chat.body, "/model", ""), "route-model") << chat;
  EXPECT_EQ(at(chat.body, "/choices/0/message/content", ""), reply_for("route-model")) << chat;
  json seen = backend_request("model", "/v1/chat/completions");
  ASSERT_FALSE(seen.is_null()) << "the backend got no chat request:\n"
                               << read_file(backend_log("model"));
  EXPECT_EQ(at(seen, "/model", ""), "route-model") << seen.dump();
  EXPECT_EQ(at(seen, "/tls", false), true) << seen.dump();
  const json& headers = seen["headers"];
  EXPECT_EQ(at(headers, "/authorization", ""), "Bearer " + key_) << headers.dump();
  for (const char* gone : {"x-api-key", "cookie", "x-trace", "proxy-authorization"})
    EXPECT_FALSE(headers.contains(gone)) << gone << " reached the backend: " << headers.dump();
  EXPECT_EQ(at(headers, "/openai-organization", ""), "org-test") << headers.dump();
  const std::string log = read_file(backend_log("model"));
  for (const char* caller_value : {"caller-token", "caller-xkey", "caller-cookie", "caller-trace"})
    EXPECT_EQ(log.find(caller_value), std::string::npos) << caller_value << " reached the backend";

  Answer models = answer(report["models"]);
  EXPECT_EQ(models.status, 200) << models;
  EXPECT_EQ(at(models.body, "/object", ""), "list") << models;
  EXPECT_EQ(at(models.body, "/data/1/id", ""), "fake-model-large") << models;
  Answer model = answer(report["model"]);
  EXPECT_EQ(model.status, 200) << model;
  EXPECT_EQ(at(model.body, "/id", ""), "org/some-model") << model;
  Answer plain = answer(report["plain_http"]);
  EXPECT_EQ(plain.status, 200) << plain;
  EXPECT_EQ(at(plain.body, "/data/0/id", ""), "fake-model") << plain;
  int keyed_models = 0;
  for (const json& r : backend_requests("model"))
    if (at(r, "/path", "").starts_with("/v1/models") &&
        at(r, "/headers/authorization", "") == "Bearer " + key_)
      ++keyed_models;
  EXPECT_EQ(keyed_models, 3) << log;

  // The records: one a call.
  EXPECT_EQ(api_records().size(), 4u) << read_file(audit_);
  json rec = api_record("openai_chat_completions", 200);
  ASSERT_FALSE(rec.is_null());
  EXPECT_EQ(at(rec, "/activity_id", 0), 1) << rec.dump();
  EXPECT_EQ(at(rec, "/api/service/name", ""), "primary") << rec.dump();
  EXPECT_EQ(at(rec, "/unmapped/backend", ""), "https://api.test:9443") << rec.dump();
  EXPECT_EQ(at(rec, "/dst_endpoint/hostname", ""), "api.test") << rec.dump();
  EXPECT_EQ(at(rec, "/dst_endpoint/port", 0), 9443) << rec.dump();
  EXPECT_EQ(at(rec, "/resources/0/name", ""), "route-model") << rec.dump();
  EXPECT_EQ(at(rec, "/unmapped/streaming", true), false) << rec.dump();
  EXPECT_GE(at(rec, "/http_response/latency", -1), 0) << rec.dump();
  EXPECT_GE(at(rec, "/duration", -1), 0) << rec.dump();
  EXPECT_EQ(at(rec, "/unmapped/usage/input_tokens", -1), at(chat.body, "/usage/prompt_tokens", -2))
      << rec.dump();
  EXPECT_EQ(at(rec, "/unmapped/usage/output_tokens", -1),
            at(chat.body, "/usage/completion_tokens", -2))
      << rec.dump();
  EXPECT_FALSE(rec["unmapped"].contains("tried")) << rec.dump();
  for (const json& r : api_records()) {
    if (at(r, "/api/operation", "") != "openai_models") continue;
    EXPECT_EQ(at(r, "/activity_id", 0), 2) << r.dump();
    EXPECT_EQ(at(r, "/http_response/code", 0), 200) << r.dump();
    EXPECT_EQ(at(r, "/api/service/name", ""), "primary") << r.dump();
  }
}

// Found in review: on one keep-alive connection, a forward request after an inference call over
// plain http reused the backend's connection (a host's request reached the backend, past the SSRF
// guard), and an inference call after a forward request to another host went out on that host's
// connection with the backend's key. Each request goes where it was decided, on its own upstream.
TEST_P(InferenceTest, KeepAliveNeverMixesTheBackendAndOtherHosts) {
  ASSERT_NO_FATAL_FAILURE(start_upstream({"--log-headers"}));
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9080, {}, "", false));
  auto options = serve(
      "  - name: plain\n    endpoint: http://api.test:9080/v1\n"
      "    model: route-model\n    protocols: [openai_models]\n"
      "    api_key_env: " +
      std::string(kKeyVar) + "\n");
  const std::string p = sandbox_policy(
      rule("hosts", {endpoint("api.test", "port: 8080"), endpoint("other.test", "port: 8080")}));
  // One connection to the proxy, absolute-form requests in turn; each answer's status and the
  // client's port (the same one throughout: nothing reconnected).
  const std::string script =
      "import http.client, sys\n"
      "c = http.client.HTTPConnection('127.0.0.1', 3128)\n"
      "for url in sys.argv[1:]:\n"
      "    c.request('GET', url)\n"
      "    r = c.getresponse(); r.read()\n"
      "    print(r.status, c.sock.getsockname()[1])\n";
  const std::string models = "http://inference.local/v1/models";
  auto report = attempts({{"one_connection", "/usr/bin/python3 -c " + shell_quote(script) + " " +
                                                 "http://api.test:8080/?first " + models +
                                                 " http://api.test:8080/?second " + models +
                                                 " http://other.test:8080/?third " + models}},
                         p, options);
  std::istringstream lines(report["one_connection"].out);
  std::vector<std::string> statuses, ports;
  for (std::string status, port; lines >> status >> port;) {
    statuses.push_back(status);
    ports.push_back(port);
  }
  EXPECT_EQ(statuses, std::vector<std::string>(6, "200")) << report["one_connection"].out;
  ASSERT_FALSE(ports.empty());
  EXPECT_EQ(ports, std::vector<std::string>(ports.size(), ports[0])) << "the client reconnected";
  // The hosts got their three requests and no inference call; the backend its three, all keyed.
  EXPECT_EQ(up_->requests(), 3) << up_->log();
  for (const char* path : {"/?first", "/?second", "/?third"})
    EXPECT_EQ(up_->requests_to(8080, "GET", path), 1) << path << "\n" << up_->log();
  const auto seen = backend_requests("model");
  EXPECT_EQ(seen.size(), 3u) << read_file(backend_log("model"));
  for (const json& r : seen) {
    EXPECT_EQ(at(r, "/path", ""), "/v1/models") << r.dump();
    EXPECT_EQ(at(r, "/headers/authorization", ""), "Bearer " + key_) << r.dump();
  }
  EXPECT_EQ(read_file(up_->log_path()).find(key_), std::string::npos) << "the key reached a host";
}

// Only inference paths are served (403 otherwise, 405 for a known path with another method), only
// the protocols a route serves (400 otherwise): none of it reaches the backend, each is a 6003
// record. Other hosts are not intercepted: they meet the policy as usual (allowed: the upstream
// answers; not allowed: the CONNECT is refused), and that includes the backend itself. Without
// --inference, inference.local is just another host the policy does not allow.
TEST_P(InferenceTest, OnlyServedPathsAndProtocolsAnswerAndOtherHostsMeetThePolicy) {
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9443));
  ASSERT_NO_FATAL_FAILURE(start_upstream_with_tls());
  auto options = serve(route("chat-only", 9443, "route-model", "openai_chat_completions"));
  const std::string p = sandbox_policy(rule("other", {endpoint("other.test", "port: 8443")}));
  auto report = attempts(
      {
          {"files", call("https://inference.local/v1/files")},
          {"root", call("https://inference.local/")},
          {"chat_get", call(kChat)},
          {"messages", post(kMessages, messages_body("hi"), "-H 'anthropic-version: 2023-06-01'")},
          {"embeddings",
           post("https://inference.local/v1/embeddings", {{"model", "m"}, {"input", "hi"}})},
          {"other_allowed", call("https://other.test:8443/", "--cacert " + ca())},
          {"other_denied", curl_tunnel("https://api.test:8443/")},
          {"backend_direct", curl_tunnel("https://api.test:9443/v1/models")},
          {"lookalike", curl_tunnel("https://api.inference.local/v1/models")},
      },
      p, options);
  for (const char* label : {"files", "root"}) {
    Answer a = answer(report[label]);
    EXPECT_EQ(a.status, 403) << label << ": " << a;
    EXPECT_EQ(at(a.body, "/error", ""), "path_not_served") << label << ": " << a;
  }
  Answer get = answer(report["chat_get"]);
  EXPECT_EQ(get.status, 405) << get;
  for (const char* label : {"messages", "embeddings"}) {
    Answer a = answer(report[label]);
    EXPECT_EQ(a.status, 400) << label << ": " << a;
    EXPECT_EQ(at(a.body, "/error", ""), "protocol_not_served") << label << ": " << a;
  }
  EXPECT_EQ(backend_requests("model").size(), 0u) << read_file(backend_log("model"));
  EXPECT_EQ(api_records().size(), 5u) << read_file(audit_);
  json refused = api_record("anthropic_messages", 400);
  EXPECT_EQ(at(refused, "/status_id", 0), 2) << refused.dump();

  EXPECT_EQ(answer(report["other_allowed"]).text, "hello from upstream")
      << report["other_allowed"].out;
  EXPECT_EQ(up_->requests_to(8443, "GET", "/"), 1) << up_->log();
  for (const char* label : {"other_denied", "backend_direct", "lookalike"})
    EXPECT_EQ(report[label].out, "403 000") << label << ": not refused by the policy";
  EXPECT_EQ(records(4001, 5, "api.test").size(), 2u) << read_file(audit_);

  // Without --inference.
  auto plain = attempts(
      {
          {"tunnel", curl_tunnel(std::string(kModels))},
          {"env", "printf '%s|' \"$OPENAI_BASE_URL\" \"$ANTHROPIC_BASE_URL\" \"$OPENAI_API_KEY\""},
      },
      p, {"--upstream-ca", ca()});
  EXPECT_EQ(plain["tunnel"].out, "403 000");
  EXPECT_EQ(plain["env"].out, "|||");
  EXPECT_EQ(records(4001, 5, "inference.local").size(), 1u) << read_file(audit_);
}

// Streams are relayed as the backend writes them: the events reach the client spread over the
// time the backend takes (60 ms between events), not all at the end. OpenAI chat (with
// include_usage) and Anthropic messages, each keyed the way its API wants; the records say
// streaming and carry the token counts the streams reported.
TEST_P(InferenceTest, StreamingResponsesStream) {
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9443));
  auto options =
      serve(route("stream", 9443, "route-model", "openai_chat_completions, anthropic_messages"));
  json chat = chat_body("stream me some words");
  chat["stream"] = true;
  chat["stream_options"] = {{"include_usage", true}};
  json messages = messages_body("stream me some words");
  messages["stream"] = true;
  auto report = attempts(
      {
          {"openai", sse_timing(kChat, chat)},
          {"anthropic", sse_timing(kMessages, messages, "anthropic-version:2023-06-01")},
      },
      sandbox_policy(), options);

  // OpenAI: role, the words, stop, usage, [DONE]. Anthropic: start, block start, ping, the words,
  // block stop, delta, stop. 60 ms apart.
  for (const auto& [label, events] :
       {std::pair{"openai", kReplyWords + 4}, std::pair{"anthropic", kReplyWords + 6}}) {
    json r = parse_json(report[label].out);
    ASSERT_FALSE(r.is_discarded()) << label << ": " << report[label].out;
    EXPECT_EQ(at(r, "/status", 0), 200) << label << ": " << r.dump();
    EXPECT_TRUE(at(r, "/content_type", "").starts_with("text/event-stream")) << r.dump();
    EXPECT_EQ(at(r, "/text", ""), reply_for("route-model")) << label << ": " << r.dump();
    EXPECT_EQ(r["times"].size(), static_cast<size_t>(events)) << label << ": " << r.dump();
    Spread s = spread(r["times"], 30);
    EXPECT_GE(s.span, 40 * (events - 1))
        << label << ": the events arrived together, not as the backend sent them: " << r.dump();
    EXPECT_GE(s.wide_gaps, events / 2) << label << ": " << r.dump();
  }
  json openai = parse_json(report["openai"].out), anthropic = parse_json(report["anthropic"].out);
  json rec = api_record("openai_chat_completions", 200);
  EXPECT_EQ(at(rec, "/unmapped/streaming", false), true) << rec.dump();
  EXPECT_EQ(at(rec, "/unmapped/usage/input_tokens", -1), at(openai, "/usage/prompt_tokens", -2))
      << rec.dump() << openai.dump();
  EXPECT_EQ(at(rec, "/unmapped/usage/output_tokens", -1), kReplyWords) << rec.dump();
  rec = api_record("anthropic_messages", 200);
  EXPECT_EQ(at(rec, "/unmapped/streaming", false), true) << rec.dump();
  EXPECT_EQ(at(rec, "/unmapped/usage/input_tokens", -1), at(anthropic, "/usage/input_tokens", -2))
      << rec.dump() << anthropic.dump();
  EXPECT_EQ(at(rec, "/unmapped/usage/output_tokens", -1), kReplyWords) << rec.dump();
  json seen = backend_request("model", "/v1/messages");
  EXPECT_EQ(at(seen, "/headers/x-api-key", ""), key_) << seen.dump();
  EXPECT_FALSE(seen["headers"].contains("authorization")) << seen.dump();
  EXPECT_EQ(at(seen, "/headers/anthropic-version", ""), "2023-06-01") << seen.dump();
  EXPECT_EQ(at(seen, "/stream", false), true) << seen.dump();
  // The chunked framing as the client gets it: one last chunk, once. (A relay that wrote an empty
  // chunk for a read that brought only the last one ended the body twice, and a keep-alive
  // client such as Node's then read the second as the start of the next response.)
  auto framing = attempts({{"raw", post(kChat, chat, "--raw")}}, sandbox_policy(), options);
  const std::string& raw = framing["raw"].out;
  const size_t done = raw.rfind("[DONE]");
  ASSERT_NE(done, std::string::npos) << raw;
  ASSERT_TRUE(raw.ends_with(" 200")) << raw.substr(done);
  const std::string after = raw.substr(done + 6, raw.size() - done - 6 - 4);  // framing only
  EXPECT_EQ(std::count(after.begin(), after.end(), '0'), 1)
      << "the chunked body must end once: " << json(after).dump();
}

// The official SDKs, unchanged and unconfigured, inside the sandbox: openai's chat completion,
// streaming, embeddings and models list; Anthropic's messages, plain and streamed, and models
// list. Each answered by the backend, keyed, with the route's model; streams spread in time.
TEST_P(InferenceTest, OfficialSdkClientsWorkUnchanged) {
  if (auto why = node22_missing(); !why.empty()) GTEST_SKIP() << why;
  if (npm_clients().empty())
    GTEST_SKIP() << "the openai and @anthropic-ai/sdk npm clients are not installed in "
                 << WARD_NPM_CLIENTS << " (tools/test.sh installs them; WARD_TEST_NPM_CLIENTS "
                 << "overrides the path)";
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9443));
  auto options = serve(route("sdk", 9443, "route-model",
                             "openai_chat_completions, openai_embeddings, anthropic_messages"));
  const std::string run = "NODE_PATH=" + npm_clients() + "/node_modules " + node22() +
                          " --no-warnings " + clients_dir();
  auto report = attempts(
      {
          {"openai", run + "/sdk_client.cjs openai 'say hello'"},
          {"anthropic", run + "/sdk_client.cjs anthropic 'say hello'"},
      },
      sandbox_policy(), options);
  const std::string reply = reply_for("route-model");
  json o = parse_json(report["openai"].out);
  ASSERT_FALSE(o.is_discarded()) << report["openai"].out;
  EXPECT_EQ(at(o, "/chat/model", ""), "route-model") << o["chat"].dump();
  EXPECT_EQ(at(o, "/chat/content", ""), reply) << o["chat"].dump();
  EXPECT_EQ(at(o, "/chat/usage/completion_tokens", 0), kReplyWords) << o["chat"].dump();
  EXPECT_EQ(at(o, "/stream/model", ""), "route-model") << o["stream"].dump();
  EXPECT_EQ(at(o, "/stream/text", ""), reply) << o["stream"].dump();
  EXPECT_EQ(at(o, "/stream/usage/completion_tokens", 0), kReplyWords) << o["stream"].dump();
  EXPECT_GE(spread(o["stream"]["times"], 30).span, 300)
      << "the stream arrived all at once: " << o["stream"].dump();
  EXPECT_EQ(at(o, "/embeddings/model", ""), "route-model") << o["embeddings"].dump();
  EXPECT_EQ(at(o, "/embeddings/count", 0), 2) << o["embeddings"].dump();
  EXPECT_EQ(at(o, "/embeddings/dims", 0), 8) << o["embeddings"].dump();
  EXPECT_EQ(o["models"]["ids"], json({"fake-model", "fake-model-large"})) << o["models"].dump();

  json a = parse_json(report["anthropic"].out);
  ASSERT_FALSE(a.is_discarded()) << report["anthropic"].out;
  EXPECT_EQ(at(a, "/message/model", ""), "route-model") << a["message"].dump();
  EXPECT_EQ(at(a, "/message/text", ""), reply) << a["message"].dump();
  EXPECT_EQ(at(a, "/message/usage/output_tokens", 0), kReplyWords) << a["message"].dump();
  EXPECT_EQ(at(a, "/stream/text", ""), reply) << a["stream"].dump();
  EXPECT_EQ(at(a, "/stream/usage/output_tokens", 0), kReplyWords) << a["stream"].dump();
  EXPECT_GE(spread(a["stream"]["times"], 30).span, 300)
      << "the stream arrived all at once: " << a["stream"].dump();
  EXPECT_EQ(a["models"]["ids"], json({"fake-model", "fake-model-large"})) << a["models"].dump();

  // Every call keyed with the backend's key, the placeholder key nowhere.
  const auto seen = backend_requests("model");
  EXPECT_EQ(seen.size(), 7u) << read_file(backend_log("model"));
  for (const json& r : seen) {
    EXPECT_EQ(at(r, "/status", 0), 200) << r.dump();
    EXPECT_TRUE(at(r, "/headers/authorization", "") == "Bearer " + key_ ||
                at(r, "/headers/x-api-key", "") == key_)
        << r.dump();
  }
  EXPECT_EQ(read_file(backend_log("model")).find("ward-inference-local"), std::string::npos);
  EXPECT_EQ(api_records().size(), 7u) << read_file(audit_);
}

// Fallback, in one sandbox, routes chosen by protocol: chat is served by a backend answering 503
// then a good one; completions by a backend resetting every connection then the good one;
// embeddings only by failing ones (503, reset, nothing listening). The first two are answered by
// the good backend, their records naming the routes tried before; the last is a 502 in JSON.
TEST_P(InferenceTest, FailingBackendsFallBackToTheNextRoute) {
  ASSERT_NO_FATAL_FAILURE(start_backend("good", 9443));
  ASSERT_NO_FATAL_FAILURE(start_backend("overloaded", 9444, {"--fail", "503"}));
  ASSERT_NO_FATAL_FAILURE(start_backend("resetting", 9445, {"--fail", "reset"}));
  auto options =
      serve(route("overloaded", 9444, "first-model", "openai_chat_completions, openai_embeddings") +
            route("resetting", 9445, "first-model", "openai_completions, openai_embeddings") +
            route("refusing", 9446, "first-model", "openai_embeddings") +
            route("good", 9443, "second-model", "openai_chat_completions, openai_completions"));
  auto report = attempts(
      {
          {"chat", post(kChat, chat_body("fall back"))},
          {"completions",
           post("https://inference.local/v1/completions", {{"model", "m"}, {"prompt", "go"}})},
          {"embeddings",
           post("https://inference.local/v1/embeddings", {{"model", "m"}, {"input", "go"}})},
      },
      sandbox_policy(), options);
  Answer chat = answer(report["chat"]);
  EXPECT_EQ(chat.status, 200) << chat;
  EXPECT_EQ(at(chat.body, "/model", ""), "second-model") << chat;
  Answer completions = answer(report["completions"]);
  EXPECT_EQ(completions.status, 200) << completions;
  EXPECT_EQ(at(completions.body, "/choices/0/text", ""), reply_for("second-model")) << completions;
  Answer none = answer(report["embeddings"]);
  EXPECT_EQ(none.status, 502) << none;
  EXPECT_EQ(at(none.body, "/error", ""), "inference_unavailable") << none;

  // The overloaded backend got the chat request (keyed, its route's model), then the good one.
  json first = backend_request("overloaded", "/v1/chat/completions");
  EXPECT_EQ(at(first, "/model", ""), "first-model") << first.dump();
  EXPECT_EQ(at(first, "/headers/authorization", ""), "Bearer " + key_) << first.dump();
  EXPECT_EQ(at(backend_request("good", "/v1/chat/completions"), "/model", ""), "second-model");
  EXPECT_GE(count_of(read_file(backend_log("resetting")), "\"reset\""), 2)
      << read_file(backend_log("resetting"));

  auto tried = [](const json& rec) {
    std::vector<std::string> names;
    for (const json& t : rec["unmapped"].value("tried", json::array()))
      names.push_back(t.get<std::string>().substr(0, t.get<std::string>().find(':')));
    return names;
  };
  json rec = api_record("openai_chat_completions", 200);
  EXPECT_EQ(at(rec, "/api/service/name", ""), "good") << rec.dump();
  EXPECT_EQ(at(rec, "/resources/0/name", ""), "second-model") << rec.dump();
  EXPECT_EQ(tried(rec), std::vector<std::string>{"overloaded"}) << rec.dump();
  EXPECT_NE(rec.dump().find("503"), std::string::npos) << "the record does not say why" << rec;
  rec = api_record("openai_completions", 200);
  EXPECT_EQ(at(rec, "/api/service/name", ""), "good") << rec.dump();
  EXPECT_EQ(tried(rec), std::vector<std::string>{"resetting"}) << rec.dump();
  rec = api_record("openai_embeddings", 502);
  EXPECT_EQ(tried(rec), (std::vector<std::string>{"overloaded", "resetting", "refusing"}))
      << rec.dump();
  EXPECT_EQ(at(rec, "/status_id", 0), 2) << rec.dump();
}

// A body over 10 MiB is refused with 413, whether its length is declared or it is chunked; one
// just under passes. A body that is not a JSON object is refused with 400. Nothing refused
// reaches the backend; each call is a record.
TEST_P(InferenceTest, OversizedAndMalformedBodiesAreRefused) {
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9443));
  auto options = serve(route("chat", 9443, "route-model", "openai_chat_completions"));
  auto body_of_size = [](size_t size) {
    std::string text = chat_body("x").dump();
    const size_t at = text.find("\"x\"") + 1;
    text.insert(at, size - text.size(), 'x');
    return text;
  };
  constexpr size_t kLimit = 10 << 20;
  dir_->write("work/over.json", body_of_size(kLimit + 1));
  dir_->write("work/under.json", body_of_size(kLimit - 4096));
  const std::string json_type = "-H 'Content-Type: application/json' ";
  auto report = attempts(
      {
          {"over", call(kChat, json_type + "--data-binary @over.json")},
          {"over_chunked",
           call(kChat, json_type + "-H 'Transfer-Encoding: chunked' --data-binary @over.json")},
          {"under", call(kChat, json_type + "--data-binary @under.json -o /dev/null")},
          {"not_json", call(kChat, json_type + "--data-binary 'hello, model'")},
          {"array", call(kChat, json_type + "--data-binary '[1, 2]'")},
          {"truncated", call(kChat, json_type + "--data-binary '{\"model\": \"m\", '")},
      },
      sandbox_policy(), options);
  for (const char* label : {"over", "over_chunked"}) {
    Answer a = answer(report[label]);
    EXPECT_EQ(a.status, 413) << label << ": " << a;
    EXPECT_EQ(at(a.body, "/error", ""), "payload_too_large") << label << ": " << a;
  }
  EXPECT_EQ(answer(report["under"]).status, 200) << "a body under the limit was refused";
  for (const char* label : {"not_json", "array", "truncated"}) {
    Answer a = answer(report[label]);
    EXPECT_EQ(a.status, 400) << label << ": " << a;
    EXPECT_FALSE(at(a.body, "/error", "").empty()) << label << ": " << a;
  }
  const auto seen = backend_requests("model");
  ASSERT_EQ(seen.size(), 1u) << read_file(backend_log("model"));
  EXPECT_GT(at(seen[0], "/bytes", 0), static_cast<int>(kLimit - 8192)) << seen[0].dump();
  EXPECT_EQ(at(seen[0], "/model", ""), "route-model") << seen[0].dump();
  int too_large = 0, bad = 0;
  for (const json& r : api_records()) {
    too_large += at(r, "/http_response/code", 0) == 413;
    bad += at(r, "/http_response/code", 0) == 400;
  }
  EXPECT_EQ(too_large, 2) << read_file(audit_);
  EXPECT_EQ(bad, 3) << read_file(audit_);
}

// A sandbox cannot make the proxy hold more than --max-buffered-mib (64 MiB) of request bodies,
// however many connections it opens: before the budget, 24 concurrent 7 MiB calls to a slow
// backend were all read whole (and copied), and ward's memory grew to 410 MiB. Now the calls
// that fit are served, the others answered 503 proxy_busy at once without holding their bodies,
// ward's peak memory stays near the budget, and a freed budget serves the next call. (The refused
// bodies are read and dropped, never held, so that a client that sends before it reads gets the
// answer.)
TEST_P(InferenceTest, ASandboxCannotMakeTheProxyHoldMoreThanItsBudget) {
  ASSERT_NO_FATAL_FAILURE(start_backend("model", 9443, {"--latency-ms", "3000"}));
  auto options = serve(route("chat", 9443, "route-model", "openai_chat_completions"));
  dir_->write("work/flood.py", R"(import json, sys, threading, time, urllib.error, urllib.request
URL = "http://inference.local/v1/chat/completions"
def body(size):
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * size}]}).encode()
def call(data):
    req = urllib.request.Request(URL, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return [r.status, ""]
    except urllib.error.HTTPError as e:
        return [e.code, json.loads(e.read() or b"{}").get("error", "")]
    except Exception as e:
        return [0, repr(e)]
answers, big = [None] * 24, body(7 << 20)
def one(i):
    answers[i] = call(big)
threads = [threading.Thread(target=one, args=(i,)) for i in range(len(answers))]
for t in threads: t.start()
for t in threads: t.join()
open("flood.json", "w").write(json.dumps({"flood": answers, "after": call(body(1000))}))
open("step1", "w").close()
while not __import__("os").path.exists("go"): time.sleep(0.02)
)");
  auto ward = start_ward({"/usr/bin/python3", "flood.py"}, sandbox_policy(), options);
  ASSERT_TRUE(wait_until([&] { return exists(w("step1")); }, seconds(60))) << ward->err();
  // ward's peak resident memory while it still runs (the proxy is a thread of it).
  long peak_kib = -1;
  std::istringstream status(read_file("/proc/" + std::to_string(ward->pid()) + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmHWM:")) peak_kib = std::stol(line.substr(6));
  signal_workload("go");
  EXPECT_EQ(ward->wait(seconds(30)), 0) << ward->err();

  const json report = parse_json(read_file(w("flood.json")));
  ASSERT_TRUE(report.is_object()) << read_file(w("flood.json")) << ward->err();
  int served = 0, busy = 0;
  for (const json& a : report["flood"]) {
    if (a[0] == 200) ++served;
    if (a[0] == 503 && a[1] == "proxy_busy") ++busy;
  }
  // Each call holds twice its body (as read, and as rewritten): four fit in 64 MiB.
  EXPECT_EQ(served, 4) << report.dump();
  EXPECT_EQ(busy, 20) << report.dump();
  EXPECT_EQ(report["after"][0], 200) << "the budget was not given back: " << report.dump();
  EXPECT_GT(peak_kib, 0);
  EXPECT_LT(peak_kib, 160 * 1024) << "ward's peak resident memory: " << peak_kib << " KiB";
  EXPECT_EQ(backend_requests("model").size(), 5u) << read_file(backend_log("model"));

  // Found in review: a request without a body was counted like a chunked one (twice the 10 MiB
  // limit), so under a budget below 20 MiB every GET /v1/models got 503. Nothing is counted for
  // it now; a small call still fits.
  options.insert(options.end(), {"--max-buffered-mib", "8"});
  auto small = attempts({{"models", call("http://inference.local/v1/models")},
                         {"chat", post(kChat, chat_body("a small call"))}},
                        sandbox_policy(), options);
  EXPECT_EQ(answer(small["models"]).status, 200) << answer(small["models"]);
  EXPECT_EQ(answer(small["chat"]).status, 200) << answer(small["chat"]);
}

// The backends' keys (one from ward's environment through api_key_env, one written in the routes
// file) reach the backends and nothing else: not the sandbox's environment, any process's
// environment or command line, its /tmp or /etc/ward, the routes file (out of its sight), ward's
// output with -v, the audit, the state directory. A canary in the prompt, and the completion, are
// not in the audit or ward's output either.
TEST_P(InferenceTest, KeysNeverReachTheSandboxAndPromptsAreNotRecorded) {
  const std::string inline_key = random_token("sk-inline-");
  ASSERT_NO_FATAL_FAILURE(start_backend("openai", 9443));
  ASSERT_NO_FATAL_FAILURE(start_backend("anthropic", 9444, {}, inline_key));
  auto options = serve(
      route("from-env", 9443, "route-model", "openai_chat_completions") +
          route("inline", 9444, "claude-route", "anthropic_messages", "api_key: " + inline_key),
      {"-v"});
  const std::string canary = random_token("CANARY-");
  const std::string dump =
      "mkdir -p dump; env > dump/env; sleep 5 >/dev/null 2>&1 & sleep 0.2; "
      "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat $f; echo; done > dump/proc "
      "2>/dev/null; cp -r /tmp dump/tmp 2>/dev/null; cp -r /etc/ward dump/etc-ward; kill $!; ls "
      "dump";
  Result r;
  auto report = attempts(
      {
          {"chat", post(kChat, chat_body("repeat " + canary))},
          {"messages", post(kMessages, messages_body("repeat " + canary),
                            "-H 'anthropic-version: 2023-06-01'")},
          {"routes_file", "cat " + dir_->file("routes.yaml")},
          {"dump", dump},
      },
      sandbox_policy(), options, &r);
  EXPECT_EQ(answer(report["chat"]).status, 200) << report["chat"].out;
  EXPECT_EQ(answer(report["messages"]).status, 200) << report["messages"].out;
  EXPECT_NE(report["routes_file"].exit_code, 0) << "the sandbox can read the routes file";

  // Positive controls: the backends got the keys; the dump holds the sandbox's variables.
  EXPECT_NE(read_file(backend_log("openai")).find("Bearer " + key_), std::string::npos);
  EXPECT_NE(read_file(backend_log("anthropic")).find(inline_key), std::string::npos);
  EXPECT_NE(read_file(w("dump/env")).find("OPENAI_API_KEY=ward-inference-local"), std::string::npos)
      << "the dump of the sandbox is incomplete: " << report["dump"].out;
  EXPECT_NE(read_file(w("dump/proc")).find("OPENAI_BASE_URL=https://inference.local/v1"),
            std::string::npos);
  EXPECT_EQ(api_records().size(), 2u) << read_file(audit_);
  EXPECT_NE(r.err.find("API:openai_chat_completions"), std::string::npos)
      << "-v logged no call: " << r.err;

  // ward's stdout is the sandbox's (curl printed the completions there): only the keys are
  // searched for in it.
  std::vector<std::pair<std::string, std::string>> places = {{"ward's stderr", r.err},
                                                             {"the audit", read_file(audit_)}};
  for (const auto& [where, text] : places) {
    EXPECT_EQ(text.find(canary), std::string::npos) << "the prompt is in " << where;
    EXPECT_EQ(text.find("fake backend for"), std::string::npos) << "the completion is in " << where;
  }
  places.push_back({"ward's stdout", r.out});
  for (const std::string& key : {key_, inline_key}) {
    for (const auto& [where, text] : places)
      EXPECT_EQ(text.find(key), std::string::npos) << "a key is in " << where;
    for (const std::string& dir : {work_, state_dir()})
      EXPECT_EQ(sh_output("grep -rlF -- " + shell_quote(key) + " " + shell_quote(dir)), "")
          << "a key is in a file under " << dir;
  }
}

// Mistakes in the routes file stop ward before anything runs (exit 125), with every problem as
// file:line:column; a variable api_key_env names that is not set is named; a key is never quoted.
class InferenceRoutesFileTest : public WorkdirTest {
 protected:
  Result run_with(const std::string& routes_text, const std::vector<std::string>& env = {}) {
    const std::string routes = dir_->write("bad.yaml", routes_text);
    RunOptions o;
    o.mode = mode();
    o.cwd = work_;
    o.env = {"WARD_STATE_DIR=" + dir_->file("state")};
    o.env.insert(o.env.end(), env.begin(), env.end());
    return ward(
        {"run", "-p", default_policy(), "--inference", routes, "--", "/bin/sh", "-c", "touch ran"},
        o);
  }
};

TEST_P(InferenceRoutesFileTest, ErrorsStopWardWithTheirPlace) {
  Result r = run_with(
      "routes:\n"
      "  - name: local\n"
      "    endpoint: ftp://model.test/v1\n"
      "    protocols: [openai_chat_completions, telepathy]\n");
  EXPECT_EQ(r.exit_code, 125) << r.err;
  const std::string file = dir_->file("bad.yaml");
  EXPECT_NE(r.err.find(file + ":3:15: error: routes[0].endpoint: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(file + ":4:42: error: routes[0].protocols[1]: unknown protocol 'telepathy'"),
            std::string::npos)
      << "only the first problem: " << r.err;

  r = run_with(
      "routes:\n"
      "  - name: local\n"
      "    endpoint: https://model.test/v1\n"
      "    protocols: [openai_chat_completions]\n"
      "    api_key_env: WARD_TEST_UNSET_KEY_VARIABLE\n");
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find(file + ":5:18: error: routes[0].api_key_env: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("WARD_TEST_UNSET_KEY_VARIABLE is not set"), std::string::npos) << r.err;

  // A key with a line break, from the environment and inline: refused, never quoted.
  r = run_with(
      "routes:\n"
      "  - name: from-env\n"
      "    endpoint: https://model.test/v1\n"
      "    protocols: [openai_chat_completions]\n"
      "    api_key_env: WARD_TEST_BAD_KEY\n"
      "  - name: inline\n"
      "    endpoint: https://model.test/v1\n"
      "    protocols: [openai_chat_completions]\n"
      "    api_key: \"sk-inline-secret\\nmore\"\n",
      {"WARD_TEST_BAD_KEY=sk-env-secret\nmore"});
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_NE(r.err.find("WARD_TEST_BAD_KEY"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(file + ":9:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("secret"), std::string::npos) << "a key is quoted: " << r.err;
  EXPECT_EQ(r.out.find("secret"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(w("ran"))) << "the command ran despite the errors";
}

WARD_INSTANTIATE_BOTH_MODES(InferenceTest);
WARD_INSTANTIATE_BOTH_MODES(InferenceRoutesFileTest);

}  // namespace
}  // namespace ward::test
