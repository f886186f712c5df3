#include "creds/websocket.h"

#include <fmt/core.h>

#include <algorithm>

#include "base/strings.h"
#include "creds/scan.h"

namespace ward::creds {
namespace {

using Status = Rewrite::Status;

constexpr unsigned char kFin = 0x80;
constexpr unsigned char kRsv1 = 0x40;
constexpr unsigned char kMask = 0x80;
constexpr unsigned kOpContinuation = 0x0, kOpText = 0x1, kOpBinary = 0x2;

unsigned char byte(const std::string& s, std::size_t i) {
  return static_cast<unsigned char>(s[i]);
}

// 2 + extended length + masking key, once the first two bytes are known.
std::size_t header_size(unsigned char b1) {
  std::size_t n = 2;
  if ((b1 & 0x7f) == 126) n += 2;
  if ((b1 & 0x7f) == 127) n += 8;
  if (b1 & kMask) n += 4;
  return n;
}

std::uint64_t payload_length(const std::string& h) {
  unsigned len7 = byte(h, 1) & 0x7f;
  if (len7 < 126) return len7;
  std::size_t bytes = len7 == 126 ? 2 : 8;
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < bytes; ++i) n = (n << 8) | byte(h, 2 + i);
  return n;
}

void apply_mask(std::string& payload, const unsigned char key[4]) {
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<char>(payload[i] ^ key[i % 4]);
}

// `into` gains the names of the comma-separated list `names` that it does not hold yet.
void merge_names(std::string& into, std::string_view names) {
  for (std::string_view name : split(names, ',')) {
    bool present = false;
    for (std::string_view have : split(into, ',')) present |= have == name;
    if (name.empty() || present) continue;
    if (!into.empty()) into += ',';
    into += name;
  }
}

}  // namespace

WebsocketRewriter::WebsocketRewriter(const Vault& vault, BoundHere bound_here,
                                     std::size_t max_text_frame)
    : vault_(vault), bound_here_(std::move(bound_here)), max_text_frame_(max_text_frame) {}

Rewrite WebsocketRewriter::refuse(Rewrite r) {
  refused_ = r;
  std::string().swap(pending_);
  tail_.clear();
  return r;
}

Rewrite WebsocketRewriter::finish_text_frame(std::string& out) {
  std::string payload = pending_.substr(header_size_);
  const bool masked = byte(pending_, 1) & kMask;
  unsigned char key[4] = {};
  if (masked) {
    for (int i = 0; i < 4; ++i) key[i] = byte(pending_, header_size_ - 4 + i);
    apply_mask(payload, key);
  }
  if (!tail_.empty() && detail::straddles(tail_, payload)) {
    return Rewrite{Status::kUnresolved, "", "",
                   "a credential placeholder split across websocket frames; send it in one frame"};
  }
  if (fin_) {
    tail_.clear();
  } else {
    tail_ += payload;
    if (tail_.size() > detail::kMaxEscapedPlaceholder)
      tail_.erase(0, tail_.size() - detail::kMaxEscapedPlaceholder);
  }
  Rewrite r = vault_.rewrite(payload, Context::kText, bound_here_);
  if (r.status == Status::kRewritten) {
    std::string frame;
    frame.push_back(pending_[0]);
    std::uint64_t n = payload.size();
    unsigned char b1 = masked ? kMask : 0;
    if (n < 126) {
      frame.push_back(static_cast<char>(b1 | n));
    } else if (n <= 0xffff) {
      frame.push_back(static_cast<char>(b1 | 126));
      for (int shift = 8; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(n >> shift));
    } else {
      frame.push_back(static_cast<char>(b1 | 127));
      for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(n >> shift));
    }
    if (masked) {
      frame.append(reinterpret_cast<const char*>(key), 4);
      apply_mask(payload, key);
    }
    out += frame;
    out += payload;
  } else if (r.status == Status::kUnchanged) {
    out += pending_;
  }
  std::string().swap(pending_);  // a large frame's memory goes back, not just its bytes
  return r;
}

Rewrite WebsocketRewriter::feed(std::string_view in, std::string& out) {
  if (refused_) return *refused_;
  std::string forward;
  Rewrite result;
  while (!in.empty() || (phase_ == Phase::kText && remaining_ == 0)) {
    if (phase_ == Phase::kPassthrough) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
      forward.append(in.substr(0, n));
      in.remove_prefix(n);
      remaining_ -= n;
      if (remaining_ == 0) phase_ = Phase::kHeader;
      continue;
    }
    if (phase_ == Phase::kText) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
      pending_.append(in.substr(0, n));
      in.remove_prefix(n);
      remaining_ -= n;
      if (remaining_ > 0) continue;
      Rewrite r = finish_text_frame(forward);
      if (r.refused()) return refuse(std::move(r));
      if (r.status == Status::kRewritten) {
        result.status = Status::kRewritten;
        merge_names(result.variable, r.variable);
        merge_names(result.provider, r.provider);
        result.reason = "substituted " + result.variable;
      }
      phase_ = Phase::kHeader;
      continue;
    }
    // kHeader: the first two bytes say how long the header is.
    std::size_t need = pending_.size() < 2 ? 2 : header_size(byte(pending_, 1));
    std::size_t take = std::min(need - pending_.size(), in.size());
    pending_.append(in.substr(0, take));
    in.remove_prefix(take);
    if (pending_.size() < need || (need == 2 && header_size(byte(pending_, 1)) > 2)) continue;

    const unsigned char b0 = byte(pending_, 0);
    const unsigned opcode = b0 & 0x0f;
    const std::uint64_t length = payload_length(pending_);
    bool text = opcode == kOpText || (opcode == kOpContinuation && in_text_message_);
    if (opcode == kOpText || opcode == kOpBinary) in_text_message_ = false;  // a new message
    if (!text) {  // control, binary, a stray continuation, reserved: untouched
      forward += pending_;
      pending_.clear();
      remaining_ = length;
      phase_ = length > 0 ? Phase::kPassthrough : Phase::kHeader;
      continue;
    }
    if (opcode == kOpText) tail_.clear();
    if (b0 & kRsv1) {
      return refuse({Status::kUnresolved, "", "",
                     "a compressed (permessage-deflate) websocket text message cannot be searched "
                     "for credential placeholders"});
    }
    if (length > max_text_frame_) {
      return refuse({Status::kUnresolved, "", "",
                     fmt::format("a websocket text frame of {} bytes is larger than the {} bytes "
                                 "searched for credential placeholders",
                                 length, max_text_frame_)});
    }
    fin_ = b0 & kFin;
    in_text_message_ = !fin_;
    header_size_ = pending_.size();
    remaining_ = length;
    phase_ = Phase::kText;
  }
  out += forward;
  return result;
}

}  // namespace ward::creds
