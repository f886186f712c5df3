// What an endpoint a credential is bound to answers, read for the real values ward put into the
// requests there: an API that echoes a request back (an echo service, an error page quoting the
// Authorization header, a stored value listed again) would otherwise hand the sandbox the secret.
//
// Each real value is looked for in the spellings an answer is likely to hold it in: as it is,
// JSON-escaped, percent-encoded, and inside base64 (standard and URL-safe alphabets, at each of
// the three offsets a value can start at within a base64 text, so that `Basic b64(user:secret)`
// echoed back is found too; only the characters that encode the value's own bits). Spellings
// shorter than kMinSpelling bytes are not looked for: they would match innocent text.
//
// A spelling found is overwritten with '*' byte for byte: the answer keeps its length, so its
// framing (Content-Length, websocket frame lengths) stays true without re-framing. A stream is
// read with a carry: the tail that could be the start of a spelling is held back until the next
// bytes show it is not (or the stream ends), so a value split across reads is found as well;
// a tail that cannot begin one (the "\n\n" that ends a server-sent event) is passed on at once.
//
// What it cannot see: a value the server transforms (compressed, hashed, reversed, split into
// pieces across answers), or one read back through a connection ward does not read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ward::creds {

class Vault;

class ResponseMask {
 public:
  static constexpr std::size_t kMinSpelling = 8;

  // Every spelling of every real value `vault` holds for providers bound at (host, port): the
  // only values ward ever sent there. `vault` must outlive the mask.
  ResponseMask(const Vault& vault, std::string_view host, std::uint16_t port);
  ~ResponseMask();  // what it held back is wiped
  ResponseMask(const ResponseMask&) = delete;
  ResponseMask& operator=(const ResponseMask&) = delete;

  // Masks each spelling wholly inside `text` (a header value). Returns how many were masked.
  std::size_t mask(std::string& text) const;

  // The next bytes of a stream: appends to `out` what may be passed on now, masked, and holds
  // back a tail that may begin a spelling. `last`: the stream ends here, nothing is held back.
  // Over a whole stream `out` gets exactly as many bytes as were fed.
  void feed(std::string_view in, bool last, std::string& out);

  // A websocket's bytes from the server (RFC 6455 frames), fed as they come: a tail that may
  // begin a spelling is held back only while the frame it lies in still has payload to come (so
  // a value the sandbox had cut across reads, by padding a message, is found, and nothing waits
  // for bytes that may never come: at a frame's end all is passed on).
  void feed_websocket(std::string_view in, std::string& out);

  // Spellings masked so far, by mask() and feed().
  std::size_t masked() const { return masked_; }
  // Bytes held back.
  std::size_t held() const { return carry_.size(); }

  // The spellings of one value (exposed for the vault and the tests).
  static std::vector<std::string> spellings_of(std::string_view value);

 private:
  std::size_t mask_all(std::string& text) const;
  // The length of the longest tail of `text` that is a proper prefix of a spelling.
  std::size_t open_tail(std::string_view text) const;

  std::vector<const std::string*> spellings_;
  std::string carry_;
  std::string frame_head_;             // feed_websocket: the frame header so far
  std::uint64_t frame_remaining_ = 0;  // feed_websocket: payload bytes of the frame still to come
  mutable std::size_t masked_ = 0;
};

}  // namespace ward::creds
