#include "mcp/tools.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <sstream>

#include "creds/scan.h"
#include "policy/policy.h"

namespace ward::mcp {
namespace {

using json = nlohmann::json;

using creds::detail::base64_decode;
using creds::detail::base64_encode;

// Arguments: a string member, or the default; nullopt when present with another type.
std::optional<std::string> string_arg(const json& args, const char* key, std::string fallback) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_string()) return std::nullopt;
  return args[key].get<std::string>();
}

json error_result(const std::string& text) {
  return text_result(text, true);
}

// A path as the agent wrote it, made absolute against the workspace.
std::string absolute(const SandboxRef& sandbox, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  std::string rel = path;
  while (rel.starts_with("./")) rel.erase(0, 2);
  if (rel.empty() || rel == ".") return sandbox.workdir;
  return sandbox.workdir + "/" + rel;
}

std::string basename_of(std::string word) {
  if (auto slash = word.rfind('/'); slash != std::string::npos) word.erase(0, slash + 1);
  return word;
}

// The first word of each pipeline segment that decides the status: the first and the last.
bool exit_one_is_an_answer(const std::string& command) {
  static const std::array<const char*, 9> kTools = {"grep", "egrep", "fgrep", "rg", "find",
                                                    "diff", "test",  "[",     "cmp"};
  auto first_word = [](std::string_view s) {
    std::istringstream in{std::string(s)};
    std::string word;
    while (in >> word && word.find('=') != std::string::npos && word[0] != '=') {
    }
    return basename_of(word);
  };
  auto listed = [&](const std::string& w) {
    return std::any_of(kTools.begin(), kTools.end(), [&](const char* t) { return w == t; });
  };
  const auto bar = command.rfind('|');
  return listed(first_word(command)) ||
         (bar != std::string::npos && listed(first_word(command.substr(bar + 1))));
}

struct Runner {
  Sandboxes& sandboxes;
  const ToolLimits& limits;
  const ToolCall& call;

  // Runs a command in the sandbox, starting the sandbox again if it stopped while idle.
  Result<ExecResult> run(ExecRequest request, SandboxRef& sandbox) {
    auto started = std::chrono::steady_clock::now();
    auto next_progress = started + limits.progress_every;
    request.tick = [&] {
      if (call.cancelled && call.cancelled()) return false;
      const auto now = std::chrono::steady_clock::now();
      if (call.progress && now >= next_progress) {
        next_progress = now + limits.progress_every;
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
        call.progress(static_cast<double>(s), "running for " + std::to_string(s) + " s");
      }
      return true;
    };
    auto result = sandboxes.exec(sandbox, request);
    if (!result && result.error().err == ESRCH) {
      auto again = call.sandbox(true);
      if (!again) return tl::unexpected(again.error());
      sandbox = *again;
      result = sandboxes.exec(sandbox, request);
    }
    return result;
  }

  // A helper command's outcome: a failure (cancelled, or its stderr's message, else `otherwise`)
  // unless it exited 0.
  static Result<ExecResult> finished(Result<ExecResult> done, const std::string& otherwise) {
    if (!done) return done;
    if (done->cancelled) return fail("cancelled");
    if (done->code == 0) return done;
    std::string why = done->err.head();
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return fail(why.empty() ? otherwise : why);
  }

  // A file's bytes, read inside the sandbox (so its policy applies); a directory gives its
  // listing (two levels deep) with `directory` set.
  struct Read {
    std::string bytes;
    bool directory = false;
  };
  Result<Read> read(SandboxRef& sandbox, const std::string& path) {
    static const char* kScript =
        "p=$1\n"
        "if [ -d \"$p\" ]; then echo D; find \"$p\" -maxdepth 2 -not -path '*/.*' 2>/dev/null "
        "| sort | head -n 2001\n"
        "elif [ -f \"$p\" ]; then echo F; exec base64 -w0 -- \"$p\"\n"
        "elif [ -e \"$p\" ]; then echo \"$p is not a regular file or a directory\" >&2; exit 3\n"
        "else echo \"$p: no such file or directory\" >&2; exit 2; fi\n";
    ExecRequest r;
    r.argv = {"sh", "-c", kScript, "view", path};
    r.separate_stderr = true;
    r.head = limits.max_file / 3 * 4 + 16;
    r.timeout = std::chrono::seconds(60);
    auto done = finished(run(std::move(r), sandbox), "cannot read " + path);
    if (!done) return tl::unexpected(done.error());
    if (done->out.truncated())
      return fail(path + " is larger than " + std::to_string(limits.max_file >> 20) +
                  " MiB; read parts of it with bash_tool");
    const std::string& out = done->out.head();
    Read read;
    read.directory = out.starts_with("D\n");
    if (read.directory) {
      read.bytes = out.substr(2);
      return read;
    }
    auto bytes = base64_decode(std::string_view(out).substr(std::min<std::size_t>(2, out.size())));
    if (!bytes) return fail("cannot read " + path);
    read.bytes = std::move(*bytes);
    return read;
  }

  Result<void> write(SandboxRef& sandbox, const std::string& path, std::string_view content,
                     bool make_parents) {
    static const char* kScript =
        "if [ \"$2\" = 1 ]; then mkdir -p -- \"$(dirname -- \"$1\")\" || exit 1; fi\n"
        "base64 -d > \"$1\"\n";
    ExecRequest r;
    r.argv = {"sh", "-c", kScript, "write", path, make_parents ? "1" : "0"};
    r.stdin_data = base64_encode(content);
    r.separate_stderr = true;
    r.head = 64 * 1024;
    r.timeout = std::chrono::seconds(60);
    auto done = finished(run(std::move(r), sandbox), "cannot write " + path);
    if (!done) return tl::unexpected(done.error());
    return {};
  }
};

const char* image_type(std::string_view bytes) {
  if (bytes.starts_with("\x89PNG\r\n\x1a\n")) return "image/png";
  if (bytes.starts_with("\xff\xd8\xff")) return "image/jpeg";
  if (bytes.starts_with("GIF87a") || bytes.starts_with("GIF89a")) return "image/gif";
  if (bytes.size() > 12 && bytes.starts_with("RIFF") && bytes.substr(8, 4) == "WEBP")
    return "image/webp";
  return nullptr;
}

// ---- the tools ----

json bash_tool(Runner& runner, const json& args) {
  auto command = string_arg(args, "command", "");
  if (!command || command->empty()) return error_result("command is a non-empty string");
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  ExecRequest r;
  r.argv = {"bash", "-c", *command};
  r.timeout = runner.limits.command_timeout;
  r.head = runner.limits.max_output / 2;
  r.tail = runner.limits.max_output / 2;
  auto done = runner.run(std::move(r), *sandbox);
  if (!done) return error_result("the command could not run: " + done.error().describe());
  if (done->cancelled) return error_result("[Cancelled]");
  std::string text;
  const Capture& out = done->out;
  if (out.truncated()) {
    text = out.head() + "\n\n[... " +
           std::to_string(out.total() - out.head().size() - out.tail().size()) +
           " characters truncated ...]\n\n" + out.tail();
  } else {
    text = out.head() + out.tail();
  }
  text = valid_utf8(text);
  if (done->timed_out) {
    text += (text.empty() ? "" : "\n") + std::string("[Timed out after ") +
            std::to_string(runner.limits.command_timeout.count()) + " s]";
    return error_result(text);
  }
  const bool answer = done->code == 1 && exit_one_is_an_answer(*command);
  if (done->code != 0)
    text +=
        (text.empty() ? "" : "\n") + std::string("[Exit code: ") + std::to_string(done->code) + "]";
  if (text.empty()) text = "[No output]";
  return text_result(text, done->code != 0 && !answer);
}

json create_file(Runner& runner, const json& args) {
  auto path = string_arg(args, "path", "");
  auto content = string_arg(args, "file_text", "");
  if (!path || path->empty()) return error_result("path is a non-empty string");
  if (!content) return error_result("file_text is a string");
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  const std::string where = absolute(*sandbox, *path);
  if (auto w = runner.write(*sandbox, where, *content, true); !w)
    return error_result("create_file " + where + ": " + w.error().describe());
  return text_result("File created successfully at: " + where, false);
}

json str_replace(Runner& runner, const json& args) {
  auto path = string_arg(args, "path", "");
  auto old_str = string_arg(args, "old_str", "");
  auto new_str = string_arg(args, "new_str", "");
  if (!path || path->empty()) return error_result("path is a non-empty string");
  if (!old_str || !new_str) return error_result("old_str and new_str are strings");
  if (old_str->empty()) return error_result("old_str is empty; it must be text in the file");
  if (*old_str == *new_str)
    return error_result("old_str and new_str are identical: nothing to replace");
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  const std::string where = absolute(*sandbox, *path);
  auto read = runner.read(*sandbox, where);
  if (!read) return error_result("str_replace " + where + ": " + read.error().describe());
  if (read->directory) return error_result(where + " is a directory");
  std::string& text = read->bytes;
  std::size_t count = 0, at = 0, first = std::string::npos;
  for (std::size_t p; (p = text.find(*old_str, at)) != std::string::npos; at = p + 1) {
    if (first == std::string::npos) first = p;
    ++count;
  }
  if (count == 0) return error_result("old_str was not found in " + where);
  if (count > 1)
    return error_result("old_str was found " + std::to_string(count) + " times in " + where +
                        "; it must occur exactly once (add surrounding lines to make it unique)");
  text.replace(first, old_str->size(), *new_str);
  if (auto w = runner.write(*sandbox, where, text, false); !w)
    return error_result("str_replace " + where + ": " + w.error().describe());
  const auto line = std::count(text.begin(), text.begin() + static_cast<long>(first), '\n') + 1;
  return text_result("The file " + where + " has been edited: one occurrence replaced at line " +
                         std::to_string(line) + ".",
                     false);
}

json view(Runner& runner, const json& args) {
  auto path = string_arg(args, "path", "");
  if (!path || path->empty()) return error_result("path is a non-empty string");
  std::optional<std::pair<long, long>> range;
  if (args.contains("view_range") && !args["view_range"].is_null()) {
    const json& v = args["view_range"];
    if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer())
      return error_result("view_range is [start, end]: line numbers from 1, end -1 for the end");
    range = std::make_pair(v[0].get<long>(), v[1].get<long>());
    if (range->first < 1 || (range->second != -1 && range->second < range->first))
      return error_result("view_range is [start, end]: line numbers from 1, end -1 for the end");
  }
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  const std::string where = absolute(*sandbox, *path);
  auto read = runner.read(*sandbox, where);
  if (!read) return error_result("view " + where + ": " + read.error().describe());
  if (read->directory) {
    std::string listing = valid_utf8(read->bytes);
    return text_result(shorten("Files and directories up to 2 levels deep in " + where +
                                   ", hidden items excluded:\n" + listing,
                               runner.limits.max_output),
                       false);
  }
  const std::string& bytes = read->bytes;
  if (const char* mime = image_type(bytes)) {
    const std::string what =
        "Image " + where + " (" + mime + ", " + std::to_string(bytes.size()) + " bytes)";
    json result = text_result(what, false);
    result["content"].push_back(
        {{"type", "image"}, {"data", base64_encode(bytes)}, {"mimeType", mime}});
    return result;
  }
  if (bytes.substr(0, 8192).find('\0') != std::string::npos)
    return text_result(
        where + " is a binary file (" + std::to_string(bytes.size()) + " bytes); not shown", false);
  std::string out;
  long number = 0, shown = 0;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t nl = bytes.find('\n', start);
    if (nl == std::string::npos) nl = bytes.size();
    ++number;
    if (!range || (number >= range->first && (range->second == -1 || number <= range->second))) {
      char prefix[32];
      std::snprintf(prefix, sizeof prefix, "%6ld\t", number);
      out += prefix;
      out.append(bytes, start, nl - start);
      out += '\n';
      ++shown;
    }
    start = nl + 1;
  }
  if (range && range->first > number)
    return error_result("view_range starts at line " + std::to_string(range->first) + " but " +
                        where + " has " + std::to_string(number) + " lines");
  if (number == 0) return text_result(where + " is empty", false);
  return text_result(shorten(valid_utf8(out), runner.limits.max_output), false);
}

json sub_agent(Runner& runner, const json& args) {
  auto task = string_arg(args, "task", "");
  auto model = string_arg(args, "model", "");
  auto resume = string_arg(args, "resume_session_id", "");
  auto workdir = string_arg(args, "working_directory", "");
  if (!task || task->empty()) return error_result("task is a non-empty string");
  if (!model || !resume || !workdir)
    return error_result(
        "model, working_directory and "
        "resume_session_id are strings");
  long turns = 0;
  if (args.contains("max_turns") && !args["max_turns"].is_null()) {
    if (!args["max_turns"].is_number_integer() || args["max_turns"].get<long>() < 0)
      return error_result("max_turns is a whole number >= 0");
    turns = args["max_turns"].get<long>();
  }
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  // The first agent CLI found runs the task; each takes the model its own way.
  static const char* kScript =
      "task=$1 model=$2 turns=$3 resume=$4\n"
      "if command -v claude >/dev/null 2>&1; then\n"
      "  set -- claude -p \"$task\" --output-format text\n"
      "  [ -n \"$model\" ] && set -- \"$@\" --model \"$model\"\n"
      "  [ \"$turns\" -gt 0 ] && set -- \"$@\" --max-turns \"$turns\"\n"
      "  [ -n \"$resume\" ] && set -- \"$@\" --resume \"$resume\"\n"
      "elif command -v codex >/dev/null 2>&1; then\n"
      "  set -- codex exec --skip-git-repo-check\n"
      "  [ -n \"$model\" ] && set -- \"$@\" -m \"$model\"\n"
      "  set -- \"$@\" \"$task\"\n"
      "elif command -v opencode >/dev/null 2>&1; then\n"
      "  set -- opencode run\n"
      "  [ -n \"$model\" ] && set -- \"$@\" -m \"$model\"\n"
      "  set -- \"$@\" \"$task\"\n"
      "else\n"
      "  echo 'sub_agent: no agent CLI (claude, codex or opencode) is installed in this "
      "sandbox' >&2; exit 127\n"
      "fi\n"
      "exec \"$@\"\n";
  ExecRequest r;
  r.argv = {"sh", "-c", kScript, "sub_agent", *task, *model, std::to_string(turns), *resume};
  // OCU's default directory is its container's home; here the workspace is the home.
  if (!workdir->empty() && *workdir != "/home/assistant") r.workdir = absolute(*sandbox, *workdir);
  r.timeout = runner.limits.agent_timeout;
  r.head = runner.limits.max_output / 2;
  r.tail = runner.limits.max_output / 2;
  auto done = runner.run(std::move(r), *sandbox);
  if (!done) return error_result("sub_agent could not run: " + done.error().describe());
  if (done->cancelled) return error_result("[Cancelled]");
  const Capture& out = done->out;
  std::string text =
      valid_utf8(out.truncated() ? shorten(out.head() + "\n" + out.tail(), runner.limits.max_output)
                                 : out.head() + out.tail());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (done->timed_out)
    return error_result(text + "\n[Timed out after " +
                        std::to_string(runner.limits.agent_timeout.count()) + " s]");
  if (done->code != 0)
    return error_result((text.empty() ? "" : text + "\n") +
                        "[Exit code: " + std::to_string(done->code) + "]");
  return text_result(text.empty() ? "[No output]" : text, false);
}

std::string join(const std::vector<std::string>& items, const char* none) {
  if (items.empty()) return none;
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

json sandbox_info(Runner& runner, const json&) {
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  auto about = runner.sandboxes.describe(*sandbox);
  auto text = runner.sandboxes.policy(*sandbox);
  if (!about || !text) return error_result("cannot read the sandbox's policy");
  auto loaded = policy::load_string(*text, "policy");
  if (!loaded.ok())
    return error_result("the sandbox's policy cannot be read: " + loaded.first_error());
  const policy::Policy& p = *loaded.policy;
  std::ostringstream s;
  s << "Sandbox " << sandbox->name << " (" << about->value("status", "") << ").\n"
    << "Workspace (read-write, the working directory; relative paths resolve here, and "
       "upload_file/download_file move files in and out of it): "
    << sandbox->workdir << "\n"
    << "Writable: " << join(p.filesystem.read_write, "nothing else") << "\n"
    << "Read-only: " << join(p.filesystem.read_only, "nothing") << "\n"
    << "Everything else on the host is invisible.\n";
  if (p.network.empty()) {
    s << "Network: none. Every connection fails (no route); only the proxy at "
         "127.0.0.1:3128 leads out and it allows nothing.\n";
  } else {
    s << "Network: only through the proxy (HTTP_PROXY/HTTPS_PROXY are set), to:\n";
    for (const auto& rule : p.network) {
      for (const auto& e : rule.endpoints) {
        std::string ports;
        for (auto port : e.ports) ports += (ports.empty() ? "" : ",") + std::to_string(port);
        s << "  - " << e.host << (ports.empty() ? "" : ":" + ports);
        if (e.access)
          s << (*e.access == policy::Access::kReadOnly    ? " (HTTP reads only)"
                : *e.access == policy::Access::kReadWrite ? " (HTTP reads and writes)"
                                                          : " (any HTTP method)");
        if (!e.rules.empty()) s << " (" << e.rules.size() << " HTTP rules)";
        s << "  [rule " << rule.key;
        if (!rule.binaries.empty() && rule.binaries != std::vector<std::string>{"/**"})
          s << "; only " << join(rule.binaries, "");
        s << "]\n";
      }
    }
    s << "Anything else is refused with 403 policy_denied; private and metadata addresses "
         "always are.\n";
  }
  s << "Limits: ";
  if (p.resources.memory_bytes) s << "memory " << (*p.resources.memory_bytes >> 20) << " MiB, ";
  if (p.resources.pids) s << "processes " << *p.resources.pids << ", ";
  if (p.resources.cpus) s << "CPUs " << *p.resources.cpus << ", ";
  s << "bash_tool commands end after " << runner.limits.command_timeout.count() << " s";
  if (auto ttl = about->value("idle_ttl_s", 0); ttl > 0)
    s << "; the sandbox stops after " << ttl << " s without a command (files stay)";
  s << ".\nThe user can see the audit record of every network attempt.";
  return text_result(s.str(), false);
}

// The workspace-relative form of a path for the gateway's files API; nullopt when it is outside.
std::optional<std::string> in_workspace(const SandboxRef& sandbox, const std::string& path) {
  if (path.empty() || path[0] != '/') return path;
  if (path == sandbox.workdir) return std::string(".");
  if (path.starts_with(sandbox.workdir + "/")) return path.substr(sandbox.workdir.size() + 1);
  return std::nullopt;
}

json upload_file(Runner& runner, const json& args) {
  auto path = string_arg(args, "path", "");
  auto content = string_arg(args, "content_base64", "");
  if (!path || path->empty()) return error_result("path is a non-empty string");
  if (!content) return error_result("content_base64 is a string");
  std::string compact = *content;  // base64 as some clients wrap it, in lines
  std::erase_if(compact, [](char c) { return c == '\n' || c == '\r' || c == ' '; });
  auto bytes = base64_decode(compact);
  if (!bytes) return error_result("content_base64 is not base64");
  if (bytes->size() > runner.limits.max_file)
    return error_result("the file is larger than " + std::to_string(runner.limits.max_file >> 20) +
                        " MiB");
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  auto rel = in_workspace(*sandbox, *path);
  if (!rel) return error_result(*path + " is outside the workspace " + sandbox->workdir);
  const std::size_t size = bytes->size();
  if (auto r = runner.sandboxes.upload(*sandbox, *rel, std::move(*bytes)); !r)
    return error_result("upload_file " + *path + ": " + r.error().describe());
  return text_result("Uploaded " + std::to_string(size) + " bytes to " + absolute(*sandbox, *rel),
                     false);
}

json download_file(Runner& runner, const json& args) {
  auto path = string_arg(args, "path", "");
  if (!path || path->empty()) return error_result("path is a non-empty string");
  auto sandbox = runner.call.sandbox(false);
  if (!sandbox) return error_result("no sandbox: " + sandbox.error().describe());
  auto rel = in_workspace(*sandbox, *path);
  if (!rel) return error_result(*path + " is outside the workspace " + sandbox->workdir);
  auto bytes = runner.sandboxes.download(*sandbox, *rel);
  if (!bytes) return error_result("download_file " + *path + ": " + bytes.error().describe());
  if (bytes->size() > runner.limits.max_file)
    return error_result("the file is larger than " + std::to_string(runner.limits.max_file >> 20) +
                        " MiB");
  const std::string where = absolute(*sandbox, *rel);
  const char* mime = image_type(*bytes);
  json result = text_result(where + " (" + std::to_string(bytes->size()) + " bytes)", false);
  result["content"].push_back({{"type", "resource"},
                               {"resource",
                                {{"uri", "file://" + where},
                                 {"mimeType", mime ? mime : "application/octet-stream"},
                                 {"blob", base64_encode(*bytes)}}}});
  return result;
}

json schema(std::initializer_list<std::pair<const char*, json>> properties,
            std::initializer_list<const char*> required) {
  json s = {{"type", "object"}, {"properties", json::object()}};
  for (const auto& [name, p] : properties) s["properties"][name] = p;
  s["required"] = json::array();
  for (const char* r : required) s["required"].push_back(r);
  return s;
}

json str(const char* title) {
  return {{"type", "string"}, {"title", title}};
}

}  // namespace

std::string valid_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
    bool ok = len > 0 && i + len <= in.size();
    for (std::size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(in[i + k]) & 0xc0) == 0x80;
    if (ok && len > 1) {  // no overlong forms, surrogates or values past U+10FFFF
      const unsigned char d = static_cast<unsigned char>(in[i + 1]);
      ok = !(len == 2 && c < 0xc2) && !(len == 3 && c == 0xe0 && d < 0xa0) &&
           !(len == 3 && c == 0xed && d >= 0xa0) && !(len == 4 && c == 0xf0 && d < 0x90) &&
           !(len == 4 && (c > 0xf4 || (c == 0xf4 && d >= 0x90)));
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

std::string shorten(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  const std::size_t half = max / 2;
  // Cut on character boundaries.
  std::size_t head = half, tail = text.size() - half;
  while (head > 0 && (static_cast<unsigned char>(text[head]) & 0xc0) == 0x80) --head;
  while (tail < text.size() && (static_cast<unsigned char>(text[tail]) & 0xc0) == 0x80) ++tail;
  return std::string(text.substr(0, head)) + "\n\n[... " + std::to_string(tail - head) +
         " characters truncated ...]\n\n" + std::string(text.substr(tail));
}

json text_result(const std::string& text, bool is_error) {
  const std::string clean = valid_utf8(text);
  return {{"content", json::array({{{"type", "text"}, {"text", clean}}})},
          {"structuredContent", {{"result", clean}}},
          {"isError", is_error}};
}

json tool_list() {
  const json output = {{"type", "object"},
                       {"properties", {{"result", {{"type", "string"}, {"title", "Result"}}}}},
                       {"required", {"result"}}};
  auto tool = [&](const char* name, const char* title, const char* description, json input,
                  bool read_only) {
    return json{{"name", name},
                {"title", title},
                {"description", description},
                {"inputSchema", std::move(input)},
                {"outputSchema", output},
                {"annotations", {{"readOnlyHint", read_only}, {"openWorldHint", false}}}};
  };
  json view_range = {{"anyOf", json::array({{{"type", "array"}, {"items", {{"type", "integer"}}}},
                                            {{"type", "null"}}})},
                     {"default", nullptr},
                     {"title", "View Range"}};
  return json::array({
      tool("bash_tool", "Run a shell command",
           "Runs a bash command in this chat's Linux sandbox (its working directory is the "
           "workspace) and returns its output, stdout and stderr together. Commands end after "
           "115 s. Output over 30,000 characters keeps its first and last 15,000. Network access "
           "is limited to what the sandbox's policy allows: call sandbox_info to see it.",
           schema({{"command", str("Command")}, {"description", str("Description")}},
                  {"command", "description"}),
           false),
      tool("str_replace", "Replace text in a file",
           "Replaces old_str with new_str in a file. old_str must occur exactly once; include "
           "enough surrounding lines to make it unique. new_str defaults to \"\" (deletes).",
           schema({{"description", str("Description")},
                   {"old_str", str("Old Str")},
                   {"path", str("Path")},
                   {"new_str", {{"type", "string"}, {"title", "New Str"}, {"default", ""}}}},
                  {"description", "old_str", "path"}),
           false),
      tool("create_file", "Create a file",
           "Creates a file with the given content (parent directories too), or overwrites it. A "
           "relative path is inside the workspace.",
           schema({{"description", str("Description")},
                   {"file_text", str("File Text")},
                   {"path", str("Path")}},
                  {"description", "file_text", "path"}),
           false),
      tool("view", "View a file or directory",
           "Shows a text file with line numbers (view_range [start, end] picks lines, end -1 for "
           "the last), a directory's files two levels deep, or an image (PNG, JPEG, GIF, WebP).",
           schema({{"description", str("Description")},
                   {"path", str("Path")},
                   {"view_range", view_range}},
                  {"description", "path"}),
           true),
      tool("sub_agent", "Run a coding agent",
           "Runs a task with an agent CLI installed in the sandbox (claude, codex or opencode, "
           "the first found) and returns its answer.",
           schema({{"task", str("Task")},
                   {"description", str("Description")},
                   {"model", {{"type", "string"}, {"title", "Model"}, {"default", ""}}},
                   {"max_turns", {{"type", "integer"}, {"title", "Max Turns"}, {"default", 0}}},
                   {"working_directory",
                    {{"type", "string"},
                     {"title", "Working Directory"},
                     {"default", "/home/assistant"}}},
                   {"resume_session_id",
                    {{"type", "string"}, {"title", "Resume Session Id"}, {"default", ""}}}},
                  {"task", "description"}),
           false),
      tool("sandbox_info", "What this sandbox allows",
           "Tells what the sandbox lets you do: the workspace, which paths are readable and "
           "writable, which hosts and ports the network allows, and the limits. Call it before "
           "planning work that needs files outside the workspace or the network.",
           schema({}, {}), true),
      tool("upload_file", "Put a file into the workspace",
           "Writes bytes (base64) to a file in the workspace, making parent directories.",
           schema({{"path", str("Path")}, {"content_base64", str("Content (base64)")}},
                  {"path", "content_base64"}),
           false),
      tool("download_file", "Get a file out of the workspace",
           "Returns a workspace file's bytes as an embedded resource (base64).",
           schema({{"path", str("Path")}}, {"path"}), true),
  });
}

std::optional<json> call_tool(Sandboxes& sandboxes, const ToolLimits& limits,
                              const std::string& name, const json& args, const ToolCall& call) {
  using Tool = json (*)(Runner&, const json&);
  static const std::pair<const char*, Tool> kTools[] = {
      {"bash_tool", bash_tool},     {"str_replace", str_replace},
      {"create_file", create_file}, {"view", view},
      {"sub_agent", sub_agent},     {"sandbox_info", sandbox_info},
      {"upload_file", upload_file}, {"download_file", download_file},
  };
  for (const auto& [tool_name, tool] : kTools) {
    if (name != tool_name) continue;
    if (!args.is_object()) return error_result("arguments must be an object");
    Runner runner{sandboxes, limits, call};
    return tool(runner, args);
  }
  return std::nullopt;
}

}  // namespace ward::mcp
