// `ward __sandbox DIR`: the process that owns one long-lived sandbox (see supervisor.cc).
#pragma once

#include <string>

namespace ward::gateway {

// DIR holds spec.json (read), state.json and control.sock (written). fd 3, when open, is the
// gateway that started it. Returns the process's exit code once the sandbox is gone.
int supervisor_main(const std::string& dir);

}  // namespace ward::gateway
