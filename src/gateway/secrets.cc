#include "gateway/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

#include "base/fd.h"
#include "base/files.h"

namespace ward::gateway {
namespace {

using nlohmann::json;

constexpr size_t kMaxFileSize = 16 << 20;

// The file's owner and mode, checked on the open descriptor (no window for a swap).
Result<void> check_private(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno("cannot stat " + path);
  if (!S_ISREG(st.st_mode)) return fail(path + " is not a regular file");
  if (st.st_uid != ::geteuid()) {
    return fail(path + " is owned by uid " + std::to_string(st.st_uid) + ", not by ward's uid " +
                std::to_string(::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(path + " has mode " + mode + ", which lets the group or others read secrets (" +
                "chmod 600 it)");
  }
  return {};
}

// Messages name the file and, at most, provider and variable names: never a value, and never
// the parser's own message (which quotes the text it stopped at).
Result<std::map<std::string, SecretStore::Values>> parse(const std::string& text,
                                                         const std::string& path) {
  auto bad = [&](const std::string& why) { return fail(path + " is not a secrets file: " + why); };
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return bad("not valid JSON");
  if (!doc.is_object()) return bad("not a JSON object");
  std::map<std::string, SecretStore::Values> out;
  for (const auto& [key, providers] : doc.items()) {
    if (key != "providers") return bad("unknown key \"" + key + "\"");
    if (!providers.is_object()) return bad("\"providers\" is not an object");
    for (const auto& [name, values] : providers.items()) {
      if (!values.is_object()) return bad("provider \"" + name + "\" is not an object");
      SecretStore::Values& vars = out[name];
      for (const auto& [var, value] : values.items()) {
        if (!value.is_string()) return bad("the value of " + name + "/" + var + " is not a string");
        vars.emplace(var, value.get<std::string>());
      }
    }
  }
  return out;
}

}  // namespace

Result<SecretStore> SecretStore::open(std::string path) {
  if (path.empty() || path.back() == '/') return fail("bad secrets file path \"" + path + "\"");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  if (!fd && errno == ENOENT) return SecretStore(std::move(path), {});
  if (!fd && errno == ELOOP) return fail(path + " is a symbolic link; refusing it for secrets");
  if (!fd) return fail_errno("cannot open " + path);
  if (auto r = check_private(fd.get(), path); !r) return tl::unexpected(r.error());
  auto text = files::read_all(fd.get(), path);
  if (!text) return tl::unexpected(text.error());
  if (text->size() > kMaxFileSize) return fail(path + " is larger than 16 MiB");
  auto providers = parse(*text, path);
  if (!providers) return tl::unexpected(providers.error());
  return SecretStore(std::move(path), std::move(*providers));
}

Result<void> SecretStore::put(const std::string& provider, Values values) {
  if (provider.empty()) return fail("empty provider name");
  Providers next = providers_;
  next[provider] = std::move(values);
  if (auto r = save(next); !r) return r;
  providers_ = std::move(next);
  return {};
}

std::optional<SecretStore::Values> SecretStore::get(const std::string& provider) const {
  auto it = providers_.find(provider);
  if (it == providers_.end()) return std::nullopt;
  return it->second;
}

Result<void> SecretStore::erase(const std::string& provider) {
  if (!providers_.contains(provider)) return {};
  Providers next = providers_;
  next.erase(provider);
  if (auto r = save(next); !r) return r;
  providers_ = std::move(next);
  return {};
}

Result<void> SecretStore::save(const Providers& providers) const {
  json doc = {{"providers", json::object()}};
  for (const auto& [name, values] : providers) doc["providers"][name] = values;
  std::string text;
  try {
    text = doc.dump(2) + "\n";
  } catch (const json::exception&) {
    // The exception's message quotes the offending byte, perhaps a secret's: not passed on.
    return fail("a provider name, variable name or value is not valid UTF-8");
  }

  size_t slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  // Written to a temporary file made 0600 from the start, synced, renamed over the store. One
  // gateway (it holds the state directory's lock) writes it.
  return files::replace(dir, base, text, 0600);
}

}  // namespace ward::gateway
