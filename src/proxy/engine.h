// The proxy's internals shared by proxy.cc (listeners, generations, the timeout sweep) and
// session.cc (one client connection). Everything here lives on the event loop's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "audit/sink.h"
#include "policy/matcher.h"
#include "proxy/hosts.h"
#include "proxy/peer.h"
#include "proxy/proxy.h"

namespace ward::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// One policy generation, compiled once and shared by the connections that started under it.
struct Generation {
  std::uint64_t id = 0;
  std::shared_ptr<const policy::Policy> policy;
  policy::NetworkMatcher matcher;

  Generation(std::uint64_t id, std::shared_ptr<const policy::Policy> p)
      : id(id), policy(std::move(p)), matcher(policy->network) {}
};

// One sandbox's egress listener.
struct Sandbox {
  std::string id;
  PeerFinder peers;
  tcp::acceptor acceptor;
  std::uint16_t listener_port = 0;
  std::size_t connections = 0;

  Sandbox(std::string id, PeerFinder peers, tcp::acceptor acceptor)
      : id(std::move(id)), peers(std::move(peers)), acceptor(std::move(acceptor)) {}
};

class Session;

struct Engine {
  asio::io_context& io;
  Limits limits;
  HostsFile hosts;
  audit::Sink audit;
  std::shared_ptr<const Generation> generation;
  bool stopping = false;
  // Every live session, for the timeout sweep and stop(); a session removes itself when done.
  std::list<Session*> sessions;
};

// Serves one accepted connection to its end.
asio::awaitable<void> serve_connection(Engine& engine, Sandbox& sandbox, tcp::socket client);

// Called by the sweep (twice a second): closes the sessions whose deadline has passed.
void expire_sessions(Engine& engine, Clock::time_point now);
// Called by stop(): ends every session.
void abort_sessions(Engine& engine);

}  // namespace ward::proxy
