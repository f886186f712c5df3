// Helpers of ward_tls's tests: temporary directories, file modes, a TLS handshake between two
// Asio streams over a socketpair, and certificate checks with OpenSSL's verifier.
#pragma once

#include <ftw.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "tls/context.h"
#include "tls/ossl.h"

namespace ward::tls::testing {

class TempDir {
 public:
  TempDir() {
    std::string templ = "/tmp/ward-tls-test.XXXXXX";
    if (!::mkdtemp(templ.data())) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline mode_t file_mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

inline struct stat stat_of(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline size_t count_certs(const std::string& pem) {
  size_t n = 0;
  for (size_t at = pem.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
       at = pem.find("-----BEGIN CERTIFICATE-----", at + 1))
    ++n;
  return n;
}

// OpenSSL's verifier with strict X.509 checks and the TLS server purpose: "" when `cert` chains
// to `anchor` and matches `host` (or `ip`) at time `at` (0: now), else OpenSSL's reason.
inline std::string verify_cert(X509* anchor, X509* cert, const char* host, const char* ip = nullptr,
                               std::time_t at = 0, int purpose = X509_PURPOSE_SSL_SERVER) {
  X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), anchor);
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  if (host) X509_VERIFY_PARAM_set1_host(param, host, 0);
  if (ip) X509_VERIFY_PARAM_set1_ip_asc(param, ip);
  if (at) X509_VERIFY_PARAM_set_time(param, at);
  if (X509_verify_cert(ctx.get()) == 1) return "";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

// A self-signed P-256 certificate for DNS name `host`, valid now.
struct SelfSigned {
  X509Ptr cert;
  EvpPkeyPtr key;
};
inline SelfSigned self_signed(const std::string& host) {
  SelfSigned out{X509Ptr(X509_new()), EvpPkeyPtr(EVP_EC_gen("P-256"))};
  X509* x = out.cert.get();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, out.key.get());
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509ExtensionPtr san(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, ("DNS:" + host).c_str()));
  X509_add_ext(x, san.get(), -1);
  X509_sign(x, out.key.get(), EVP_sha256());
  return out;
}

struct Handshake {
  boost::system::error_code server_error;
  boost::system::error_code client_error;
  std::string alpn;  // as the client sees it
  int version = 0;   // SSL_version of the client
  bool resumed = false;
  std::string verify_failure;  // tls::verify_failure of the client
};

// A handshake between a server and a client stream over a socketpair, on one io_context. After
// it, the server writes one byte and the client reads it, so that the client has processed the
// TLS 1.3 tickets the server sent after its Finished.
inline Handshake handshake(boost::asio::ssl::context& server_ctx,
                           const std::function<void(SSL*)>& server_setup,
                           boost::asio::ssl::context& client_ctx,
                           const std::function<void(SSL*)>& client_setup) {
  namespace asio = boost::asio;
  using Stream = asio::ssl::stream<asio::local::stream_protocol::socket>;
  asio::io_context io;
  asio::local::stream_protocol::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  Stream server(std::move(a), server_ctx);
  Stream client(std::move(b), client_ctx);
  if (server_setup) server_setup(server.native_handle());
  if (client_setup) client_setup(client.native_handle());
  Handshake out;
  char byte = 'x';
  char got = 0;
  server.async_handshake(Stream::server, [&](boost::system::error_code e) {
    out.server_error = e;
    if (e) {
      server.next_layer().close();
      return;
    }
    asio::async_write(server, asio::buffer(&byte, 1), [](boost::system::error_code, size_t) {});
  });
  client.async_handshake(Stream::client, [&](boost::system::error_code e) {
    out.client_error = e;
    if (e) {
      client.next_layer().close();
      return;
    }
    asio::async_read(client, asio::buffer(&got, 1), [](boost::system::error_code, size_t) {});
  });
  io.run_for(std::chrono::seconds(10));
  SSL* ssl = client.native_handle();
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn) out.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  out.version = SSL_version(ssl);
  out.resumed = SSL_session_reused(ssl) == 1;
  out.verify_failure = verify_failure(ssl);
  return out;
}

}  // namespace ward::tls::testing
