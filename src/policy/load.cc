// Entry points: text or file → YAML tree → Policy, with every problem as a Diagnostic.
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>

#include "base/fd.h"
#include "policy/policy.h"
#include "policy/reader.h"

namespace ward::policy {

std::string Diagnostic::format() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += severity == Severity::kError ? ": error: " : ": warning: ";
  if (!key_path.empty()) out += key_path + ": ";
  out += message;
  return out;
}

std::string LoadResult::first_error() const {
  for (const Diagnostic& d : diagnostics) {
    if (d.severity == Diagnostic::Severity::kError) return d.format();
  }
  return "";
}

namespace {

using detail::Entry;
using detail::Field;
using detail::Sink;

// A policy is a few kilobytes; refusing anything near this size keeps `-p /dev/zero` and friends
// from eating memory before the parser says no.
constexpr std::size_t kMaxFileSize = 4 << 20;

void read_policy(Sink& sink, const YAML::Node& doc, Policy& p) {
  Field root{doc, "", detail::where_of(doc.Mark())};
  // An empty document's node is marked wherever the parser stopped; point at the start instead.
  if (root.at.line == 0 || doc.IsNull()) root.at = {1, 1};
  if (doc.IsNull()) {
    sink.error(root, "the document is empty: a policy needs at least version: 1");
    return;
  }
  if (!doc.IsMap()) {
    sink.error(root,
               fmt::format("expected a policy (a mapping that starts with version: 1), got {}",
                           detail::describe(doc)));
    return;
  }
  auto entries = detail::read_map(sink, root, "the policy",
                                  {"version", "filesystem_policy", "landlock", "process",
                                   "network_policies", "resources", "environment"},
                                  {"network_middlewares"});
  if (!entries) return;
  if (const Entry* e = detail::find(*entries, "version")) {
    std::optional<std::uint64_t> v;
    if (e->value.node.IsScalar()) v = detail::parse_decimal(e->value.node.Scalar());
    if (v != 1u) {
      sink.error(
          e->value,
          fmt::format("version must be 1 (the only version of the OpenShell policy format), got {}",
                      detail::describe(e->value.node)));
    }
  } else {
    sink.error(Field{doc, "version", root.at}, "missing version: a policy starts with version: 1");
  }
  if (const Entry* e = detail::find(*entries, "network_middlewares")) {
    // Refused rather than ignored: a file that asks for a content guard must not run without one.
    sink.error(Field{e->value.node, e->value.path, e->key_at},
               "network_middlewares (OpenShell middleware plug-ins) is not supported by ward; "
               "remove the section");
  }
  if (const Entry* e = detail::find(*entries, "filesystem_policy"))
    detail::read_filesystem(sink, e->value, p.filesystem);
  if (const Entry* e = detail::find(*entries, "landlock"))
    detail::read_landlock(sink, e->value, p.landlock);
  if (const Entry* e = detail::find(*entries, "process"))
    detail::read_process(sink, e->value, p.process);
  if (const Entry* e = detail::find(*entries, "network_policies"))
    detail::read_network(sink, e->value, p.network);
  if (const Entry* e = detail::find(*entries, "resources"))
    detail::read_resources(sink, e->value, p.resources);
  if (const Entry* e = detail::find(*entries, "environment"))
    detail::read_environment(sink, e->value, p.environment);
}

LoadResult finish(Sink& sink, Policy policy) {
  LoadResult result;
  if (!sink.has_error()) result.policy = std::move(policy);
  result.diagnostics = sink.take();
  return result;
}

}  // namespace

LoadResult load_string(std::string_view text, std::string_view file) {
  Sink sink{std::string(file)};
  Policy policy;
  try {
    std::optional<YAML::Node> doc = detail::parse_document(sink, std::string(text));
    if (!doc) return finish(sink, {});
    read_policy(sink, *doc, policy);
  } catch (const std::bad_alloc&) {
    sink.add(Diagnostic::Severity::kError, {}, "", "out of memory while reading the policy");
  } catch (const std::exception& e) {
    // The readers do not throw by design; this keeps a yaml-cpp surprise a diagnostic, not a crash.
    sink.add(Diagnostic::Severity::kError, {}, "",
             fmt::format("internal error while reading the policy: {}", e.what()));
  } catch (...) {
    sink.add(Diagnostic::Severity::kError, {}, "", "internal error while reading the policy");
  }
  return finish(sink, std::move(policy));
}

LoadResult load_file(const std::string& path) {
  auto unreadable = [&](std::string message) {
    LoadResult r;
    r.diagnostics.push_back(
        Diagnostic{Diagnostic::Severity::kError, path, 0, 0, "", std::move(message)});
    return r;
  };
  auto text = detail::read_config_file(path, "policy file", kMaxFileSize);
  if (!text) {
    std::string message = text.error().describe();
    if (text.error().err == 0) message += "; a policy is a few kilobytes";
    return unreadable(std::move(message));
  }
  return load_string(*text, path);
}

std::string changed_static_section(const Policy& running, const Policy& update) {
  if (!(running.filesystem == update.filesystem)) return "filesystem_policy";
  if (running.landlock != update.landlock) return "landlock";
  if (!(running.process == update.process)) return "process";
  if (!(running.resources == update.resources)) return "resources";
  if (!(running.environment == update.environment)) return "environment";
  return "";
}

}  // namespace ward::policy
