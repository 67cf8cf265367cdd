// SPDX-License-Identifier: Apache-2.0
#include "shaudit/crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <string>

#include "internal/test_util.h"

namespace shaudit::crypto {
namespace {

using shaudit::testing::file_mode;
using shaudit::testing::read_file;
using shaudit::testing::TempDir;
using shaudit::testing::write_file;

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::string hex(std::string_view bytes) {
  return to_hex(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// PEM (PKCS#8) text of a private key made with the OpenSSL API.
std::string private_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string out(p, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio, k), 1);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  std::string out(p, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// RFC 8032, section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
constexpr std::string_view kRfcSecret1 =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kRfcPublic1 =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr std::string_view kRfcSig1 =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
constexpr std::string_view kRfcSecret2 =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr std::string_view kRfcPublic2 =
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
constexpr std::string_view kRfcSig2 =
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

// ---- digests and encodings ----

TEST(CryptoSha256, KnownVectors) {
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Embedded NUL bytes are hashed too.
  EXPECT_NE(to_hex(sha256(std::string_view("a\0b", 3))), to_hex(sha256("ab")));
}

TEST(CryptoHex, LowercaseTwoDigitsPerByte) {
  const uint8_t bytes[] = {0x00, 0xff, 0x10, 0xab, 0x09};
  EXPECT_EQ(to_hex(bytes, sizeof bytes), "00ff10ab09");
  EXPECT_EQ(to_hex(bytes, 0), "");
}

TEST(CryptoBase64, Rfc4648VectorsEncode) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(CryptoBase64, Rfc4648VectorsDecode) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},         {"Zg==", "f"},         {"Zm8=", "fo"},         {"Zm9v", "foo"},
      {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
  };
  for (const auto& [b64, plain] : vectors) {
    auto r = base64_decode(b64);
    ASSERT_TRUE(r.ok()) << b64 << ": " << r.message();
    EXPECT_EQ(*r, plain) << b64;
  }
}

TEST(CryptoBase64, BinaryUsesPlusAndSlash) {
  EXPECT_EQ(base64_encode("\xff\xfe\xfd"), "//79");
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(base64_encode(std::string_view("\0", 1)), "AA==");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  auto back = base64_decode(base64_encode(all));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, all);
  auto pm = base64_decode("+/8=");
  ASSERT_TRUE(pm.ok());
  EXPECT_EQ(*pm, "\xfb\xff");
}

TEST(CryptoBase64, RejectsBadLength) {
  for (std::string_view bad : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=", "Zm9vYmFy="}) {
    auto r = base64_decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.message(), "base64: length is not a multiple of 4") << bad;
  }
}

TEST(CryptoBase64, RejectsBadCharacters) {
  for (std::string_view bad : {"Zm9*", "Zm 9", "Zm9\nYmFy", "-_8=", "Zg==Zg==", "=Zg=",
                               "Z===", "====", "Zm=v", "Zm9\xc3"}) {
    auto r = base64_decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.message(), "base64: invalid character") << bad;
  }
}

TEST(CryptoBase64, RejectsNonCanonicalPaddingBits) {
  // "Zg==" is "f"; "Zh==" carries the same byte plus nonzero bits that padding drops.
  for (std::string_view bad : {"Zh==", "Zv==", "Zm9=", "Zm+=", "Zm9vYh=="}) {
    auto r = base64_decode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.message(), "base64: non-canonical padding bits") << bad;
  }
}

// ---- keys ----

TEST(CryptoKeys, KeyIdIsFirst16HexDigitsOfSha256OfPublicKey) {
  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok()) << k.message();
  std::string raw = k->public_raw();
  ASSERT_EQ(raw.size(), 32u);
  std::string id = k->key_id();
  ASSERT_EQ(id.size(), 16u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  EXPECT_EQ(id, to_hex(sha256(raw)).substr(0, 16));
  EXPECT_EQ(id, key_id_of(raw));
  auto vk = VerifyKey::from_raw(raw);
  ASSERT_TRUE(vk.ok()) << vk.message();
  EXPECT_EQ(vk->key_id(), id);
  // Two generated keys differ.
  auto k2 = SigningKey::generate();
  ASSERT_TRUE(k2.ok());
  EXPECT_NE(k2->key_id(), id);
  EXPECT_NE(k2->public_raw(), raw);
}

TEST(CryptoKeys, SaveWritesModesAndLoadRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok()) << k.message();
  auto saved = k->save(path);
  ASSERT_TRUE(saved.ok()) << saved.message();
  EXPECT_EQ(file_mode(path), 0600);
  EXPECT_EQ(file_mode(path + ".pub"), 0644);
  EXPECT_EQ(read_file(path).rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  EXPECT_EQ(read_file(path + ".pub").rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);

  auto loaded = SigningKey::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  EXPECT_EQ(loaded->public_raw(), k->public_raw());
  EXPECT_EQ(loaded->key_id(), k->key_id());

  auto pub = VerifyKey::load(path + ".pub");
  ASSERT_TRUE(pub.ok()) << pub.message();
  EXPECT_EQ(pub->key_id(), k->key_id());

  // A signature made by the loaded key verifies with the saved public key.
  auto sig = loaded->sign("hello");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(pub->verify("hello", *sig));
}

TEST(CryptoKeys, SaveModesIgnoreUmask) {
  TempDir dir;
  const std::string path = dir.file("k");
  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok());
  mode_t old = ::umask(0077);
  auto saved = k->save(path);
  ::umask(old);
  ASSERT_TRUE(saved.ok()) << saved.message();
  EXPECT_EQ(file_mode(path), 0600);
  EXPECT_EQ(file_mode(path + ".pub"), 0644);
}

TEST(CryptoKeys, SaveRefusesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  write_file(path, "precious\n", 0600);
  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok());
  auto r = k->save(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "cannot create " + path + ": File exists");
  EXPECT_EQ(read_file(path), "precious\n");  // untouched

  // Saving twice to the same path fails the second time.
  const std::string path2 = dir.file("other.key");
  ASSERT_TRUE(k->save(path2).ok());
  auto again = k->save(path2);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.message(), "cannot create " + path2 + ": File exists");
}

TEST(CryptoKeys, LoadRefusesGroupOrOtherReadableKey) {
  TempDir dir;
  const std::string path = dir.file("signing.key");
  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(k->save(path).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto r = SigningKey::load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "signing key " + path +
                             " is readable or writable by group or others (mode 0640); run: "
                             "chmod 600 " + path);

  ASSERT_EQ(::chmod(path.c_str(), 0604), 0);
  auto r2 = SigningKey::load(path);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.message().find("(mode 0604)"), std::string::npos) << r2.message();
  EXPECT_NE(r2.message().find("chmod 600 " + path), std::string::npos) << r2.message();

  ASSERT_EQ(::chmod(path.c_str(), 0620), 0);  // group-writable is refused as well
  EXPECT_FALSE(SigningKey::load(path).ok());

  // Without the mode requirement the key loads.
  auto relaxed = SigningKey::load(path, /*require_private_mode=*/false);
  ASSERT_TRUE(relaxed.ok()) << relaxed.message();
  EXPECT_EQ(relaxed->key_id(), k->key_id());

  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // owner read-only is fine
  EXPECT_TRUE(SigningKey::load(path).ok());
}

TEST(CryptoKeys, LoadRefusesMissingFileAndDirectory) {
  TempDir dir;
  const std::string path = dir.file("nope.key");
  auto r = SigningKey::load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "signing key " + path + ": No such file or directory");

  auto d = SigningKey::load(dir.path());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.message(), "signing key " + dir.path() + ": not a regular file");

  auto p = VerifyKey::load(path + ".pub");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "public key " + path + ".pub: No such file or directory");
}

TEST(CryptoKeys, LoadRefusesNonPemFiles) {
  TempDir dir;
  const std::string path = dir.file("junk.key");
  write_file(path, "this is not a key\n", 0600);
  auto r = SigningKey::load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "signing key " + path + ": not a PEM private key");

  auto p = VerifyKey::load(path);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "public key " + path + ": not a PEM public key");

  // An empty file, and a public key where a private key is expected (and vice versa).
  const std::string empty = dir.file("empty.key");
  write_file(empty, "", 0600);
  auto e = SigningKey::load(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.message(), "signing key " + empty + ": not a PEM private key");

  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok());
  const std::string key = dir.file("good.key");
  ASSERT_TRUE(k->save(key).ok());
  ASSERT_EQ(::chmod((key + ".pub").c_str(), 0600), 0);
  auto pub_as_priv = SigningKey::load(key + ".pub");
  ASSERT_FALSE(pub_as_priv.ok());
  EXPECT_EQ(pub_as_priv.message(), "signing key " + key + ".pub: not a PEM private key");
  auto priv_as_pub = VerifyKey::load(key);
  ASSERT_FALSE(priv_as_pub.ok());
  EXPECT_EQ(priv_as_pub.message(), "public key " + key + ": not a PEM public key");
}

TEST(CryptoKeys, LoadRefusesNonEd25519Keys) {
  TempDir dir;
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  const std::string ec_path = dir.file("ec.key");
  write_file(ec_path, private_pem(ec), 0600);
  write_file(ec_path + ".pub", public_pem(ec), 0644);
  EVP_PKEY_free(ec);

  auto r = SigningKey::load(ec_path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "signing key " + ec_path + ": not an Ed25519 key");
  auto p = VerifyKey::load(ec_path + ".pub");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "public key " + ec_path + ".pub: not an Ed25519 key");

  EVP_PKEY* ed448 = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448");
  ASSERT_NE(ed448, nullptr);
  const std::string ed448_path = dir.file("ed448.key");
  write_file(ed448_path, private_pem(ed448), 0600);
  EVP_PKEY_free(ed448);
  auto r448 = SigningKey::load(ed448_path);
  ASSERT_FALSE(r448.ok());
  EXPECT_EQ(r448.message(), "signing key " + ed448_path + ": not an Ed25519 key");
}

TEST(CryptoKeys, LoadsKeyWrittenByOpenSslAndSignsRfc8032Vectors) {
  // The RFC 8032 keys, written as PKCS#8 PEM by OpenSSL, load and sign deterministically.
  struct Vector {
    std::string_view secret, pub, message, sig;
  };
  const Vector vectors[] = {{kRfcSecret1, kRfcPublic1, "", kRfcSig1},
                            {kRfcSecret2, kRfcPublic2, "\x72", kRfcSig2}};
  TempDir dir;
  int n = 0;
  for (const auto& v : vectors) {
    std::string seed = from_hex(v.secret);
    EVP_PKEY* k = EVP_PKEY_new_raw_private_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()),
        seed.size());
    ASSERT_NE(k, nullptr);
    const std::string path = dir.file("rfc" + std::to_string(++n) + ".key");
    write_file(path, private_pem(k), 0600);
    EVP_PKEY_free(k);

    auto key = SigningKey::load(path);
    ASSERT_TRUE(key.ok()) << key.message();
    EXPECT_EQ(hex(key->public_raw()), v.pub);
    EXPECT_EQ(key->key_id(), to_hex(sha256(from_hex(v.pub))).substr(0, 16));
    auto sig = key->sign(v.message);
    ASSERT_TRUE(sig.ok()) << sig.message();
    EXPECT_EQ(hex(*sig), v.sig);
  }
}

// ---- signatures ----

TEST(CryptoSign, Rfc8032VectorsVerify) {
  auto vk1 = VerifyKey::from_raw(from_hex(kRfcPublic1));
  ASSERT_TRUE(vk1.ok()) << vk1.message();
  EXPECT_TRUE(vk1->verify("", from_hex(kRfcSig1)));
  EXPECT_FALSE(vk1->verify("x", from_hex(kRfcSig1)));

  auto vk2 = VerifyKey::from_raw(from_hex(kRfcPublic2));
  ASSERT_TRUE(vk2.ok());
  EXPECT_TRUE(vk2->verify("\x72", from_hex(kRfcSig2)));
  EXPECT_FALSE(vk2->verify("\x73", from_hex(kRfcSig2)));
  EXPECT_FALSE(vk1->verify("\x72", from_hex(kRfcSig2)));  // wrong key
}

TEST(CryptoSign, SignAndVerify) {
  auto k = SigningKey::generate();
  ASSERT_TRUE(k.ok());
  auto vk = VerifyKey::from_raw(k->public_raw());
  ASSERT_TRUE(vk.ok());
  const std::string msg = "shaudit-seal-v1\n{\"seq\":4}";
  auto sig = k->sign(msg);
  ASSERT_TRUE(sig.ok()) << sig.message();
  ASSERT_EQ(sig->size(), 64u);
  EXPECT_TRUE(vk->verify(msg, *sig));
  // Ed25519 is deterministic.
  auto sig2 = k->sign(msg);
  ASSERT_TRUE(sig2.ok());
  EXPECT_EQ(*sig2, *sig);

  // A tampered message fails.
  std::string tampered = msg;
  tampered.back() = '5';
  EXPECT_FALSE(vk->verify(tampered, *sig));
  EXPECT_FALSE(vk->verify(msg + "\n", *sig));
  EXPECT_FALSE(vk->verify("", *sig));
  // A tampered signature fails.
  std::string bad_sig = *sig;
  bad_sig[10] = static_cast<char>(bad_sig[10] ^ 0x01);
  EXPECT_FALSE(vk->verify(msg, bad_sig));
  EXPECT_FALSE(vk->verify(msg, sig->substr(0, 63)));
  EXPECT_FALSE(vk->verify(msg, *sig + "x"));
  EXPECT_FALSE(vk->verify(msg, ""));
  // Another key's verify key fails.
  auto other = SigningKey::generate();
  ASSERT_TRUE(other.ok());
  auto other_vk = VerifyKey::from_raw(other->public_raw());
  ASSERT_TRUE(other_vk.ok());
  EXPECT_FALSE(other_vk->verify(msg, *sig));
}

TEST(CryptoSign, FromRawRejectsWrongLength) {
  for (size_t n : {0u, 31u, 33u, 64u}) {
    auto r = VerifyKey::from_raw(std::string(n, 'a'));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.message(), "Ed25519 public key must be 32 bytes");
  }
}

}  // namespace
}  // namespace shaudit::crypto
