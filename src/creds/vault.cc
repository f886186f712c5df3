// The vault: real values, their placeholders, the endpoints each provider is bound to, and the
// substitution itself.
#include "creds/vault.h"

#include "policy/l7.h"

#include <fmt/core.h>
#include <string.h>  // explicit_bzero

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <unordered_map>

#include "base/strings.h"
#include "creds/mask.h"
#include "creds/scan.h"
#include "policy/matcher.h"
#include "policy/values.h"

namespace ward::creds {

struct Vault::State {
  struct Variable {
    std::string name;
    std::string value;  // the secret
    std::string placeholder;
    std::vector<std::string> providers;  // ids, in the order given
  };
  struct Binding {
    std::string provider;
    policy::HostPattern host;
    std::vector<std::uint16_t> ports;
    std::string path;  // glob; "" = any
  };

  std::vector<std::string> providers;
  std::vector<Variable> variables;
  std::unordered_map<std::string, std::size_t> by_placeholder;
  std::vector<std::string> environment;
  std::vector<Binding> bindings;
  // ResponseMask::spellings_of() of each real value, made once: (index in `variables`, text).
  std::vector<std::pair<std::size_t, std::string>> spellings;

  ~State() {
    for (Variable& v : variables) explicit_bzero(v.value.data(), v.value.size());
    for (auto& [variable, s] : spellings) explicit_bzero(s.data(), s.size());
  }

  const Variable* find(std::string_view placeholder) const {
    auto it = by_placeholder.find(std::string(placeholder));
    return it == by_placeholder.end() ? nullptr : &variables[it->second];
  }
};

namespace {

using Status = Rewrite::Status;

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

void add_unique(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// What a placeholder may hold, and what bounds its length (detail::kMaxPlaceholder).
bool valid_variable_name(std::string_view name) {
  if (name.empty() || name.size() > detail::kMaxVariableName) return false;
  if (name[0] >= '0' && name[0] <= '9') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return c != '-' && detail::is_token_char(c); });
}

std::string quote_for_message(std::string_view name) {
  std::string out = "'";
  for (char c : name.substr(0, 64)) out.push_back(c >= 0x20 && c != 0x7f ? c : '?');
  return out + (name.size() > 64 ? "...'" : "'");
}

std::string encode(std::string_view value, Context context) {
  switch (context) {
    case Context::kTarget:
    case Context::kForm:
      return detail::percent_encode(value);
    case Context::kJson:
      return detail::json_escape(value);
    case Context::kHeader:
    case Context::kText:
      break;
  }
  return std::string(value);
}

Rewrite unresolved(std::string reason) {
  return Rewrite{Status::kUnresolved, "", "", std::move(reason)};
}

}  // namespace

Vault::Vault(std::unique_ptr<State> state) : s_(std::move(state)) {}
Vault::Vault(Vault&&) noexcept = default;
Vault& Vault::operator=(Vault&&) noexcept = default;
Vault::~Vault() = default;

Result<Vault> Vault::create(std::vector<const Profile*> providers,
                            const std::vector<std::string>& host_env,
                            const std::vector<std::string>& reuse) {
  auto state = std::make_unique<State>();
  std::unordered_map<std::string_view, std::string_view> env;
  for (const std::string& entry : host_env) {
    std::size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env.emplace(std::string_view(entry).substr(0, eq), std::string_view(entry).substr(eq + 1));
  }
  std::vector<std::string> problems;
  std::vector<const Profile*> seen;
  for (const Profile* p : providers) {
    if (p == nullptr) return fail("Vault::create: a provider is null");
    if (std::find(seen.begin(), seen.end(), p) != seen.end()) continue;
    if (std::find(state->providers.begin(), state->providers.end(), p->id) !=
        state->providers.end()) {
      problems.push_back(fmt::format("two different provider profiles are named '{}'", p->id));
      continue;
    }
    seen.push_back(p);
    state->providers.push_back(p->id);
    for (const Credential& c : p->credentials) {
      bool any = false;
      for (const std::string& name : c.env_vars) {
        if (!valid_variable_name(name)) {  // profiles built in code skip the loader's check
          problems.push_back(fmt::format("provider {}: {} is not a variable name", p->id,
                                         quote_for_message(name)));
          continue;
        }
        auto it = env.find(name);
        if (it == env.end() || it->second.empty()) continue;
        any = true;
        if (it->second.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
          problems.push_back(fmt::format(
              "{} (provider {}) holds a carriage return, line feed or NUL byte, which no header "
              "can carry; refused",
              name, p->id));
          continue;
        }
        auto existing = std::find_if(state->variables.begin(), state->variables.end(),
                                     [&](const State::Variable& v) { return v.name == name; });
        if (existing != state->variables.end()) {  // one variable, several providers
          add_unique(existing->providers, p->id);
          continue;
        }
        const std::string prefix = fmt::format("{}{}-", kPlaceholderPrefix, name);
        std::string placeholder;
        for (const std::string& r : reuse)
          if (r.size() == name.size() + 1 + prefix.size() + detail::kRandomHexDigits &&
              r.compare(0, name.size() + 1, name + "=") == 0 &&
              r.compare(name.size() + 1, prefix.size(), prefix) == 0)
            placeholder = r.substr(name.size() + 1);
        if (placeholder.empty()) {
          Result<std::string> random = random_hex(detail::kRandomHexDigits / 2);
          if (!random) return tl::unexpected(random.error());
          placeholder = prefix + *random;
        }
        State::Variable v{name, std::string(it->second), std::move(placeholder), {p->id}};
        state->by_placeholder.emplace(v.placeholder, state->variables.size());
        state->environment.push_back(name + "=" + v.placeholder);
        state->variables.push_back(std::move(v));
      }
      if (c.required && !any) {
        problems.push_back(fmt::format(
            "provider {} needs its credential {}: set {}", p->id, c.name,
            c.env_vars.size() == 1 ? c.env_vars[0] : "one of " + join(c.env_vars, ", ")));
      }
    }
    for (const policy::Endpoint& e : p->endpoints) {
      state->bindings.push_back({p->id, policy::HostPattern(e.host), e.ports, e.path});
    }
  }
  if (!problems.empty()) return fail(join(problems, "; "));
  for (std::size_t i = 0; i < state->variables.size(); ++i)
    for (std::string& s : ResponseMask::spellings_of(state->variables[i].value))
      state->spellings.emplace_back(i, std::move(s));
  return Vault(std::move(state));
}

std::vector<const std::string*> Vault::spellings_bound_at(std::string_view host,
                                                          std::uint16_t port) const {
  std::vector<const std::string*> out;
  for (const auto& spelling : s_->spellings) {
    // Not a structured binding: clang before 16 cannot capture one in the lambdas below.
    const std::string& text = spelling.second;
    const State::Variable& v = s_->variables[spelling.first];
    const bool bound = std::any_of(v.providers.begin(), v.providers.end(), [&](const auto& p) {
      return std::any_of(s_->bindings.begin(), s_->bindings.end(), [&](const State::Binding& b) {
        return b.provider == p && b.host.matches(host) &&
               std::find(b.ports.begin(), b.ports.end(), port) != b.ports.end();
      });
    });
    if (bound &&
        std::none_of(out.begin(), out.end(), [&](const std::string* o) { return *o == text; }))
      out.push_back(&text);
  }
  return out;
}

const std::vector<std::string>& Vault::environment() const {
  return s_->environment;
}

std::optional<std::string_view> Vault::placeholder(std::string_view variable) const {
  for (const State::Variable& v : s_->variables) {
    if (v.name == variable) return v.placeholder;
  }
  return std::nullopt;
}

Result<void> Vault::add_binding(std::string_view provider, std::string_view host_pattern,
                                std::vector<std::uint16_t> ports) {
  if (std::find(s_->providers.begin(), s_->providers.end(), provider) == s_->providers.end()) {
    return fail(
        fmt::format("credential_binding names provider '{}', which this sandbox does not "
                    "have (it has: {})",
                    provider, s_->providers.empty() ? "none" : join(s_->providers, ", ")));
  }
  Result<std::string> host = policy::parse_host_pattern(host_pattern);
  if (!host) return tl::unexpected(host.error());
  if (ports.empty()) return fail("a credential binding needs at least one port");
  s_->bindings.push_back({std::string(provider), policy::HostPattern(*host), std::move(ports), ""});
  return {};
}

bool Vault::bound(std::string_view provider, std::string_view host, std::uint16_t port,
                  std::string_view path) const {
  path = path.substr(0, path.find('?'));
  for (const State::Binding& b : s_->bindings) {
    if (b.provider != provider) continue;
    if (std::find(b.ports.begin(), b.ports.end(), port) == b.ports.end()) continue;
    if (!b.host.matches(host)) continue;
    if (!b.path.empty() && !policy::path_glob_matches(b.path, path)) continue;
    return true;
  }
  return false;
}

bool Vault::bound_anywhere(std::string_view host, std::uint16_t port) const {
  return std::any_of(s_->bindings.begin(), s_->bindings.end(), [&](const State::Binding& b) {
    return std::find(b.ports.begin(), b.ports.end(), port) != b.ports.end() && b.host.matches(host);
  });
}

bool Vault::empty() const {
  return s_->variables.empty();
}

BoundHere Vault::bound_at(std::string host, std::uint16_t port, std::string path) const {
  return [this, host = std::move(host), port, path = std::move(path)](std::string_view provider) {
    return bound(provider, host, port, path);
  };
}

Rewrite Vault::rewrite(std::string& text, Context context, const BoundHere& bound_here) const {
  std::size_t pos = detail::find_prefix(text);
  if (pos == std::string::npos) {
    if (detail::has_escaped_prefix(text)) {
      return unresolved(
          "an escaped (percent- or backslash-encoded) credential placeholder; "
          "placeholders must be sent as they are");
    }
    return {};
  }
  std::string out;
  std::size_t copied = 0;
  std::vector<std::string> variables, providers;
  for (; pos != std::string::npos; pos = detail::find_prefix(text, copied)) {
    std::size_t end = detail::token_end(text, pos);
    const State::Variable* v = s_->find(std::string_view(text).substr(pos, end - pos));
    if (v == nullptr) {
      return unresolved(
          "something that looks like a credential placeholder but is not one of "
          "this sandbox's (altered, truncated or from elsewhere)");
    }
    auto bound_provider =
        std::find_if(v->providers.begin(), v->providers.end(),
                     [&](const std::string& p) { return bound_here && bound_here(p); });
    if (bound_provider == v->providers.end()) {
      return Rewrite{Status::kMismatch, v->name, join(v->providers, ","),
                     fmt::format("credential_endpoint_mismatch: {} (provider {}) is not bound to "
                                 "this endpoint",
                                 v->name, join(v->providers, ", "))};
    }
    add_unique(variables, v->name);
    add_unique(providers, *bound_provider);
    out.append(text, copied, pos - copied);
    out += encode(v->value, context);
    copied = end;
  }
  if (detail::has_escaped_prefix(text)) {
    return unresolved(
        "an escaped (percent- or backslash-encoded) credential placeholder; "
        "placeholders must be sent as they are");
  }
  out.append(text, copied, std::string::npos);
  text.swap(out);
  return Rewrite{Status::kRewritten, join(variables, ","), join(providers, ","),
                 fmt::format("substituted {}", join(variables, ", "))};
}

Rewrite Vault::rewrite_header(std::string_view name, std::string& value,
                              const BoundHere& bound_here) const {
  constexpr std::string_view kBasic = "basic ";
  if (iequals(name, "authorization") && value.size() > kBasic.size() &&
      iequals(std::string_view(value).substr(0, kBasic.size()), kBasic)) {
    std::size_t start = value.find_first_not_of(' ', kBasic.size());
    if (start != std::string::npos) {
      if (std::optional<std::string> decoded = detail::base64_decode(value.substr(start))) {
        Rewrite r = rewrite(*decoded, Context::kHeader, bound_here);
        if (r.status == Status::kRewritten) {
          value = value.substr(0, start) + detail::base64_encode(*decoded);
          explicit_bzero(decoded->data(), decoded->size());
        }
        if (r.status != Status::kUnchanged) return r;
      }
    }
  }
  return rewrite(value, Context::kHeader, bound_here);
}

}  // namespace ward::creds
