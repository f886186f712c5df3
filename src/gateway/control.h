// The control protocol between the gateway and each sandbox's supervisor (`ward __sandbox DIR`):
// one JSON object per SOCK_SEQPACKET message, with up to three fds as SCM_RIGHTS. The supervisor
// listens on DIR/control.sock (0600); the gateway that started it also holds one end of a
// socketpair handed over as the supervisor's fd 3.
//
// gateway → supervisor
//   {"op":"hello"}                                        → hello (+ egress listener, sock_diag)
//   {"op":"exec","id":K,"argv":[...],"env":["N=v"...],"workdir":""} + stdin, stdout, stderr
//                                                          → started | failed, later exit
//   {"op":"signal","id":K,"signal":N}                     to exec K's process group
//   {"op":"stop"}                                         the stop protocol; then ended
// supervisor → gateway
//   {"op":"hello","init_pid":P,"supervisor_pid":P,"workdir":"...","placeholders":["..."],
//    "main":{...}|null}                                   placeholders: ward's, for downloads
//   {"op":"error","message":"..."}                        the sandbox could not be built
//   {"op":"started","id":K,"pid":P} {"op":"failed","id":K,"code":N,"message":"..."}
//   {"op":"exit","id":K,"code":N,"signal":N}
//   {"op":"main_exit","code":N,"signal":N}                the main command ended
//   {"op":"ended","status":"stopped|error","reason":"..."} the sandbox is gone
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace ward::gateway {

inline constexpr std::size_t kMaxControlMessage = 192 * 1024;

struct ControlMessage {
  nlohmann::json body;
  std::vector<UniqueFd> fds;
};

// True when a string of `value` (at any depth) holds a NUL byte: JSON carries it, but a command
// line, a variable or a path would end there (execve, chdir), running something other than what
// was asked. send_control refuses such a message (EILSEQ).
bool holds_nul(const nlohmann::json& value);

// Sends one message (blocking unless the socket is nonblocking).
Result<void> send_control(int sock, const nlohmann::json& body, std::span<const int> fds = {});

// Receives one message without blocking: nullopt when none is queued; an Error with err 0 and
// message "closed" at end of file; other Errors for malformed messages (the connection should
// then be dropped).
Result<std::optional<ControlMessage>> receive_control(int sock);

}  // namespace ward::gateway
