// libFuzzer target for the credential rewriter: a fixed vault (two variables, secrets that need
// escaping in every context), then the input's first byte picks a context (or the Basic-auth
// header path, or the websocket frame rewriter) and a binding, and the rest is the text.
// Invariants: nothing crashes; after kRewritten or kUnchanged no placeholder of the vault is
// left; after kMismatch or kUnresolved the text is unchanged, so a secret appears only if the
// input held it. Built and run by bench/fuzz-creds.sh.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "creds/scan.h"
#include "creds/vault.h"
#include "creds/websocket.h"

namespace {

using ward::creds::Context;
using ward::creds::Rewrite;
using ward::creds::Vault;

const char* const kSecrets[] = {"s3cr\"t\\ a/b+c&d%e", "tok-\xc3\xa9-\t-end"};

struct Fixture {
  std::optional<Vault> vault;
  std::string placeholders[2];
  Fixture() {
    auto v = Vault::create(
        {ward::creds::builtin_profile("github"), ward::creds::builtin_profile("anthropic")},
        {std::string("GITHUB_TOKEN=") + kSecrets[0],
         std::string("ANTHROPIC_API_KEY=") + kSecrets[1]});
    if (!v) std::abort();
    vault.emplace(std::move(*v));
    placeholders[0] = std::string(*vault->placeholder("GITHUB_TOKEN"));
    placeholders[1] = std::string(*vault->placeholder("ANTHROPIC_API_KEY"));
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

bool holds(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The fuzzer cannot guess 128 random bits: "@0" and "@1" in the input stand for the placeholders.
std::string expand(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '@' && i + 1 < in.size() && (in[i + 1] == '0' || in[i + 1] == '1')) {
      out += fixture().placeholders[in[i + 1] - '0'];
      ++i;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

void check(const std::string& before, const std::string& after, const Rewrite& r) {
  const Fixture& f = fixture();
  switch (r.status) {
    case Rewrite::Status::kUnchanged:
      if (after != before) std::abort();
      [[fallthrough]];
    case Rewrite::Status::kRewritten:
      for (const std::string& p : f.placeholders)
        if (holds(after, p)) std::abort();
      break;
    case Rewrite::Status::kMismatch:
    case Rewrite::Status::kUnresolved:
      if (after != before) std::abort();
      for (const char* s : kSecrets)
        if (holds(after, s) && !holds(before, s)) std::abort();
      break;
  }
  for (const char* s : kSecrets)
    if (holds(r.reason, s)) std::abort();
}

// Every complete text frame that went out (unmasked) holds no placeholder of the vault.
void check_text_frames(std::string_view s) {
  bool in_text = false;
  while (s.size() >= 2) {
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned opcode = b(0) & 0x0f;
    bool fin = b(0) & 0x80, masked = b(1) & 0x80;
    std::uint64_t n = b(1) & 0x7f;
    std::size_t pos = 2;
    if (n >= 126) {
      std::size_t len = n == 126 ? 2 : 8;
      if (s.size() < pos + len) return;
      n = 0;
      for (std::size_t i = 0; i < len; ++i) n = (n << 8) | b(pos + i);
      pos += len;
    }
    std::size_t key_at = pos;
    if (masked) pos += 4;
    if (s.size() < pos || s.size() - pos < n) return;  // a passthrough frame still streaming
    bool text = opcode == 1 || (opcode == 0 && in_text);
    if (opcode == 1 || opcode == 2) in_text = false;
    if (text) {
      std::string payload(s.substr(pos, n));
      for (std::size_t i = 0; masked && i < payload.size(); ++i)
        payload[i] = static_cast<char>(payload[i] ^ s[key_at + i % 4]);
      for (const std::string& p : fixture().placeholders)
        if (holds(payload, p)) std::abort();
      in_text = !fin;
    }
    s.remove_prefix(pos + n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Fixture& f = fixture();
  const unsigned selector = data[0];
  std::string text = expand(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  // Bit 3: bound everywhere, or only the github provider.
  ward::creds::BoundHere bound = (selector & 8)
                                     ? ward::creds::BoundHere([](std::string_view) { return true; })
                                     : f.vault->bound_at("api.github.com", 443, "/");
  const std::string before = text;
  switch (selector % 8) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4: {
      auto context = static_cast<Context>(selector % 8);
      check(before, text, f.vault->rewrite(text, context, bound));
      break;
    }
    case 5: {  // Basic auth: the check applies to the decoded credentials
      std::string value = "Basic " + ward::creds::detail::base64_encode(text);
      Rewrite r = f.vault->rewrite_header("Authorization", value, bound);
      std::optional<std::string> decoded = ward::creds::detail::base64_decode(value.substr(6));
      if (!decoded) std::abort();
      check(before, *decoded, r);
      break;
    }
    case 6: {  // any other header, raw
      Rewrite r = f.vault->rewrite_header("x-api-key", text, bound);
      check(before, text, r);
      break;
    }
    case 7: {  // websocket client stream, fed in two pieces
      ward::creds::WebsocketRewriter w(*f.vault, bound, 4096);
      std::string out;
      std::size_t half = text.size() / 2;
      Rewrite r = w.feed(std::string_view(text).substr(0, half), out);
      if (!r.refused()) r = w.feed(std::string_view(text).substr(half), out);
      for (const char* s : kSecrets)
        if (holds(r.reason, s)) std::abort();
      check_text_frames(out);
      break;
    }
  }
  return 0;
}
