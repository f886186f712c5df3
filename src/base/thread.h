// Helper threads that never receive a process signal.
//
// ward's main thread reads its signals through a signalfd (SIGCHLD, the forwarded ones, SIGHUP
// for a reload); a thread with those unblocked would steal them, and the kernel's default action
// there would lose a SIGCHLD or kill ward on a SIGHUP. SIGPIPE is blocked too, so a write to a
// closed socket (splice has no MSG_NOSIGNAL) fails with EPIPE instead of killing ward.
#pragma once

#include <signal.h>

#include <thread>
#include <utility>

namespace ward {

template <class F>
std::thread quiet_thread(F&& body) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the new thread inherits this mask
  try {
    std::thread t(std::forward<F>(body));
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return t;
  } catch (...) {  // no thread to be had: the caller's signals stay as they were
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
}

}  // namespace ward
