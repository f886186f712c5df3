// Helpers shared by the policy module's tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "policy/policy.h"

namespace ward::policy::testing {

using Severity = Diagnostic::Severity;

inline LoadResult load(std::string_view yaml) {
  return load_string(yaml, "test.yaml");
}

inline std::string dump(const LoadResult& r) {
  std::string out;
  for (const Diagnostic& d : r.diagnostics) out += "\n  " + d.format();
  return out.empty() ? "\n  (no diagnostics)" : out;
}

inline int count(const LoadResult& r, Severity s) {
  int n = 0;
  for (const Diagnostic& d : r.diagnostics) n += d.severity == s;
  return n;
}

// Passes when one diagnostic has this severity, position and key path, and a message containing
// `needle`; the failure message lists every diagnostic.
inline ::testing::AssertionResult HasDiag(const LoadResult& r, Severity severity, int line,
                                          int column, std::string_view key_path,
                                          std::string_view needle) {
  for (const Diagnostic& d : r.diagnostics) {
    if (d.severity == severity && d.line == line && d.column == column && d.key_path == key_path &&
        d.message.find(needle) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no " << (severity == Severity::kError ? "error" : "warning") << " at " << line << ":"
         << column << " " << key_path << " containing '" << needle << "'; got:" << dump(r);
}

inline ::testing::AssertionResult HasError(const LoadResult& r, int line, int column,
                                           std::string_view key_path, std::string_view needle) {
  if (r.ok()) return ::testing::AssertionFailure() << "loaded, expected an error:" << dump(r);
  return HasDiag(r, Severity::kError, line, column, key_path, needle);
}

inline ::testing::AssertionResult HasWarning(const LoadResult& r, int line, int column,
                                             std::string_view key_path, std::string_view needle) {
  return HasDiag(r, Severity::kWarning, line, column, key_path, needle);
}

// Loads `yaml` and expects success with no diagnostics at all.
inline ::testing::AssertionResult LoadsClean(const LoadResult& r) {
  if (r.ok() && r.diagnostics.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected a clean load; got:" << dump(r);
}

}  // namespace ward::policy::testing
