#include "gateway/spec.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "policy/reader.h"

namespace ward::gateway {
namespace {

using nlohmann::json;

Result<json> read_json(const std::string& path) {
  auto text = policy::detail::read_config_file(path, "state file", 1 << 20);
  if (!text) return fail(path + ": " + text.error().describe());
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail(path + ": not a JSON object");
  return j;
}

}  // namespace

Result<void> write_file_atomic(const std::string& path, const std::string& data, int mode) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return fail(path + ": not a path in a directory");
  return files::replace(path.substr(0, slash), path.substr(slash + 1), data,
                        static_cast<mode_t>(mode));
}

Result<void> write_spec(const std::string& path, const SandboxSpec& s) {
  json j = {{"id", s.id},
            {"name", s.name},
            {"policy_file", s.policy_file},
            {"workdir", s.workdir},
            {"command", s.command},
            {"env", s.env},
            {"trust_layer", s.trust_layer},
            {"hidden", s.hidden},
            {"secret_env", s.secret_env},
            {"inference", s.inference},
            {"max_lifetime_ms", s.max_lifetime_ms},
            {"grace_ms", s.grace_ms},
            {"egress_port", s.egress_port}};
  std::string text;
  try {
    text = j.dump(2);
  } catch (const json::type_error&) {
    return fail(path + ": a path, command or variable of the sandbox is not valid UTF-8");
  }
  return write_file_atomic(path, text + "\n", 0600);
}

Result<SandboxSpec> read_spec(const std::string& path) {
  auto j = read_json(path);
  if (!j) return tl::unexpected(j.error());
  try {
    SandboxSpec s;
    s.id = j->at("id").get<std::string>();
    s.name = j->at("name").get<std::string>();
    s.policy_file = j->at("policy_file").get<std::string>();
    s.workdir = j->at("workdir").get<std::string>();
    s.command = j->at("command").get<std::vector<std::string>>();
    s.env = j->at("env").get<std::vector<std::string>>();
    s.trust_layer = j->at("trust_layer").get<std::string>();
    s.hidden = j->at("hidden").get<std::vector<std::string>>();
    s.secret_env = j->at("secret_env").get<std::vector<std::pair<std::string, std::string>>>();
    s.inference = j->at("inference").get<bool>();
    s.max_lifetime_ms = j->at("max_lifetime_ms").get<std::int64_t>();
    s.grace_ms = j->at("grace_ms").get<std::int64_t>();
    s.egress_port = j->at("egress_port").get<std::uint16_t>();
    return s;
  } catch (const json::exception& e) {
    return fail(path + ": " + e.what());
  }
}

Result<void> write_state(const std::string& path, const SandboxState& s) {
  json j = {{"status", s.status},
            {"reason", s.reason},
            {"supervisor_pid", s.supervisor_pid},
            {"init_pid", s.init_pid},
            {"main", nullptr}};
  if (s.main) j["main"] = {{"code", s.main->code}, {"signal", s.main->signal}, {"at", s.main->at}};
  return write_file_atomic(path, j.dump() + "\n", 0600);
}

Result<SandboxState> read_state(const std::string& path) {
  auto j = read_json(path);
  if (!j) return tl::unexpected(j.error());
  try {
    SandboxState s;
    s.status = j->at("status").get<std::string>();
    s.reason = j->value("reason", "");
    s.supervisor_pid = j->value("supervisor_pid", 0);
    s.init_pid = j->value("init_pid", 0);
    if (j->contains("main") && (*j)["main"].is_object()) {
      const json& m = (*j)["main"];
      s.main = MainExit{m.value("code", 0), m.value("signal", 0), m.value("at", std::int64_t{0})};
    }
    return s;
  } catch (const json::exception& e) {
    return fail(path + ": " + e.what());
  }
}

}  // namespace ward::gateway
