// What this kernel and host offer ward, and what ward does without each piece.
#pragma once

#include <string>
#include <vector>

namespace ward::sandbox {

struct Finding {
  std::string name;  // "user namespaces", "landlock", ...
  bool ok = false;
  std::string detail;   // what was found
  std::string without;  // what ward does when it is missing ("" when ok)
};

std::vector<Finding> doctor();

}  // namespace ward::sandbox
