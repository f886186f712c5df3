// The proxy's internals shared by proxy.cc (listeners, generations, the timeout sweep) and
// session.cc (one client connection). Everything here lives on the event loop's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <boost/asio/ssl/context.hpp>

#include "audit/sink.h"
#include "creds/vault.h"
#include "inference/routes.h"
#include "policy/matcher.h"
#include "proxy/hosts.h"
#include "proxy/peer.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "tls/ca.h"
#include "tls/context.h"

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
  // Bytes its connections hold whole (bodies read for rewriting, websocket text frames), against
  // Limits::max_buffered: however many connections a sandbox opens, no more than that of bodies
  // (each connection's own buffers, tens of KiB, are bounded by Limits::max_connections).
  std::size_t buffered = 0;
  UpstreamPool pool;  // intercepted upstreams left idle, for its next CONNECTs

  Sandbox(std::string id, PeerFinder peers, tcp::acceptor acceptor)
      : id(std::move(id)), peers(std::move(peers)), acceptor(std::move(acceptor)) {}
};

// HTTPS interception: ward's CA, the two TLS sides, and resumable upstream sessions. Loading the
// CA key and the system's trust store takes tens of milliseconds (OpenSSL 3's decoders), so it
// happens at the first connection that needs it, on the proxy's thread, never on ward's start-up
// path; a sandbox that never needs interception never pays for it.
struct Interception {
  std::string state_dir;                 // where ward's CA lives (tls/ca.pem, tls/ca.key)
  std::vector<std::string> upstream_ca;  // --upstream-ca files
  std::shared_ptr<tls::Authority> authority;
  std::optional<asio::ssl::context> server;
  std::optional<asio::ssl::context> upstream;
  std::string error;  // why prepare() failed; interception then fails closed
  tls::UpstreamSessions sessions{256};

  // Loads what is missing, once (true when everything is there).
  bool prepare();
};

class Session;

struct Engine {
  asio::io_context& io;
  Limits limits;
  HostsFile hosts;
  audit::Sink audit;
  std::shared_ptr<const Generation> generation;
  std::unique_ptr<Interception> tls;          // null: no CA, no interception
  std::shared_ptr<const creds::Vault> vault;  // null: no credentials
  // inference.local's routes, tried in order (null or empty: inference.local is not served).
  std::shared_ptr<const std::vector<inference::Route>> inference;
  bool stopping = false;
  // Every live session, for the timeout sweep and stop(); a session removes itself when done.
  std::list<Session*> sessions;
};

// Serves one accepted connection to its end.
asio::awaitable<void> serve_connection(Engine& engine, Sandbox& sandbox, tcp::socket client);

// Called by the sweep (twice a second while there are sessions): closes the sessions whose
// deadline has passed.
void expire_sessions(Engine& engine, Clock::time_point now);
// Called by stop(): ends every session.
void abort_sessions(Engine& engine);
// Called when a new policy generation is installed: closes the opaque tunnels it no longer
// allows (Session::reconsider).
void reconsider_tunnels(Engine& engine);

}  // namespace ward::proxy
