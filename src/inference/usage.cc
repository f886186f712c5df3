#include "inference/usage.h"

#include <nlohmann/json.hpp>

namespace ward::inference {
namespace {

std::string lower_trimmed(std::string_view s) {
  std::size_t semi = s.find(';');
  if (semi != std::string_view::npos) s = s.substr(0, semi);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::optional<std::uint64_t> count(const nlohmann::json& usage, const char* key) {
  auto it = usage.find(key);
  if (it == usage.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  return std::nullopt;
}

// Takes the counts a usage object reports; leaves the others as they were.
void merge(const nlohmann::json& usage, Usage& out) {
  if (!usage.is_object()) return;
  for (const char* key : {"prompt_tokens", "input_tokens"}) {
    if (auto n = count(usage, key)) out.input_tokens = n;
  }
  for (const char* key : {"completion_tokens", "output_tokens"}) {
    if (auto n = count(usage, key)) out.output_tokens = n;
  }
}

}  // namespace

UsageScanner::UsageScanner(std::string_view content_type, std::string_view content_encoding) {
  std::string encoding = lower_trimmed(content_encoding);
  if (!encoding.empty() && encoding != "identity") return;
  std::string type = lower_trimmed(content_type);
  if (type == "text/event-stream") {
    mode_ = Mode::kSse;
  } else if (type == "application/json" ||
             (type.size() > 5 && type.compare(type.size() - 5, 5, "+json") == 0)) {
    mode_ = Mode::kJson;
  }
}

void UsageScanner::feed(std::string_view bytes) {
  if (mode_ == Mode::kJson) {
    feed_json(bytes);
  } else if (mode_ == Mode::kSse) {
    feed_sse(bytes);
  }
}

void UsageScanner::take_usage(std::string_view json_text, bool event) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return;
  if (!event) {
    merge(doc, usage_);
    return;
  }
  if (auto it = doc.find("usage"); it != doc.end()) merge(*it, usage_);
  for (const char* holder : {"message", "response"}) {
    auto it = doc.find(holder);
    if (it == doc.end() || !it->is_object()) continue;
    if (auto u = it->find("usage"); u != it->end()) merge(*u, usage_);
  }
}

// ---- JSON: find the top-level "usage" value without keeping anything else.

void UsageScanner::feed_json(std::string_view bytes) {
  for (char c : bytes) {
    json_byte(c);
    if (mode_ != Mode::kJson) return;
  }
}

void UsageScanner::json_byte(char c) {
  if (!started_) {
    if (is_space(c)) return;
    started_ = true;
    if (c != '{') {  // an array or a scalar has no usage
      mode_ = Mode::kNone;
      return;
    }
    depth_ = 1;
    expect_key_ = true;
    return;
  }
  if (capturing_) {
    if (capture_.size() >= kMaxUsageObject) {
      capturing_ = false;
      std::string().swap(capture_);
    } else {
      capture_.push_back(c);
    }
  }
  if (in_string_) {
    if (escape_) {
      escape_ = false;
    } else if (c == '\\') {
      escape_ = true;
    } else if (c == '"') {
      in_string_ = false;
      key_is_string_ = false;
    } else if (key_is_string_ && key_.size() < 8) {
      key_.push_back(c);
    }
    return;
  }
  switch (c) {
    case '"':
      in_string_ = true;
      key_is_string_ = depth_ == 1 && expect_key_;
      if (key_is_string_) key_.clear();
      break;
    case '{':
    case '[':
      if (depth_ == 1 && usage_next_ && c == '{') {
        capturing_ = true;
        capture_ = "{";
      }
      if (depth_ == 1) usage_next_ = false;
      ++depth_;
      break;
    case '}':
    case ']':
      --depth_;
      if (capturing_ && depth_ == 1) {
        capturing_ = false;
        take_usage(capture_, /*event=*/false);
        std::string().swap(capture_);
      }
      if (depth_ <= 0) mode_ = Mode::kNone;  // the top object ended: nothing more to find
      break;
    case ':':
      if (depth_ == 1) {
        expect_key_ = false;
        usage_next_ = key_ == "usage";
      }
      break;
    case ',':
      if (depth_ == 1) {
        expect_key_ = true;
        usage_next_ = false;
      }
      break;
    default:
      if (depth_ == 1 && !is_space(c)) usage_next_ = false;  // a scalar value (null)
      break;
  }
}

// ---- Event stream: lines → events → the data of the events that mention usage.

void UsageScanner::feed_sse(std::string_view bytes) {
  while (!bytes.empty()) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes.front() == '\n') {
        bytes.remove_prefix(1);
        continue;
      }
    }
    std::size_t end = bytes.find_first_of("\r\n");
    std::string_view piece = bytes.substr(0, end);
    if (!line_too_long_) {
      if (line_.size() + piece.size() > kMaxEvent) {
        line_too_long_ = true;
        std::string().swap(line_);
      } else {
        line_.append(piece);
      }
    }
    if (end == std::string_view::npos) return;
    after_cr_ = bytes[end] == '\r';
    bytes.remove_prefix(end + 1);
    sse_line(line_);
    if (line_.capacity() > (64 << 10)) {
      std::string().swap(line_);
    } else {
      line_.clear();
    }
    line_too_long_ = false;
  }
}

void UsageScanner::sse_line(std::string_view line) {
  if (line_too_long_) {
    event_too_big_ = true;
    return;
  }
  if (line.empty()) {
    sse_dispatch();
    return;
  }
  if (line.front() == ':') return;  // a comment
  std::size_t colon = line.find(':');
  if (line.substr(0, colon) != "data") return;  // event, id, retry: not needed
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (event_too_big_) return;
  if (data_.size() + value.size() + 1 > kMaxEvent) {
    event_too_big_ = true;
    std::string().swap(data_);
    return;
  }
  if (!data_.empty()) data_.push_back('\n');
  data_.append(value);
}

void UsageScanner::sse_dispatch() {
  if (!event_too_big_ && data_.find("\"usage\"") != std::string::npos)
    take_usage(data_, /*event=*/true);
  if (data_.capacity() > (64 << 10)) {
    std::string().swap(data_);
  } else {
    data_.clear();
  }
  event_too_big_ = false;
}

}  // namespace ward::inference
