// Internal to the policy module: walking a yaml-cpp tree while collecting diagnostics.
//
// The loader never stops at the first problem: every reader reports what is wrong with its node
// to a Sink and returns nullopt (or skips the entry), and the caller carries on with the rest of
// the document. Nothing here throws: yaml-cpp is only asked for things that cannot fail on a valid
// node (Type, Scalar, Mark, iteration), never for as<T>().
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "policy/policy.h"

namespace ward::policy::detail {

// A 1-based position; 0 when unknown.
struct Where {
  int line = 0;
  int column = 0;
};

Where where_of(const YAML::Mark& mark);

// A node of the document with its key path and where to report problems with it.
struct Field {
  YAML::Node node;
  std::string path;  // "network_policies.github_api.endpoints[0].host"
  Where at;          // the value; the key's position when the value is empty (null)
};

// One entry of a mapping, in file order.
struct Entry {
  std::string key;
  Where key_at;
  Field value;
};

// Collects diagnostics for one load.
class Sink {
 public:
  explicit Sink(std::string file) : file_(std::move(file)) {}

  void error(const Field& f, std::string message) {
    add(Diagnostic::Severity::kError, f.at, f.path, std::move(message));
  }
  void warning(const Field& f, std::string message) {
    add(Diagnostic::Severity::kWarning, f.at, f.path, std::move(message));
  }
  void add(Diagnostic::Severity severity, Where at, std::string path, std::string message);

  bool has_error() const { return errors_ > 0; }
  // The diagnostics in document order (line, column), ties in the order they were found.
  std::vector<Diagnostic> take();

 private:
  // A hostile document (a list of 100 000 bad paths) must not make the diagnostic list the
  // biggest allocation of the load: past this many the rest are counted, not kept.
  static constexpr std::size_t kMaxDiagnostics = 200;

  std::string file_;
  std::vector<Diagnostic> diagnostics_;
  std::size_t errors_ = 0;
  std::size_t dropped_errors_ = 0;
  std::size_t dropped_warnings_ = 0;
};

std::string child_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, std::size_t index);

// "a list", "a mapping", "nothing (an empty value)", "the string 'abc'".
std::string describe(const YAML::Node& node);

// Reads a mapping. Reports a key that is not a string, a duplicate key, and (when `allowed` is not
// empty) a key in neither `allowed` nor `unlisted`, naming `section` and the keys of `allowed`;
// such entries are dropped. `unlisted` keys are known but not suggested (refused features).
// An empty value (`section:` with nothing after it) is an empty mapping. Returns nullopt when the
// node is not a mapping at all.
std::optional<std::vector<Entry>> read_map(Sink& sink, const Field& f, std::string_view section,
                                           std::initializer_list<std::string_view> allowed,
                                           std::initializer_list<std::string_view> unlisted = {});
const Entry* find(const std::vector<Entry>& entries, std::string_view key);

// Reads a list; an empty value is an empty list. `what` completes "expected ...", e.g.
// "a list of paths".
std::optional<std::vector<Field>> read_list(Sink& sink, const Field& f, std::string_view what);

// Scalars. Quoted or not, a scalar's text decides (JSON writes every string quoted, YAML users
// quote numbers and booleans at will); an empty value is an error naming what was expected.
std::optional<std::string> read_string(Sink& sink, const Field& f,
                                       std::string_view what = "a string");
std::optional<bool> read_bool(Sink& sink, const Field& f);
std::optional<std::uint64_t> read_uint(Sink& sink, const Field& f, std::uint64_t min,
                                       std::uint64_t max);

// Reads a string that must be one of `choices`; the error lists them.
std::optional<std::string> read_choice(Sink& sink, const Field& f,
                                       std::initializer_list<std::string_view> choices);

// Decimal digits only (no sign, no spaces, no 0x); nullopt on anything else or overflow.
std::optional<std::uint64_t> parse_decimal(std::string_view text);

// `text` quoted for a message: control bytes escaped (\xNN), cut to `max` bytes with "...".
std::string quote(std::string_view text, std::size_t max = 64);

// "'a', 'b' or 'c'"
std::string quoted_list(std::initializer_list<std::string_view> items, std::string_view last_sep);

// Parses `text` as exactly one YAML document; syntax errors, an empty stream and extra documents
// are reported (document.cc).
std::optional<YAML::Node> parse_document(Sink& sink, const std::string& text);

// True when `s` holds a control byte (< 0x20 or DEL).
bool has_control(std::string_view s);

// Endpoint pieces shared by network.cc and rules.cc.
std::optional<std::string> read_path_glob(Sink& sink, const Field& f);
// `rules` (wrapped: each entry is {allow: {...}}) or `deny_rules` (not wrapped); `e` may be null.
std::vector<L7Rule> read_rules(Sink& sink, const Entry* e, bool wrapped);

// One endpoint map of network_policies (network.cc); the provider profiles' `endpoints` are read by
// the same code so that every key is validated alike. Reports problems and returns nullopt.
std::optional<Endpoint> read_endpoint(Sink& sink, const Field& f);

// Section readers, one per top-level key (validate.cc, network.cc).
void read_filesystem(Sink& sink, const Field& f, FilesystemPolicy& out);
void read_landlock(Sink& sink, const Field& f, Compatibility& out);
void read_process(Sink& sink, const Field& f, ProcessPolicy& out);
void read_resources(Sink& sink, const Field& f, Resources& out);
void read_environment(Sink& sink, const Field& f, Environment& out);
void read_network(Sink& sink, const Field& f, std::vector<NetworkRule>& out);

// The whole of a small configuration file (a policy, a provider profile, a routes file). Errors
// say "cannot open the WHAT" / "cannot read the WHAT" (with errno), or that it is larger than
// `max_bytes`; the caller adds the path.
Result<std::string> read_config_file(const std::string& path, std::string_view what,
                                     std::size_t max_bytes);

}  // namespace ward::policy::detail
