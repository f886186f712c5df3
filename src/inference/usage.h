// Token usage read from a model response as it streams through the proxy, for the audit record.
//
// Fed the body chunk by chunk, in whatever pieces the network delivers:
// - a JSON body (application/json, *+json): the top-level "usage" object is found by a small
//   tokenizer that keeps nothing but its state and that object (at most 64 KiB), so the
//   completion is never stored and any size of body is scanned in bounded memory;
// - an event stream (text/event-stream): each event's data lines (at most 1 MiB together;
//   a bigger event is skipped) are parsed when the event ends, then dropped, and only events whose
//   data mentions "usage" are parsed at all.
// Anything else (another content type, a compressed body) is not scanned. An event the stream
// did not end with its blank line is not counted (the event-stream rules discard it, so the client
// never saw it either).
//
// Where usage is found: "usage" at the top (OpenAI chat/completions/embeddings and their final
// stream chunk with stream_options.include_usage; Anthropic messages and message_delta events),
// "message.usage" (Anthropic message_start) and "response.usage" (OpenAI /v1/responses
// stream events). Counts: prompt_tokens or input_tokens → input; completion_tokens or
// output_tokens → output. A later report replaces an earlier one field by field (Anthropic sends
// input in message_start and the final output count in message_delta). Anthropic's cache token
// counts (cache_read_input_tokens, ...) are not added to input_tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ward::inference {

struct Usage {
  std::optional<std::uint64_t> input_tokens;
  std::optional<std::uint64_t> output_tokens;

  bool operator==(const Usage&) const = default;
};

class UsageScanner {
 public:
  // The response's Content-Type and Content-Encoding ("" or "identity": not encoded).
  explicit UsageScanner(std::string_view content_type, std::string_view content_encoding = "");

  void feed(std::string_view bytes);
  const Usage& usage() const { return usage_; }

  static constexpr std::size_t kMaxEvent = 1 << 20;         // SSE: one event's data
  static constexpr std::size_t kMaxUsageObject = 64 << 10;  // JSON: the "usage" value

 private:
  enum class Mode { kNone, kJson, kSse };

  void feed_json(std::string_view bytes);
  void json_byte(char c);
  void feed_sse(std::string_view bytes);
  void sse_line(std::string_view line);
  void sse_dispatch();
  void take_usage(std::string_view json_text, bool event);

  Mode mode_ = Mode::kNone;
  Usage usage_;

  // JSON tokenizer state.
  int depth_ = 0;
  bool started_ = false;  // the first non-space byte was seen
  bool in_string_ = false;
  bool escape_ = false;
  bool expect_key_ = false;     // depth 1 of the top object: the next string is a key
  bool key_is_string_ = false;  // the string being read is a depth-1 key
  std::string key_;             // that key, up to 8 bytes ("usage" is 5)
  bool usage_next_ = false;     // the key just read was "usage": capture an object value
  bool capturing_ = false;
  std::string capture_;

  // Event-stream state.
  std::string line_;  // the current line, without its terminator
  bool line_too_long_ = false;
  bool after_cr_ = false;  // the last byte was CR: a following LF ends nothing
  std::string data_;       // the current event's data
  bool event_too_big_ = false;
};

}  // namespace ward::inference
