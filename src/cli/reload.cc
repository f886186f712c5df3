#include "cli/reload.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdio>

#include "base/log.h"
#include "base/thread.h"

namespace ward::cli {

Reloader::Reloader(std::string path, std::shared_ptr<const policy::Policy> running,
                   proxy::Proxy& proxy)
    : path_(std::move(path)), running_(std::move(running)), proxy_(proxy) {}

Reloader::~Reloader() {
  if (!thread_.joinable()) return;
  std::uint64_t one = 1;
  if (::write(stop_.get(), &one, sizeof one) != sizeof one) log::warn("cannot stop the watcher");
  thread_.join();
}

bool Reloader::reload(const char* trigger) {
  std::lock_guard<std::mutex> lock(mutex_);
  policy::LoadResult update = policy::load_file(path_);
  if (!update.ok()) {
    log::error("policy reload ({}) refused: {} has errors; the running policy stays", trigger,
               path_);
    for (const auto& d : update.diagnostics) std::fprintf(stderr, "%s\n", d.format().c_str());
    return false;
  }
  if (std::string section = policy::changed_static_section(*running_, *update.policy);
      !section.empty()) {
    log::error(
        "policy reload ({}) refused: {} changes {}, which is fixed while the sandbox runs; "
        "the running policy stays",
        trigger, path_, section);
    return false;
  }
  running_ = std::make_shared<const policy::Policy>(std::move(*update.policy));
  proxy_.install(running_);
  log::info("policy reloaded ({}): {} network rule(s) from {}", trigger, running_->network.size(),
            path_);
  return true;
}

Result<> Reloader::watch() {
  inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_) return fail_errno("inotify_init1");
  stop_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!stop_) return fail_errno("eventfd");
  std::string dir = path_.substr(0, path_.find_last_of('/') + 1);
  if (dir.empty()) dir = ".";
  const std::uint32_t events = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE;
  if (::inotify_add_watch(inotify_.get(), dir.c_str(), events) < 0)
    return fail_errno("cannot watch " + dir);
  thread_ = quiet_thread([this] { watch_loop(); });
  return {};
}

void Reloader::watch_loop() {
  const std::string name = path_.substr(path_.find_last_of('/') + 1);
  alignas(struct inotify_event) char buf[4096];
  bool pending = false;
  for (;;) {
    struct pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    // A burst of events (an editor writes, renames, touches) becomes one reload, 50 ms after the
    // last of them.
    int n = ::poll(fds, 2, pending ? 50 : -1);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (n == 0 && pending) {
      pending = false;
      reload("watch");
      continue;
    }
    ssize_t len;
    while ((len = ::read(inotify_.get(), buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + len;) {
        auto* e = reinterpret_cast<struct inotify_event*>(p);
        if (e->len && name == e->name) pending = true;
        p += sizeof(struct inotify_event) + e->len;
      }
    }
  }
}

}  // namespace ward::cli
