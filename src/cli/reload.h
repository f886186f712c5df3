// Hot reload of a running sandbox's policy: SIGHUP to ward, or `--watch` (inotify on the policy
// file's directory, so that editors that replace the file by a rename are seen too).
//
// An update is read whole and validated; a file with any error, or one that changes a static
// section (filesystem_policy, landlock, process, resources, environment), is refused and the
// running policy stays. Otherwise the proxy gets a new generation: new connections and new
// requests use it at once, keep-alive connections pinned to the old one close at their next
// request.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/result.h"
#include "policy/policy.h"
#include "proxy/proxy.h"

namespace ward::cli {

class Reloader {
 public:
  Reloader(std::string path, std::shared_ptr<const policy::Policy> running, proxy::Proxy& proxy);
  ~Reloader();  // stops the watch thread
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Re-reads the file and installs it, or says on stderr why not. `trigger` names the cause.
  // True when the update was installed. Thread-safe.
  bool reload(const char* trigger);

  // Starts watching the file: each change (debounced by 50 ms) calls reload("watch").
  Result<> watch();

 private:
  void watch_loop();

  std::string path_;
  std::shared_ptr<const policy::Policy> running_;
  proxy::Proxy& proxy_;
  std::mutex mutex_;
  UniqueFd inotify_, stop_;
  std::thread thread_;
};

}  // namespace ward::cli
