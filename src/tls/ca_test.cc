#include "tls/ca.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <sys/wait.h>

#include <cstdlib>
#include <set>

#include "tls/test_util.h"

namespace ward::tls {
namespace {

using testing::file_mode;
using testing::read_text;
using testing::stat_of;
using testing::TempDir;
using testing::verify_cert;
using testing::write_text;

std::shared_ptr<Authority> load(const std::string& dir) {
  auto ca = Authority::load_or_create(dir);
  if (!ca) ADD_FAILURE() << ca.error().describe();
  return ca ? *ca : nullptr;
}

std::string name_entry(X509_NAME* name, int nid) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(name, nid, buf, sizeof buf);
  return buf;
}

bool critical(X509* cert, int nid) {
  int at = X509_get_ext_by_NID(cert, nid, -1);
  return at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, at)) == 1;
}

std::string serial_hex(X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

// Seconds from `t` to the certificate time `asn1` (positive when asn1 is later).
long seconds_after(const ASN1_TIME* asn1, std::time_t t) {
  std::unique_ptr<ASN1_TIME, OsslDeleter<ASN1_TIME_free>> base(ASN1_TIME_set(nullptr, t));
  int days = 0, secs = 0;
  ASN1_TIME_diff(&days, &secs, base.get(), asn1);
  return days * 86400L + secs;
}

TEST(Authority, CreatesCaWithPrivateKeyAndPublicCertificate) {
  TempDir tmp;
  std::string state = tmp / "a/b/state";
  mode_t old_umask = ::umask(0);  // the modes must not depend on the caller's umask
  auto ca = load(state);
  ::umask(old_umask);
  ASSERT_TRUE(ca);
  EXPECT_EQ(file_mode(tmp / "a"), 0700u);
  EXPECT_EQ(file_mode(state), 0700u);
  EXPECT_EQ(file_mode(state + "/tls"), 0700u);
  EXPECT_EQ(file_mode(state + "/tls/ca.key"), 0600u);
  EXPECT_EQ(file_mode(state + "/tls/ca.pem"), 0644u);
  EXPECT_EQ(ca->cert_path(), state + "/tls/ca.pem");
  EXPECT_EQ(read_text(ca->cert_path()), ca->cert_pem());
  EXPECT_EQ(read_text(state + "/tls/ca.key").rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);

  X509* cert = ca->cert();
  EXPECT_EQ(name_entry(X509_get_subject_name(cert), NID_commonName), "ward sandbox CA");
  EXPECT_EQ(name_entry(X509_get_subject_name(cert), NID_organizationName), "ward");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)), 0);
  EXPECT_EQ(X509_check_ca(cert), 1);
  EXPECT_EQ(X509_get_pathlen(cert), 0);
  EXPECT_TRUE(critical(cert, NID_basic_constraints));
  EXPECT_TRUE(critical(cert, NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(cert), nullptr);
  long validity = seconds_after(X509_get0_notAfter(cert), std::time(nullptr));
  EXPECT_GT(validity, 9L * 365 * 86400);
  EXPECT_LT(validity, 11L * 365 * 86400);
  EXPECT_GE(serial_hex(cert).size(), 24u);  // 128 random bits: fewer than 96 is a 2^-32 chance

  EVP_PKEY* pub = X509_get0_pubkey(cert);
  char group[64] = {};
  size_t len = 0;
  EVP_PKEY_get_group_name(pub, group, sizeof group, &len);
  EXPECT_EQ(std::string(group), "prime256v1");
  // Its own chain verifies under strict X.509 rules (and not as a TLS server).
  EXPECT_EQ(verify_cert(cert, cert, nullptr, nullptr, 0, X509_PURPOSE_ANY), "");
  EXPECT_EQ(verify_cert(cert, cert, nullptr), "unsuitable certificate purpose");
}

TEST(Authority, KeepsModesUnderRestrictiveUmask) {
  TempDir tmp;
  mode_t old_umask = ::umask(077);
  auto ca = load(tmp / "state");
  ::umask(old_umask);
  ASSERT_TRUE(ca);
  EXPECT_EQ(file_mode(tmp / "state/tls/ca.pem"), 0644u);  // the bundle's readers need it
}

TEST(Authority, ReloadsTheSameCaUnchanged) {
  TempDir tmp;
  auto first = load(tmp.path());
  ASSERT_TRUE(first);
  struct stat key_before = stat_of(tmp / "tls/ca.key");
  struct stat cert_before = stat_of(tmp / "tls/ca.pem");
  auto second = load(tmp.path());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->cert_pem(), first->cert_pem());
  struct stat key_after = stat_of(tmp / "tls/ca.key");
  struct stat cert_after = stat_of(tmp / "tls/ca.pem");
  EXPECT_EQ(key_after.st_ino, key_before.st_ino);
  EXPECT_EQ(cert_after.st_ino, cert_before.st_ino);
  EXPECT_EQ(cert_after.st_mtim.tv_nsec, cert_before.st_mtim.tv_nsec);
  // A leaf of the second instance verifies against the first one's certificate.
  auto leaf = second->leaf("example.com");
  ASSERT_TRUE(leaf);
  EXPECT_EQ(verify_cert(first->cert(), (*leaf)->cert.get(), "example.com"), "");
}

TEST(Authority, RefusesKeyReadableByOthers) {
  TempDir tmp;
  ASSERT_TRUE(load(tmp.path()));
  std::string key = read_text(tmp / "tls/ca.key");
  ASSERT_EQ(::chmod((tmp / "tls/ca.key").c_str(), 0644), 0);
  auto again = Authority::load_or_create(tmp.path());
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("ca.key"), std::string::npos) << again.error().message;
  EXPECT_NE(again.error().message.find("0644"), std::string::npos) << again.error().message;
  EXPECT_EQ(read_text(tmp / "tls/ca.key"), key);  // reported, never replaced

  ASSERT_EQ(::chmod((tmp / "tls/ca.key").c_str(), 0640), 0);
  EXPECT_FALSE(Authority::load_or_create(tmp.path()));
  ASSERT_EQ(::chmod((tmp / "tls/ca.key").c_str(), 0600), 0);
  EXPECT_TRUE(Authority::load_or_create(tmp.path()));
}

TEST(Authority, RefusesKeyThatDoesNotMatchTheCertificate) {
  TempDir one, two;
  ASSERT_TRUE(load(one.path()));
  ASSERT_TRUE(load(two.path()));
  write_text(one / "tls/ca.key", read_text(two / "tls/ca.key"));
  auto ca = Authority::load_or_create(one.path());
  ASSERT_FALSE(ca);
  EXPECT_NE(ca.error().message.find("does not match"), std::string::npos) << ca.error().message;
}

TEST(Authority, RefusesGarbageAndHalfMadeState) {
  TempDir tmp;
  ASSERT_TRUE(load(tmp.path()));
  std::string key = read_text(tmp / "tls/ca.key");
  std::string cert = read_text(tmp / "tls/ca.pem");

  write_text(tmp / "tls/ca.key", "not a key\n");
  auto bad_key = Authority::load_or_create(tmp.path());
  ASSERT_FALSE(bad_key);
  EXPECT_NE(bad_key.error().message.find("ca.key"), std::string::npos);
  EXPECT_EQ(read_text(tmp / "tls/ca.key"), "not a key\n");

  write_text(tmp / "tls/ca.key", key);
  write_text(tmp / "tls/ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  auto bad_cert = Authority::load_or_create(tmp.path());
  ASSERT_FALSE(bad_cert);
  EXPECT_NE(bad_cert.error().message.find("ca.pem"), std::string::npos);

  ASSERT_EQ(::unlink((tmp / "tls/ca.pem").c_str()), 0);
  auto half = Authority::load_or_create(tmp.path());
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().message.find("without ca.pem"), std::string::npos);
  EXPECT_EQ(read_text(tmp / "tls/ca.key"), key);

  write_text(tmp / "tls/ca.pem", cert);
  EXPECT_TRUE(Authority::load_or_create(tmp.path()));
  EXPECT_FALSE(Authority::load_or_create(""));
}

TEST(Authority, ConcurrentProcessesEndUpWithOneCa) {
  TempDir tmp;
  constexpr int kChildren = 4;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<std::pair<pid_t, int>> children;
  for (int i = 0; i < kChildren; ++i) {
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char c;
      (void)!::read(go[0], &c, 1);  // every child starts at once: when the parent closes `go`
      auto ca = Authority::load_or_create(tmp.path());
      std::string pem = ca ? (*ca)->cert_pem() : "error: " + ca.error().describe();
      (void)!::write(out[1], pem.data(), pem.size());
      ::_exit(ca ? 0 : 1);
    }
    ::close(out[1]);
    children.emplace_back(pid, out[0]);
  }
  ::close(go[0]);
  ::close(go[1]);
  std::set<std::string> pems;
  for (auto [pid, fd] : children) {
    std::string pem;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) pem.append(buf, static_cast<size_t>(n));
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << pem;
    pems.insert(pem);
  }
  EXPECT_EQ(pems.size(), 1u);
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  EXPECT_EQ(*pems.begin(), ca->cert_pem());
}

TEST(Leaf, VerifiesForItsHostOnly) {
  TempDir tmp;
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  std::time_t now = std::time(nullptr);
  auto leaf = ca->leaf("api.example.com");
  ASSERT_TRUE(leaf) << leaf.error().describe();
  X509* cert = (*leaf)->cert.get();
  EXPECT_EQ(verify_cert(ca->cert(), cert, "api.example.com"), "");
  EXPECT_EQ(verify_cert(ca->cert(), cert, "other.example.com"), "hostname mismatch");
  EXPECT_EQ(verify_cert(ca->cert(), cert, "example.com"), "hostname mismatch");

  EXPECT_EQ(name_entry(X509_get_subject_name(cert), NID_commonName), "api.example.com");
  EXPECT_EQ(X509_check_ca(cert), 0);
  EXPECT_TRUE(critical(cert, NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_NE(X509_get0_subject_key_id(cert), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(cert), nullptr);
  EXPECT_NEAR(seconds_after(X509_get0_notBefore(cert), now), -3600, 5);
  EXPECT_NEAR(seconds_after(X509_get0_notAfter(cert), now), 24 * 3600, 5);

  // Another CA's leaf for the same host does not verify against this one.
  TempDir other;
  auto stranger = load(other.path());
  ASSERT_TRUE(stranger);
  auto foreign = stranger->leaf("api.example.com");
  ASSERT_TRUE(foreign);
  EXPECT_NE(verify_cert(ca->cert(), (*foreign)->cert.get(), "api.example.com"), "");
}

TEST(Leaf, HostSpellingsShareOneLeaf) {
  TempDir tmp;
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  auto a = ca->leaf("API.Example.com.");
  auto b = ca->leaf("api.example.com");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ((*a)->host, "api.example.com");
  // A long name: the CN is cut at 64 characters, the SAN holds all of it.
  std::string longname = std::string(60, 'a') + "." + std::string(60, 'b') + ".example";
  auto long_leaf = ca->leaf(longname);
  ASSERT_TRUE(long_leaf) << long_leaf.error().describe();
  EXPECT_EQ(name_entry(X509_get_subject_name((*long_leaf)->cert.get()), NID_commonName).size(),
            64u);
  EXPECT_EQ(verify_cert(ca->cert(), (*long_leaf)->cert.get(), longname.c_str()), "");
}

TEST(Leaf, IpLiteralsGetIpSans) {
  TempDir tmp;
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  auto v4 = ca->leaf("127.0.0.1");
  ASSERT_TRUE(v4) << v4.error().describe();
  EXPECT_EQ(verify_cert(ca->cert(), (*v4)->cert.get(), nullptr, "127.0.0.1"), "");
  EXPECT_EQ(verify_cert(ca->cert(), (*v4)->cert.get(), nullptr, "127.0.0.2"),
            "IP address mismatch");
  // The SAN is an address, not a DNS name spelled like one.
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i((*v4)->cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(names);
  ASSERT_EQ(sk_GENERAL_NAME_num(names.get()), 1);
  EXPECT_EQ(sk_GENERAL_NAME_value(names.get(), 0)->type, GEN_IPADD);

  auto v6 = ca->leaf("[2001:DB8:0::1]");
  ASSERT_TRUE(v6) << v6.error().describe();
  EXPECT_EQ((*v6)->host, "2001:db8::1");
  EXPECT_EQ(verify_cert(ca->cert(), (*v6)->cert.get(), nullptr, "2001:db8::1"), "");
  EXPECT_EQ(verify_cert(ca->cert(), (*v6)->cert.get(), nullptr, "2001:db8::2"),
            "IP address mismatch");
  auto bare = ca->leaf("2001:db8::1");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->get(), v6->get());
}

TEST(Leaf, RefusesWhatIsNeitherANameNorAnAddress) {
  TempDir tmp;
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  for (const std::string& host : std::vector<std::string>{
           "", ".", "a b", "a..b", "*.example.com", "[example.com]", "[::1", "exa/mple",
           "ex\xc3\xa4mple.com", "fe80::1%eth0", std::string(254, 'a'),
           std::string(64, 'a') + ".com", std::string("a\0b", 3)}) {
    auto leaf = ca->leaf(host);
    EXPECT_FALSE(leaf) << "host '" << host << "' got a certificate";
    if (!leaf) {
      EXPECT_FALSE(leaf.error().message.empty());
    }
  }
  EXPECT_EQ(ca->cached(), 0u);
}

TEST(Leaf, LeastRecentlyUsedIsEvicted) {
  TempDir tmp;
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  ca->set_cache_capacity(2);
  auto a = *ca->leaf("a.example");
  auto b = *ca->leaf("b.example");
  EXPECT_EQ(ca->leaf("a.example")->get(), a.get());  // a is now the most recent
  auto c = *ca->leaf("c.example");                   // evicts b
  EXPECT_EQ(ca->cached(), 2u);
  EXPECT_EQ(ca->leaf("a.example")->get(), a.get());
  EXPECT_EQ(ca->leaf("c.example")->get(), c.get());
  auto b2 = *ca->leaf("b.example");
  EXPECT_NE(b2.get(), b.get());
  EXPECT_NE(serial_hex(b2->cert.get()), serial_hex(b->cert.get()));
  // The evicted leaf the caller still holds stays usable.
  EXPECT_EQ(verify_cert(ca->cert(), b->cert.get(), "b.example"), "");

  ca->set_cache_capacity(1);
  EXPECT_EQ(ca->cached(), 1u);
  EXPECT_EQ(ca->leaf("b.example")->get(), b2.get());  // the most recent one stayed
}

TEST(Leaf, ReMintedAfterHalfItsLifetime) {
  TempDir tmp;
  auto ca = load(tmp.path());
  ASSERT_TRUE(ca);
  std::time_t now = std::time(nullptr);
  ca->set_clock([&] { return now; });
  auto first = *ca->leaf("a.example");
  EXPECT_EQ(first->minted, now);
  std::time_t start = now;
  now = start + 11 * 3600;
  EXPECT_EQ(ca->leaf("a.example")->get(), first.get());
  now = start + 12 * 3600;
  auto second = *ca->leaf("a.example");
  EXPECT_NE(second.get(), first.get());
  EXPECT_EQ(second->minted, now);
  EXPECT_NEAR(seconds_after(X509_get0_notAfter(second->cert.get()), now), 24 * 3600, 1);
  // Valid at a time the first one no longer is.
  std::time_t later = start + 30 * 3600;
  EXPECT_EQ(verify_cert(ca->cert(), second->cert.get(), "a.example", nullptr, later), "");
  EXPECT_EQ(verify_cert(ca->cert(), first->cert.get(), "a.example", nullptr, later),
            "certificate has expired");
  // A clock that went back: the cached leaf would not be valid yet, so a new one is made.
  now = start - 2 * 3600;
  EXPECT_NE(ca->leaf("a.example")->get(), second.get());
}

// Other verifiers accept the chain too, with their strictest X.509 checks: the openssl command
// line tool and Python's ssl module (a handshake in memory, as `requests` would do it).
int run(const std::string& command) {
  int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class Interop : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = load(tmp_.path());
    ASSERT_TRUE(ca_);
  }
  // Writes the leaf for `host` and its key into the temporary directory.
  void write_leaf(const std::string& host) {
    auto leaf = ca_->leaf(host);
    ASSERT_TRUE(leaf) << leaf.error().describe();
    write_text(tmp_ / "leaf.pem", to_pem((*leaf)->cert.get()));
    write_text(tmp_ / "leaf.key", to_pem((*leaf)->key.get()));
  }
  TempDir tmp_;
  std::shared_ptr<Authority> ca_;
};

TEST_F(Interop, OpensslVerifyAcceptsTheChain) {
  if (run("openssl version") != 0) GTEST_SKIP() << "no openssl command";
  std::string verify =
      "openssl verify -x509_strict -purpose sslserver -CAfile " + ca_->cert_path() + " ";
  write_leaf("api.example.com");
  EXPECT_EQ(run(verify + "-verify_hostname api.example.com " + (tmp_ / "leaf.pem")), 0);
  EXPECT_NE(run(verify + "-verify_hostname other.example.com " + (tmp_ / "leaf.pem")), 0);
  write_leaf("10.1.2.3");
  EXPECT_EQ(run(verify + "-verify_ip 10.1.2.3 " + (tmp_ / "leaf.pem")), 0);
  EXPECT_NE(run(verify + "-verify_ip 10.1.2.4 " + (tmp_ / "leaf.pem")), 0);
  // The CA itself under strict checks (a self-signed CA verifies against itself).
  EXPECT_EQ(run("openssl verify -x509_strict -CAfile " + ca_->cert_path() + " " + ca_->cert_path()),
            0);
}

constexpr const char* kPythonHandshake = R"PY(
import ssl, sys
ca, cert, key, host = sys.argv[1:5]
server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server.load_cert_chain(cert, key)
client = ssl.create_default_context(cafile=ca)
client.verify_flags |= ssl.VERIFY_X509_STRICT
bios = [ssl.MemoryBIO() for _ in range(4)]
c = client.wrap_bio(bios[0], bios[1], server_hostname=host)
s = server.wrap_bio(bios[2], bios[3], server_side=True)
def step(end):
    try:
        end.do_handshake()
        return True
    except ssl.SSLWantReadError:
        return False
done = [False, False]
for _ in range(10):
    done[0] = done[0] or step(c)
    bios[2].write(bios[1].read())
    done[1] = done[1] or step(s)
    bios[0].write(bios[3].read())
    if all(done):
        sys.exit(0)
sys.exit(3)
)PY";

TEST_F(Interop, PythonStrictVerificationAcceptsTheChain) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  write_text(tmp_ / "handshake.py", kPythonHandshake);
  std::string python = "/usr/bin/python3 " + (tmp_ / "handshake.py") + " " + ca_->cert_path() +
                       " " + (tmp_ / "leaf.pem") + " " + (tmp_ / "leaf.key") + " ";
  write_leaf("api.example.com");
  EXPECT_EQ(run(python + "api.example.com"), 0);
  EXPECT_EQ(run(python + "other.example.com"), 1);  // ssl.SSLCertVerificationError
  write_leaf("::1");
  EXPECT_EQ(run(python + "::1"), 0);
  EXPECT_EQ(run(python + "::2"), 1);
}

}  // namespace
}  // namespace ward::tls
