#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <ctime>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc/grpc.h"
#include "server/status_macros.h"

namespace authcode {
namespace {

struct OpenSslFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
  void operator()(X509* certificate) const { X509_free(certificate); }
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, OpenSslFree>;
using Certificate = std::unique_ptr<X509, OpenSslFree>;
using PrivateKey = std::unique_ptr<EVP_PKEY, OpenSslFree>;

// gRPC's C SSL server credentials, made with a fetcher, as the C++
// grpc::ServerCredentials that ServerBuilder takes.
class FetchingServerCredentials final : public grpc::ServerCredentials {
 public:
  // The base class has initialised gRPC before the C credentials are made
  // here, as the C API requires.
  FetchingServerCredentials(grpc_ssl_client_certificate_request_type request,
                            grpc_ssl_server_certificate_config_callback fetch,
                            void* fetch_data)
      : credentials_(grpc_ssl_server_credentials_create_with_options(
            grpc_ssl_server_credentials_create_options_using_config_fetcher(
                request, fetch, fetch_data))) {}

  ~FetchingServerCredentials() override {
    grpc_server_credentials_release(credentials_);
  }

  // authcode checks nothing at this layer; a processor set here would be
  // ignored without a word, so setting one is a bug worth stopping for.
  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    std::abort();
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), credentials_);
  }

  grpc_server_credentials* const credentials_;
};

// "server.tls_cert_file (/etc/authcode/server.pem)": the key and its file.
std::string Subject(absl::string_view key, const std::string& path) {
  return absl::StrCat(key, " (", path, ")");
}

// OpenSSL's reason for the last failure. The queue is emptied so that
// gRPC's own OpenSSL calls on this thread do not inherit it.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  char text[256] = "";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return text;
}

absl::Status Invalid(const std::string& subject, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(subject, ": ", problem));
}

absl::StatusOr<std::string> ReadPemFile(absl::string_view key,
                                        const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(key, ": ", text.status().message()));
  }
  return text;
}

Bio MemoryBio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in `pem`, in order; other PEM blocks are skipped.
absl::StatusOr<std::vector<Certificate>> ParseCertificates(
    const std::string& pem, const std::string& subject) {
  Bio bio = MemoryBio(pem);
  std::vector<Certificate> certificates;
  while (bio != nullptr) {
    Certificate certificate(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (certificate == nullptr) break;
    certificates.push_back(std::move(certificate));
  }

  // Reading stops at the first thing that is not a certificate; running
  // out of PEM blocks is the only good reason.
  const unsigned long last = ERR_peek_last_error();
  const bool at_end = ERR_GET_LIB(last) == ERR_LIB_PEM &&
                      ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  const std::string reason = TakeOpenSslError();
  if (!at_end) {
    return Invalid(
        subject, absl::StrCat("not a readable PEM certificate (", reason, ")"));
  }
  if (certificates.empty()) return Invalid(subject, "holds no certificate");
  return certificates;
}

// An encrypted key would need a passphrase, and the server has no one to
// ask: refuse it instead of letting OpenSSL prompt on a terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<PrivateKey> ParsePrivateKey(const std::string& pem,
                                           const std::string& subject) {
  Bio bio = MemoryBio(pem);
  PrivateKey key(
      bio == nullptr
          ? nullptr
          : PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  const std::string reason = TakeOpenSslError();
  if (key == nullptr) {
    return Invalid(subject, absl::StrCat("not an unencrypted PEM private key (",
                                         reason, ")"));
  }
  return key;
}

absl::StatusOr<absl::Time> NotAfter(const X509* certificate,
                                    const std::string& subject) {
  struct tm expiry = {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &expiry) != 1) {
    TakeOpenSslError();
    return Invalid(subject, "the certificate's expiry cannot be read");
  }
  return absl::FromTimeT(timegm(&expiry));
}

}  // namespace

absl::StatusOr<TlsMaterial> ReadTlsMaterial(const Config::Server& server) {
  constexpr char kCert[] = "server.tls_cert_file";
  constexpr char kKey[] = "server.tls_key_file";
  constexpr char kClientCa[] = "server.tls_client_ca_file";
  const std::string cert_subject = Subject(kCert, server.tls_cert_file);
  const std::string key_subject = Subject(kKey, server.tls_key_file);
  TlsMaterial material;

  ASSIGN_OR_RETURN(material.cert_chain,
                   ReadPemFile(kCert, server.tls_cert_file));
  ASSIGN_OR_RETURN(const std::vector<Certificate> chain,
                   ParseCertificates(material.cert_chain, cert_subject));
  ASSIGN_OR_RETURN(material.not_after,
                   NotAfter(chain.front().get(), cert_subject));
  if (material.not_after <= absl::Now()) {
    return Invalid(
        cert_subject,
        absl::StrCat("the certificate expired at ",
                     absl::FormatTime(absl::RFC3339_sec, material.not_after,
                                      absl::UTCTimeZone())));
  }

  ASSIGN_OR_RETURN(material.private_key,
                   ReadPemFile(kKey, server.tls_key_file));
  ASSIGN_OR_RETURN(const PrivateKey key,
                   ParsePrivateKey(material.private_key, key_subject));
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    TakeOpenSslError();
    return Invalid(key_subject,
                   absl::StrCat("is not the key of the certificate in ",
                                server.tls_cert_file));
  }

  if (!server.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(material.client_ca,
                     ReadPemFile(kClientCa, server.tls_client_ca_file));
    RETURN_IF_ERROR(
        ParseCertificates(material.client_ca,
                          Subject(kClientCa, server.tls_client_ca_file))
            .status());
  }
  return material;
}

const char* TransportName(const Config::Server& server) {
  if (!TlsEnabled(server)) return "plaintext";
  return server.tls_client_ca_file.empty() ? "tls" : "mtls";
}

absl::StatusOr<std::unique_ptr<TlsCredentials>> TlsCredentials::Create(
    const Config::Server& server) {
  ASSIGN_OR_RETURN(TlsMaterial material, ReadTlsMaterial(server));
  return std::unique_ptr<TlsCredentials>(
      new TlsCredentials(server, std::move(material)));
}

TlsCredentials::TlsCredentials(Config::Server server, TlsMaterial material)
    : server_(std::move(server)), material_(std::move(material)) {
  grpc_ssl_client_certificate_request_type request =
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  if (!server_.tls_client_ca_file.empty()) {
    request = server_.tls_client_auth == "optional"
                  ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  credentials_ =
      std::make_shared<FetchingServerCredentials>(request, &Fetch, this);
}

absl::Status TlsCredentials::Reload() {
  ASSIGN_OR_RETURN(TlsMaterial material, ReadTlsMaterial(server_));
  absl::MutexLock lock(&mu_);
  material_ = std::move(material);
  ++generation_;
  return absl::OkStatus();
}

absl::Time TlsCredentials::not_after() const {
  absl::MutexLock lock(&mu_);
  return material_.not_after;
}

grpc_ssl_certificate_config_reload_status TlsCredentials::Fetch(
    void* self, grpc_ssl_server_certificate_config** config) {
  auto* tls = static_cast<TlsCredentials*>(self);
  absl::MutexLock lock(&tls->mu_);
  if (tls->fetched_ == tls->generation_) {
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  }

  const TlsMaterial& material = tls->material_;
  const grpc_ssl_pem_key_cert_pair pair = {material.private_key.c_str(),
                                           material.cert_chain.c_str()};
  // gRPC 1.51 (as Debian builds it) asserts that a fetched config has a
  // root bundle, and refuses an empty one, even when it asks clients for
  // no certificate. Without mutual TLS the server's own chain stands in;
  // nothing is ever verified against it.
  const std::string& roots =
      material.client_ca.empty() ? material.cert_chain : material.client_ca;
  *config = grpc_ssl_server_certificate_config_create(roots.c_str(), &pair, 1);
  tls->fetched_ = tls->generation_;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

}  // namespace authcode
