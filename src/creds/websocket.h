// Placeholder substitution in a websocket's client→server stream (RFC 6455 frames), for endpoints
// with websocket_credential_rewrite.
//
// Text frames (and the continuation frames of a text message) are buffered whole, unmasked,
// rewritten as Context::kText, re-masked with the frame's own key and re-framed with the new
// length; a frame without a placeholder is forwarded byte for byte. Control frames, binary
// messages and reserved opcodes are streamed through untouched. Frame boundaries are kept.
//
// Fails closed (kUnresolved): a placeholder split across two frames of one message, a compressed
// text message (RSV1, permessage-deflate: the proxy should not offer that extension on such
// endpoints), a text frame larger than the limit. After a refusal every call returns it again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "creds/vault.h"

namespace ward::creds {

class WebsocketRewriter {
 public:
  static constexpr std::size_t kDefaultMaxTextFrame = 256 * 1024;

  // `vault` must outlive the rewriter; `bound_here` is fixed for the connection.
  WebsocketRewriter(const Vault& vault, BoundHere bound_here,
                    std::size_t max_text_frame = kDefaultMaxTextFrame);

  // Consumes `in`, the next bytes from the client, and appends to `out` what may be forwarded now
  // (bytes of an incomplete text frame are held back). kUnchanged or kRewritten: carry on.
  // kMismatch or kUnresolved: close the connection; nothing from this call was appended.
  Rewrite feed(std::string_view in, std::string& out);

  // Memory held back: the incomplete frame header or text frame so far.
  std::size_t held() const { return pending_.capacity(); }

 private:
  enum class Phase { kHeader, kPassthrough, kText };

  Rewrite finish_text_frame(std::string& out);
  Rewrite refuse(Rewrite r);

  const Vault& vault_;
  BoundHere bound_here_;
  std::size_t max_text_frame_;

  Phase phase_ = Phase::kHeader;
  std::string pending_;           // header bytes so far, or the text frame (header + payload)
  std::size_t header_size_ = 0;   // of the text frame in pending_
  std::uint64_t remaining_ = 0;   // payload bytes still to come (kPassthrough, kText)
  bool in_text_message_ = false;  // a text message's FIN has not been seen yet
  bool fin_ = false;              // of the text frame in pending_
  std::string tail_;  // the end of the current text message so far (unmasked), for split checks
  std::optional<Rewrite> refused_;
};

}  // namespace ward::creds
