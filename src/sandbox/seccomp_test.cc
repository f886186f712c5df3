// The filter is built as intended and, loaded in a child, denies what it says it denies.
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/seccomp.h"

namespace ward::sandbox::seccomp {
namespace {

TEST(Seccomp, EmbeddedProgramIsTheOneTheRulesBuild) {
  auto built = build();
  ASSERT_TRUE(built) << built.error().describe();
  auto embedded_program = embedded();
  ASSERT_EQ(built->size(), embedded_program.size());
  for (size_t i = 0; i < built->size(); ++i) {
    EXPECT_EQ((*built)[i].code, embedded_program[i].code) << i;
    EXPECT_EQ((*built)[i].k, embedded_program[i].k) << i;
  }
}

// Runs `probe` in a child under the embedded filter; returns the errno it reports (0 = the call
// succeeded), or -1 when the child was killed.
int errno_under_filter(const std::function<long()>& probe) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    auto program = embedded();
    struct sock_fprog prog = {static_cast<unsigned short>(program.size()),
                              const_cast<sock_filter*>(program.data())};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
      ::_exit(100);
    errno = 0;
    long rc = probe();
    int err = rc < 0 ? errno : 0;
    if (::write(fds[1], &err, sizeof err) != sizeof err) ::_exit(101);
    ::_exit(0);
  }
  ::close(fds[1]);
  int err = -1;
  if (::read(fds[0], &err, sizeof err) != sizeof err) err = -1;
  ::close(fds[0]);
  int status;
  ::waitpid(pid, &status, 0);
  return err;
}

TEST(Seccomp, DeniesDebuggingAndKernelAttackSurface) {
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_ptrace, 0 /*TRACEME*/, 0, 0, 0); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_bpf, 0, 0, 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_perf_event_open, 0, 0, -1, -1, 0); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_io_uring_setup, 1, nullptr); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_userfaultfd, 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_keyctl, 0, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_add_key, 0, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_kexec_load, 0, 0, 0, 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_finit_module, -1, "", 0); }), EPERM);
}

TEST(Seccomp, DeniesMountsAndNamespaces) {
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_mount, "none", "/", "tmpfs", 0, 0); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_umount2, "/", 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_pivot_root, "/", "/"); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_chroot, "/"); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_unshare, CLONE_NEWUSER); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_setns, 0, 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_fsopen, "tmpfs", 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_open_tree, -1, "/", 0); }), EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_clone3, nullptr, 0); }), ENOSYS);
  for (long flag : {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP}) {
    EXPECT_EQ(
        errno_under_filter([flag] { return ::syscall(SYS_clone, flag | SIGCHLD, 0, 0, 0, 0); }),
        EPERM)
        << flag;
  }
}

TEST(Seccomp, PlainForkStillWorks) {
  EXPECT_EQ(errno_under_filter([] {
              pid_t pid = ::fork();
              if (pid == 0) ::_exit(0);
              return static_cast<long>(::waitpid(pid, nullptr, 0));
            }),
            0);
}

TEST(Seccomp, SocketFamilies) {
  auto socket_errno = [](int family, int type, int protocol) {
    return errno_under_filter([=] {
      long fd = ::socket(family, type, protocol);
      if (fd >= 0) ::close(static_cast<int>(fd));
      return fd;
    });
  };
  EXPECT_EQ(socket_errno(AF_PACKET, SOCK_RAW, 0), EAFNOSUPPORT);
  EXPECT_EQ(socket_errno(AF_VSOCK, SOCK_STREAM, 0), EAFNOSUPPORT);
  EXPECT_EQ(socket_errno(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT), EAFNOSUPPORT);
  EXPECT_EQ(socket_errno(AF_NETLINK, SOCK_RAW, 4 /*NETLINK_SOCK_DIAG*/), EAFNOSUPPORT);
  EXPECT_EQ(socket_errno(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 0);
  EXPECT_EQ(socket_errno(AF_UNIX, SOCK_STREAM, 0), 0);
  EXPECT_EQ(socket_errno(AF_INET, SOCK_STREAM, 0), 0);
  EXPECT_EQ(socket_errno(AF_INET6, SOCK_DGRAM, 0), 0);
}

TEST(Seccomp, TerminalInjectionIoctls) {
  EXPECT_EQ(errno_under_filter([] {
              char c = 'x';
              return static_cast<long>(::ioctl(0, TIOCSTI, &c));
            }),
            EPERM);
  // The upper 32 bits of the request are ignored by the kernel: they must not bypass the rule.
  EXPECT_EQ(errno_under_filter([] {
              char c = 'x';
              return ::syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c);
            }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_ioctl, 0, 0x541CUL, 0); }), EPERM);
  // N_NULL as the line discipline would leave the user's terminal dead after the sandbox.
  EXPECT_EQ(errno_under_filter([] {
              int ldisc = 27;
              return static_cast<long>(::ioctl(0, TIOCSETD, &ldisc));
            }),
            EPERM);
}

TEST(Seccomp, PersonalityFlagsThatWeakenTheProcess) {
  EXPECT_EQ(errno_under_filter([] { return static_cast<long>(::personality(ADDR_NO_RANDOMIZE)); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return static_cast<long>(::personality(READ_IMPLIES_EXEC)); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return static_cast<long>(::personality(PER_LINUX)); }), 0);
}

// A root-run workload's files in an idmapped workdir belong to root on the host: no setuid or
// setgid bit may be set by any route.
TEST(Seccomp, NoSetuidOrSetgidBits) {
  char path[] = "/tmp/ward-seccomp-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::string p = path;
  EXPECT_EQ(errno_under_filter([&] { return static_cast<long>(::chmod(p.c_str(), 04755)); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([&] { return static_cast<long>(::chmod(p.c_str(), 02755)); }),
            EPERM);
  EXPECT_EQ(errno_under_filter([&] { return static_cast<long>(::chmod(p.c_str(), 0755)); }), 0);
  EXPECT_EQ(
      errno_under_filter([&] { return ::syscall(SYS_fchmodat, AT_FDCWD, p.c_str(), 04755, 0); }),
      EPERM);
  std::string created = p + ".new";
  EXPECT_EQ(errno_under_filter([&] {
              return static_cast<long>(::open(created.c_str(), O_CREAT | O_WRONLY, 04755));
            }),
            EPERM);
  EXPECT_EQ(errno_under_filter([&] {
              return ::syscall(SYS_mknodat, AT_FDCWD, created.c_str(), S_IFREG | 04755, 0);
            }),
            EPERM);
  EXPECT_EQ(errno_under_filter([] { return ::syscall(SYS_openat2, AT_FDCWD, "/", nullptr, 0); }),
            ENOSYS);
  EXPECT_EQ(errno_under_filter(
                [&] { return ::syscall(452 /*fchmodat2*/, AT_FDCWD, p.c_str(), 04755, 0); }),
            ENOSYS);
  ::unlink(p.c_str());
  ::unlink(created.c_str());
}

TEST(Seccomp, ForeignAbiKillsTheProcess) {
  // An x32 syscall number (bit 30 set) must not slip past rules written for x86_64.
  EXPECT_EQ(errno_under_filter([] { return ::syscall(0x40000000 | SYS_ptrace, 0, 0, 0, 0); }), -1);
}

TEST(Seccomp, DescribeNamesTheDeniedSyscalls) {
  auto lines = describe();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("ptrace"), std::string::npos);
  EXPECT_NE(lines[0].find("io_uring_setup"), std::string::npos);
}

}  // namespace
}  // namespace ward::sandbox::seccomp
