#include "gateway/control.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace ward::gateway {

bool holds_nul(const nlohmann::json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>().find('\0') != std::string::npos;
  if (value.is_array() || value.is_object())
    for (const auto& item : value)
      if (holds_nul(item)) return true;
  return false;
}

Result<void> send_control(int sock, const nlohmann::json& body, std::span<const int> fds) {
  if (holds_nul(body))
    return fail("a command, path or variable holding a NUL byte cannot be passed on", EILSEQ);
  std::string text;
  try {
    text = body.dump();
  } catch (const nlohmann::json::type_error&) {  // a string that is not UTF-8 (JSON's only text)
    return fail("a command, path or variable that is not valid UTF-8 cannot be passed on", EILSEQ);
  }
  if (text.size() > kMaxControlMessage) return fail("control message too large");
  if (fds.size() > 3) return fail("at most three fds per control message");
  struct iovec iov = {const_cast<char*>(text.data()), text.size()};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))] = {};
  attach_fds(msg, control, fds.data(), fds.size());
  ssize_t sent;
  do sent = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(text.size())) return fail_errno("send a control message");
  return {};
}

Result<std::optional<ControlMessage>> receive_control(int sock) {
  // One buffer a thread, neither zeroed nor freed: a message is ~50 bytes, a fresh 192 KiB one
  // cost a memset and a large allocation (and its free) at every message of every exec.
  thread_local const std::unique_ptr<char[]> buffer(new char[kMaxControlMessage + 1]);
  struct iovec iov = {buffer.get(), kMaxControlMessage + 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got;
  do got = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
  if (got < 0) return fail_errno("receive a control message");
  ControlMessage m;
  for_each_passed_fd(msg, [&](int fd) { m.fds.emplace_back(fd); });
  if (got == 0) return fail("closed");
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return fail("control message truncated");
  m.body = nlohmann::json::parse(buffer.get(), buffer.get() + got, nullptr, false);
  if (!m.body.is_object() || !m.body.contains("op") || !m.body["op"].is_string())
    return fail("malformed control message");
  return m;
}

}  // namespace ward::gateway
