// `ward doctor [-o json]`: what this kernel offers ward.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "sandbox/doctor.h"

namespace ward::cli {

Action add_doctor(CLI::App& app) {
  auto format = std::make_shared<std::string>("text");
  CLI::App* doctor = app.add_subcommand("doctor", "Check what this kernel and host offer ward");
  doctor->add_option("-o,--output", *format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  return [format]() {
    auto findings = sandbox::doctor();
    bool runnable = true;
    for (const auto& f : findings)
      if (!f.ok && (f.name == "namespaces" || f.name == "seccomp")) runnable = false;
    if (*format == "json") {
      nlohmann::json out = {{"can_run_sandboxes", runnable}, {"checks", nlohmann::json::array()}};
      for (const auto& f : findings)
        out["checks"].push_back(
            {{"name", f.name}, {"ok", f.ok}, {"detail", f.detail}, {"without", f.without}});
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      for (const auto& f : findings) {
        std::printf("%-16s %-4s %s\n", f.name.c_str(), f.ok ? "ok" : "no", f.detail.c_str());
        if (!f.without.empty()) std::printf("%-21s -> %s\n", "", f.without.c_str());
      }
      std::printf("\n%s\n", runnable ? "ward can run sandboxes here."
                                     : "ward cannot run sandboxes here (see above).");
    }
    return runnable ? 0 : 1;
  };
}

}  // namespace ward::cli
