#include "mcp/stdio.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <thread>

#include "base/log.h"
#include "base/strings.h"

namespace ward::mcp {
namespace {

class LineWriter final : public Stream {
 public:
  explicit LineWriter(int fd) : fd_(fd) {}
  void send(const json& message) override {
    const std::string line = dump(message) + "\n";
    std::lock_guard lock(mutex_);
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the client is gone; stdin's end will follow
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::mutex mutex_;
};

}  // namespace

int serve_stdio(Server& server, const std::string& chat_id, int in_fd, int out_fd) {
  Session session("stdio");
  session.chat_id = chat_id;
  LineWriter out(out_fd);
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };
  std::list<Worker> workers;
  std::string pending;
  bool skipping = false;  // inside an over-long line
  constexpr std::size_t kMaxLine = 32 << 20;
  constexpr std::size_t kMaxCallsInFlight = 256;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(in_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // What is left of earlier reads holds no newline: only this read's bytes can end a line.
    const bool newline = std::memchr(buf, '\n', static_cast<std::size_t>(n)) != nullptr;
    pending.append(buf, static_cast<std::size_t>(n));
    if (skipping) {
      if (!newline) {
        pending.clear();
        continue;
      }
      pending.erase(0, pending.find('\n') + 1);
      skipping = false;
    }
    if (pending.size() > kMaxLine && !newline) {
      // A line longer than any message may be: refused, and skipped up to its end.
      out.send(Server::error(nullptr, -32600, "a message over 32 MiB"));
      pending.clear();
      skipping = true;
      continue;
    }
    if (!newline) continue;  // the line goes on
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      if (json_nests_deeper(line)) {
        out.send(Server::error(nullptr, -32700,
                               "parse error: arrays and objects nested deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels"));
        continue;
      }
      json message = json::parse(line, nullptr, false);
      if (message.is_discarded()) {
        out.send(Server::error(nullptr, -32700, "parse error: a line that is not JSON"));
        continue;
      }
      const bool request = message.is_object() && message.contains("method") &&
                           message.contains("id") && !message["id"].is_null();
      const std::string method = request ? string_member(message, "method") : "";
      if (!request || method != "tools/call") {
        // Everything but a tool call is quick: on this thread, in the order it came (a
        // logging/setLevel applies to the calls after it).
        if (auto answer = server.handle(session, message, out)) out.send(*answer);
        continue;
      }
      // A thread per call in flight, up to a bound; past it, or with no thread to be had, the
      // call is answered with an error and the others go on.
      if (workers.size() >= kMaxCallsInFlight) {
        out.send(Server::error(message["id"], -32000, "too many tool calls at once; try again"));
        continue;
      }
      Worker& w = workers.emplace_back();
      const json id = message["id"];
      try {
        w.thread =
            std::thread([&server, &session, &out, done = w.done, message = std::move(message)] {
              if (auto answer = server.handle(session, message, out)) out.send(*answer);
              *done = true;
            });
      } catch (const std::exception& e) {
        workers.pop_back();
        out.send(Server::error(id, -32000, std::string("cannot run the call: ") + e.what()));
      }
    }
    pending.erase(0, start);
    for (auto it = workers.begin(); it != workers.end();) {  // the finished ones
      if (*it->done) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  }
  session.close();
  for (auto& w : workers) w.thread.join();
  return 0;
}

}  // namespace ward::mcp
