// SPDX-License-Identifier: Apache-2.0
// SHA-256, hex/base64 helpers and Ed25519 keys (OpenSSL 3).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace shaudit::crypto {

using Digest = std::array<uint8_t, 32>;

Digest sha256(std::string_view data);
std::string to_hex(const uint8_t* data, size_t n);
inline std::string to_hex(const Digest& d) {
  return to_hex(d.data(), d.size());
}
std::string base64_encode(std::string_view data);
// Strict: standard alphabet with padding; anything else is an error.
Result<std::string> base64_decode(std::string_view text);

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// An Ed25519 private key (signing side: only shauditd and keygen hold one).
class SigningKey {
 public:
  static Result<SigningKey> generate();
  // Reads a PEM PKCS#8 private key. With require_private_mode, refuses a file that group
  // or others can read, naming it.
  static Result<SigningKey> load(const std::string& path, bool require_private_mode = true);
  // From the raw 32-byte private key (RFC 8032 seed).
  static Result<SigningKey> from_seed(std::string_view seed32);
  // Writes KEY (mode 0600) and KEY.pub (mode 0644).
  Result<void> save(const std::string& path) const;

  Result<std::string> sign(std::string_view message) const;  // raw 64-byte signature
  std::string public_raw() const;                            // 32 bytes
  // The raw 32-byte private key, into out; false when OpenSSL cannot give it.
  bool seed(uint8_t (&out)[32]) const;
  std::string key_id() const;  // see key_id_of()

 private:
  explicit SigningKey(PkeyPtr k) : key_(std::move(k)) {}
  PkeyPtr key_;
};

class VerifyKey {
 public:
  // Reads a PEM SubjectPublicKeyInfo (KEY.pub) file.
  static Result<VerifyKey> load(const std::string& path);
  static Result<VerifyKey> from_raw(std::string_view raw32);
  bool verify(std::string_view message, std::string_view signature) const;
  std::string key_id() const;
  const std::string& raw() const { return raw_; }

 private:
  explicit VerifyKey(PkeyPtr k, std::string raw) : key_(std::move(k)), raw_(std::move(raw)) {}
  PkeyPtr key_;
  std::string raw_;
};

// A key's id: the first 16 hex digits of SHA-256 over its raw 32-byte public key.
std::string key_id_of(std::string_view public_raw);

// Overwrites memory that held key material (not optimised away).
void cleanse(void* p, size_t n);

}  // namespace shaudit::crypto
