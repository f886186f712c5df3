// ward-probe: one attempt per invocation, run inside a sandbox by the integration tests.
// Exit 0: the attempt succeeded. Exit 1: it failed (the errno name is printed on stdout).
// Exit 2: bad usage. Anything printed is for the test to read.
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
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
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <string>

extern char** environ;

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
      {"vm-readv-child",
       [](int, char**) {  // a forked child's copy of a buffer: mapped, same uid, our own child
         static char secret[16] = "child's memory";
         pid_t child = fork();
         if (child == 0) {
           pause();
           _exit(0);
         }
         char buf[16];
         struct iovec local = {buf, sizeof buf}, remote = {secret, sizeof secret};
         const long rc = process_vm_readv(child, &local, 1, &remote, 1, 0);
         const int saved = errno;
         kill(child, SIGKILL);
         waitpid(child, nullptr, 0);
         errno = saved;
         return report(rc);
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
      {"connect-unix",  // connect-unix PATH: a stream connection to a Unix socket, and "hello"
       [](int, char** v) {
         int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
         struct sockaddr_un addr = {};
         addr.sun_family = AF_UNIX;
         snprintf(addr.sun_path, sizeof addr.sun_path, "%s", v[0]);
         long rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
         if (rc == 0) rc = write(fd, "hello", 5);
         close(fd);
         return report(rc);
       }},
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
      {"fill",
       [](int, char** v) {  // fill FILE MIB: writes that many MiB of zeros; on a failure prints
                            // the errno and how many whole MiB went in
         int fd = open(v[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
         if (fd < 0) return report(-1);
         static char chunk[1 << 20];
         const long mib = atol(v[1]);
         for (long done = 0; done < mib; ++done) {
           for (size_t off = 0; off < sizeof chunk;) {
             const ssize_t n = write(fd, chunk + off, sizeof chunk - off);
             if (n < 0) {
               const int rc = report(-1);
               printf("after %ld MiB\n", done);
               return rc;
             }
             off += static_cast<size_t>(n);
           }
         }
         printf("ok\n");
         return 0;
       }},
      {"fs-size",
       [](int, char** v) {  // fs-size PATH: prints the size in bytes of the filesystem there
         struct statvfs st;
         if (statvfs(v[0], &st) != 0) return report(-1);
         printf("%llu\n", static_cast<unsigned long long>(st.f_blocks) * st.f_frsize);
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
      // ---- added for the filesystem / process / lifecycle attacks ----
      {"ids",
       [](int, char**) {  // prints "ruid euid suid rgid egid sgid"
         uid_t r, e, s;
         gid_t rg, eg, sg;
         getresuid(&r, &e, &s);
         getresgid(&rg, &eg, &sg);
         printf("%u %u %u %u %u %u\n", r, e, s, rg, eg, sg);
         return 0;
       }},
      {"mount-flags",
       [](int, char** v) {  // prints the mount's flags among: ro nosuid nodev noexec
         struct statvfs st;
         if (statvfs(v[0], &st) != 0) return report(-1);
         printf("%s%s%s%s\n", st.f_flag & ST_RDONLY ? "ro " : "rw ",
                st.f_flag & ST_NOSUID ? "nosuid " : "", st.f_flag & ST_NODEV ? "nodev " : "",
                st.f_flag & ST_NOEXEC ? "noexec " : "");
         return 0;
       }},
      {"read-mem",
       [](int, char** v) {  // read-mem PID: one byte of PID's first mapping via /proc/PID/mem
         std::string base = std::string("/proc/") + v[0];
         FILE* maps = fopen((base + "/maps").c_str(), "r");
         unsigned long start = 0x400000;
         if (maps) {
           if (fscanf(maps, "%lx", &start) != 1) start = 0x400000;
           fclose(maps);
         }
         int fd = open((base + "/mem").c_str(), O_RDONLY);
         if (fd < 0) return report(-1);
         char c;
         long n = pread(fd, &c, 1, static_cast<off_t>(start));
         if (n == 0) errno = EIO;
         return report(n > 0 ? 0 : -1);
       }},
      {"clone3-newuser",
       [](int, char**) {  // clone3 with a real clone_args asking for a new user namespace
         // struct clone_args, version 0 (64 bytes): glibc 2.36 does not declare it.
         struct {
           unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
               tls;
         } args = {};
         args.flags = CLONE_NEWUSER;
         args.exit_signal = SIGCHLD;
         long pid = syscall(SYS_clone3, &args, sizeof args);
         if (pid == 0) _exit(0);
         if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
         return report(pid);
       }},
      {"bpf-map",
       [](int, char**) {  // BPF_MAP_CREATE of a small array map, well-formed
         union bpf_attr attr;
         memset(&attr, 0, sizeof attr);
         attr.map_type = BPF_MAP_TYPE_ARRAY;
         attr.key_size = 4;
         attr.value_size = 4;
         attr.max_entries = 1;
         return report(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
       }},
      {"perf-self",
       [](int, char**) {  // a user-space-only software counter on itself (allowed by paranoia 2)
         struct perf_event_attr attr;
         memset(&attr, 0, sizeof attr);
         attr.size = sizeof attr;
         attr.type = PERF_TYPE_SOFTWARE;
         attr.config = PERF_COUNT_SW_TASK_CLOCK;
         attr.disabled = 1;
         attr.exclude_kernel = 1;
         attr.exclude_hv = 1;
         return report(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
       }},
      {"io-uring-params",
       [](int, char**) {  // io_uring_setup with a valid parameter block
         struct io_uring_params params;
         memset(&params, 0, sizeof params);
         return report(syscall(SYS_io_uring_setup, 4, &params));
       }},
      {"keyctl-session",
       [](int, char**) {  // look up (and create) the session keyring
         return report(syscall(SYS_keyctl, 0 /*KEYCTL_GET_KEYRING_ID*/, -3 /*SESSION*/, 1));
       }},
      {"add-key",
       [](int, char**) {
         return report(syscall(SYS_add_key, "user", "ward-probe", "x", 1, -3 /*SESSION*/));
       }},
      {"userfaultfd-user",
       [](int, char**) {  // UFFD_USER_MODE_ONLY: what an unprivileged process may ask for
         return report(syscall(SYS_userfaultfd, O_CLOEXEC | 1));
       }},
      {"find-in-proc",
       [](int, char** v) {  // find-in-proc HEX: every readable environ/cmdline holding the
                            // hex-decoded needle (hex, so that its own command line does not)
         std::string needle;
         for (const char* h = v[0]; h[0] && h[1]; h += 2)
           needle += static_cast<char>(std::stoi(std::string(h, 2), nullptr, 16));
         bool found = false;
         for (char** e = environ; *e; ++e)
           if (strstr(*e, needle.c_str())) {
             printf("own environment: %s\n", *e);
             found = true;
           }
         DIR* d = opendir("/proc");
         while (struct dirent* e = d ? readdir(d) : nullptr) {
           if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
           for (const char* file : {"environ", "cmdline"}) {
             std::string path = std::string("/proc/") + e->d_name + "/" + file;
             int fd = open(path.c_str(), O_RDONLY);
             if (fd < 0) continue;
             std::string content;
             char buf[4096];
             long n;
             while ((n = read(fd, buf, sizeof buf)) > 0) content.append(buf, n);
             close(fd);
             if (content.find(needle) != std::string::npos) {
               printf("%s\n", path.c_str());
               found = true;
             }
           }
         }
         if (d) closedir(d);
         if (!found) printf("nowhere\n");
         return found ? 0 : 1;
       }},
      {"processes",
       [](int, char**) {  // one line per visible process: "PID CMDLINE" (NULs as spaces)
         DIR* d = opendir("/proc");
         if (!d) return report(-1);
         while (struct dirent* e = readdir(d)) {
           if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
           std::string cmd;
           int fd = open((std::string("/proc/") + e->d_name + "/cmdline").c_str(), O_RDONLY);
           if (fd >= 0) {
             char buf[512];
             long n = read(fd, buf, sizeof buf);
             if (n > 0) cmd.assign(buf, n);
             close(fd);
           }
           while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
           for (char& c : cmd)
             if (c == '\0') c = ' ';
           printf("%s %s\n", e->d_name, cmd.c_str());
         }
         closedir(d);
         return 0;
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
