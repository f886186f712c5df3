// ward's certificate authority: an ECDSA P-256 CA made on first use in ward's state directory,
// and the leaf certificates the egress proxy presents when it terminates a sandbox's TLS
// connection to `host`. The sandbox trusts the CA through the bundle ward mounts (bundle.h).
//
//   state_dir/tls/ca.key   PKCS#8 PEM, 0600 from its creation on (never replaced once made)
//   state_dir/tls/ca.pem   the CA certificate, 0644
//   state_dir/tls/lock     flock(2): two wards starting at once end up with one CA
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstddef>
#include <ctime>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"
#include "tls/ossl.h"

namespace ward::tls {

// A certificate for one host, valid from an hour before it was minted to 24 hours after, with
// the Authority's leaf key (one P-256 key per Authority, made at load and never stored).
struct Leaf {
  std::string host;  // normalised: lower case, no trailing dot, IPv6 without brackets
  std::time_t minted = 0;
  X509Ptr cert;
  EvpPkeyPtr key;
};

class Authority {
 public:
  static constexpr size_t kDefaultCacheCapacity = 1024;
  static constexpr std::chrono::hours kLeafLifetime{24};  // a cached leaf is re-minted at half

  // Loads the CA of `state_dir`, creating the directory (0700, parents as needed) and the CA when
  // there is none. A key readable by group or others, owned by someone else, not matching the
  // certificate, an expired or non-CA certificate, or unparsable files are errors: an existing CA
  // is never replaced (the sandboxes that trust it would break).
  static Result<std::shared_ptr<Authority>> load_or_create(const std::string& state_dir);

  const std::string& cert_pem() const { return cert_pem_; }
  std::string cert_path() const { return tls_dir_ + "/ca.pem"; }
  X509* cert() const { return cert_.get(); }
  // ca.pem's modification time when it was loaded (bundle.h compares the bundle's with it).
  const struct timespec& cert_mtime() const { return cert_mtime_; }

  // A leaf for a DNS name (DNS SAN) or an IP literal (IP SAN; IPv6 with or without brackets),
  // from the LRU cache when one younger than half its lifetime is there. Errors for a host that
  // is neither. Thread-safe (the proxy calls it from its loop thread).
  Result<std::shared_ptr<const Leaf>> leaf(std::string_view host);

  void set_cache_capacity(size_t capacity);  // at least 1; evicts the least recently used
  size_t cached() const;
  // The time leaves are minted at and aged by (tests move it; the default is std::time).
  void set_clock(std::function<std::time_t()> now);

  Authority(const Authority&) = delete;
  Authority& operator=(const Authority&) = delete;

 private:
  explicit Authority(std::string tls_dir);
  Result<std::shared_ptr<const Leaf>> mint(const std::string& host, bool ip);

  std::string tls_dir_;
  X509Ptr cert_;
  EvpPkeyPtr key_;
  EvpPkeyPtr leaf_key_;
  std::string cert_pem_;
  struct timespec cert_mtime_ {};
  X509Ptr leaf_template_;  // key, issuer, every extension but the SAN
  EvpMdPtr sha256_;

  mutable std::mutex mu_;
  std::function<std::time_t()> now_;
  size_t capacity_ = kDefaultCacheCapacity;
  std::list<std::shared_ptr<const Leaf>> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<std::shared_ptr<const Leaf>>::iterator> by_host_;
};

}  // namespace ward::tls
