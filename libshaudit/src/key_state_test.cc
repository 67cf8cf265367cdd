// SPDX-License-Identifier: Apache-2.0
// Forward-secure sealing: the key state file, and the attacks on a log sealed with it that an
// attacker who is root at key epoch N can try (it has the key state and the key file).
#include "shaudit/key_state.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "internal/test_util.h"
#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/log_writer.h"
#include "shaudit/record.h"
#include "shaudit/verify.h"

namespace shaudit {
namespace {

using shaudit::testing::command;
using shaudit::testing::hash_hex;
using shaudit::testing::join_lines;
using shaudit::testing::kSec;
using shaudit::testing::kT0;
using shaudit::testing::parse_object;
using shaudit::testing::read_file;
using shaudit::testing::read_lines;
using shaudit::testing::TempDir;
using shaudit::testing::write_file;

std::string seed_of(const crypto::SigningKey& k) {
  uint8_t s[32];
  EXPECT_TRUE(k.seed(s));
  return std::string(reinterpret_cast<char*>(s), 32);
}

class KeyStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = crypto::SigningKey::generate();
    ASSERT_TRUE(k.ok());
    root_pub_ = k->public_raw();
    root_id_ = k->key_id();
    root_seed_ = seed_of(*k);
    ASSERT_TRUE(k->save(key_).ok());
  }
  std::unique_ptr<KeyState> open() {
    auto ks = KeyState::open(key_, state_);
    EXPECT_TRUE(ks.ok()) << ks.message();
    return ks.ok() ? std::move(*ks) : nullptr;
  }

  TempDir dir_;
  std::string key_ = dir_.file("signing.key");
  std::string state_ = dir_.file("key-state");
  std::string root_pub_, root_id_, root_seed_;
};

TEST_F(KeyStateTest, FirstOpenMovesTheKeyAndErasesItFromTheKeyFile) {
  std::string pub_file = read_file(key_ + ".pub");
  auto ks = open();
  ASSERT_TRUE(ks);
  EXPECT_EQ(ks->epoch(), 0u);
  EXPECT_EQ(ks->root_key_id(), root_id_);
  EXPECT_EQ(ks->public_raw(), root_pub_);
  EXPECT_FALSE(ks->pending());
  // The key file is now a note; KEY.pub is untouched.
  std::string note = read_file(key_);
  EXPECT_EQ(note.rfind(std::string(kConsumedKeyMarker), 0), 0u) << note;
  EXPECT_NE(note.find("into the forward-secure key state " + state_), std::string::npos);
  EXPECT_NE(note.find("epoch-0 key id " + root_id_), std::string::npos);
  EXPECT_EQ(note.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(read_file(key_ + ".pub"), pub_file);
  struct stat st;
  ASSERT_EQ(::stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 256);
  ks.reset();
  // The next start finds the note and the state.
  ks = open();
  ASSERT_TRUE(ks);
  EXPECT_EQ(ks->epoch(), 0u);
  EXPECT_EQ(ks->public_raw(), root_pub_);
}

TEST_F(KeyStateTest, EvolvingErasesTheOutgoingKeyFromTheFile) {
  auto ks = open();
  ASSERT_TRUE(ks);
  EXPECT_NE(read_file(state_).find(root_seed_), std::string::npos);  // epoch 0's key is there
  auto next = ks->prepare_next();
  ASSERT_TRUE(next.ok()) << next.message();
  EXPECT_TRUE(ks->pending());
  ASSERT_TRUE(ks->commit_next().ok());
  EXPECT_EQ(ks->epoch(), 1u);
  EXPECT_EQ(ks->public_raw(), *next);
  std::string file = read_file(state_);
  EXPECT_EQ(file.find(root_seed_), std::string::npos);  // ... and now it is not
  EXPECT_NE(file.find(seed_of(ks->key())), std::string::npos);
  ASSERT_TRUE(ks->prepare_next().ok());
  ASSERT_TRUE(ks->commit_next().ok());
  std::string pub2 = ks->public_raw();
  ks.reset();
  ks = open();
  ASSERT_TRUE(ks);
  EXPECT_EQ(ks->epoch(), 2u);
  EXPECT_EQ(ks->public_raw(), pub2);
  EXPECT_EQ(ks->root_key_id(), root_id_);
}

TEST_F(KeyStateTest, TwoKeysLeftMidEvolutionAreSettledByTheLog) {
  auto ks = open();
  ASSERT_TRUE(ks);
  auto next = ks->prepare_next();
  ASSERT_TRUE(next.ok());
  ks.reset();  // stopped between writing the next key and its seal
  // The log's last seal certified it: the next key becomes current, epoch 0's is erased.
  write_file(dir_.file("copy"), read_file(state_));
  ks = open();
  ASSERT_TRUE(ks && ks->pending());
  EXPECT_EQ(ks->pending_public_raw(), *next);
  ASSERT_TRUE(ks->settle(*next).ok());
  EXPECT_EQ(ks->epoch(), 1u);
  EXPECT_EQ(ks->public_raw(), *next);
  EXPECT_EQ(read_file(state_).find(root_seed_), std::string::npos);
  // It did not: the next key is erased and epoch 0 goes on.
  ks.reset();
  write_file(state_, read_file(dir_.file("copy")));
  ks = open();
  ASSERT_TRUE(ks && ks->pending());
  ASSERT_TRUE(ks->settle("").ok());
  EXPECT_FALSE(ks->pending());
  EXPECT_EQ(ks->epoch(), 0u);
  ks.reset();
  ks = open();
  ASSERT_TRUE(ks);
  EXPECT_FALSE(ks->pending());
  EXPECT_EQ(ks->epoch(), 0u);
}

TEST_F(KeyStateTest, AMovedKeyWithoutItsStateIsAClearError) {
  ASSERT_TRUE(open());
  std::filesystem::remove(state_);
  auto ks = KeyState::open(key_, state_);
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.message(), "signing key " + key_ + " was moved into the key state " + state_ +
                              ", which is missing: the log's key chain cannot continue. Restore " +
                              state_ + ", or move " + key_ + " and " + key_ +
                              ".pub aside (keep the .pub: it verifies the log so far) and create "
                              "a new key with `shaudit keygen --out " +
                              key_ + "`");
}

TEST_F(KeyStateTest, ANewKeyInTheKeyFileStartsANewChain) {
  auto ks = open();
  ASSERT_TRUE(ks && ks->prepare_next().ok() && ks->commit_next().ok());
  ks.reset();
  auto k2 = crypto::SigningKey::generate();
  ASSERT_TRUE(k2.ok());
  std::filesystem::remove(key_);
  std::filesystem::remove(key_ + ".pub");
  ASSERT_TRUE(k2->save(key_).ok());
  ks = open();
  ASSERT_TRUE(ks);
  EXPECT_EQ(ks->epoch(), 0u);
  EXPECT_EQ(ks->root_key_id(), k2->key_id());
  EXPECT_EQ(read_file(key_).rfind(std::string(kConsumedKeyMarker), 0), 0u);
}

TEST_F(KeyStateTest, AStateLeftEmptyByACrashAtItsCreationIsMadeAgain) {
  write_file(state_, "");  // created, never written; the key file still holds the key
  ::chmod(state_.c_str(), 0600);
  auto ks = open();
  ASSERT_TRUE(ks);
  EXPECT_EQ(ks->epoch(), 0u);
  EXPECT_EQ(ks->public_raw(), root_pub_);
  EXPECT_EQ(read_file(key_).rfind(std::string(kConsumedKeyMarker), 0), 0u);
  EXPECT_EQ(read_file(state_).size(), 256u);
}

TEST_F(KeyStateTest, DamagedOrOpenStateFilesAreNamed) {
  ASSERT_TRUE(open());
  std::string good = read_file(state_);
  std::string bad = good;
  bad[64 + 20] ^= 1;  // a bit of slot A's private key
  write_file(state_, bad);
  ::chmod(state_.c_str(), 0600);
  auto ks = KeyState::open(key_, state_);
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.message(), "key state " + state_ + ": it holds no valid key (damaged or erased)");
  write_file(state_, "SHAKST01 too short");
  ks = KeyState::open(key_, state_);
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.message(), "key state " + state_ + ": not a shaudit key state file");
  write_file(state_, good);
  ::chmod(state_.c_str(), 0644);
  ks = KeyState::open(key_, state_);
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.message(), "key state " + state_ +
                              " is readable or writable by group or others (mode 0644); run: "
                              "chmod 600 " +
                              state_);
}

// ---- a log sealed with the key state, and the attacker ----

// Parses line, lets f change the record, and re-encodes it canonically.
template <class F>
std::string edit(const std::string& line, F f) {
  json::Object o = parse_object(line);
  f(o);
  return json::encode(json::Value(std::move(o)));
}

bool is_seal(const std::string& line) {
  return *json::get_string(parse_object(line), "type") == record::kSeal;
}

int64_t epoch_of(const std::string& line) {
  json::Object o = parse_object(line);
  const int64_t* e = json::get_int(o, "epoch");
  return e ? *e : -1;
}

class ForwardSecureTest : public KeyStateTest {
 protected:
  void SetUp() override {
    KeyStateTest::SetUp();
    auto v = crypto::VerifyKey::load(key_ + ".pub");
    ASSERT_TRUE(v.ok());
    verify_key_ = std::make_unique<crypto::VerifyKey>(std::move(*v));
  }

  std::unique_ptr<LogWriter> open_writer(KeyState* ks, const std::string& path) {
    WriterOptions o;
    o.path = path;
    o.key_state = ks;
    o.epoch_ns = 0;  // every seal ends its epoch
    o.clock_ns = [this] { return now_ += kSec; };
    o.state_path = dir_.file("log-state.json");
    auto w = LogWriter::open(std::move(o));
    EXPECT_TRUE(w.ok()) << w.message();
    return w.ok() ? std::move(*w) : nullptr;
  }

  // A log of `seals` interval seals with three commands before each ("c<seal>.<i>"), left
  // open (the writer stays in w_) at key epoch `seals`.
  void write_log(int seals, uint64_t first_epoch = 0) {
    ks_ = open();
    ASSERT_TRUE(ks_);
    w_ = open_writer(ks_.get(), log_);
    ASSERT_TRUE(w_);
    for (int s = 0; s < seals; ++s) {
      for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(w_->append(command(fmt::format("c{}.{}", s, i))).ok());
      ASSERT_TRUE(w_->seal(record::kSealInterval).ok());
    }
    ASSERT_EQ(ks_->epoch(), first_epoch + static_cast<uint64_t>(seals));
  }

  VerifyReport verify(const std::vector<std::string>& paths, bool allow_open = false,
                      std::vector<std::string> remote = {},
                      const crypto::VerifyKey* other = nullptr) {
    VerifyOptions o;
    auto a = crypto::VerifyKey::from_raw(verify_key_->raw());
    o.keys.push_back(std::move(*a));
    if (other) {
      auto b = crypto::VerifyKey::from_raw(other->raw());
      o.keys.push_back(std::move(*b));
    }
    o.allow_open = allow_open;
    o.remote_seals = std::move(remote);
    return verify_logs(paths, o);
  }
  VerifyReport verify(bool allow_open = false) { return verify({log_}, allow_open); }

  // The attacker: root at this moment, it copies the key state and the key file and opens
  // them as shauditd would: everything shaudit has on disk.
  std::unique_ptr<KeyState> steal() {
    std::string k = dir_.file("stolen.key"), s = dir_.file("stolen-state");
    write_file(k, read_file(key_));
    write_file(s, read_file(state_));
    ::chmod(k.c_str(), 0600);
    ::chmod(s.c_str(), 0600);
    auto ks = KeyState::open(k, s);
    EXPECT_TRUE(ks.ok()) << ks.message();
    return ks.ok() ? std::move(*ks) : nullptr;
  }

  // Re-chains lines after `from` and signs every seal after it again with `key`, claiming
  // `claim` as its epoch (-1: keep each seal's epoch), certifying what it certified.
  static void reseal(std::vector<std::string>& ls, size_t from, const crypto::SigningKey& key,
                     int64_t claim = -1) {
    for (size_t i = from + 1; i < ls.size(); ++i) {
      ls[i] = edit(ls[i], [&](json::Object& o) {
        o["prev"] = hash_hex(ls[i - 1]);
        if (*json::get_string(o, "type") != record::kSeal) return;
        if (claim >= 0) o["epoch"] = claim;
        o.erase("sig");
        auto sig = key.sign(record::seal_message(o));
        ASSERT_TRUE(sig.ok());
        o["sig"] = crypto::base64_encode(*sig);
      });
    }
  }

  std::vector<std::string> lines() const { return read_lines(log_); }
  void set_lines(const std::vector<std::string>& ls) { write_file(log_, join_lines(ls)); }

  std::string log_ = dir_.file("audit.jsonl");
  std::unique_ptr<crypto::VerifyKey> verify_key_;
  std::unique_ptr<KeyState> ks_;
  std::unique_ptr<LogWriter> w_;
  int64_t now_ = kT0;
};

TEST_F(ForwardSecureTest, TheVerifierFollowsTheEpochsAcrossRestarts) {
  write_log(4);
  ASSERT_TRUE(w_->close().ok());  // the closing seal ends epoch 4 too
  w_.reset();
  ks_.reset();
  write_log(0, 5);  // the next run continues from the key state: epoch 5
  ASSERT_TRUE(w_->append(command("second run")).ok());
  ASSERT_TRUE(w_->close().ok());
  auto ls = lines();
  std::vector<int64_t> epochs;
  for (const auto& l : ls)
    if (is_seal(l)) epochs.push_back(epoch_of(l));
  EXPECT_EQ(epochs, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  // Each seal but the last certifies the key of the next epoch.
  for (const auto& l : ls)
    if (is_seal(l)) {
      EXPECT_TRUE(json::get_string(parse_object(l), "next_pub_b64"));
    }
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.seals, 6u);
  EXPECT_EQ(rep.first_epoch, std::optional<uint64_t>(0));
  EXPECT_EQ(rep.last_epoch, std::optional<uint64_t>(5));
  // The key file holds no private key any more.
  EXPECT_EQ(read_file(key_).find("PRIVATE KEY"), std::string::npos);
}

TEST_F(ForwardSecureTest, RootAtEpochNCannotRewriteARecordOfEpochNMinus2) {
  write_log(6);  // epoch 6 now; seals of epochs 0..5
  auto stolen = steal();
  ASSERT_TRUE(stolen);
  ASSERT_EQ(stolen->epoch(), 6u);
  ASSERT_TRUE(w_->close().ok());
  auto orig = lines();
  // Record "c4.1" was sealed by the seal of epoch 4 = N - 2.
  size_t target = 0;
  for (size_t i = 0; i < orig.size(); ++i)
    if (orig[i].find("\"c4.1\"") != std::string::npos) target = i;
  ASSERT_GT(target, 0u);
  uint64_t target_seq = target + 1, seal_seq = target + 3;
  ASSERT_EQ(epoch_of(orig[seal_seq - 1]), 4);

  auto forged = [&](json::Object& o) { o["text"] = "innocent"; };
  // With everything it has: the stolen epoch-6 key, keeping the epochs the seals claim.
  auto ls = orig;
  ls[target] = edit(ls[target], forged);
  reseal(ls, target, stolen->key());
  set_lines(ls);
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, std::optional<uint64_t>(seal_seq));
  EXPECT_EQ(rep.bad_epoch, std::optional<uint64_t>(4));
  EXPECT_EQ(rep.error, fmt::format("{} line {}: seal seq {} has an invalid signature: the "
                                   "records it covers were rewritten (seq {} to {}, key epoch "
                                   "4), or it was signed by a key other than epoch 4's",
                                   log_, seal_seq, seal_seq, seal_seq - 3, seal_seq - 1));
  EXPECT_LE(seal_seq - 3, target_seq);  // the rewritten record is in the range it names

  // ... or claiming the epoch its key belongs to.
  ls = orig;
  ls[target] = edit(ls[target], forged);
  reseal(ls, target, stolen->key(), 6);
  set_lines(ls);
  rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, std::optional<uint64_t>(seal_seq));
  EXPECT_EQ(rep.bad_epoch, std::optional<uint64_t>(6));
  EXPECT_NE(
      rep.error.find("seal seq " + std::to_string(seal_seq) + " claims key epoch 6, but key " +
                     root_id_ + "'s chain is at epoch 3 (epoch 4 was certified by seal seq " +
                     std::to_string(seal_seq - 4) + ")"),
      std::string::npos)
      << rep.error;

  // ... or with a key of its own, certified by a seal it re-signed with its own keys.
  auto mine = crypto::SigningKey::generate();
  ASSERT_TRUE(mine.ok());
  ls = orig;
  ls[target] = edit(ls[target], forged);
  reseal(ls, target, *mine);
  set_lines(ls);
  EXPECT_FALSE(verify().ok);
  set_lines(orig);
  EXPECT_TRUE(verify().ok) << verify().error;
}

// journald's CVE-2023-31438: cut a sealed file and go on sealing with the current key.
TEST_F(ForwardSecureTest, CuttingTheLogAndSealingAgainFails) {
  write_log(6);
  auto stolen = steal();
  ASSERT_TRUE(stolen);
  auto orig = lines();
  // Cut right after the seal of epoch 2 (which certified epoch 3's key).
  size_t cut = 0;
  for (size_t i = 0; i < orig.size(); ++i)
    if (is_seal(orig[i]) && epoch_of(orig[i]) == 2) cut = i + 1;
  ASSERT_GT(cut, 0u);
  std::vector<std::string> ls(orig.begin(), orig.begin() + static_cast<long>(cut));
  // Resume: a record and a closing seal signed with the stolen key (epoch 6).
  json::Object rec = command("made up");
  rec["seq"] = static_cast<int64_t>(cut + 1);
  rec["time"] = record::format_time(now_ + kSec);
  rec["prev"] = hash_hex(ls.back());
  ls.push_back(json::encode(json::Value(rec)));
  json::Object seal;
  seal["type"] = record::kSeal;
  seal["reason"] = record::kSealClose;
  seal["key_id"] = root_id_;
  seal["epoch"] = static_cast<int64_t>(6);
  seal["first_seq"] = static_cast<int64_t>(cut + 1);
  seal["records"] = static_cast<int64_t>(1);
  seal["seq"] = static_cast<int64_t>(cut + 2);
  seal["time"] = record::format_time(now_ + 2 * kSec);
  seal["prev"] = hash_hex(ls.back());
  auto sig = stolen->key().sign(record::seal_message(seal));
  ASSERT_TRUE(sig.ok());
  seal["sig"] = crypto::base64_encode(*sig);
  ls.push_back(json::encode(json::Value(seal)));
  set_lines(ls);
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, std::optional<uint64_t>(cut + 2));
  EXPECT_NE(rep.error.find("claims key epoch 6, but key " + root_id_ +
                           "'s chain is at epoch 2 (epoch 3 was certified by seal seq " +
                           std::to_string(cut) + ")"),
            std::string::npos)
      << rep.error;
  // Claiming epoch 3 with the stolen key: a bad signature.
  seal["epoch"] = static_cast<int64_t>(3);
  seal.erase("sig");
  sig = stolen->key().sign(record::seal_message(seal));
  seal["sig"] = crypto::base64_encode(*sig);
  ls.back() = json::encode(json::Value(seal));
  set_lines(ls);
  rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_epoch, std::optional<uint64_t>(3));
  EXPECT_NE(
      rep.error.find("has an invalid signature: the records it covers were rewritten (seq " +
                     std::to_string(cut + 1) + " to " + std::to_string(cut + 1) + ", key epoch 3)"),
      std::string::npos)
      << rep.error;
}

TEST_F(ForwardSecureTest, ReSealingAShortenedLogFails) {
  write_log(6);
  auto stolen = steal();
  ASSERT_TRUE(w_->close().ok());
  auto orig = lines();
  // Remove the three commands of epoch 3 and its seal, renumber and re-chain the rest.
  std::vector<std::string> ls;
  for (const auto& l : orig)
    if (l.find("\"c3.") == std::string::npos && !(is_seal(l) && epoch_of(l) == 3)) ls.push_back(l);
  for (size_t i = 0; i < ls.size(); ++i)
    ls[i] = edit(ls[i], [&](json::Object& o) { o["seq"] = static_cast<int64_t>(i + 1); });
  size_t first_changed = 0;
  while (first_changed < ls.size() && ls[first_changed] == orig[first_changed]) ++first_changed;
  reseal(ls, first_changed - 1, stolen->key());
  set_lines(ls);
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  // The first seal after the cut claims epoch 4, but epoch 3's seal (which certified 4) is gone.
  EXPECT_NE(rep.error.find("claims key epoch 4, but key " + root_id_ + "'s chain is at epoch 2"),
            std::string::npos)
      << rep.error;
}

TEST_F(ForwardSecureTest, SplicingTwoLogsFails) {
  write_log(4);
  ASSERT_TRUE(w_->close().ok());
  w_.reset();
  ks_.reset();
  auto a = lines();
  // Another host's log, with its own key.
  TempDir other;
  auto k2 = crypto::SigningKey::generate();
  ASSERT_TRUE(k2.ok());
  ASSERT_TRUE(k2->save(other.file("k")).ok());
  auto v2 = crypto::VerifyKey::from_raw(k2->public_raw());
  auto ks2 = KeyState::open(other.file("k"), other.file("state"));
  ASSERT_TRUE(ks2.ok());
  std::string log_b = other.file("b.jsonl");
  auto wb = open_writer(ks2->get(), log_b);
  for (int s = 0; s < 4; ++s) {
    ASSERT_TRUE(wb->append(command(fmt::format("b{}", s))).ok());
    ASSERT_TRUE(wb->seal(record::kSealInterval).ok());
  }
  ASSERT_TRUE(wb->close().ok());
  auto b = read_lines(log_b);
  // A's first two epochs, then B from its epoch-2 seal on, renumbered and re-chained (the
  // seals keep their signatures, which cover their old prev: they are re-signed with B's key
  // state, which the splicer holds).
  std::vector<std::string> ls;
  for (const auto& l : a) {
    ls.push_back(l);
    if (is_seal(l) && epoch_of(l) == 1) break;
  }
  size_t join = ls.size();
  size_t from_b = 0;
  for (size_t i = 0; i < b.size(); ++i)
    if (is_seal(b[i]) && epoch_of(b[i]) == 1) from_b = i + 1;
  for (size_t i = from_b; i < b.size(); ++i) ls.push_back(b[i]);
  for (size_t i = join; i < ls.size(); ++i)
    ls[i] = edit(ls[i], [&](json::Object& o) { o["seq"] = static_cast<int64_t>(i + 1); });
  reseal(ls, join - 1, (*ks2)->key());
  set_lines(ls);
  auto rep = verify({log_}, false, {}, &*v2);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(rep.error.find("claims key epoch 2, but key " + k2->key_id() +
                           "'s chain is at "
                           "epoch 0"),
            std::string::npos)
      << rep.error;
  // B's seals kept as they are (not re-signed): the first one's prev breaks the chain.
  ls.resize(join);
  for (size_t i = from_b; i < b.size(); ++i) ls.push_back(b[i]);
  set_lines(ls);
  EXPECT_FALSE(verify({log_}, false, {}, &*v2).ok);
}

TEST_F(ForwardSecureTest, ARolledBackKeyStateIsAChainBreak) {
  write_log(2);
  std::string snapshot = read_file(state_);  // epoch 2
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(w_->append(command("later")).ok());
    ASSERT_TRUE(w_->seal(record::kSealInterval).ok());
  }
  ASSERT_TRUE(w_->close().ok());  // epoch 6 on disk
  w_.reset();
  ks_.reset();
  write_file(state_, snapshot);  // rolled back to epoch 2
  ks_ = open();
  ASSERT_TRUE(ks_);
  EXPECT_EQ(ks_->epoch(), 2u);
  w_ = open_writer(ks_.get(), log_);
  ASSERT_TRUE(w_);
  ASSERT_TRUE(w_->close().ok());
  auto ls = lines();
  size_t cb = 0;
  for (size_t i = 0; i < ls.size(); ++i)
    if (*json::get_string(parse_object(ls[i]), "type") == record::kChainBreak) cb = i;
  ASSERT_GT(cb, 0u);
  json::Object o = parse_object(ls[cb]);
  EXPECT_EQ(*json::get_string(o, "found"), "key_state");
  EXPECT_EQ(*json::get_int(o, "expected_epoch"), 6);
  EXPECT_EQ(*json::get_int(o, "found_epoch"), 2);
  auto rep = verify();
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.bad_seq, std::optional<uint64_t>(cb + 1));
  EXPECT_NE(rep.error.find("its key state " + state_ +
                           " was at key epoch 2, but the log's last "
                           "seal (seq " +
                           std::to_string(cb - 1) + ") left the key chain at epoch 6"),
            std::string::npos)
      << rep.error;
}

TEST_F(ForwardSecureTest, AStopBetweenTheNextKeyAndItsSealLosesNothing) {
  write_log(2);
  ASSERT_TRUE(w_->append(command("unsealed")).ok());
  ASSERT_TRUE(ks_->prepare_next().ok());  // the next key is written; its seal never is
  w_.reset();                             // killed
  ks_.reset();
  write_log(0, 2);  // the prepared key was not certified: erased
  EXPECT_FALSE(ks_->pending());
  ASSERT_TRUE(w_->append(command("next run")).ok());
  ASSERT_TRUE(w_->close().ok());
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.last_epoch, std::optional<uint64_t>(2));
  for (const auto& l : lines())
    EXPECT_NE(*json::get_string(parse_object(l), "type"), record::kChainBreak) << l;
}

TEST_F(ForwardSecureTest, RemoteSealsAreCheckedWithTheirEpochsKeys) {
  write_log(4);
  std::vector<std::string> shipped;
  for (const auto& l : lines())
    if (is_seal(l)) shipped.push_back(l);
  ASSERT_TRUE(w_->append(command("after")).ok());
  ASSERT_TRUE(w_->seal(record::kSealInterval).ok());
  shipped.push_back(lines().back());
  std::string remote = dir_.file("remote.jsonl");
  write_file(remote, join_lines(shipped));
  auto rep = verify({log_}, true, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 5u);
  // The log cut back to epoch 3's seal: the shipped seals of epoch 4 are signed by the key
  // epoch 3's seal certified, and are not in the log.
  auto ls = lines();
  size_t cut = 0;
  for (size_t i = 0; i < ls.size(); ++i)
    if (is_seal(ls[i]) && epoch_of(ls[i]) == 3) cut = i + 1;
  ls.resize(cut);
  set_lines(ls);
  rep = verify({log_}, true, {remote});
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(rep.error.find("log cut short: remote seal seq"), std::string::npos) << rep.error;
  // A remote seal signed with a key the chain does not reach.
  auto mine = crypto::SigningKey::generate();
  std::string forged = edit(shipped[1], [&](json::Object& o) {
    o.erase("sig");
    o["sig"] = crypto::base64_encode(*mine->sign(record::seal_message(o)));
  });
  write_file(remote, forged + "\n");
  set_lines(read_lines(log_));
  rep = verify({log_}, true, {remote});
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(rep.error.find("bad signature (it does not verify with the key of epoch 1 of key " +
                           root_id_ + ")"),
            std::string::npos)
      << rep.error;
}

}  // namespace
}  // namespace shaudit
