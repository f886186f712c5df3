#include "audit/ocsf.h"

#include <gtest/gtest.h>

namespace ward::audit {
namespace {

NetworkEvent denied() {
  NetworkEvent e;
  e.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1763900000123));
  e.sandbox_id = "sb-1";
  e.pid = 64;
  e.binary = "/usr/bin/curl";
  e.host = "httpbin.org";
  e.port = 443;
  e.reason = "no rule allows httpbin.org:443";
  return e;
}

TEST(Ocsf, ADeniedConnectIsANetworkActivityRefusal) {
  nlohmann::json r = network_activity(denied());
  EXPECT_EQ(r["class_uid"], 4001);
  EXPECT_EQ(r["activity_id"], 5);
  EXPECT_EQ(r["type_uid"], 400105);
  EXPECT_EQ(r["action_id"], 2);
  EXPECT_EQ(r["time"], 1763900000123);
  EXPECT_EQ(r["actor"]["process"]["pid"], 64);
  EXPECT_EQ(r["actor"]["process"]["file"]["path"], "/usr/bin/curl");
  EXPECT_EQ(r["dst_endpoint"]["hostname"], "httpbin.org");
  EXPECT_EQ(r["dst_endpoint"]["port"], 443);
  EXPECT_FALSE(r["dst_endpoint"].contains("ip"));
  EXPECT_EQ(r["unmapped"]["sandbox_id"], "sb-1");
  EXPECT_EQ(r["message"], "no rule allows httpbin.org:443");
  EXPECT_EQ(r["metadata"]["version"], "1.7.0");
}

TEST(Ocsf, AClosedTunnelCarriesBytesAndDuration) {
  NetworkEvent e = denied();
  e.action = Action::kAllowed;
  e.rule = "github";
  e.address = "140.82.112.6";
  e.closed = true;
  e.bytes_in = 1000;
  e.bytes_out = 20;
  e.duration = std::chrono::milliseconds(35);
  nlohmann::json r = network_activity(e);
  EXPECT_EQ(r["activity_id"], 2);
  EXPECT_EQ(r["traffic"]["bytes_in"], 1000);
  EXPECT_EQ(r["duration"], 35);
  EXPECT_EQ(r["dst_endpoint"]["ip"], "140.82.112.6");
  EXPECT_EQ(shorthand(e),
            "NET:CLOSE [INFO] ALLOWED /usr/bin/curl(64) -> httpbin.org:443 [policy:github "
            "engine:ward] [in:1000 out:20 35ms] [reason:no rule allows httpbin.org:443]");
}

TEST(Ocsf, AnAllowedConnectionThatFailedIsAFailureNotADenial) {
  NetworkEvent e = denied();
  e.action = Action::kAllowed;
  e.failed = true;
  e.rule = "github";
  e.reason = "cannot resolve httpbin.org";
  nlohmann::json r = network_activity(e);
  EXPECT_EQ(r["activity_id"], 4);
  EXPECT_EQ(r["action_id"], 1);
  EXPECT_EQ(r["status_id"], 2);
  EXPECT_EQ(shorthand(e),
            "NET:OPEN [LOW] FAILED /usr/bin/curl(64) -> httpbin.org:443 [policy:github "
            "engine:ward] [reason:cannot resolve httpbin.org]");
}

TEST(Ocsf, ShorthandMatchesOpenShells) {
  EXPECT_EQ(shorthand(denied()),
            "NET:OPEN [MED] DENIED /usr/bin/curl(64) -> httpbin.org:443 [policy:- engine:ward] "
            "[reason:no rule allows httpbin.org:443]");
}

// Found in review: a binary the sandbox named itself ($'/tmp/x\nNET:OPEN ... ALLOWED ...') made
// the one-line form print a forged second line, and ESC sequences went to the operator's
// terminal. Control characters (C0, DEL, C1) are shown as \xNN.
TEST(Ocsf, ShorthandKeepsANameTheSandboxChoseOnOneLine) {
  NetworkEvent e = denied();
  e.binary =
      "/tmp/x\nNET:OPEN [INFO] ALLOWED /usr/bin/git(1) -> github.com:443\x1b]0;t\x07\xc2\x9b";
  const std::string line = shorthand(e);
  for (char c : line) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << line;
  EXPECT_EQ(line.find("\xc2\x9b"), std::string::npos) << line;
  EXPECT_NE(line.find("/tmp/x\\x0aNET:OPEN"), std::string::npos) << line;
  EXPECT_NE(line.find("\\x1b]0;t\\x07\\x9b"), std::string::npos) << line;
  // A backslash is escaped (a literal "\x0a" cannot pass for an escaped newline), and so is a
  // byte that starts no UTF-8 sequence (a lone 0x9b is CSI to a terminal outside UTF-8).
  e.binary = "/tmp/\\x0a\x9b\xe2\x82\xac";
  EXPECT_NE(shorthand(e).find("/tmp/\\\\x0a\\x9b\xe2\x82\xac("), std::string::npos) << shorthand(e);
  ApiEvent api;
  api.network = e;
  api.model = "m\r\nx";
  EXPECT_NE(shorthand(api).find("model:m\\x0d\\x0ax"), std::string::npos) << shorthand(api);
}

TEST(Ocsf, HttpRecordsRedactTheQuery) {
  HttpEvent h{denied(), "POST", "/repos/x/issues?access_token=ghp_secret&page=2", 403};
  nlohmann::json r = http_activity(h);
  EXPECT_EQ(r["class_uid"], 4002);
  EXPECT_EQ(r["activity_id"], 6);  // POST
  EXPECT_EQ(r["http_request"]["http_method"], "POST");
  EXPECT_EQ(r["http_request"]["url"]["path"], "/repos/x/issues");
  EXPECT_EQ(r["http_request"]["url"]["query_string"], "<redacted>");
  EXPECT_EQ(r["http_response"]["code"], 403);
  EXPECT_EQ(r.dump().find("ghp_secret"), std::string::npos);
  EXPECT_EQ(shorthand(h).find("ghp_secret"), std::string::npos);
  EXPECT_EQ(redact_query("/a"), "/a");
  EXPECT_EQ(redact_query("/a?"), "/a?");
}

TEST(Ocsf, ARelayedHttpRequestCarriesItsLatencyARefusedOneNone) {
  HttpEvent refused{denied(), "GET", "/", 403};
  EXPECT_FALSE(http_activity(refused).contains("duration"));
  HttpEvent relayed{denied(), "GET", "/", 200};
  relayed.network.action = Action::kAllowed;
  relayed.duration = std::chrono::microseconds(2500);
  nlohmann::json r = http_activity(relayed);
  EXPECT_EQ(r["duration"], 2);  // OCSF's milliseconds
  EXPECT_EQ(r["unmapped"]["duration_us"], 2500);
}

ApiEvent api_call() {
  ApiEvent e;
  e.network = denied();
  e.network.action = Action::kAllowed;
  e.network.reason = "";
  e.network.host = "inference.local";
  e.network.address = "10.0.0.5";
  e.route = "local";
  e.backend = "https://[fd00::5]:8443";
  e.model = "llama3";
  e.protocol = "openai_chat_completions";
  e.status = 200;
  e.latency = std::chrono::milliseconds(42);
  e.streaming = true;
  e.input_tokens = 12;
  e.output_tokens = 34;
  e.tried = {"primary: connection refused"};
  return e;
}

TEST(Ocsf, AModelCallIsAnApiActivity) {
  nlohmann::json r = api_activity(api_call());
  EXPECT_EQ(r["class_uid"], 6003);
  EXPECT_EQ(r["category_uid"], 6);
  EXPECT_EQ(r["activity_id"], 1);  // Create
  EXPECT_EQ(r["type_uid"], 600301);
  EXPECT_EQ(r["status_id"], 1);
  EXPECT_EQ(r["action_id"], 1);
  EXPECT_EQ(r["time"], 1763900000123);
  EXPECT_EQ(r["duration"], 42);
  EXPECT_EQ(r["api"]["operation"], "openai_chat_completions");
  EXPECT_EQ(r["api"]["service"]["name"], "local");
  EXPECT_EQ(r["dst_endpoint"]["hostname"], "fd00::5");
  EXPECT_EQ(r["dst_endpoint"]["port"], 8443);
  EXPECT_EQ(r["dst_endpoint"]["ip"], "10.0.0.5");
  EXPECT_EQ(r["http_response"]["code"], 200);
  EXPECT_EQ(r["http_response"]["latency"], 42);
  EXPECT_EQ(r["resources"][0]["type"], "model");
  EXPECT_EQ(r["resources"][0]["name"], "llama3");
  EXPECT_EQ(r["actor"]["process"]["pid"], 64);
  EXPECT_EQ(r["actor"]["process"]["file"]["path"], "/usr/bin/curl");
  EXPECT_EQ(r["unmapped"]["sandbox_id"], "sb-1");
  EXPECT_EQ(r["unmapped"]["backend"], "https://[fd00::5]:8443");
  EXPECT_EQ(r["unmapped"]["streaming"], true);
  EXPECT_EQ(r["unmapped"]["usage"]["input_tokens"], 12);
  EXPECT_EQ(r["unmapped"]["usage"]["output_tokens"], 34);
  EXPECT_EQ(r["unmapped"]["tried"][0], "primary: connection refused");
  EXPECT_EQ(shorthand(api_call()),
            "API:openai_chat_completions [INFO] ALLOWED /usr/bin/curl(64) -> "
            "https://[fd00::5]:8443 200 [route:local model:llama3 42ms stream in:12 out:34] "
            "[tried:primary: connection refused]");
}

TEST(Ocsf, AnApiRecordCarriesNoRequestOrResponseContent) {
  // Exactly these members: nothing that could hold a prompt, a completion or a header.
  nlohmann::json r = api_activity(api_call());
  std::vector<std::string> keys;
  for (auto it = r.begin(); it != r.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"action_id", "activity_id", "actor", "api", "category_uid",
                                      "class_uid", "disposition_id", "dst_endpoint", "duration",
                                      "http_response", "message", "metadata", "resources",
                                      "severity_id", "status_id", "time", "type_uid", "unmapped"}));
  EXPECT_EQ(r["http_response"].size(), 2u);  // code and latency
  EXPECT_EQ(r["api"].size(), 2u);            // operation and service
}

TEST(Ocsf, ModelListsAndRefusalsAndFailures) {
  ApiEvent e = api_call();
  e.protocol = "anthropic_models";
  e.streaming = false;
  e.input_tokens.reset();
  e.output_tokens.reset();
  e.tried.clear();
  nlohmann::json r = api_activity(e);
  EXPECT_EQ(r["activity_id"], 2);  // Read
  EXPECT_FALSE(r["unmapped"].contains("usage"));
  EXPECT_FALSE(r["unmapped"].contains("tried"));
  EXPECT_EQ(shorthand(e),
            "API:anthropic_models [INFO] ALLOWED /usr/bin/curl(64) -> https://[fd00::5]:8443 200 "
            "[route:local model:llama3 42ms]");

  ApiEvent refused;
  refused.network = denied();
  refused.network.reason = "not an inference API path";
  refused.status = 403;
  r = api_activity(refused);
  EXPECT_EQ(r["activity_id"], 0);
  EXPECT_EQ(r["action_id"], 2);
  EXPECT_EQ(r["status_id"], 2);
  EXPECT_FALSE(r.contains("dst_endpoint"));
  EXPECT_EQ(r["api"]["operation"], "-");
  EXPECT_EQ(shorthand(refused),
            "API:- [MED] DENIED /usr/bin/curl(64) -> - 403 [route:- model:- 0ms] "
            "[reason:not an inference API path]");

  ApiEvent failed = api_call();
  failed.network.failed = true;
  failed.network.reason = "no backend answered";
  failed.status = 502;
  failed.streaming = false;
  failed.input_tokens.reset();
  failed.output_tokens.reset();
  failed.tried = {"primary: connection refused", "local: 503 before the body"};
  r = api_activity(failed);
  EXPECT_EQ(r["status_id"], 2);
  EXPECT_EQ(r["http_response"]["code"], 502);
  EXPECT_EQ(shorthand(failed),
            "API:openai_chat_completions [LOW] FAILED /usr/bin/curl(64) -> "
            "https://[fd00::5]:8443 502 [route:local model:llama3 42ms] [tried:primary: "
            "connection refused; local: 503 before the body] [reason:no backend answered]");

  ApiEvent backend_error = api_call();
  backend_error.status = 429;
  EXPECT_EQ(api_activity(backend_error)["status_id"], 2);
}

}  // namespace
}  // namespace ward::audit
