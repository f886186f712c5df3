// Masking the real values an answer holds (mask.h).
#include "creds/mask.h"

#include <string.h>  // explicit_bzero

#include <algorithm>
#include <cctype>
#include <utility>

#include "creds/scan.h"
#include "creds/vault.h"

namespace ward::creds {
namespace {

void add_spelling(std::vector<std::string>& out, std::string s) {
  if (s.size() < ResponseMask::kMinSpelling) return;
  if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
}

}  // namespace

std::vector<std::string> ResponseMask::spellings_of(std::string_view value) {
  std::vector<std::string> out;
  add_spelling(out, std::string(value));
  const std::string json = detail::json_escape(value);
  add_spelling(out, json);
  std::string slashes;  // "\/", as PHP's json_encode writes '/'
  for (char c : json) slashes += c == '/' ? std::string("\\/") : std::string(1, c);
  add_spelling(out, std::move(slashes));
  const std::string percent = detail::percent_encode(value);
  add_spelling(out, percent);
  std::string lower = percent;  // %2f as well as %2F
  for (std::size_t i = 0; i + 2 < lower.size(); ++i)
    if (lower[i] == '%') {
      lower[i + 1] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[i + 1])));
      lower[i + 2] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[i + 2])));
    }
  add_spelling(out, std::move(lower));
  // In base64 a value starting `offset` bytes into a 3-byte group is encoded by characters whose
  // first `skip` also carry the bits of what precedes it, and whose last (past `end`) those of
  // what follows: only the characters between are the value's own.
  for (std::size_t offset = 0; offset < 3; ++offset) {
    std::string encoded = detail::base64_encode(std::string(offset, '\0') + std::string(value));
    const std::size_t skip = offset == 0 ? 0 : offset + 1;
    const std::size_t end = (offset + value.size()) * 8 / 6;
    if (end <= skip) continue;
    std::string core = encoded.substr(skip, end - skip);
    explicit_bzero(encoded.data(), encoded.size());
    std::string url_safe = core;
    std::replace(url_safe.begin(), url_safe.end(), '+', '-');
    std::replace(url_safe.begin(), url_safe.end(), '/', '_');
    add_spelling(out, std::move(core));
    add_spelling(out, std::move(url_safe));
  }
  return out;
}

ResponseMask::ResponseMask(const Vault& vault, std::string_view host, std::uint16_t port)
    : spellings_(vault.spellings_bound_at(host, port)) {}

ResponseMask::~ResponseMask() {
  explicit_bzero(carry_.data(), carry_.size());
}

std::size_t ResponseMask::mask_all(std::string& text) const {
  // Found in the text as it came, then masked: occurrences may overlap.
  std::vector<std::pair<std::size_t, std::size_t>> found;
  for (const std::string* s : spellings_) {
    for (std::size_t pos = text.find(*s); pos != std::string::npos; pos = text.find(*s, pos + 1))
      found.emplace_back(pos, s->size());
  }
  for (auto [pos, size] : found)
    std::fill_n(text.begin() + static_cast<std::ptrdiff_t>(pos), size, '*');
  masked_ += found.size();
  return found.size();
}

std::size_t ResponseMask::mask(std::string& text) const {
  return mask_all(text);
}

std::size_t ResponseMask::open_tail(std::string_view text) const {
  std::size_t longest = 0;
  for (const std::string* spelling : spellings_) {
    const std::string& s = *spelling;
    const std::size_t reach = std::min(s.size() - 1, text.size());
    for (std::size_t p = text.size() - reach; p < text.size(); ++p) {
      const std::size_t n = text.size() - p;
      if (n <= longest) break;
      if (text[p] == s[0] && text.compare(p, n, s, 0, n) == 0) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}

void ResponseMask::feed_websocket(std::string_view in, std::string& out) {
  for (std::size_t i = 0; i < in.size();) {
    if (frame_remaining_ > 0) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(frame_remaining_, in.size() - i));
      frame_remaining_ -= n;
      i += n;
      continue;
    }
    frame_head_ += in[i++];
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(frame_head_[k]); };
    if (frame_head_.size() < 2) continue;
    const unsigned len7 = byte(1) & 0x7f;
    const std::size_t extended = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    const std::size_t need = 2 + extended + ((byte(1) & 0x80) ? 4 : 0);
    if (frame_head_.size() < need) continue;
    std::uint64_t length = len7;
    if (extended) {
      length = 0;
      for (std::size_t k = 0; k < extended; ++k) length = (length << 8) | byte(2 + k);
    }
    frame_remaining_ = length;
    frame_head_.clear();
  }
  feed(in, frame_remaining_ == 0 && frame_head_.empty(), out);
}

void ResponseMask::feed(std::string_view in, bool last, std::string& out) {
  if (spellings_.empty()) {
    out.append(in);
    return;
  }
  carry_.append(in);
  mask_all(carry_);
  const std::size_t hold = last ? 0 : open_tail(carry_);
  out.append(carry_, 0, carry_.size() - hold);
  carry_.erase(0, carry_.size() - hold);
}

}  // namespace ward::creds
