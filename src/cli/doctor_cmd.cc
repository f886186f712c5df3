// `ward doctor [-o json|yaml]`: what this kernel offers ward.
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/gateway_client.h"
#include "sandbox/doctor.h"

namespace ward::cli {

Action add_doctor(CLI::App& app) {
  auto format = std::make_shared<std::string>("text");
  CLI::App* doctor = app.add_subcommand("doctor", "Check what this kernel and host offer ward");
  doctor->add_option("-o,--output", *format, "text, json or yaml")
      ->check(CLI::IsMember({"text", "json", "yaml"}))
      ->capture_default_str();
  return [format]() {
    auto findings = sandbox::doctor();
    bool runnable = true;
    for (auto& f : findings) {
      if (!f.ok && (f.name == "namespaces" || f.name == "seccomp")) runnable = false;
      // No /proc/sys/kernel/yama: the sysctl the advice names does not exist here. Yama is
      // either not built into this kernel or not among the security modules it started.
      if (f.name == "yama" && !f.ok && ::access("/proc/sys/kernel/yama", F_OK) != 0)
        f.without =
            "processes of one sandbox can read each other's memory through /proc/PID/mem "
            "(ptrace and process_vm_readv stay denied); Yama is not active in this kernel, so "
            "kernel.yama.ptrace_scope cannot be set: boot a kernel with it (CONFIG_SECURITY_YAMA, "
            "and yama in the lsm= boot parameter), or run agents that must not read each "
            "other's memory in sandboxes of their own";
    }
    if (*format != "text") {
      Json out = {{"can_run_sandboxes", runnable}, {"checks", Json::array()}};
      for (const auto& f : findings)
        out["checks"].push_back(
            {{"name", f.name}, {"ok", f.ok}, {"detail", f.detail}, {"without", f.without}});
      if (*format == "json")
        std::printf("%s\n", out.dump(2).c_str());
      else
        std::fputs(to_yaml(out).c_str(), stdout);
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
