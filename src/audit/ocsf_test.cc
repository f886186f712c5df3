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

}  // namespace
}  // namespace ward::audit
