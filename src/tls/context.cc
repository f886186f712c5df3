#include "tls/context.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include "base/files.h"
#include "base/log.h"
#include "tls/bundle.h"

namespace ward::tls {

namespace detail {

struct SessionCache {
  std::mutex mu;
  size_t capacity = 0;
  std::list<std::pair<std::string, SslSessionPtr>> lru;  // most recently stored first
  std::unordered_map<std::string, decltype(lru)::iterator> by_key;

  void put(const std::string& key, SslSessionPtr session) {
    std::lock_guard lock(mu);
    if (auto it = by_key.find(key); it != by_key.end()) {
      lru.erase(it->second);
      by_key.erase(it);
    }
    lru.emplace_front(key, std::move(session));
    by_key.emplace(key, lru.begin());
    while (lru.size() > capacity) {
      by_key.erase(lru.back().first);
      lru.pop_back();
    }
  }
};

}  // namespace detail

namespace {

using boost::asio::ssl::context;

constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// ALPN on the sandbox side: http/1.1 when the client offers it; otherwise no ALPN at all, and
// the handshake goes on. A client that offered only h2 then speaks HTTP/1.1, as RFC 7301 lets
// a client without an agreed protocol do; ward's L7 codec has no HTTP/2 (it would need its own
// framing, HPACK and per-stream policy decisions).
int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned int inlen, void*) {
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == kHttp11[0] && std::memcmp(in + i + 1, kHttp11 + 1, len) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void common_options(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // An idle intercepted connection keeps no record buffers (~34 KiB each side otherwise).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

// The connection an UpstreamSessions::offer() marked: where its sessions go.
struct Offered {
  std::weak_ptr<detail::SessionCache> cache;
  std::string key;
};

int offered_index() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<Offered*>(ptr);
      });
  return index;
}

// New-session callback of upstream contexts. The cache keeps a copy: OpenSSL marks the session
// of a connection freed without a close_notify as not resumable (ssl_clear_bad_session), a
// TLS 1.0 rule that TLS 1.1 dropped; an upstream connection that just ends must not cost the
// next one its resumption. Returns 0: the connection's own reference is not taken.
int store_session(SSL* ssl, SSL_SESSION* session) {
  auto* offered = static_cast<Offered*>(SSL_get_ex_data(ssl, offered_index()));
  if (!offered || SSL_get_verify_result(ssl) != X509_V_OK || !SSL_SESSION_is_resumable(session))
    return 0;
  auto cache = offered->cache.lock();
  if (!cache) return 0;
  SslSessionPtr copy(SSL_SESSION_dup(session));
  if (copy) cache->put(offered->key, std::move(copy));
  return 0;
}

bool is_directory(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// The host's trust store. OpenSSL's compiled-in locations are Debian's /usr/lib/ssl/cert.pem
// and /usr/lib/ssl/certs (links to /etc/ssl/...) for the libssl.a a static ward links too; on a
// system where they do not exist, the distribution's bundle is loaded by its own path.
Result<void> load_system_trust(SSL_CTX* ctx, bool have_extra) {
  if (SSL_CTX_set_default_verify_paths(ctx) != 1)
    return fail(openssl_error("cannot load the system trust store"));
  ERR_clear_error();  // a missing default file or directory is not an error for OpenSSL either
  if (std::getenv(X509_get_default_cert_file_env()) || std::getenv(X509_get_default_cert_dir_env()))
    return {};
  if (::access(X509_get_default_cert_file(), R_OK) == 0 ||
      is_directory(X509_get_default_cert_dir()))
    return {};
  for (const char* bundle : kSystemBundles) {
    if (::access(bundle, R_OK) != 0) continue;
    if (SSL_CTX_load_verify_locations(ctx, bundle, nullptr) != 1)
      return fail(openssl_error(std::string("cannot load the system CA bundle ") + bundle));
    return {};
  }
  if (have_extra) return {};
  return fail(std::string("no system trust store: neither ") + X509_get_default_cert_file() +
              " nor " + X509_get_default_cert_dir() +
              " nor a system CA bundle exists; install ca-certificates or pass --upstream-ca");
}

// Never a passphrase prompt on the terminal for an encrypted key in a CA file.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

void free_infos(STACK_OF(X509_INFO) * infos) {
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
}

Result<void> add_ca_file(X509_STORE* store, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("cannot open CA file " + path);
  auto text = files::read_all(fd.get(), path);
  if (!text) return tl::unexpected(text.error());
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  std::unique_ptr<STACK_OF(X509_INFO), OsslDeleter<free_infos>> infos(
      bio ? PEM_X509_INFO_read_bio(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!infos) return fail(openssl_error("CA file " + path + " is not PEM"));
  ERR_clear_error();
  int added = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos.get()); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos.get(), i);
    if (!info->x509) continue;
    if (X509_STORE_add_cert(store, info->x509) != 1)
      return fail(openssl_error("cannot add the certificates of " + path));
    ++added;
  }
  if (added == 0) return fail("CA file " + path + " holds no PEM certificate");
  return {};
}

std::string strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return std::string(host.substr(1, host.size() - 2));
  return std::string(host);
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

context make_server_context() {
  context ctx(context::tls_server);
  SSL_CTX* c = ctx.native_handle();
  common_options(c);
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
  // Resumption: TLS 1.3 and 1.2 tickets (OpenSSL's default, a random key per context) and the
  // server-side cache for 1.2 clients without tickets.
  static constexpr unsigned char kSessionContext[] = "ward";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  return ctx;
}

void use_leaf(SSL* ssl, const Leaf& leaf) {
  // Fails only for a key that does not match the certificate, which Authority never mints.
  if (SSL_use_cert_and_key(ssl, leaf.cert.get(), leaf.key.get(), nullptr, 1) != 1) {
    log::error("{}", openssl_error("use_leaf: the leaf for " + leaf.host + " is unusable"));
    std::abort();
  }
}

Result<context> make_server_context(const std::string& cert_file, const std::string& key_file) {
  context ctx(context::tls_server);
  SSL_CTX* c = ctx.native_handle();
  common_options(c);
  SSL_CTX_set_alpn_select_cb(c, select_http11, nullptr);
  SSL_CTX_set_default_passwd_cb(c, no_passphrase);
  if (::access(cert_file.c_str(), R_OK) != 0) return fail_errno("cannot read " + cert_file);
  if (::access(key_file.c_str(), R_OK) != 0) return fail_errno("cannot read " + key_file);
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1)
    return fail(openssl_error(cert_file + " is not a PEM certificate (chain)"));
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    const bool other_key = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    return fail(openssl_error(key_file + (other_key ? " is not the key of " + cert_file
                                                    : " is not an unencrypted PEM private key")));
  }
  return ctx;
}

Result<context> make_upstream_context(const std::vector<std::string>& extra_ca_files) {
  context ctx(context::tls_client);
  SSL_CTX* c = ctx.native_handle();
  common_options(c);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (auto trust = load_system_trust(c, !extra_ca_files.empty()); !trust)
    return tl::unexpected(trust.error());
  for (const auto& file : extra_ca_files) {
    if (auto added = add_ca_file(SSL_CTX_get_cert_store(c), file); !added)
      return tl::unexpected(added.error());
  }
  if (SSL_CTX_set_alpn_protos(c, kHttp11, sizeof kHttp11) != 0)  // 0 is success here
    return fail(openssl_error("cannot set ALPN"));
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c, store_session);
  return ctx;
}

Result<void> prepare_upstream(SSL* ssl, std::string_view host) {
  if (host.empty() || host.find('\0') != std::string_view::npos)
    return fail("invalid upstream host name");
  std::string name = strip_brackets(host);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (is_ip_literal(name)) {
    // RFC 6066: no SNI for an address.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1)
      return fail(openssl_error("cannot verify upstream address " + name));
    return {};
  }
  if (name.back() == '.') name.pop_back();  // SNI carries no trailing dot
  if (name.empty() || SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
    return fail(openssl_error("cannot send SNI for upstream host " + std::string(host)));
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (X509_VERIFY_PARAM_set1_host(param, name.data(), name.size()) != 1)
    return fail(openssl_error("cannot verify upstream host " + std::string(host)));
  return {};
}

std::string verify_failure(SSL* ssl) {
  long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return {};
  return X509_verify_cert_error_string(result);
}

UpstreamSessions::UpstreamSessions(size_t capacity)
    : cache_(std::make_shared<detail::SessionCache>()) {
  cache_->capacity = capacity == 0 ? 1 : capacity;
}

UpstreamSessions::~UpstreamSessions() = default;

bool UpstreamSessions::offer(SSL* ssl, std::string_view host, std::uint16_t port) {
  std::string key = strip_brackets(host);
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!key.empty() && key.back() == '.') key.pop_back();
  key += ':' + std::to_string(port);

  int index = offered_index();
  delete static_cast<Offered*>(SSL_get_ex_data(ssl, index));
  SSL_set_ex_data(ssl, index, new Offered{cache_, key});

  std::lock_guard lock(cache_->mu);
  auto it = cache_->by_key.find(key);
  if (it == cache_->by_key.end()) return false;
  // A TLS 1.3 session leaves the cache (the connection's tickets replace it); a TLS 1.2 one stays
  // and the connection gets a copy, which its end cannot mark unusable.
  SslSessionPtr session;
  if (SSL_SESSION_get_protocol_version(it->second->second.get()) == TLS1_3_VERSION) {
    session = std::move(it->second->second);
    cache_->lru.erase(it->second);
    cache_->by_key.erase(it);
  } else {
    session.reset(SSL_SESSION_dup(it->second->second.get()));
  }
  return session && SSL_set_session(ssl, session.get()) == 1;
}

size_t UpstreamSessions::size() const {
  std::lock_guard lock(cache_->mu);
  return cache_->lru.size();
}

}  // namespace ward::tls
