#include "tls/ca.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>

#include "base/files.h"

namespace ward::tls {
namespace {

constexpr long kHour = 3600;
constexpr int kCaDays = 3650;

// Never ask for a passphrase on the terminal: ward's key has none, and an encrypted one is an
// error, not a prompt.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// The host as it goes into a certificate, or an error for something that is neither a DNS name
// nor an IP literal.
struct HostName {
  std::string name;
  bool ip = false;
};

Result<HostName> normalise_host(std::string_view host) {
  std::string in(host);
  if (in.size() >= 2 && in.front() == '[' && in.back() == ']') {
    in = in.substr(1, in.size() - 2);
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN];
    if (::inet_pton(AF_INET6, in.c_str(), buf) != 1 ||
        !::inet_ntop(AF_INET6, buf, text, sizeof text))
      return fail("not an IPv6 literal: " + std::string(host));
    return HostName{text, true};
  }
  unsigned char buf[16];
  char text[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, in.c_str(), buf) == 1) return HostName{in, true};
  if (::inet_pton(AF_INET6, in.c_str(), buf) == 1 && ::inet_ntop(AF_INET6, buf, text, sizeof text))
    return HostName{text, true};

  if (!in.empty() && in.back() == '.') in.pop_back();
  auto bad = [&](const char* why) {
    return fail("cannot make a certificate for host '" + std::string(host) + "': " + why);
  };
  if (in.empty()) return bad("empty name");
  if (in.size() > 253) return bad("longer than 253 characters");
  size_t label = 0;
  for (char& c : in) {
    if (c == '.') {
      if (label == 0) return bad("empty label");
      label = 0;
      continue;
    }
    if (++label > 63) return bad("a label longer than 63 characters");
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      return bad("not a DNS name or an IP literal");
  }
  if (label == 0) return bad("empty label");
  return HostName{in, false};
}

// Fills in a v3 certificate: a random 128-bit serial, `subject` and validity
// [now + from, now + days + seconds]. Key, issuer and extensions are the caller's.
Result<void> fill_cert(X509* cert, X509_NAME* subject, std::time_t now, long from, int days,
                       long seconds) {
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return fail(openssl_error("RAND_bytes"));
  BignumPtr bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) ||
      X509_set_version(cert, X509_VERSION_3) != 1 ||
      !ASN1_TIME_adj(X509_getm_notBefore(cert), now, 0, from) ||
      !ASN1_TIME_adj(X509_getm_notAfter(cert), now, days, seconds) ||
      X509_set_subject_name(cert, subject) != 1)
    return fail(openssl_error("cannot fill in a certificate"));
  return {};
}

Result<X509ExtensionPtr> extension(X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext) return fail(openssl_error(std::string("cannot make extension ") + value));
  return ext;
}

Result<void> add_extensions(X509* cert, X509V3_CTX* ctx,
                            std::initializer_list<std::pair<int, const char*>> list) {
  for (auto [nid, value] : list) {
    auto ext = extension(ctx, nid, value);
    if (!ext) return tl::unexpected(ext.error());
    if (X509_add_ext(cert, ext->get(), -1) != 1) return fail(openssl_error("X509_add_ext"));
  }
  return {};
}

Result<EvpPkeyPtr> new_p256_key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return fail(openssl_error("cannot generate a P-256 key"));
  return key;
}

// Writes a new CA into `dir` (the caller holds the lock and checked that neither file exists):
// the key first, so that a crash between the two renames leaves a key without a certificate,
// which load_or_create reports rather than replaces.
Result<void> create_ca(const std::string& dir) {
  auto key = new_p256_key();
  if (!key) return tl::unexpected(key.error());
  std::unique_ptr<X509_NAME, OsslDeleter<X509_NAME_free>> name(X509_NAME_new());
  if (!name ||
      !X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>("ward"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>("ward sandbox CA"), -1, -1,
                                  0))
    return fail(openssl_error("cannot make the CA's name"));
  X509Ptr cert(X509_new());
  if (!cert) return fail(openssl_error("X509_new"));
  auto filled = fill_cert(cert.get(), name.get(), std::time(nullptr), -kHour, kCaDays, 0);
  if (!filled) return filled;
  if (X509_set_issuer_name(cert.get(), name.get()) != 1 ||
      X509_set_pubkey(cert.get(), key->get()) != 1)
    return fail(openssl_error("cannot fill in the CA certificate"));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  auto added = add_extensions(cert.get(), &ctx,
                              {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                               {NID_key_usage, "critical,keyCertSign,cRLSign"},
                               {NID_subject_key_identifier, "hash"},
                               {NID_authority_key_identifier, "keyid:always"}});
  if (!added) return added;
  if (X509_sign(cert.get(), key->get(), EVP_sha256()) <= 0)
    return fail(openssl_error("cannot sign the CA certificate"));

  std::string key_pem = to_pem(key->get());
  std::string cert_pem = to_pem(cert.get());
  if (key_pem.empty() || cert_pem.empty()) return fail(openssl_error("cannot encode the CA"));
  if (auto w = files::replace(dir, "ca.key", key_pem, 0600); !w) return w;
  return files::replace(dir, "ca.pem", cert_pem, 0644);
}

struct Loaded {
  X509Ptr cert;
  EvpPkeyPtr key;
  struct timespec cert_mtime {};
};

Result<Loaded> load_ca(const std::string& dir) {
  Loaded out;
  std::string key_path = dir + "/ca.key";
  UniqueFd key_fd(::open(key_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!key_fd) return fail_errno("cannot open " + key_path);
  struct stat st;
  if (::fstat(key_fd.get(), &st) != 0) return fail_errno("cannot stat " + key_path);
  if (!S_ISREG(st.st_mode)) return fail(key_path + " is not a regular file");
  if (st.st_uid != ::geteuid())
    return fail(key_path + " is owned by uid " + std::to_string(st.st_uid) + ", not by ward's " +
                std::to_string(::geteuid()));
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return fail(key_path + " is accessible to group or others (mode " + mode +
                "): the CA key must be private; chmod 600 it if it was never exposed, or remove " +
                dir + "/ca.key and ca.pem to make a new CA");
  }
  auto key_text = files::read_all(key_fd.get(), key_path);
  if (!key_text) return tl::unexpected(key_text.error());
  BioPtr key_bio(BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size())));
  out.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  OPENSSL_cleanse(key_text->data(), key_text->size());
  if (!out.key) return fail(openssl_error(key_path + ": not an unencrypted PEM private key"));
  if (EVP_PKEY_get_base_id(out.key.get()) != EVP_PKEY_EC)
    return fail(key_path + ": not an EC key (ward's CA key is ECDSA P-256)");

  std::string cert_path = dir + "/ca.pem";
  UniqueFd cert_fd(::open(cert_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!cert_fd) return fail_errno("cannot open " + cert_path);
  if (::fstat(cert_fd.get(), &st) != 0) return fail_errno("cannot stat " + cert_path);
  out.cert_mtime = st.st_mtim;
  auto cert_text = files::read_all(cert_fd.get(), cert_path);
  if (!cert_text) return tl::unexpected(cert_text.error());
  BioPtr cert_bio(BIO_new_mem_buf(cert_text->data(), static_cast<int>(cert_text->size())));
  out.cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
  if (!out.cert) return fail(openssl_error(cert_path + ": not a PEM certificate"));

  if (X509_check_private_key(out.cert.get(), out.key.get()) != 1) {
    ERR_clear_error();
    return fail(key_path + " does not match " + cert_path);
  }
  if (X509_check_ca(out.cert.get()) == 0) return fail(cert_path + " is not a CA certificate");
  if (X509_cmp_current_time(X509_get0_notAfter(out.cert.get())) <= 0)
    return fail(cert_path + " has expired: remove ca.key and ca.pem in " + dir +
                " to make a new CA (sandboxes pick it up at their next start)");
  return out;
}

}  // namespace

Authority::Authority(std::string tls_dir)
    : tls_dir_(std::move(tls_dir)), now_([] { return std::time(nullptr); }) {}

Result<std::shared_ptr<Authority>> Authority::load_or_create(const std::string& state_dir) {
  if (state_dir.empty()) return fail("no state directory for ward's CA");
  if (auto made = files::make_dirs(state_dir, 0700); !made) return tl::unexpected(made.error());
  std::string dir = state_dir + "/tls";
  if (auto made = files::make_dirs(dir, 0700); !made) return tl::unexpected(made.error());

  auto lock = files::lock(dir);
  if (!lock) return tl::unexpected(lock.error());
  struct stat st;
  bool has_key = ::lstat((dir + "/ca.key").c_str(), &st) == 0;
  bool has_cert = ::lstat((dir + "/ca.pem").c_str(), &st) == 0;
  if (has_key != has_cert)
    return fail(dir +
                (has_key ? "/ca.key exists without ca.pem" : "/ca.pem exists without ca.key") +
                " (an interrupted creation, or a file removed by hand): remove the other one too "
                "to make a new CA");
  if (!has_key) {
    if (auto created = create_ca(dir); !created) return tl::unexpected(created.error());
  }
  auto loaded = load_ca(dir);
  if (!loaded) return tl::unexpected(loaded.error());

  auto leaf_key = new_p256_key();
  if (!leaf_key) return tl::unexpected(leaf_key.error());
  std::shared_ptr<Authority> ca(new Authority(dir));
  ca->cert_ = std::move(loaded->cert);
  ca->key_ = std::move(loaded->key);
  ca->cert_mtime_ = loaded->cert_mtime;
  ca->leaf_key_ = std::move(*leaf_key);
  ca->cert_pem_ = to_pem(ca->cert_.get());

  // What every leaf shares: the key (so the same SKI), the issuer (so the same AKI), and all
  // extensions but the SAN. Minting copies this template: setting a public key on a certificate
  // runs OpenSSL 3's encoder lookup, ~250 us, more than the rest of the minting together.
  ca->sha256_.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  X509Ptr templ(X509_new());
  if (!ca->sha256_ || !templ || X509_set_version(templ.get(), X509_VERSION_3) != 1 ||
      X509_set_pubkey(templ.get(), ca->leaf_key_.get()) != 1 ||
      X509_set_issuer_name(templ.get(), X509_get_subject_name(ca->cert_.get())) != 1)
    return fail(openssl_error("cannot make the leaf template"));
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca->cert_.get(), templ.get(), nullptr, nullptr, 0);
  auto added = add_extensions(templ.get(), &ctx,
                              {{NID_basic_constraints, "critical,CA:FALSE"},
                               {NID_key_usage, "critical,digitalSignature"},
                               {NID_ext_key_usage, "serverAuth"},
                               {NID_subject_key_identifier, "hash"},
                               {NID_authority_key_identifier, "keyid:always"}});
  if (!added) return tl::unexpected(added.error());
  // Signed (with placeholder serial, subject and times) so that it can be copied: X509_dup
  // encodes, and an unsigned certificate does not encode.
  if (auto filled = fill_cert(templ.get(), X509_get_subject_name(ca->cert_.get()), 0, 0, 0, 0);
      !filled)
    return tl::unexpected(filled.error());
  if (X509_sign(templ.get(), ca->key_.get(), ca->sha256_.get()) <= 0)
    return fail(openssl_error("cannot sign the leaf template"));
  ca->leaf_template_ = std::move(templ);
  return ca;
}

Result<std::shared_ptr<const Leaf>> Authority::leaf(std::string_view host) {
  auto name = normalise_host(host);
  if (!name) return tl::unexpected(name.error());
  constexpr std::time_t kHalf =
      std::chrono::duration_cast<std::chrono::seconds>(kLeafLifetime).count() / 2;

  std::lock_guard lock(mu_);
  std::time_t now = now_();
  if (auto it = by_host_.find(name->name); it != by_host_.end()) {
    const auto& cached = *it->second;
    if (now >= cached->minted && now - cached->minted < kHalf) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return cached;
    }
    lru_.erase(it->second);
    by_host_.erase(it);
  }
  auto minted = mint(name->name, name->ip);
  if (!minted) return minted;
  lru_.push_front(*minted);
  by_host_.emplace(name->name, lru_.begin());
  while (lru_.size() > capacity_) {
    by_host_.erase(lru_.back()->host);
    lru_.pop_back();
  }
  return minted;
}

Result<std::shared_ptr<const Leaf>> Authority::mint(const std::string& host, bool ip) {
  std::time_t now = now_();
  std::unique_ptr<X509_NAME, OsslDeleter<X509_NAME_free>> subject(X509_NAME_new());
  std::string cn = host.substr(0, 64);  // ub-common-name; the SAN carries the whole name
  if (!subject ||
      !X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0))
    return fail(openssl_error("cannot make the subject for " + host));
  long lifetime = std::chrono::duration_cast<std::chrono::seconds>(kLeafLifetime).count();
  X509Ptr cert(X509_dup(leaf_template_.get()));
  if (!cert) return fail(openssl_error("X509_dup"));
  auto filled = fill_cert(cert.get(), subject.get(), now, -kHour, 0, lifetime);
  if (!filled) return tl::unexpected(filled.error());

  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (!names || !gn) return fail(openssl_error("GENERAL_NAME_new"));
  if (ip) {
    ASN1_OCTET_STRING* address = a2i_IPADDRESS(host.c_str());
    if (!address) {
      GENERAL_NAME_free(gn);
      return fail(openssl_error("cannot encode IP address " + host));
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, address);
  } else {
    ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
    if (!dns || ASN1_STRING_set(dns, host.data(), static_cast<int>(host.size())) != 1) {
      ASN1_IA5STRING_free(dns);
      GENERAL_NAME_free(gn);
      return fail(openssl_error("cannot encode DNS name " + host));
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
  }
  if (sk_GENERAL_NAME_push(names.get(), gn) <= 0) {
    GENERAL_NAME_free(gn);
    return fail(openssl_error("sk_GENERAL_NAME_push"));
  }
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return fail(openssl_error("cannot add the subjectAltName"));
  if (X509_sign(cert.get(), key_.get(), sha256_.get()) <= 0)
    return fail(openssl_error("cannot sign the leaf for " + host));

  auto leaf = std::make_shared<Leaf>();
  leaf->host = host;
  leaf->minted = now;
  leaf->cert = std::move(cert);
  EVP_PKEY_up_ref(leaf_key_.get());
  leaf->key.reset(leaf_key_.get());
  return std::shared_ptr<const Leaf>(std::move(leaf));
}

void Authority::set_cache_capacity(size_t capacity) {
  std::lock_guard lock(mu_);
  capacity_ = capacity == 0 ? 1 : capacity;
  while (lru_.size() > capacity_) {
    by_host_.erase(lru_.back()->host);
    lru_.pop_back();
  }
}

size_t Authority::cached() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

void Authority::set_clock(std::function<std::time_t()> now) {
  std::lock_guard lock(mu_);
  now_ = std::move(now);
}

}  // namespace ward::tls
