#include "creds/scan.h"

#include <algorithm>

#include "creds/vault.h"

namespace ward::creds::detail {
namespace {

constexpr std::string_view kHex = "0123456789ABCDEF";
constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Unescaping rounds tried: enough for double and triple encoding, bounded for hostile input.
constexpr int kUnescapeRounds = 4;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::size_t count_prefix(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t pos = find_prefix(text); pos != std::string_view::npos;
       pos = find_prefix(text, pos + 1)) {
    ++n;
  }
  return n;
}

// One round of unescaping: %XX, and JSON's \" \\ \/ \b \f \n \r \t \uXXXX (a code point above
// ASCII becomes '?': it cannot be part of a prefix). Anything malformed is kept as it is.
std::string unescape_once(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (c == '\\' && i + 1 < s.size()) {
      char e = s[i + 1];
      std::string_view simple = "\"\\/bfnrt";
      if (std::size_t k = simple.find(e); k != std::string_view::npos) {
        out.push_back("\"\\/\b\f\n\r\t"[k]);
        ++i;
      } else if (e == 'u' && i + 5 < s.size() && hex_value(s[i + 2]) >= 0 &&
                 hex_value(s[i + 3]) >= 0 && hex_value(s[i + 4]) >= 0 && hex_value(s[i + 5]) >= 0) {
        int cp = (hex_value(s[i + 2]) << 12) | (hex_value(s[i + 3]) << 8) |
                 (hex_value(s[i + 4]) << 4) | hex_value(s[i + 5]);
        out.push_back(cp < 0x80 ? static_cast<char>(cp) : '?');
        i += 5;
      } else {
        out.push_back(c);
      }
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::size_t find_prefix(std::string_view text, std::size_t from) {
  const std::size_t n = kPlaceholderPrefix.size();
  if (text.size() < n) return std::string_view::npos;
  for (std::size_t i = from; i + n <= text.size(); ++i) {
    if (lower(text[i]) != kPlaceholderPrefix[0]) continue;
    std::size_t k = 1;
    while (k < n && lower(text[i + k]) == kPlaceholderPrefix[k]) ++k;
    if (k == n) return i;
  }
  return std::string_view::npos;
}

std::size_t token_end(std::string_view text, std::size_t start) {
  std::size_t end = start;
  while (end < text.size() && is_token_char(text[end])) ++end;
  return end;
}

bool has_escaped_prefix(std::string_view text) {
  if (text.find_first_of("%\\") == std::string_view::npos) return false;
  const std::size_t raw = count_prefix(text);
  std::string current(text);
  for (int round = 0; round < kUnescapeRounds; ++round) {
    std::string next = unescape_once(current);
    if (next == current) break;
    if (count_prefix(next) > raw) return true;
    current = std::move(next);
  }
  return false;
}

bool straddles(std::string_view before, std::string_view after) {
  if (before.size() > kMaxEscapedPlaceholder)
    before = before.substr(before.size() - kMaxEscapedPlaceholder);
  after = after.substr(0, std::min(after.size(), kMaxEscapedPlaceholder));
  std::string joined;
  joined.reserve(before.size() + after.size());
  joined.append(before).append(after);
  for (std::size_t pos = find_prefix(joined); pos < before.size();
       pos = find_prefix(joined, pos + 1)) {
    if (token_end(joined, pos) > before.size()) return true;
  }
  // Escaped placeholders wholly inside either part are refused by that part's own rewrite.
  return has_escaped_prefix(joined);
}

std::string percent_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (b < 0x20) {
      out += "\\u00";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string base64_encode(std::string_view s) {
  std::string out;
  out.reserve((s.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= s.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(s[i]) << 16) |
                 (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(kBase64[(v >> 6) & 63]);
    out.push_back(kBase64[v & 63]);
  }
  if (std::size_t rest = s.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(s[i + 1]) << 8;
    out.push_back(kBase64[(v >> 18) & 63]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kBase64[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view s) {
  std::size_t pad = 0;
  while (!s.empty() && s.back() == '=' && pad < 2) {
    s.remove_suffix(1);
    ++pad;
  }
  if (s.size() % 4 == 1 || (pad > 0 && (s.size() + pad) % 4 != 0)) return std::nullopt;
  std::string out;
  out.reserve(s.size() / 4 * 3 + 2);
  unsigned acc = 0;
  int bits = 0;
  for (char c : s) {
    std::size_t v = kBase64.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = ((acc << 6) | static_cast<unsigned>(v)) & 0xffffu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace ward::creds::detail
