// OpenSSL objects owned by unique_ptr, and OpenSSL's error queue as text.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace ward::tls {

template <auto Free>
struct OsslDeleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using EvpMdPtr = std::unique_ptr<EVP_MD, OsslDeleter<EVP_MD_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OsslDeleter<GENERAL_NAMES_free>>;
using SslPtr = std::unique_ptr<SSL, OsslDeleter<SSL_free>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, OsslDeleter<SSL_SESSION_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE_free>>;

// Empties OpenSSL's error queue of this thread into "what: reason; reason" (just `what` when the
// queue held nothing).
std::string openssl_error(std::string_view what);

// PEM text of a certificate or a private key (PKCS#8, unencrypted).
std::string to_pem(X509* cert);
std::string to_pem(EVP_PKEY* key);

}  // namespace ward::tls
