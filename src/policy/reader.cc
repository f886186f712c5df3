#include "policy/reader.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <tuple>
#include <unordered_map>

#include "base/fd.h"

namespace ward::policy::detail {

Where where_of(const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; Mark::null_mark() (-1) means "no position".
  if (mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

void Sink::add(Diagnostic::Severity severity, Where at, std::string path, std::string message) {
  if (severity == Diagnostic::Severity::kError) ++errors_;
  if (diagnostics_.size() >= kMaxDiagnostics) {
    ++(severity == Diagnostic::Severity::kError ? dropped_errors_ : dropped_warnings_);
    return;
  }
  diagnostics_.push_back(
      Diagnostic{severity, file_, at.line, at.column, std::move(path), std::move(message)});
}

std::vector<Diagnostic> Sink::take() {
  // Readers report a mapping's key problems before walking its values, and cross-checks (a path in
  // both lists) after; people read a file top to bottom, so sort by position. Diagnostics without
  // a position (line 0) keep their place relative to each other and go first.
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     if (a.line != b.line) return a.line < b.line;
                     return a.column < b.column;
                   });
  for (auto [severity, dropped, what] :
       {std::tuple{Diagnostic::Severity::kError, &dropped_errors_, "error"},
        std::tuple{Diagnostic::Severity::kWarning, &dropped_warnings_, "warning"}}) {
    if (*dropped == 0) continue;
    Diagnostic more;
    more.severity = severity;
    more.file = file_;
    more.message = fmt::format("{} more {}{} not shown", *dropped, what, *dropped == 1 ? "" : "s");
    more.count = static_cast<int>(*dropped);
    diagnostics_.push_back(std::move(more));
    *dropped = 0;
  }
  return std::move(diagnostics_);
}

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string index_path(std::string_view parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string quote(std::string_view text, std::size_t max) {
  std::string out = "'";
  std::size_t n = std::min(text.size(), max);
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    // Messages end up on a terminal: never echo control bytes from the file.
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > max) out += "...";
  out.push_back('\'');
  return out;
}

std::string quoted_list(std::initializer_list<std::string_view> items, std::string_view last_sep) {
  std::string out;
  std::size_t i = 0;
  for (std::string_view item : items) {
    if (i > 0) out += (i + 1 == items.size()) ? fmt::format(" {} ", last_sep) : std::string(", ");
    out += fmt::format("'{}'", item);
    ++i;
  }
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (an empty value)";
    case YAML::NodeType::Scalar:
      return "the value " + quote(node.Scalar(), 40);
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

namespace {

Field element_field(const YAML::Node& node, std::string path, Where fallback) {
  Where at = where_of(node.Mark());
  // An empty value has no text of its own; yaml-cpp marks it at whatever token follows, which may
  // be on the next line. The key (or the list) is the better place to point at.
  if (node.IsNull() || at.line == 0) at = fallback;
  return Field{node, std::move(path), at};
}

}  // namespace

std::optional<std::vector<Entry>> read_map(Sink& sink, const Field& f, std::string_view section,
                                           std::initializer_list<std::string_view> allowed,
                                           std::initializer_list<std::string_view> unlisted) {
  std::vector<Entry> entries;
  if (f.node.IsNull()) return entries;
  if (!f.node.IsMap()) {
    sink.error(f, fmt::format("expected a mapping (key: value lines), got {}", describe(f.node)));
    return std::nullopt;
  }
  std::string expected;
  for (std::string_view k : allowed) {
    if (!expected.empty()) expected += ", ";
    expected += k;
  }
  auto known = [&](std::string_view name) {
    return std::find(allowed.begin(), allowed.end(), name) != allowed.end() ||
           std::find(unlisted.begin(), unlisted.end(), name) != unlisted.end();
  };
  // key -> line of its first appearance; a hash so that a hostile 100 000-key mapping stays linear.
  std::unordered_map<std::string, int> seen;
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    // Copies: the iterator's operator-> hands out a temporary pair; a reference would dangle.
    YAML::Node key = it->first;
    YAML::Node value = it->second;
    Where key_at = where_of(key.Mark());
    if (key_at.line == 0) key_at = f.at;
    if (!key.IsScalar()) {
      sink.add(Diagnostic::Severity::kError, key_at, f.path,
               fmt::format("a key must be a plain name, got {}", describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    std::string path = child_path(f.path, name);
    if (auto [first, inserted] = seen.emplace(name, key_at.line); !inserted) {
      sink.add(
          Diagnostic::Severity::kError, key_at, path,
          fmt::format("duplicate key {} (first given at line {})", quote(name), first->second));
      continue;
    }
    if (name == "<<" && key.Tag() == "?") {
      // yaml-cpp (like YAML 1.2) has no merge keys; without this it would read as an unknown key.
      sink.add(Diagnostic::Severity::kError, key_at, path,
               "YAML merge keys (<<: *anchor) are not supported; write the keys out");
      continue;
    }
    if (allowed.size() > 0 && !known(name)) {
      sink.add(
          Diagnostic::Severity::kError, key_at, path,
          fmt::format("unknown key {} in {}; expected one of: {}", quote(name), section, expected));
      continue;  // `seen` has it: a second copy is reported as a duplicate, not twice as unknown
    }
    entries.push_back(Entry{name, key_at, element_field(value, std::move(path), key_at)});
  }
  return entries;
}

const Entry* find(const std::vector<Entry>& entries, std::string_view key) {
  for (const Entry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::optional<std::vector<Field>> read_list(Sink& sink, const Field& f, std::string_view what) {
  std::vector<Field> out;
  if (f.node.IsNull()) return out;
  if (!f.node.IsSequence()) {
    sink.error(f, fmt::format("expected {}, got {}", what, describe(f.node)));
    return std::nullopt;
  }
  std::size_t i = 0;
  for (auto it = f.node.begin(); it != f.node.end(); ++it, ++i) {
    out.push_back(element_field(*it, index_path(f.path, i), f.at));
  }
  return out;
}

std::optional<std::string> read_string(Sink& sink, const Field& f, std::string_view what) {
  if (!f.node.IsScalar()) {
    sink.error(f, fmt::format("expected {}, got {}", what, describe(f.node)));
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<bool> read_bool(Sink& sink, const Field& f) {
  if (f.node.IsScalar()) {
    // YAML 1.2's core schema, as OpenShell's parser reads it: yes/no/on/off are strings there, so
    // accepting them here would make one file mean two things.
    const std::string& s = f.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  sink.error(f, fmt::format("expected true or false, got {}", describe(f.node)));
  return std::nullopt;
}

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> read_uint(Sink& sink, const Field& f, std::uint64_t min,
                                       std::uint64_t max) {
  std::optional<std::uint64_t> value;
  if (f.node.IsScalar()) value = parse_decimal(f.node.Scalar());
  if (!value || *value < min || *value > max) {
    sink.error(f, fmt::format("expected a whole number from {} to {}, got {}", min, max,
                              describe(f.node)));
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> read_choice(Sink& sink, const Field& f,
                                       std::initializer_list<std::string_view> choices) {
  if (f.node.IsScalar()) {
    const std::string& s = f.node.Scalar();
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  }
  sink.error(f, fmt::format("expected {}, got {}", quoted_list(choices, "or"), describe(f.node)));
  return std::nullopt;
}

Result<std::string> read_config_file(const std::string& path, std::string_view what,
                                     std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return fail_errno(fmt::format("cannot open the {}", what));
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(fmt::format("cannot read the {}", what));
    }
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_bytes)
      return fail(fmt::format("the {} is larger than {} MiB", what, max_bytes >> 20));
  }
}

}  // namespace ward::policy::detail
