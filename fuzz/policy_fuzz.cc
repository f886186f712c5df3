// libFuzzer target: the policy loader takes YAML from users and, through the API, from anyone who
// may set a policy. Whatever the bytes, load_string must return diagnostics, never crash, hang or
// throw. Built and run by bench/fuzz-policy.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ward::policy::LoadResult r = ward::policy::load_string(text, "fuzz.yaml");
  // The contract: a policy iff no error, and every diagnostic formats.
  bool has_error = false;
  for (const ward::policy::Diagnostic& d : r.diagnostics) {
    has_error |= d.severity == ward::policy::Diagnostic::Severity::kError;
    if (d.format().empty()) std::abort();
  }
  if (r.ok() == has_error) std::abort();
  if (!r.ok() && r.first_error().empty()) std::abort();
  return 0;
}
