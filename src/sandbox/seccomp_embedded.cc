#include "sandbox/seccomp.h"
#include "sandbox/seccomp_rules.h"

namespace ward::sandbox::seccomp {
namespace {
constexpr sock_filter kProgram[] = {
#include "seccomp_program.inc"
};
}  // namespace

std::span<const sock_filter> embedded() {
  return kProgram;
}

std::vector<std::string> describe() {
  std::vector<std::string> out;
  std::string denied = "denied (EPERM):";
  for (const char* name : kDenied) denied += std::string(" ") + name;
  out.push_back(denied);
  out.push_back("clone with any namespace flag: EPERM; clone3: ENOSYS (libc falls back to clone)");
  out.push_back(
      "socket families other than AF_UNIX, AF_INET, AF_INET6: EAFNOSUPPORT; "
      "AF_NETLINK only with NETLINK_ROUTE");
  out.push_back("ioctl TIOCSTI, TIOCLINUX and TIOCSETD: EPERM");
  out.push_back(
      "setting a setuid or setgid bit (chmod, fchmod, fchmodat, open, openat, creat, "
      "mknod, mknodat): EPERM; openat2 and fchmodat2: ENOSYS");
  out.push_back("personality flags that disable ASLR or map page zero: EPERM");
  out.push_back("syscalls of a foreign ABI (i386, x32): the process is killed");
  return out;
}

}  // namespace ward::sandbox::seccomp
