// The two TLS sides of an intercepted connection: the server the sandbox's client talks to
// (ward's leaf for the CONNECT host), and the client ward opens to the real upstream, verified
// against the host's trust store. Both speak TLS >= 1.2 and HTTP/1.1 only over ALPN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "base/result.h"
#include "tls/ca.h"

namespace ward::tls {

// The sandbox side. No certificate of its own: each connection gets its host's leaf with
// use_leaf() before the handshake. Session cache and tickets are on, so a client's resumed
// handshake skips the certificate and the signature.
boost::asio::ssl::context make_server_context();

// A server with a certificate of its own: a PEM chain (the leaf first) and its unencrypted PEM
// key, as `ward gateway --tls-cert --tls-key` takes them. TLS >= 1.2, ALPN http/1.1 when
// offered. Errors name the file and OpenSSL's reason.
Result<boost::asio::ssl::context> make_server_context(const std::string& cert_file,
                                                      const std::string& key_file);

// Sets `leaf`'s certificate and key on one connection (before its handshake).
void use_leaf(SSL* ssl, const Leaf& leaf);

// The upstream side: peer verification against the host's trust store (OpenSSL's defaults,
// which honour SSL_CERT_FILE / SSL_CERT_DIR; the system bundles of bundle.h when the compiled-in
// locations do not exist) plus each of `extra_ca_files` (--upstream-ca: PEM certificates; an
// unreadable file or one without a certificate is an error naming it). Also the client of a
// gateway served over HTTPS (WARD_GATEWAY_CA).
Result<boost::asio::ssl::context> make_upstream_context(
    const std::vector<std::string>& extra_ca_files);

// Before the handshake of an upstream connection: SNI and hostname verification for a name,
// IP address verification (and no SNI) for an IP literal (IPv6 with or without brackets).
Result<void> prepare_upstream(SSL* ssl, std::string_view host);

// Why the upstream's certificate was refused, for the audit record ("certificate has expired",
// "hostname mismatch", "self-signed certificate", ...); empty when it was not refused (the
// handshake failed for another reason, or did not fail).
std::string verify_failure(SSL* ssl);

namespace detail {
struct SessionCache;
}

// Client sessions of upstream connections, keyed by host:port, so that a second connection to
// the same upstream resumes (no certificate chain to verify, no key exchange signature). A
// TLS 1.3 server sends its tickets after the handshake, so sessions are not taken at the end of
// the handshake: every session a connection marked by offer() receives (the new-session callback
// that make_upstream_context installs) is stored under its key, when its certificate verified.
// A TLS 1.3 session is offered once (RFC 8446 C.4); a TLS 1.2 one until replaced. Thread-safe.
class UpstreamSessions {
 public:
  explicit UpstreamSessions(size_t capacity = 256);
  ~UpstreamSessions();

  // Before the handshake of a connection made with a context from make_upstream_context: sets
  // the session last stored for host:port, if any (then returns true), and marks the connection
  // so that the sessions it receives are stored. The connection may outlive this object.
  bool offer(SSL* ssl, std::string_view host, std::uint16_t port);
  size_t size() const;

 private:
  std::shared_ptr<detail::SessionCache> cache_;
};

}  // namespace ward::tls
