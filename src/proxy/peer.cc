#include "proxy/peer.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>

#include "base/log.h"

namespace ward::proxy {
namespace {

std::string read_small(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  char buf[4096];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// /proc/PID/stat: the parent pid (field 4) and the start time (field 22), read after the
// command name, which may contain spaces and parentheses.
struct Stat {
  pid_t ppid = 0;
  unsigned long long start_time = 0;
};
bool read_stat(pid_t pid, Stat& out) {
  std::string s = read_small("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = s.rfind(')');
  if (paren == std::string::npos) return false;
  const char* p = s.c_str() + paren + 2;  // at field 3 (state)
  char* end = nullptr;
  for (int field = 3; field < 22 && *p; ++field) {
    if (field == 4) out.ppid = static_cast<pid_t>(std::strtol(p, &end, 10));
    p = std::strchr(p, ' ');
    if (!p) return false;
    ++p;
  }
  out.start_time = std::strtoull(p, &end, 10);
  return true;
}

// The whole of a /proc file, up to `limit` bytes. /proc/PID/status is usually ~1.5 KiB, but
// its Groups line lists every supplementary group: a user in a few hundred directory groups
// pushes NSpid past 4 KiB.
std::string read_whole(const std::string& path, std::size_t limit = 1 << 20) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  if (!fd) return out;
  char buf[4096];
  while (out.size() < limit) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// The pid as the sandbox sees it: the last NSpid entry.
int inner_pid(pid_t host_pid) {
  return last_nspid(read_whole("/proc/" + std::to_string(host_pid) + "/status"));
}

bool is_link(int dir, const char* name, const std::string& link) {
  char buf[64];
  ssize_t n = ::readlinkat(dir, name, buf, sizeof buf);
  return n == static_cast<ssize_t>(link.size()) && std::memcmp(buf, link.data(), link.size()) == 0;
}

// Whether `pid` holds the socket `link`, and at which descriptor (`fd`). Where the previous
// socket was found, and the few descriptors after it, are tried before the whole table: a
// client that closes a connection and opens the next gets the same number back, and one that
// keeps them open gets the next one — either way one or two readlinks, where reading the whole
// table made a process holding N connections pay O(N) for each new one.
// `budget`: how many more descriptors may be read (each readlink counts); at 0 the search ends,
// not found.
bool holds_socket(pid_t pid, const std::string& link, int& fd, long& budget) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) return false;
  constexpr int kNear = 4;
  for (int n = fd; fd >= 0 && n < fd + kNear && budget > 0; ++n) {
    --budget;
    if (is_link(d.get(), std::to_string(n).c_str(), link)) {
      fd = n;
      return true;
    }
  }
  DIR* listing = ::fdopendir(d.get());
  if (!listing) return false;
  static_cast<void>(d.release());  // closedir closes it
  bool found = false;
  while (budget > 0) {
    struct dirent* e = ::readdir(listing);
    if (!e) break;
    if (e->d_name[0] == '.') continue;
    --budget;
    if (is_link(::dirfd(listing), e->d_name, link)) {
      fd = std::atoi(e->d_name);
      found = true;
      break;
    }
  }
  ::closedir(listing);
  return found;
}

// Every process of the sandbox, breadth first from the init (its children, theirs, ...).
std::vector<pid_t> sandbox_processes(pid_t init_pid) {
  std::vector<pid_t> out;
  std::deque<pid_t> queue{init_pid};
  while (!queue.empty()) {
    pid_t pid = queue.front();
    queue.pop_front();
    if (pid != init_pid) out.push_back(pid);
    std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(tasks.c_str());
    if (!d) continue;
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string children = read_small(tasks + "/" + e->d_name + "/children");
      const char* p = children.c_str();
      char* end;
      for (long child; (child = std::strtol(p, &end, 10)) > 0; p = end)
        queue.push_back(static_cast<pid_t>(child));
    }
    ::closedir(d);
  }
  return out;
}

}  // namespace

const std::string& Caller::binary() const {
  static const std::string kUnknown;
  return binaries.empty() ? kUnknown : binaries.front();
}

PeerFinder::PeerFinder(UniqueFd diag, pid_t init_pid)
    : diag_(std::move(diag)), init_pid_(init_pid) {}

std::uint64_t PeerFinder::socket_inode(std::uint32_t client_addr, std::uint16_t client_port,
                                       std::uint16_t listener_port) {
  // One exact lookup (no dump): the client's socket, client_addr:client_port → 127.0.0.1:listener.
  // The client's address is part of the key: any 127/8 address is the sandbox's own to bind, and
  // a lookup that assumed 127.0.0.1 would find another process's connection from that port (or,
  // with nothing there, a listener on it).
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
  } query = {};
  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.request.sdiag_family = AF_INET;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_states = ~0U;
  query.request.id.idiag_sport = htons(client_port);
  query.request.id.idiag_dport = htons(listener_port);
  query.request.id.idiag_src[0] = htonl(client_addr);
  query.request.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
  query.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(diag_.get(), &query, sizeof query, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) != sizeof query)
    return 0;
  alignas(struct nlmsghdr) char buf[1024];
  ssize_t n = ::recv(diag_.get(), buf, sizeof buf, 0);
  if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(struct inet_diag_msg)))) return 0;
  auto* header = reinterpret_cast<struct nlmsghdr*>(buf);
  if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY) return 0;  // NLMSG_ERROR: no such socket
  auto* msg = static_cast<struct inet_diag_msg*>(NLMSG_DATA(header));
  // The kernel's lookup falls back to a listening socket on the source port: only the very
  // connection counts.
  const auto& id = msg->id;
  if (msg->idiag_state == TCP_LISTEN || id.idiag_sport != query.request.id.idiag_sport ||
      id.idiag_dport != query.request.id.idiag_dport ||
      id.idiag_src[0] != query.request.id.idiag_src[0] ||
      id.idiag_dst[0] != query.request.id.idiag_dst[0])
    return 0;
  return msg->idiag_inode;
}

pid_t PeerFinder::owner_of(std::uint64_t inode) {
  const std::string link = "socket:[" + std::to_string(inode) + "]";
  // The walk runs on the proxy's thread, on ward's CPU: a sandbox whose processes hold hundreds
  // of thousands of descriptors made each of its new connections take seconds (a red-team
  // session: 150 processes of 20,000 each, 6-11 s a connection). Past kLookupBudget descriptors
  // the caller is not found, and rules that name binaries refuse the connection.
  long budget = kLookupBudget;
  if (last_owner_ && holds_socket(last_owner_, link, last_fd_, budget)) return last_owner_;
  for (pid_t pid : sandbox_processes(init_pid_)) {
    if (pid == last_owner_) continue;
    int fd = -1;
    if (holds_socket(pid, link, fd, budget)) {
      last_fd_ = fd;
      return last_owner_ = pid;
    }
    if (budget <= 0) {
      if (!warned_)
        log::warn(
            "sandbox processes hold more than {} descriptors: the callers of some "
            "connections are not looked for further, and rules that name binaries refuse "
            "them",
            kLookupBudget);
      warned_ = true;
      break;
    }
  }
  return 0;
}

const Caller* PeerFinder::describe(pid_t host_pid) {
  Stat stat;
  if (!read_stat(host_pid, stat)) return nullptr;
  // A cached entry holds while the pid is the same process (start time) running the same
  // executable: an execve keeps both pid and start time, so the executable is read every time.
  std::string exe = read_link("/proc/" + std::to_string(host_pid) + "/exe");
  if (exe.empty()) return nullptr;
  auto it = known_.find(host_pid);
  if (it != known_.end() && it->second.start_time == stat.start_time &&
      it->second.caller.binary() == exe)
    return &it->second.caller;

  Known known;
  known.start_time = stat.start_time;
  known.caller.pid = inner_pid(host_pid);
  // The executable, then each ancestor's, up to the entrypoint (the init's child).
  known.caller.binaries.push_back(std::move(exe));
  Stat s = stat;
  for (pid_t p = stat.ppid; p > 1 && p != init_pid_; p = s.ppid) {
    std::string ancestor = read_link("/proc/" + std::to_string(p) + "/exe");
    if (ancestor.empty() || !read_stat(p, s)) break;
    known.caller.binaries.push_back(std::move(ancestor));
  }
  if (known_.size() > 4096) known_.clear();  // exited processes are never removed one by one
  return &(known_[host_pid] = std::move(known)).caller;
}

int last_nspid(std::string_view status) {
  std::size_t at = status.starts_with("NSpid:") ? 0 : status.find("\nNSpid:");
  if (at == std::string_view::npos) return 0;
  at += status[at] == '\n' ? 7 : 6;
  std::string_view line = status.substr(at, status.find('\n', at) - at);  // npos: to the end
  const std::size_t last = line.find_last_of(" \t");
  if (last != std::string_view::npos) line.remove_prefix(last + 1);
  int pid = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), pid);
  return ec == std::errc() && end == line.data() + line.size() && pid > 0 ? pid : 0;
}

Caller PeerFinder::find(std::uint32_t client_addr, std::uint16_t client_port,
                        std::uint16_t listener_port) {
  std::uint64_t inode = socket_inode(client_addr, client_port, listener_port);
  if (!inode) return {};
  pid_t owner = owner_of(inode);
  if (!owner) return {};
  const Caller* caller = describe(owner);
  return caller ? *caller : Caller{};
}

}  // namespace ward::proxy
