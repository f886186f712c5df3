// The seccomp filter every workload gets. Built with libseccomp at build time by
// ward_seccomp_gen (so sandbox start-up pays nothing for it) and embedded in ward; the unit tests
// build it again at run time and check the two are identical.
#pragma once

#include <linux/filter.h>

#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace ward::sandbox::seccomp {

// Builds the program with libseccomp. Only the generator and the tests call this.
Result<std::vector<sock_filter>> build();

// The program compiled into this binary.
std::span<const sock_filter> embedded();

// For `ward doctor` and docs: what the filter denies, one line each.
std::vector<std::string> describe();

}  // namespace ward::sandbox::seccomp
