// ward-tls-bench: what HTTPS interception costs in ward_tls. Minting a leaf for a new host, a
// cached leaf, and a whole TLS 1.3 handshake between ward's sandbox side (make_server_context +
// use_leaf) and ward's upstream side (make_upstream_context + prepare_upstream), in memory (a BIO
// pair: no sockets, no kernel), full or resumed. Issue 4's targets: minting <= 5 ms; a new
// connection with a cached leaf <= 1.5 ms of p50 overhead (two handshakes per intercepted
// connection: the sandbox's with ward, ward's with the upstream).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tls/ca.h"
#include "tls/context.h"
#include "tls/test_util.h"

namespace {

using namespace ward::tls;

struct Setup {
  testing::TempDir dir;
  std::shared_ptr<Authority> ca;
  std::shared_ptr<const Leaf> leaf;
  boost::asio::ssl::context server = make_server_context();
  boost::asio::ssl::context client{boost::asio::ssl::context::tls_client};

  Setup() {
    auto loaded = Authority::load_or_create(dir.path());
    if (!loaded) die(loaded.error().describe());
    ca = *loaded;
    auto minted = ca->leaf("api.example.com");
    if (!minted) die(minted.error().describe());
    leaf = *minted;
    auto upstream = make_upstream_context({ca->cert_path()});
    if (!upstream) die(upstream.error().describe());
    client = std::move(*upstream);
  }
  [[noreturn]] static void die(const std::string& message) {
    std::fprintf(stderr, "ward-tls-bench: %s\n", message.c_str());
    std::exit(1);
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

// One handshake in memory; the client then reads what follows the server's Finished (the TLS 1.3
// tickets), as it would before its first response. Returns whether the client resumed.
bool handshake(Setup& s, UpstreamSessions* sessions) {
  SslPtr server(SSL_new(s.server.native_handle()));
  SslPtr client(SSL_new(s.client.native_handle()));
  use_leaf(server.get(), *s.leaf);
  if (!prepare_upstream(client.get(), "api.example.com")) Setup::die("prepare_upstream");
  if (sessions) sessions->offer(client.get(), "api.example.com", 443);
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  bool client_done = false, server_done = false;
  for (int round = 0; round < 16 && !(client_done && server_done); ++round) {
    for (auto [ssl, done] : {std::pair{client.get(), &client_done}, {server.get(), &server_done}}) {
      if (*done) continue;
      int r = SSL_do_handshake(ssl);
      if (r == 1) {
        *done = true;
      } else if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
        Setup::die(openssl_error("handshake failed") + " " + verify_failure(client.get()));
      }
    }
  }
  if (!client_done || !server_done) Setup::die("handshake did not finish");
  char byte;
  SSL_read(client.get(), &byte, 1);  // processes the tickets, then wants more
  return SSL_session_reused(client.get()) == 1;
}

void BM_MintLeaf(benchmark::State& state) {
  Setup& s = setup();
  size_t n = 0;
  for (auto _ : state) {
    auto leaf = s.ca->leaf("host" + std::to_string(n++) + ".example.com");
    if (!leaf) Setup::die(leaf.error().describe());
    benchmark::DoNotOptimize(leaf->get());
  }
}
BENCHMARK(BM_MintLeaf)->Unit(benchmark::kMicrosecond);

void BM_CachedLeaf(benchmark::State& state) {
  Setup& s = setup();
  for (auto _ : state) {
    auto leaf = s.ca->leaf("api.example.com");
    benchmark::DoNotOptimize(leaf->get());
  }
}
BENCHMARK(BM_CachedLeaf);

void BM_FullHandshake(benchmark::State& state) {
  Setup& s = setup();
  for (auto _ : state) {
    if (handshake(s, nullptr)) Setup::die("resumed without a session");
  }
}
BENCHMARK(BM_FullHandshake)->Unit(benchmark::kMicrosecond);

void BM_ResumedHandshake(benchmark::State& state) {
  Setup& s = setup();
  UpstreamSessions sessions;
  handshake(s, &sessions);
  for (auto _ : state) {
    if (!handshake(s, &sessions)) Setup::die("not resumed");
  }
}
BENCHMARK(BM_ResumedHandshake)->Unit(benchmark::kMicrosecond);

void BM_UpstreamContext(benchmark::State& state) {
  Setup& s = setup();
  for (auto _ : state) {
    auto ctx = make_upstream_context({s.ca->cert_path()});
    benchmark::DoNotOptimize(ctx->native_handle());
  }
}
BENCHMARK(BM_UpstreamContext)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
