// The MCP layer's pieces without a gateway: stdio framing and bad input, the protocol's answers,
// and the helpers that shape tool output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <thread>

#include "mcp/sandboxes.h"
#include "mcp/server.h"
#include "mcp/stdio.h"
#include "mcp/tools.h"

namespace ward::mcp {
namespace {

// Feeds `input` to serve_stdio (fixtures only, no sandboxes) and returns its output lines.
std::vector<json> converse(const std::string& input) {
  ServerOptions options;
  options.fixtures = true;
  Server server(options, nullptr);
  int in[2], out[2];
  EXPECT_EQ(::pipe(in), 0);
  EXPECT_EQ(::pipe(out), 0);
  std::thread writer([&] {
    std::string_view rest = input;
    while (!rest.empty()) {
      const ssize_t n = ::write(in[1], rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(in[1]);
  });
  std::string output;
  std::thread reader([&] {
    char buf[4096];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) output.append(buf, n);
  });
  EXPECT_EQ(serve_stdio(server, "unit", in[0], out[1]), 0);
  ::close(out[1]);
  writer.join();
  reader.join();
  ::close(in[0]);
  ::close(out[0]);
  std::vector<json> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = output.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(json::parse(output.substr(start, nl - start)));
  return lines;
}

TEST(McpStdio, AnswersEveryRequestInItsOwnLine) {
  auto lines = converse(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})"
      "\n"
      R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
      "\n"
      R"({"jsonrpc":"2.0","id":"two","method":"ping"})"
      "\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["result"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(lines[0]["result"]["serverInfo"]["name"], "ward");
  EXPECT_EQ(lines[1]["id"], "two");
  EXPECT_EQ(lines[1]["result"], json::object());
}

TEST(McpStdio, BadInputGetsErrorsAndTheSessionGoesOn) {
  const std::string huge(33u << 20, 'a');
  auto lines =
      converse("not json\n" + huge + "\n" +
               R"({"jsonrpc":2,"id":3,"method":"ping"})"
               "\n"
               R"({"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":5}})"
               "\n"
               R"({"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":1}})"
               "\n"
               R"({"jsonrpc":"2.0","id":6,"method":"no/such"})"
               "\n"
               R"({"jsonrpc":"2.0","id":7,"method":"ping"})"
               "\n");
  ASSERT_EQ(lines.size(), 7u);
  // Answers are matched by id (tool calls, on threads of their own, may come back in any order).
  std::map<std::string, json> by_id;
  std::vector<int> unnamed;  // the errors of messages without a usable id, in order
  for (const json& line : lines) {
    if (line["id"].is_null())
      unnamed.push_back(line["error"]["code"]);
    else
      by_id[line["id"].dump()] = line;
  }
  EXPECT_EQ(unnamed, (std::vector<int>{-32700, -32600}));  // not JSON; over 32 MiB, skipped
  EXPECT_EQ(by_id["3"]["error"]["code"], -32600);          // jsonrpc is not "2.0"
  EXPECT_EQ(by_id["4"]["error"]["code"], -32602);          // protocolVersion not a string
  EXPECT_EQ(by_id["5"]["error"]["code"], -32602);          // level not a string
  EXPECT_EQ(by_id["6"]["error"]["code"], -32601);
  EXPECT_EQ(by_id["7"]["result"], json::object());
}

// Found in review: a message nested a few hundred thousand levels deep overflowed the stack where
// the server copied its params. More than kMaxJsonDepth (64) levels is a parse error before
// anything is built; 64 pass, brackets inside strings do not count, and the session goes on.
TEST(McpStdio, JsonNestedTooDeepIsAParseErrorAndTheSessionGoesOn) {
  auto ping = [](int id, const std::string& params) {
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) + R"(,"method":"ping","params":)" +
           params + "}\n";
  };
  auto nested = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  // The message is one level, params a second: 62 arrays inside are 64 in all.
  auto lines =
      converse(ping(1, R"({"a":)" + nested(200000) + "}") + ping(2, R"({"a":)" + nested(62) + "}") +
               ping(3, R"({"a":)" + nested(63) + "}") +
               ping(4, R"({"a":")" + std::string(100000, '[') + R"(\"["})"));
  ASSERT_EQ(lines.size(), 4u);
  std::map<std::string, json> by_id;
  std::vector<int> unnamed;
  for (const json& line : lines) {
    if (line["id"].is_null())
      unnamed.push_back(line["error"]["code"]);
    else
      by_id[line["id"].dump()] = line;
  }
  EXPECT_EQ(unnamed, (std::vector<int>{-32700, -32700}));  // 1 and 3
  EXPECT_EQ(by_id["2"]["result"], json::object());
  EXPECT_EQ(by_id["4"]["result"], json::object());
}

TEST(McpStdio, LogMessagesBelowTheSetLevelAreNotSent) {
  auto count_logs = [](const std::string& level) {
    auto lines = converse(
        R"({"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":")" + level +
        "\"}}\n" +
        R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_tool_with_logging"}})"
        "\n");
    return std::count_if(lines.begin(), lines.end(), [](const json& l) {
      return l.value("method", "") == "notifications/message";
    });
  };
  EXPECT_EQ(count_logs("debug"), 3);
  EXPECT_EQ(count_logs("info"), 3);
  EXPECT_EQ(count_logs("error"), 0);
}

TEST(McpTools, OutputIsShortenedOnCharacterBoundariesAndMadeValidUtf8) {
  EXPECT_EQ(shorten("short", 10), "short");
  const std::string long_text = std::string(20, 'a') + std::string(20, 'b');
  const std::string s = shorten(long_text, 10);
  EXPECT_TRUE(s.starts_with("aaaaa\n\n[... 30 characters truncated ...]\n\n"));
  EXPECT_TRUE(s.ends_with("bbbbb"));
  // "é" is two bytes: a cut never splits it.
  const std::string accents = "éééééééééé";  // 20 bytes
  const std::string cut = shorten(accents, 5);
  EXPECT_EQ(valid_utf8(cut), cut);
  EXPECT_EQ(valid_utf8("ok\xff\xc3"), "ok\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
}

TEST(McpTools, CaptureKeepsTheHeadAndTheTail) {
  Capture c(4, 4);
  c.append("0123");
  c.append("456789");
  c.append("ab");
  EXPECT_EQ(c.head(), "0123");
  EXPECT_EQ(c.tail(), "89ab");
  EXPECT_EQ(c.total(), 12u);
  EXPECT_TRUE(c.truncated());
  Capture small(4, 4);
  small.append("0123456");
  EXPECT_FALSE(small.truncated());
  EXPECT_EQ(small.head() + small.tail(), "0123456");
}

TEST(McpSandboxes, ChatIdsAreCheckedAndMappedToDistinctNames) {
  EXPECT_TRUE(Sandboxes::valid_chat_id("3f1c-uuid_like.id"));
  for (const char* bad : {"", "../x", "a/b", ".hidden", "-flag", "a b", "é"})
    EXPECT_FALSE(Sandboxes::valid_chat_id(bad)) << bad;
  EXPECT_FALSE(Sandboxes::valid_chat_id(std::string(129, 'a')));
  EXPECT_TRUE(Sandboxes::valid_chat_id(std::string(128, 'a')));
  const std::string a = Sandboxes::name_for("chat-a"), b = Sandboxes::name_for("chat-b");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_TRUE(a.starts_with("mcp-"));
  EXPECT_EQ(a, Sandboxes::name_for("chat-a"));
}

}  // namespace
}  // namespace ward::mcp
