#include "tls/context.h"

#include <gtest/gtest.h>

#include "tls/bundle.h"
#include "tls/test_util.h"

namespace ward::tls {
namespace {

namespace ssl = boost::asio::ssl;
using testing::handshake;
using testing::TempDir;

class Interception : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = Authority::load_or_create(tmp_.path());
    ASSERT_TRUE(loaded) << loaded.error().describe();
    ca_ = *loaded;
  }

  std::function<void(SSL*)> serve(const std::string& host) {
    auto leaf = ca_->leaf(host);
    EXPECT_TRUE(leaf) << leaf.error().describe();
    return [leaf = *leaf](SSL* ssl) { use_leaf(ssl, *leaf); };
  }

  // A client as curl or python inside the sandbox would be: trusts ward's CA (from the bundle),
  // checks the host name, offers `alpn`.
  ssl::context sandbox_client(std::string_view alpn) {
    ssl::context ctx(ssl::context::tls_client);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.native_handle()), ca_->cert());
    ctx.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_alpn_protos(ctx.native_handle(),
                            reinterpret_cast<const unsigned char*>(alpn.data()),
                            static_cast<unsigned>(alpn.size()));
    return ctx;
  }

  static std::function<void(SSL*)> expect_host(const std::string& host) {
    return [host](SSL* ssl) {
      SSL_set1_host(ssl, host.c_str());
      SSL_set_tlsext_host_name(ssl, host.c_str());
    };
  }

  std::function<void(SSL*)> upstream(const std::string& host) {
    return [host](SSL* ssl) {
      auto prepared = prepare_upstream(ssl, host);
      ASSERT_TRUE(prepared) << prepared.error().describe();
    };
  }

  ssl::context upstream_context(const std::vector<std::string>& extra) {
    auto ctx = make_upstream_context(extra);
    EXPECT_TRUE(ctx) << ctx.error().describe();
    return std::move(*ctx);
  }

  TempDir tmp_;
  std::shared_ptr<Authority> ca_;
  ssl::context server_ = make_server_context();
};

using namespace std::string_view_literals;

TEST_F(Interception, SandboxClientAcceptsWardLeafAndAgreesOnHttp11) {
  ssl::context client = sandbox_client("\x02h2\x08http/1.1"sv);
  auto result =
      handshake(server_, serve("api.example.com"), client, expect_host("api.example.com"));
  EXPECT_FALSE(result.server_error) << result.server_error.message();
  EXPECT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_EQ(result.alpn, "http/1.1");
  EXPECT_GE(result.version, TLS1_2_VERSION);

  // The same leaf does not pass for another host.
  auto wrong = handshake(server_, serve("api.example.com"), client, expect_host("evil.example"));
  EXPECT_TRUE(wrong.client_error);
  EXPECT_TRUE(wrong.server_error);
}

TEST_F(Interception, ClientOfferingOnlyH2GetsNoAlpnAndHttp11) {
  ssl::context client = sandbox_client("\x02h2"sv);
  auto result =
      handshake(server_, serve("api.example.com"), client, expect_host("api.example.com"));
  EXPECT_FALSE(result.server_error) << result.server_error.message();
  EXPECT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_EQ(result.alpn, "");
}

TEST_F(Interception, RefusesTls11AndAcceptsTls12) {
  ssl::context old_client = sandbox_client("\x08http/1.1"sv);
  SSL_CTX_set_security_level(old_client.native_handle(), 0);  // let the client offer TLS 1.1
  SSL_CTX_set_min_proto_version(old_client.native_handle(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(old_client.native_handle(), TLS1_1_VERSION);
  auto old = handshake(server_, serve("a.example"), old_client, expect_host("a.example"));
  EXPECT_TRUE(old.server_error);
  EXPECT_TRUE(old.client_error);

  ssl::context client12 = sandbox_client("\x08http/1.1"sv);
  SSL_CTX_set_max_proto_version(client12.native_handle(), TLS1_2_VERSION);
  auto result = handshake(server_, serve("a.example"), client12, expect_host("a.example"));
  EXPECT_FALSE(result.client_error) << result.client_error.message();
  EXPECT_EQ(result.version, TLS1_2_VERSION);
  EXPECT_EQ(result.alpn, "http/1.1");
}

// ward's upstream side against a server with a leaf of ward's own CA (as --upstream-ca): the
// second connection to the same host:port resumes, on both sides of the interception.
TEST_F(Interception, UpstreamVerifiesAndResumes) {
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    ssl::context client = upstream_context({ca_->cert_path()});
    SSL_CTX_set_max_proto_version(client.native_handle(), version);
    UpstreamSessions sessions;
    auto connect = [&](std::uint16_t port) {
      bool offered = false;
      auto result = handshake(server_, serve("api.example.com"), client, [&](SSL* ssl) {
        ASSERT_TRUE(prepare_upstream(ssl, "api.example.com"));
        offered = sessions.offer(ssl, "api.example.com", port);
      });
      EXPECT_FALSE(result.client_error) << result.client_error.message();
      EXPECT_EQ(result.alpn, "http/1.1");
      EXPECT_EQ(result.version, version);
      EXPECT_EQ(result.resumed, offered);
      return result.resumed;
    };
    EXPECT_FALSE(connect(443));
    EXPECT_EQ(sessions.size(), 1u);
    EXPECT_TRUE(connect(443));
    EXPECT_TRUE(connect(443));  // a TLS 1.3 ticket is used once, and the resumption left a new one
    EXPECT_FALSE(connect(8443));
    EXPECT_EQ(sessions.size(), 2u);
  }
}

TEST_F(Interception, UpstreamRefusesSelfSignedServer) {
  auto self = testing::self_signed("api.example.com");
  ssl::context client = upstream_context({});
  UpstreamSessions sessions;
  auto result = handshake(
      server_,
      [&](SSL* ssl) { SSL_use_cert_and_key(ssl, self.cert.get(), self.key.get(), nullptr, 1); },
      client,
      [&](SSL* ssl) {
        ASSERT_TRUE(prepare_upstream(ssl, "api.example.com"));
        sessions.offer(ssl, "api.example.com", 443);
      });
  EXPECT_TRUE(result.client_error);
  EXPECT_EQ(result.verify_failure, "self-signed certificate");
  EXPECT_EQ(sessions.size(), 0u);
}

TEST_F(Interception, UpstreamRefusesWrongNamesUnknownCasAndExpiredCertificates) {
  ssl::context trusting = upstream_context({ca_->cert_path()});
  auto mismatch = handshake(server_, serve("a.example"), trusting, upstream("b.example"));
  EXPECT_TRUE(mismatch.client_error);
  EXPECT_EQ(mismatch.verify_failure, "hostname mismatch");

  auto wildcard_like =
      handshake(server_, serve("example.com"), trusting, upstream("a.example.com"));
  EXPECT_EQ(wildcard_like.verify_failure, "hostname mismatch");

  auto ip = handshake(server_, serve("127.0.0.1"), trusting, upstream("127.0.0.1"));
  EXPECT_FALSE(ip.client_error) << ip.client_error.message();
  EXPECT_EQ(ip.verify_failure, "");
  auto ip6 = handshake(server_, serve("::1"), trusting, upstream("[::1]"));
  EXPECT_FALSE(ip6.client_error) << ip6.client_error.message();
  auto ip_mismatch = handshake(server_, serve("127.0.0.1"), trusting, upstream("127.0.0.2"));
  EXPECT_EQ(ip_mismatch.verify_failure, "IP address mismatch");

  ssl::context system_only = upstream_context({});
  auto unknown = handshake(server_, serve("a.example"), system_only, upstream("a.example"));
  EXPECT_TRUE(unknown.client_error);
  EXPECT_EQ(unknown.verify_failure, "unable to get local issuer certificate");

  std::time_t two_days_ago = std::time(nullptr) - 2 * 86400;
  ca_->set_clock([=] { return two_days_ago; });
  auto expired = handshake(server_, serve("old.example"), trusting, upstream("old.example"));
  EXPECT_TRUE(expired.client_error);
  EXPECT_EQ(expired.verify_failure, "certificate has expired");
}

TEST_F(Interception, PrepareUpstreamSendsSniForNamesOnly) {
  ssl::context client = upstream_context({});
  SslPtr named(SSL_new(client.native_handle()));
  ASSERT_TRUE(prepare_upstream(named.get(), "API.example.com."));
  EXPECT_STREQ(SSL_get_servername(named.get(), TLSEXT_NAMETYPE_host_name), "API.example.com");
  SslPtr address(SSL_new(client.native_handle()));
  ASSERT_TRUE(prepare_upstream(address.get(), "[2001:db8::1]"));
  EXPECT_EQ(SSL_get_servername(address.get(), TLSEXT_NAMETYPE_host_name), nullptr);
  SslPtr bad(SSL_new(client.native_handle()));
  EXPECT_FALSE(prepare_upstream(bad.get(), ""));
  EXPECT_FALSE(prepare_upstream(bad.get(), std::string("a\0b", 3)));
  EXPECT_FALSE(prepare_upstream(bad.get(), "."));
}

TEST_F(Interception, UpstreamCaFileErrorsNameTheFile) {
  auto missing = make_upstream_context({tmp_ / "missing.pem"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().describe().find(tmp_ / "missing.pem"), std::string::npos);
  EXPECT_EQ(missing.error().err, ENOENT);

  testing::write_text(tmp_ / "garbage.pem", "hello\n");
  auto garbage = make_upstream_context({ca_->cert_path(), tmp_ / "garbage.pem"});
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find(tmp_ / "garbage.pem"), std::string::npos)
      << garbage.error().message;

  testing::write_text(tmp_ / "key-only.pem", testing::read_text(tmp_ / "tls/ca.key"));
  auto key_only = make_upstream_context({tmp_ / "key-only.pem"});
  ASSERT_FALSE(key_only);
  EXPECT_NE(key_only.error().message.find("key-only.pem"), std::string::npos);
}

TEST_F(Interception, UpstreamContextTrustsTheSystemStore) {
  const char* system = "/etc/ssl/certs/ca-certificates.crt";
  std::string pem = testing::read_text(system);
  if (pem.empty()) GTEST_SKIP() << "no " << system;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr root(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(root);
  ssl::context client = upstream_context({});
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), SSL_CTX_get_cert_store(client.native_handle()), root.get(),
                      nullptr);
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

}  // namespace
}  // namespace ward::tls
