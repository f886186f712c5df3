// The seccomp filter's rule tables, shared by the builder (build time, tests) and describe().
#pragma once

#include <sched.h>
#include <sys/socket.h>

namespace ward::sandbox::seccomp {

// Syscalls no agent workload needs and that widen the kernel's attack surface or escape the
// sandbox: debugging other processes, eBPF, perf, io_uring (bypasses seccomp for its operations),
// keyrings, kexec/modules, every way to change the mount table or namespaces.
inline constexpr const char* kDenied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    "bpf",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_tree_attr",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "open_by_handle_at",
    "name_to_handle_at",
    "syslog",
    "uselib",
    "iopl",
    "ioperm",
    "fanotify_init",
    "vhangup",
    "nfsservctl",
    "setdomainname",
    "sethostname",
};

inline constexpr unsigned long long kNamespaceFlags[] = {
    CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
    CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, 0x00000080 /*CLONE_NEWTIME*/};

// Address families a workload may open: unix, IPv4/IPv6 (the sandbox only has lo and the proxy),
// and netlink (NETLINK_ROUTE only, checked separately). AF_PACKET, AF_VSOCK (which would reach the
// hypervisor on a VM), bluetooth, CAN and the rest are refused.
inline bool family_allowed(int family) {
  return family == AF_UNIX || family == AF_INET || family == AF_INET6 || family == AF_NETLINK;
}

// personality(2) flags that weaken the process (ASLR off, executable data, a zero page mapping,
// address-space limits). Plain PER_LINUX / PER_LINUX32 / UNAME26 stay allowed.
inline constexpr unsigned long long kPersonalityFlags[] = {
    0x0040000 /*ADDR_NO_RANDOMIZE*/, 0x0080000 /*FDPIC_FUNCPTRS*/,
    0x0100000 /*MMAP_PAGE_ZERO*/,    0x0200000 /*ADDR_COMPAT_LAYOUT*/,
    0x0400000 /*READ_IMPLIES_EXEC*/, 0x0800000 /*ADDR_LIMIT_32BIT*/,
    0x1000000 /*SHORT_INODE*/,       0x2000000 /*WHOLE_SECONDS*/,
    0x4000000 /*STICKY_TIMEOUTS*/,   0x8000000 /*ADDR_LIMIT_3GB*/};

// Syscalls that take a file mode, and which argument holds it: setuid/setgid bits are refused.
struct ModeArg {
  const char* name;
  unsigned arg;
};
// (mkdir is not listed: a directory's setuid bit means nothing and its setgid bit only passes
// the group on, which grants nothing the workload did not have.)
inline constexpr ModeArg kModeArgs[] = {
    {"chmod", 1},  {"fchmod", 1}, {"fchmodat", 2}, {"open", 2},
    {"openat", 3}, {"creat", 1},  {"mknod", 1},    {"mknodat", 2},
};

}  // namespace ward::sandbox::seccomp
