#include "base/strings.h"

#include <fnmatch.h>
#include <string.h>
#include <sys/random.h>

#include <cerrno>

namespace ward {

Result<std::string> random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  for (std::size_t got = 0; got < bytes;) {
    const ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char b : raw) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  explicit_bzero(raw.data(), raw.size());
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

std::optional<std::string> normalize_absolute_path(std::string_view path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::string out;
  for (std::string_view part : split(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    out.push_back('/');
    out.append(part);
  }
  if (out.empty()) out = "/";
  return out;
}

bool path_within(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  if (path.size() < dir.size() || path.compare(0, dir.size(), dir) != 0) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

bool json_nests_deeper(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto escape = [&](unsigned value) {
    out += "\\x";
    out += kHex[(value >> 4) & 0xf];
    out += kHex[value & 0xf];
  };
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned c = byte(i);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        escape(c);
      else if (c == '\\')
        out += "\\\\";  // so that "\x0a" written by the sandbox cannot pass for an escape
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A whole UTF-8 sequence passes, but for the C1 controls (U+0080..U+009F); a byte that
    // starts no valid sequence is shown as \xNN (a terminal outside UTF-8 would act on 0x9b).
    const std::size_t n = c >= 0xf0 && c <= 0xf4  ? 4
                          : c >= 0xe0             ? 3
                          : c >= 0xc2 && c < 0xe0 ? 2
                                                  : 0;
    bool valid = n != 0 && i + n <= text.size();
    for (std::size_t k = 1; valid && k < n; ++k) valid = (byte(i + k) & 0xc0) == 0x80;
    if (valid && n == 3)
      valid = !(c == 0xe0 && byte(i + 1) < 0xa0) && !(c == 0xed && byte(i + 1) >= 0xa0);
    if (valid && n == 4)
      valid = !(c == 0xf0 && byte(i + 1) < 0x90) && !(c == 0xf4 && byte(i + 1) >= 0x90);
    if (!valid) {
      escape(c);
      ++i;
    } else if (n == 2 && c == 0xc2 && byte(i + 1) <= 0x9f) {
      escape(byte(i + 1));
      i += 2;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace ward
