// Syscalls for the sandbox init and its workload, which share ward's memory (CLONE_VM) and so
// would share its thread-local errno through libc's wrappers: these never touch errno. Each
// returns what the syscall returned, or -1 with the error in sys::last_err.
//
// last_err needs no lock: the init and the workload it vforks never run at the same time, and
// ward's own thread never reads it.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <cstdint>

namespace ward::sandbox::sys {

inline int last_err = 0;

// The raw instruction: returns the kernel's value (-errno on failure).
inline long raw(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
#else
#error "ward's sandbox init supports x86_64 and aarch64"
#endif
}

template <class... Args>
inline long call(long n, Args... args) {
  long rc = raw(n, (long)(args)...);
  if (rc < 0 && rc > -4096) {
    last_err = static_cast<int>(-rc);
    return -1;
  }
  return rc;
}

// Names as in libc, for readability at the call sites.
inline long mount(const char* src, const char* dst, const char* type, unsigned long flags,
                  const void* data) {
  return call(SYS_mount, src, dst, type, flags, data);
}
inline long umount2(const char* target, int flags) {
  return call(SYS_umount2, target, flags);
}
inline long mkdir(const char* path, mode_t mode) {
  return call(SYS_mkdirat, -100, path, mode);
}
inline long open(const char* path, int flags, mode_t mode = 0) {
  return call(SYS_openat, -100 /*AT_FDCWD*/, path, flags, mode);
}
inline long openat(int dirfd, const char* path, int flags) {
  return call(SYS_openat, dirfd, path, flags, 0);
}
inline long close(int fd) {
  return call(SYS_close, fd);
}
inline long access(const char* path, int mode) {
  return call(SYS_faccessat, -100, path, mode);
}
inline long chdir(const char* path) {
  return call(SYS_chdir, path);
}
inline long symlink(const char* target, const char* link) {
  return call(SYS_symlinkat, target, -100, link);
}
inline long unlinkat(int dirfd, const char* path, int flags) {
  return call(SYS_unlinkat, dirfd, path, flags);
}
inline long read(int fd, void* buf, size_t n) {
  return call(SYS_read, fd, buf, n);
}
inline long write(int fd, const void* buf, size_t n) {
  return call(SYS_write, fd, buf, n);
}
inline long send(int fd, const void* buf, size_t n, int flags) {
  return call(SYS_sendto, fd, buf, n, flags, 0, 0);
}
inline long recv(int fd, void* buf, size_t n, int flags) {
  return call(SYS_recvfrom, fd, buf, n, flags, 0, 0);
}
inline long recvmsg(int fd, struct msghdr* msg, int flags) {
  return call(SYS_recvmsg, fd, msg, flags);
}
inline long sendmsg(int fd, const struct msghdr* msg, int flags) {
  return call(SYS_sendmsg, fd, msg, flags);
}
inline long bind(int fd, const void* addr, unsigned len) {
  return call(SYS_bind, fd, addr, len);
}
inline long listen(int fd, int backlog) {
  return call(SYS_listen, fd, backlog);
}
inline long setsockopt(int fd, int level, int name, const void* value, unsigned len) {
  return call(SYS_setsockopt, fd, level, name, value, len);
}
inline long socket(int domain, int type, int protocol) {
  return call(SYS_socket, domain, type, protocol);
}
inline long ioctl(int fd, unsigned long request, void* arg) {
  return call(SYS_ioctl, fd, request, arg);
}
inline long prctl(int option, unsigned long a = 0, unsigned long b = 0, unsigned long c = 0,
                  unsigned long d = 0) {
  return call(SYS_prctl, option, a, b, c, d);
}
inline long sethostname(const char* name, size_t len) {
  return call(SYS_sethostname, name, len);
}
inline long kill(pid_t pid, int sig) {
  return call(SYS_kill, pid, sig);
}
inline long wait4(pid_t pid, int* status, int options) {
  return call(SYS_wait4, pid, status, options, 0);
}
// The kernel's sigset is 8 bytes; glibc's sigset_t is larger but starts with it.
inline long sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  return call(SYS_rt_sigprocmask, how, set, old, 8);
}
inline long signalfd(const sigset_t* mask, int flags) {
  return call(SYS_signalfd4, -1, mask, 8, flags);
}
inline long ppoll(struct pollfd* fds, unsigned n, const struct timespec* timeout) {
  return call(SYS_ppoll, fds, n, timeout, 0, 8);
}
inline long prlimit(int resource, const struct rlimit* limit) {
  return call(SYS_prlimit64, 0, resource, limit, 0);
}
inline long setgroups_none() {
  return call(SYS_setgroups, 0, 0);
}
inline long setresgid(gid_t g) {
  return call(SYS_setresgid, g, g, g);
}
inline long setresuid(uid_t u) {
  return call(SYS_setresuid, u, u, u);
}
inline long unshare(int flags) {
  return call(SYS_unshare, flags);
}
inline long execve(const char* path, char* const* argv, char* const* envp) {
  return call(SYS_execve, path, argv, envp);
}

}  // namespace ward::sandbox::sys
