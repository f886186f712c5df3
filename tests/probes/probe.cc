// ward-probe: one attempt per invocation, run inside a sandbox by the integration tests.
// Exit 0: the attempt succeeded. Exit 1: it failed (the errno name is printed on stdout).
// Exit 2: bad usage. Anything printed is for the test to read.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <string>

namespace {

int report(long rc) {
  if (rc >= 0) {
    printf("ok\n");
    return 0;
  }
  printf("%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
  return 1;
}

using Action = std::function<int(int, char**)>;

long connect_to(const char* ip, int port) {
  struct sockaddr_in6 a6 = {};
  struct sockaddr_in a4 = {};
  int fd;
  long rc;
  if (inet_pton(AF_INET, ip, &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    a4.sin_port = htons(port);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a4), sizeof a4);
  } else {
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip, &a6.sin6_addr) != 1) {
      errno = EINVAL;
      return -1;
    }
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a6), sizeof a6);
  }
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

const std::map<std::string, Action>& actions() {
  static const std::map<std::string, Action> a = {
      {"read",
       [](int, char** v) {  // read FILE: prints the first line
         int fd = open(v[0], O_RDONLY);
         if (fd < 0) return report(-1);
         char buf[256] = {};
         long n = read(fd, buf, sizeof buf - 1);
         if (n < 0) return report(-1);
         printf("%s", buf);
         return 0;
       }},
      {"write",
       [](int, char** v) {
         int fd = open(v[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
         if (fd < 0) return report(-1);
         long rc = write(fd, "probe\n", 6);
         close(fd);
         return report(rc);
       }},
      {"append",
       [](int, char** v) {
         int fd = open(v[0], O_WRONLY | O_APPEND);
         if (fd < 0) return report(-1);
         long rc = write(fd, "probe\n", 6);
         close(fd);
         return report(rc);
       }},
      {"list",
       [](int, char** v) {
         int fd = open(v[0], O_RDONLY | O_DIRECTORY);
         return report(fd);
       }},
      {"stat",
       [](int, char** v) {
         struct stat st;
         return report(lstat(v[0], &st));
       }},
      {"mkdir", [](int, char** v) { return report(mkdir(v[0], 0755)); }},
      {"unlink", [](int, char** v) { return report(unlink(v[0])); }},
      {"rename", [](int, char** v) { return report(rename(v[0], v[1])); }},
      {"link", [](int, char** v) { return report(link(v[0], v[1])); }},
      {"symlink", [](int, char** v) { return report(symlink(v[0], v[1])); }},
      {"truncate", [](int, char** v) { return report(truncate(v[0], 0)); }},
      {"chmod-setuid", [](int, char** v) { return report(chmod(v[0], 04755)); }},
      {"mknod-char",
       [](int, char** v) { return report(mknod(v[0], S_IFCHR | 0666, makedev(1, 3))); }},
      {"mknod-fifo", [](int, char** v) { return report(mknod(v[0], S_IFIFO | 0666, 0)); }},
      {"mount-tmpfs",
       [](int, char** v) { return report(mount("none", v[0], "tmpfs", 0, nullptr)); }},
      {"umount", [](int, char** v) { return report(umount2(v[0], MNT_DETACH)); }},
      {"pivot-root", [](int, char** v) { return report(syscall(SYS_pivot_root, v[0], v[1])); }},
      {"chroot", [](int, char** v) { return report(chroot(v[0])); }},
      {"setuid-root", [](int, char**) { return report(setuid(0)); }},
      {"ptrace-attach",
       [](int, char** v) { return report(ptrace(PTRACE_ATTACH, atoi(v[0]), nullptr, nullptr)); }},
      {"ptrace-traceme",
       [](int, char**) { return report(ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); }},
      {"vm-readv",
       [](int, char** v) {
         char buf[16];
         struct iovec local = {buf, sizeof buf},
                      remote = {reinterpret_cast<void*>(0x400000), sizeof buf};
         return report(process_vm_readv(atoi(v[0]), &local, 1, &remote, 1, 0));
       }},
      {"unshare-user", [](int, char**) { return report(unshare(CLONE_NEWUSER)); }},
      {"unshare-net", [](int, char**) { return report(unshare(CLONE_NEWNET)); }},
      {"unshare-mount", [](int, char**) { return report(unshare(CLONE_NEWNS)); }},
      {"clone-newuser",
       [](int, char**) {
         long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
         if (pid == 0) _exit(0);
         if (pid > 0) waitpid(pid, nullptr, 0);
         return report(pid);
       }},
      {"clone3", [](int, char**) { return report(syscall(SYS_clone3, nullptr, 0)); }},
      {"bpf", [](int, char**) { return report(syscall(SYS_bpf, 0, nullptr, 0)); }},
      {"perf",
       [](int, char**) { return report(syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0)); }},
      {"io-uring", [](int, char**) { return report(syscall(SYS_io_uring_setup, 1, nullptr)); }},
      {"keyctl", [](int, char**) { return report(syscall(SYS_keyctl, 0, 0, 0, 0, 0)); }},
      {"userfaultfd", [](int, char**) { return report(syscall(SYS_userfaultfd, 0)); }},
      {"kexec", [](int, char**) { return report(syscall(SYS_kexec_load, 0, 0, nullptr, 0)); }},
      {"init-module", [](int, char**) { return report(syscall(SYS_init_module, nullptr, 0, "")); }},
      {"setns",
       [](int, char** v) {
         int fd = open(v[0], O_RDONLY);
         if (fd < 0) return report(-1);
         return report(setns(fd, 0));
       }},
      {"socket-packet", [](int, char**) { return report(socket(AF_PACKET, SOCK_RAW, 0)); }},
      {"connect", [](int, char** v) { return report(connect_to(v[0], atoi(v[1]))); }},
      {"resolve",
       [](int, char** v) {
         struct addrinfo* res = nullptr;
         int rc = getaddrinfo(v[0], "80", nullptr, &res);
         if (rc != 0) {
           printf("%s\n", gai_strerror(rc));
           return 1;
         }
         freeaddrinfo(res);
         printf("ok\n");
         return 0;
       }},
      {"caps",
       [](int, char**) {  // prints the capability sets from /proc/self/status
         FILE* f = fopen("/proc/self/status", "r");
         char line[256];
         while (f && fgets(line, sizeof line, f))
           if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) ||
               !strncmp(line, "Seccomp:", 8) || !strncmp(line, "Uid:", 4))
             fputs(line, stdout);
         return 0;
       }},
      {"core-limit",
       [](int, char**) {
         struct rlimit rl;
         getrlimit(RLIMIT_CORE, &rl);
         printf("%llu\n", static_cast<unsigned long long>(rl.rlim_cur));
         return rl.rlim_cur == 0 ? 0 : 1;
       }},
      {"dumpable",
       [](int, char**) {
         printf("%d\n", prctl(PR_GET_DUMPABLE));
         return 0;
       }},
      {"getenv",
       [](int, char** v) {
         const char* value = getenv(v[0]);
         if (!value) return 1;
         printf("%s\n", value);
         return 0;
       }},
      {"kill", [](int, char** v) { return report(kill(atoi(v[0]), atoi(v[1]))); }},
      {"alloc",
       [](int, char** v) {  // alloc MIB: touch that much memory
         long mib = atol(v[0]);
         for (long i = 0; i < mib; ++i) {
           char* p = static_cast<char*>(malloc(1 << 20));
           if (!p) return report(-1);
           memset(p, 1, 1 << 20);
         }
         printf("ok\n");
         return 0;
       }},
      {"fork-bomb",
       [](int, char**) {  // forks until refused; prints how many children it made
         int made = 0;
         for (int i = 0; i < 100000; ++i) {
           pid_t pid = fork();
           if (pid == 0) {
             pause();
             _exit(0);
           }
           if (pid < 0) {
             printf("refused after %d: %s\n", made, strerrorname_np(errno));
             return 0;
           }
           ++made;
         }
         printf("never refused\n");
         return 1;
       }},
      {"sleep",
       [](int, char** v) {
         sleep(atoi(v[0]));
         return 0;
       }},
      {"signal-exit",
       [](int, char** v) {
         raise(atoi(v[0]));
         return 3;
       }},
      {"trap-term",
       [](int, char** v) {  // waits for SIGTERM, then writes FILE
         sigset_t set;
         sigemptyset(&set);
         sigaddset(&set, SIGTERM);
         sigprocmask(SIG_BLOCK, &set, nullptr);
         printf("waiting\n");
         fflush(stdout);
         int sig;
         sigwait(&set, &sig);
         int fd = open(v[0], O_WRONLY | O_CREAT, 0644);
         if (fd >= 0) close(fd);
         return 42;
       }},
  };
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !actions().count(argv[1])) {
    fprintf(stderr, "usage: ward-probe ACTION [ARGS]; actions:");
    for (const auto& [name, _] : actions()) fprintf(stderr, " %s", name.c_str());
    fprintf(stderr, "\n");
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  return actions().at(argv[1])(argc - 2, argv + 2);
}
