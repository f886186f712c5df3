#include "proxy/proxy.h"

#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <exception>
#include <future>
#include <list>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/log.h"
#include "base/thread.h"
#include "proxy/engine.h"

namespace ward::proxy {
namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kSweepInterval = std::chrono::milliseconds(500);
constexpr auto kStopGrace = std::chrono::seconds(2);

}  // namespace

// Tunnels hold two sockets and, while busy, two pipes: the limit on open files is raised so
// that thousands of connections fit.
void raise_file_limit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  constexpr rlim_t kWanted = 1 << 20;
  struct rlimit wanted = {kWanted, kWanted};
  if (rl.rlim_max < kWanted && ::setrlimit(RLIMIT_NOFILE, &wanted) == 0) return;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

struct Proxy::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  Engine engine{io, {}, {}, {}, nullptr, nullptr, nullptr, nullptr};
  std::list<Sandbox> sandboxes;
  asio::steady_timer sweep{io};
  bool sweep_parked = false;  // no connection: the sweep waits for accept_loop to wake it
  std::uint64_t generations = 0;
  std::thread thread;
  std::promise<void> finished;

  asio::awaitable<void> accept_loop(Sandbox& sandbox);
  asio::awaitable<void> sweep_loop();
  bool no_pooled_upstreams() const {
    for (const Sandbox& s : sandboxes)
      if (!s.pool.empty()) return false;
    return true;
  }
  void start_thread();
};

asio::awaitable<void> Proxy::Impl::accept_loop(Sandbox& sandbox) {
  for (;;) {
    auto [ec, client] = co_await sandbox.acceptor.async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || engine.stopping) co_return;
    if (ec) {
      // EMFILE and the like: say so once per burst and keep serving the others.
      log::warn("egress listener of {}: accept: {}", sandbox.id, ec.message());
      asio::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (sandbox.connections >= engine.limits.max_connections) {
      // Answered without a session: a best-effort 503 on a fresh socket's empty send buffer.
      static const std::string kBusy = [] {
        std::string body =
            "{\"error\":\"too_many_connections\",\"reason\":\"the sandbox has reached its "
            "connection cap\"}\n";
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      }();
      ::send(client.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      // Recorded like every refusal; who called is not looked up (the cap is what keeps that
      // work bounded).
      audit::NetworkEvent refused;
      refused.time = std::chrono::system_clock::now();
      refused.sandbox_id = sandbox.id;
      refused.reason = "the sandbox has reached its connection cap (" +
                       std::to_string(engine.limits.max_connections) + "): answered 503";
      engine.audit.write(refused);
      continue;
    }
    client.set_option(tcp::no_delay(true));
    // A connection's coroutine ends on its own; an exception escaping it (a bug: every failure
    // has an answer) is said, not swallowed.
    asio::co_spawn(io, serve_connection(engine, sandbox, std::move(client)),
                   [id = sandbox.id](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       log::warn("egress proxy of {}: a connection ended on an error: {}", id,
                                 ex.what());
                     } catch (...) {
                       log::warn("egress proxy of {}: a connection ended on an error", id);
                     }
                   });
    if (sweep_parked) {
      sweep_parked = false;
      sweep.cancel();
    }
  }
}

// Twice a second while there are connections or pooled upstreams. With none there is nothing to
// expire, and the loop sleeps until a connection arrives: an idle sandbox's proxy thread never
// wakes (a gateway holds one per running sandbox).
asio::awaitable<void> Proxy::Impl::sweep_loop() {
  bool woken = false;  // by accept_loop: its connection's session may not exist yet
  while (!engine.stopping) {
    sweep_parked = !woken && engine.sessions.empty() && no_pooled_upstreams();
    if (sweep_parked)
      sweep.expires_at(asio::steady_timer::time_point::max());
    else
      sweep.expires_after(kSweepInterval);
    auto [ec] = co_await sweep.async_wait(kNoThrow);
    if (engine.stopping || (ec && ec != asio::error::operation_aborted)) co_return;
    woken = ec == asio::error::operation_aborted;
    if (!woken) {
      const auto now = Clock::now();
      expire_sessions(engine, now);
      for (Sandbox& s : sandboxes) s.pool.expire(now);
    }
  }
}

void Proxy::Impl::start_thread() {
  if (thread.joinable()) return;
  raise_file_limit();
  // A connection holds up to four descriptors (two sockets, and a tunnel's two pipes): a cap the
  // open-file limit cannot hold would end in accept() failing, unanswered and unrecorded (a
  // red-team found it at 700 tunnels under a hard limit of 1,024). Lowered to what fits, said.
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    const std::size_t fits =
        rl.rlim_cur > 256 ? static_cast<std::size_t>((rl.rlim_cur - 128) / 4) : 32;
    if (engine.limits.max_connections > fits) {
      log::warn(
          "the open-file limit ({}) holds about {} proxy connections: --max-connections "
          "lowered from {} to {}",
          static_cast<unsigned long long>(rl.rlim_cur), fits, engine.limits.max_connections, fits);
      engine.limits.max_connections = fits;
    }
  }
  thread = quiet_thread([this] {
    io.run();
    finished.set_value();
  });
  asio::co_spawn(io, sweep_loop(), asio::detached);
}

bool Interception::prepare() {
  if (upstream) return true;
  if (!error.empty()) return false;
  auto failed = [this](std::string why) {
    error = std::move(why);
    log::error("HTTPS interception is off: {}", error);
    return false;
  };
  if (!authority) {
    auto loaded = tls::Authority::load_or_create(state_dir);
    if (!loaded) return failed("ward's CA: " + loaded.error().describe());
    authority = std::move(*loaded);
  }
  auto context = tls::make_upstream_context(upstream_ca);
  if (!context) return failed(context.error().describe());
  server.emplace(tls::make_server_context());
  upstream.emplace(std::move(*context));
  return true;
}

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Proxy>> Proxy::create(Options options,
                                             std::shared_ptr<const policy::Policy> policy) {
  // The event loop's epoll, eventfd and timerfd are made here: Asio throws when the process is
  // out of descriptors or memory.
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>();
  } catch (const boost::system::system_error& e) {
    return fail("cannot make the proxy's event loop: " + e.code().message(), e.code().value());
  }
  auto sink = audit::Sink::open(options.audit_path, options.audit_stderr, options.audit_max_bytes);
  if (!sink) return tl::unexpected(sink.error());
  impl->engine.limits = options.limits;
  impl->engine.hosts = std::move(options.hosts);
  impl->engine.audit = std::move(*sink);
  impl->engine.generation =
      std::make_shared<const Generation>(++impl->generations, std::move(policy));
  if (!options.ca_state_dir.empty()) {
    impl->engine.tls = std::make_unique<Interception>();
    impl->engine.tls->state_dir = std::move(options.ca_state_dir);
    impl->engine.tls->upstream_ca = std::move(options.upstream_ca);
    impl->engine.tls->authority = std::move(options.authority);
  }
  impl->engine.vault = std::move(options.vault);
  impl->engine.inference = std::move(options.inference_routes);
  if (impl->engine.inference && !impl->engine.inference->empty()) {
    // Model calls carry bodies of tens to hundreds of KiB, read whole and rewritten: with glibc's
    // defaults each such buffer is mmapped and unmapped (or trimmed) per call, page faults and TLB
    // shoot-downs included — about half of ward's CPU on a 64 KiB prompt. Keep them in the heap.
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  }
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

Proxy::~Proxy() {
  stop();
}

Result<void> Proxy::serve(std::string sandbox_id, UniqueFd listener, UniqueFd diag,
                          pid_t init_pid) {
  Impl& m = *impl_;
  try {
    m.start_thread();
  } catch (const std::system_error& e) {
    return fail(std::string("cannot start the proxy's thread: ") + e.what(), e.code().value());
  } catch (const std::exception& e) {
    return fail(std::string("cannot start the proxy's thread: ") + e.what());
  }
  const int fd = listener.release();
  asio::post(m.io, [&m, fd, id = std::move(sandbox_id),
                    diag = std::make_shared<UniqueFd>(std::move(diag)), init_pid]() mutable {
    tcp::acceptor acceptor(m.io);
    boost::system::error_code ec;
    acceptor.assign(tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      log::error("egress listener of {}: {}", id, ec.message());
      return;
    }
    Sandbox& sandbox = m.sandboxes.emplace_back(
        std::move(id), PeerFinder(std::move(*diag), init_pid), std::move(acceptor));
    sandbox.listener_port = sandbox.acceptor.local_endpoint(ec).port();
    sandbox.pool.set_idle(m.engine.limits.upstream_idle);
    asio::co_spawn(m.io, m.accept_loop(sandbox), asio::detached);
  });
  return {};
}

void Proxy::install(std::shared_ptr<const policy::Policy> policy) {
  Impl& m = *impl_;
  asio::post(m.io, [&m, policy = std::move(policy)]() mutable {
    m.engine.generation = std::make_shared<const Generation>(++m.generations, std::move(policy));
    reconsider_tunnels(m.engine);
  });
}

void Proxy::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl& m = *impl_;
  asio::post(m.io, [&m] {
    m.engine.stopping = true;
    boost::system::error_code ignored;
    for (Sandbox& s : m.sandboxes) {
      s.acceptor.close(ignored);
      s.pool.clear();
    }
    m.sweep.cancel();
    abort_sessions(m.engine);
  });
  m.work.reset();
  // Sessions end on their own once interrupted; one that does not within the grace period is
  // abandoned with the loop (the process is about to exit, or the gateway shuts down).
  const bool drained = m.finished.get_future().wait_for(kStopGrace) == std::future_status::ready;
  if (!drained) m.io.stop();
  m.thread.join();
  // Handlers still pending own sessions that refer to the engine: they cannot be destroyed
  // safely in any member order, so an undrained loop is left to the process's exit.
  if (!drained) static_cast<void>(impl_.release());
}

}  // namespace ward::proxy
