#include "base/strings.h"

#include <fnmatch.h>

namespace ward {

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

}  // namespace ward
