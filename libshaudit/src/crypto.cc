// SPDX-License-Identifier: Apache-2.0
#include "shaudit/crypto.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "internal/fd.h"

namespace shaudit::crypto {
namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

Result<std::string> read_small_file(const std::string& path, const char* what) {
  internal::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
  std::string data;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > 64 * 1024)
      return make_error(fmt::format("{} {}: file too large", what, path));
  }
  return data;
}

std::string raw_public(EVP_PKEY* k) {
  unsigned char raw[32];
  size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != 32) return {};
  return std::string(reinterpret_cast<char*>(raw), len);
}

Result<void> write_file(const std::string& path, std::string_view data, mode_t mode) {
  // O_EXCL: never follow or clobber an existing file (keys are written once).
  internal::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return make_error(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  if (::fchmod(fd.get(), mode) != 0)
    return make_error(fmt::format("cannot chmod {}: {}", path, std::strerror(errno)));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0)
    return make_error(fmt::format("cannot sync {}: {}", path, std::strerror(errno)));
  return {};
}

}  // namespace

void PkeyDeleter::operator()(EVP_PKEY* k) const {
  EVP_PKEY_free(k);
}

Digest sha256(std::string_view data) {
  // The one-shot SHA256() looks the algorithm up and allocates a context on every call;
  // fetch once and keep one context per thread (the writer hashes every record).
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  Digest d;
  unsigned int len = 0;
  if (!md || !ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), d.data(), &len) != 1) {
    ERR_clear_error();
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  }
  return d;
}

std::string to_hex(const uint8_t* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0xF];
  }
  return out;
}

std::string base64_encode(std::string_view data) {
  static constexpr char kAlpha[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out.push_back(kAlpha[v >> 18]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.push_back(kAlpha[(v >> 6) & 63]);
    out.push_back(kAlpha[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = p[i] << 16;
    out.push_back(kAlpha[v >> 18]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.append("==");
  } else if (rest == 2) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8);
    out.push_back(kAlpha[v >> 18]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.push_back(kAlpha[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return make_error("base64: length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    int v[4];
    for (int k = 0; k < 4 - pad; ++k) {
      v[k] = val(text[i + k]);
      if (v[k] < 0) return make_error("base64: invalid character");
    }
    for (int k = 4 - pad; k < 4; ++k) v[k] = 0;
    uint32_t w = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>(w >> 16));
    if (pad < 2) out.push_back(static_cast<char>((w >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(w & 0xFF));
    // Canonical: the bits dropped by padding must be zero.
    if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))
      return make_error("base64: non-canonical padding bits");
  }
  return out;
}

std::string key_id_of(std::string_view public_raw) {
  auto d = sha256(public_raw);
  return to_hex(d.data(), 8);
}

Result<SigningKey> SigningKey::generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) return make_error("Ed25519 key generation failed: " + openssl_error());
  return SigningKey(PkeyPtr(k));
}

Result<SigningKey> SigningKey::from_seed(std::string_view seed32) {
  if (seed32.size() != 32) return make_error("Ed25519 private key must be 32 bytes");
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed32.data()), 32);
  if (!k) return make_error("invalid Ed25519 private key: " + openssl_error());
  return SigningKey(PkeyPtr(k));
}

bool SigningKey::seed(uint8_t (&out)[32]) const {
  size_t len = sizeof out;
  if (EVP_PKEY_get_raw_private_key(key_.get(), out, &len) != 1 || len != 32) {
    ERR_clear_error();
    return false;
  }
  return true;
}

void cleanse(void* p, size_t n) {
  OPENSSL_cleanse(p, n);
}

Result<SigningKey> SigningKey::load(const std::string& path, bool require_private_mode) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return make_error(fmt::format("signing key {}: {}", path, std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return make_error(fmt::format("signing key {}: not a regular file", path));
  if (require_private_mode && (st.st_mode & 077) != 0)
    return make_error(
        fmt::format("signing key {} is readable or writable by group or others (mode {:04o}); run: "
                    "chmod 600 {}",
                    path, st.st_mode & 07777, path));
  auto data = read_small_file(path, "signing key");
  if (!data) return data.error();
  BioPtr bio(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  bio.reset();
  OPENSSL_cleanse(data->data(), data->size());  // the PEM text held the private key
  if (!k) {
    ERR_clear_error();
    return make_error(fmt::format("signing key {}: not a PEM private key", path));
  }
  PkeyPtr owned(k);
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519)
    return make_error(fmt::format("signing key {}: not an Ed25519 key", path));
  return SigningKey(std::move(owned));
}

Result<void> SigningKey::save(const std::string& path) const {
  BioPtr priv(BIO_new(BIO_s_mem()));
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(priv.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_PUBKEY(pub.get(), key_.get()) != 1)
    return make_error("cannot encode key: " + openssl_error());
  char* p = nullptr;
  long n = BIO_get_mem_data(priv.get(), &p);
  std::string priv_pem(p, static_cast<size_t>(n));
  n = BIO_get_mem_data(pub.get(), &p);
  std::string pub_pem(p, static_cast<size_t>(n));
  auto r = write_file(path, priv_pem, 0600);
  if (!r) return r;
  return write_file(path + ".pub", pub_pem, 0644);
}

Result<std::string> SigningKey::sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1)
    return make_error("Ed25519 sign init failed: " + openssl_error());
  unsigned char sig[64];
  size_t len = sizeof sig;
  if (EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1)
    return make_error("Ed25519 sign failed: " + openssl_error());
  return std::string(reinterpret_cast<char*>(sig), len);
}

std::string SigningKey::public_raw() const {
  return raw_public(key_.get());
}
std::string SigningKey::key_id() const {
  return key_id_of(public_raw());
}

Result<VerifyKey> VerifyKey::load(const std::string& path) {
  auto data = read_small_file(path, "public key");
  if (!data) return data.error();
  BioPtr bio(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (!k) {
    ERR_clear_error();
    return make_error(fmt::format("public key {}: not a PEM public key", path));
  }
  PkeyPtr owned(k);
  if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519)
    return make_error(fmt::format("public key {}: not an Ed25519 key", path));
  std::string raw = raw_public(k);
  return VerifyKey(std::move(owned), std::move(raw));
}

Result<VerifyKey> VerifyKey::from_raw(std::string_view raw32) {
  if (raw32.size() != 32) return make_error("Ed25519 public key must be 32 bytes");
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw32.data()), 32);
  if (!k) return make_error("invalid Ed25519 public key: " + openssl_error());
  return VerifyKey(PkeyPtr(k), std::string(raw32));
}

bool VerifyKey::verify(std::string_view message, std::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    ERR_clear_error();
    return false;
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return rc == 1;
}

std::string VerifyKey::key_id() const {
  return key_id_of(raw_);
}

}  // namespace shaudit::crypto
