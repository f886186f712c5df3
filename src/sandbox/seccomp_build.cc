// The filter's rules. Default action: allow; everything listed here fails with EPERM (clone3 with
// ENOSYS so that libc falls back to clone, whose flags the filter can inspect). A syscall from a
// foreign architecture (i386 via int 0x80, x32) kills the process: the rules below are written for
// the native ABI only.
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "sandbox/seccomp.h"
#include "sandbox/seccomp_rules.h"

namespace ward::sandbox::seccomp {
namespace {

struct CtxDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

Result<> add(scmp_filter_ctx ctx, uint32_t action, const char* name, unsigned count = 0,
             const scmp_arg_cmp* args = nullptr) {
  int nr = seccomp_syscall_resolve_name(name);
  // Too new for an older libseccomp but security-relevant: its number (the same on x86_64 and
  // the generic table aarch64 uses).
  if (nr == __NR_SCMP_ERROR && std::strcmp(name, "fchmodat2") == 0) nr = 452;
  if (nr == __NR_SCMP_ERROR) return {};  // not on this architecture / too new for libseccomp
  int rc = seccomp_rule_add_array(ctx, action, nr, count, args);
  if (rc < 0) return fail(std::string("seccomp rule for ") + name, -rc);
  return {};
}

}  // namespace

Result<std::vector<sock_filter>> build() {
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return fail("seccomp_init failed");
  scmp_filter_ctx c = ctx.get();
  if (int rc = seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
    return fail("seccomp bad-arch action", -rc);
  // A binary search over syscall numbers instead of a linear list: every syscall the workload
  // makes runs through this program.
  if (int rc = seccomp_attr_set(c, SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0)
    return fail("seccomp optimisation level", -rc);
  // No SECCOMP_FILTER_FLAG_TSYNC etc.: the workload is single-threaded when it loads the filter.
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);

  for (const char* name : kDenied)
    if (auto r = add(c, eperm, name); !r) return tl::unexpected(r.error());

  if (auto r = add(c, SCMP_ACT_ERRNO(ENOSYS), "clone3"); !r) return tl::unexpected(r.error());
  for (unsigned long long flag : kNamespaceFlags) {
    scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
    if (auto r = add(c, eperm, "clone", 1, &cmp); !r) return tl::unexpected(r.error());
  }

  // Families below AF_NETLINK one by one; everything from AF_PACKET (17) up in one comparison.
  for (int family = 0; family < AF_PACKET; ++family) {
    if (family_allowed(family)) continue;
    scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family));
    if (auto r = add(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &cmp); !r)
      return tl::unexpected(r.error());
  }
  scmp_arg_cmp high = SCMP_A0(SCMP_CMP_GE, AF_PACKET);
  if (auto r = add(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &high); !r)
    return tl::unexpected(r.error());
  scmp_arg_cmp netlink[] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK), SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE)};
  if (auto r = add(c, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 2, netlink); !r)
    return tl::unexpected(r.error());

  // ioctl's request is an unsigned int: compare the low 32 bits only. TIOCSETD: a line
  // discipline (N_NULL) left on the user's terminal swallows it after the sandbox ends, and others
  // are modules the kernel would load on demand.
  for (unsigned long request : {static_cast<unsigned long>(TIOCSTI), 0x541CUL /*TIOCLINUX*/,
                                static_cast<unsigned long>(TIOCSETD)}) {
    scmp_arg_cmp cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, request);
    if (auto r = add(c, eperm, "ioctl", 1, &cmp); !r) return tl::unexpected(r.error());
  }

  // No setuid or setgid bit can be set on any file: files a root-run workload creates in an
  // idmapped workdir belong to the owner (root) on the host, and nosuid only holds inside the
  // sandbox. Every syscall that sets a mode is checked; openat2 (its mode is in a struct the
  // filter cannot read) and fchmodat2 answer ENOSYS, so libc uses the checked ones.
  for (const ModeArg& m : kModeArgs) {
    for (unsigned long long bit :
         {static_cast<unsigned long long>(S_ISUID), static_cast<unsigned long long>(S_ISGID)}) {
      scmp_arg_cmp cmp = {m.arg, SCMP_CMP_MASKED_EQ, bit, bit};
      if (auto r = add(c, eperm, m.name, 1, &cmp); !r) return tl::unexpected(r.error());
    }
  }
  for (const char* name : {"openat2", "fchmodat2"})
    if (auto r = add(c, SCMP_ACT_ERRNO(ENOSYS), name); !r) return tl::unexpected(r.error());

  for (unsigned long long flag : kPersonalityFlags) {
    scmp_arg_cmp cmp[] = {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)};
    if (auto r = add(c, eperm, "personality", 1, cmp); !r) return tl::unexpected(r.error());
  }

  // libseccomp 2.5 exports to an fd only: go through a pipe (the program is a few KiB).
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return fail_errno("pipe");
  int rc = seccomp_export_bpf(c, fds[1]);
  ::close(fds[1]);
  if (rc < 0) {
    ::close(fds[0]);
    return fail("seccomp_export_bpf", -rc);
  }
  std::vector<unsigned char> bytes;
  unsigned char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  ::close(fds[0]);
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0)
    return fail("seccomp_export_bpf produced a malformed program");
  std::vector<sock_filter> program(bytes.size() / sizeof(sock_filter));
  std::memcpy(program.data(), bytes.data(), bytes.size());
  return program;
}

}  // namespace ward::sandbox::seccomp
