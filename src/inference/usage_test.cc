#include "inference/usage.h"

#include <gtest/gtest.h>

#include <string>

namespace ward::inference {
namespace {

Usage usage(std::optional<std::uint64_t> in, std::optional<std::uint64_t> out) {
  return Usage{in, out};
}

// Scans `body` fed whole, then split in two at every byte boundary, then one byte at a time; all
// must agree.
Usage scan(std::string_view content_type, std::string_view body) {
  UsageScanner whole(content_type);
  whole.feed(body);
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    UsageScanner split(content_type);
    split.feed(body.substr(0, cut));
    split.feed(body.substr(cut));
    EXPECT_EQ(split.usage(), whole.usage()) << "split at " << cut;
  }
  UsageScanner bytes(content_type);
  for (char c : body) bytes.feed(std::string_view(&c, 1));
  EXPECT_EQ(bytes.usage(), whole.usage()) << "byte by byte";
  return whole.usage();
}

TEST(Usage, OpenAiJson) {
  std::string body = R"({"id":"chatcmpl-1","object":"chat.completion","model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"a \"usage\": {\"prompt_tokens\": 999} }"},
    "finish_reason":"stop"}],
    "usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,
             "completion_tokens_details":{"reasoning_tokens":0}}})";
  EXPECT_EQ(scan("application/json", body), usage(12, 34));
  EXPECT_EQ(scan("application/json; charset=utf-8",
                 R"({"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}})"),
            usage(8, std::nullopt));
}

TEST(Usage, OpenAiResponsesAndAnthropicJson) {
  EXPECT_EQ(scan("application/json",
                 R"({"id":"resp_1","output":[{"content":[{"text":"hi"}]}],)"
                 R"("usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}})"),
            usage(5, 7));
  EXPECT_EQ(scan("Application/JSON",
                 R"({"id":"msg_1","type":"message","content":[{"type":"text","text":"x"}],)"
                 R"("usage":{"input_tokens":10,"cache_read_input_tokens":3,"output_tokens":2}})"),
            usage(10, 2));
}

TEST(Usage, OnlyTheTopLevelUsageCounts) {
  EXPECT_EQ(scan("application/json",
                 R"({"data":{"usage":{"prompt_tokens":1}},"x":[{"usage":{"prompt_tokens":2}}]})"),
            usage(std::nullopt, std::nullopt));
  EXPECT_EQ(scan("application/json", R"({"usage":null,"x":{"usage":{"prompt_tokens":2}}})"),
            usage(std::nullopt, std::nullopt));
  EXPECT_EQ(scan("application/json", R"([{"usage":{"prompt_tokens":2}}])"),
            usage(std::nullopt, std::nullopt));
  EXPECT_EQ(scan("application/json", R"({"error":{"message":"bad key"}})"),
            usage(std::nullopt, std::nullopt));
  EXPECT_EQ(scan("application/json", R"({"usage":{"prompt_tokens":-1,"completion_tokens":"3"}})"),
            usage(std::nullopt, std::nullopt));
  // Escaped quotes and backslashes inside strings end nothing.
  EXPECT_EQ(scan("application/json",
                 R"({"s":"a\"}],{\\","k\"}":1,"usage":{"prompt_tokens":3,"x":"\"}"}})"),
            usage(3, std::nullopt));
  // A key that merely starts with "usage", and an escaped quote before a real one.
  EXPECT_EQ(
      scan("application/json",
           R"({"usage_x":{"prompt_tokens":1},"s":"\"usage\":{","usage":{"prompt_tokens":3}})"),
      usage(3, std::nullopt));
}

TEST(Usage, OpenAiSseWithIncludeUsage) {
  std::string body =
      "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}],\"usage\":null}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"usage\"}}],\"usage\":null}\n\n"
      "data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],"
      "\"usage\":null}\n\n"
      "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
      "\"completion_tokens\":3,\"total_tokens\":12}}\n\n"
      "data: [DONE]\n\n";
  EXPECT_EQ(scan("text/event-stream", body), usage(9, 3));
  // CRLF line endings are the same stream.
  std::string crlf;
  for (char c : body) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  EXPECT_EQ(scan("text/event-stream; charset=utf-8", crlf), usage(9, 3));
  // Without include_usage there is nothing to find.
  EXPECT_EQ(scan("text/event-stream",
                 "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"),
            usage(std::nullopt, std::nullopt));
}

TEST(Usage, OpenAiResponsesSse) {
  std::string body =
      "event: response.created\n"
      "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"usage\":null}}\n\n"
      "event: response.output_text.delta\n"
      "data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n"
      "event: response.completed\n"
      "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":"
      "{\"input_tokens\":4,\"output_tokens\":6,\"total_tokens\":10}}}\n\n";
  EXPECT_EQ(scan("text/event-stream", body), usage(4, 6));
}

TEST(Usage, AnthropicSse) {
  std::string body =
      "event: message_start\n"
      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
      "\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":25,"
      "\"output_tokens\":1}}}\n\n"
      "event: content_block_start\n"
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
      "\"text\":\"\"}}\n\n"
      "event: ping\ndata: {\"type\": \"ping\"}\n\n"
      ": a comment\n"
      "event: content_block_delta\n"
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
      "\"text\":\"Hello\"}}\n\n"
      "event: message_delta\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
      "\"usage\":{\"output_tokens\":15}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  EXPECT_EQ(scan("text/event-stream", body), usage(25, 15));
}

TEST(Usage, AnEventWithoutItsBlankLineIsNotCounted) {
  EXPECT_EQ(scan("text/event-stream", "data: {\"usage\":{\"prompt_tokens\":1}}\n"),
            usage(std::nullopt, std::nullopt));
  EXPECT_EQ(scan("text/event-stream", "data: {\"usage\":\ndata: {\"prompt_tokens\":1}}\n\n"),
            usage(1, std::nullopt));  // data lines of one event join
}

TEST(Usage, OversizeEventsAreSkipped) {
  std::string huge(UsageScanner::kMaxEvent + 10, 'x');
  std::string body = "data: {\"usage\":{\"prompt_tokens\":1},\"pad\":\"" + huge + "\"}\n\n" +
                     "data: {\"usage\":{\"completion_tokens\":2}}\n\n";
  UsageScanner s("text/event-stream");
  for (std::size_t i = 0; i < body.size(); i += 4096)
    s.feed(std::string_view(body).substr(i, 4096));
  EXPECT_EQ(s.usage(), usage(std::nullopt, 2));

  // Several data lines that only together exceed the limit.
  std::string half(UsageScanner::kMaxEvent / 2 + 10, 'y');
  UsageScanner t("text/event-stream");
  t.feed("data: {\"usage\":{\"prompt_tokens\":1},\"a\":\"" + half + "\n");
  t.feed("data: " + half + "\"}\n\n");
  t.feed("data: {\"usage\":{\"prompt_tokens\":5}}\n\n");
  EXPECT_EQ(t.usage(), usage(5, std::nullopt));
}

TEST(Usage, AnOversizeUsageObjectIsIgnoredButTheBodyStillScans) {
  std::string pad(UsageScanner::kMaxUsageObject, ' ');
  UsageScanner s("application/json");
  s.feed("{\"usage\":{\"prompt_tokens\":1," + pad + "\"completion_tokens\":2}}");
  EXPECT_EQ(s.usage(), usage(std::nullopt, std::nullopt));
  // A body far bigger than any buffer: the usage after it is still found.
  UsageScanner big("application/json");
  big.feed("{\"choices\":[{\"text\":\"");
  std::string chunk(1 << 16, 'z');
  for (int i = 0; i < 40; ++i) big.feed(chunk);
  big.feed("\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}");
  EXPECT_EQ(big.usage(), usage(3, 4));
}

TEST(Usage, OtherContentIsNotScanned) {
  std::string body = R"({"usage":{"prompt_tokens":1,"completion_tokens":2}})";
  for (std::string_view type : {"text/plain", "", "application/jsonx", "text/html"}) {
    UsageScanner s(type);
    s.feed(body);
    EXPECT_EQ(s.usage(), usage(std::nullopt, std::nullopt)) << type;
  }
  UsageScanner gz("application/json", "gzip");
  gz.feed(body);
  EXPECT_EQ(gz.usage(), usage(std::nullopt, std::nullopt));
  UsageScanner id("application/problem+json", "identity");
  id.feed(body);
  EXPECT_EQ(id.usage(), usage(1, 2));
}

}  // namespace
}  // namespace ward::inference
