// SPDX-License-Identifier: Apache-2.0
#include "shaudit/verify.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "internal/test_util.h"
#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/log_writer.h"
#include "shaudit/record.h"

namespace shaudit {
namespace {

using shaudit::testing::append_file;
using shaudit::testing::join_lines;
using shaudit::testing::read_file;
using shaudit::testing::read_lines;
using shaudit::testing::TempDir;
using shaudit::testing::write_file;

using shaudit::testing::command;
using shaudit::testing::hash_hex;
using shaudit::testing::kSec;
using shaudit::testing::kT0;
using shaudit::testing::parse_object;

// Parses line, lets f change the record, and re-encodes it canonically.
template <class F>
std::string edit(const std::string& line, F f) {
  json::Object o = parse_object(line);
  f(o);
  return json::encode(json::Value(std::move(o)));
}

// The seal lines of a log.
std::vector<std::string> seals_of(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines)
    if (*json::get_string(parse_object(l), "type") == record::kSeal) out.push_back(l);
  return out;
}

std::string time_of(const std::string& line) {
  return *json::get_string(parse_object(line), "time");
}

// A webhook item as shauditd's webhook output sends it: {"id": <32 hex>, "record": {...}}.
json::Value webhook_item(const std::string& line) {
  json::Object item;
  item["id"] = hash_hex(line).substr(0, 32);
  item["record"] = parse_object(line);
  return json::Value(std::move(item));
}

// One webhook request body: [item, item, ...] on one line.
std::string webhook_batch(const std::vector<std::string>& lines) {
  json::Array a;
  for (const auto& l : lines) a.push_back(webhook_item(l));
  return json::encode(json::Value(std::move(a)));
}

// What an attacker without the key can do after editing lines[from]: recompute the prev of
// every later record so that the hash chain is consistent again (seals keep their old sig).
void rechain(std::vector<std::string>& lines, size_t from) {
  for (size_t i = from + 1; i < lines.size(); ++i)
    lines[i] = edit(lines[i], [&](json::Object& o) { o["prev"] = hash_hex(lines[i - 1]); });
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = make_key();
    path_ = dir_.file("audit.jsonl");
  }

  static std::unique_ptr<crypto::SigningKey> make_key() {
    auto k = crypto::SigningKey::generate();
    if (!k.ok()) throw std::runtime_error(k.message());
    return std::make_unique<crypto::SigningKey>(std::move(*k));
  }

  static crypto::VerifyKey pub(const crypto::SigningKey& k) {
    auto v = crypto::VerifyKey::from_raw(k.public_raw());
    if (!v.ok()) throw std::runtime_error(v.message());
    return std::move(*v);
  }

  std::unique_ptr<LogWriter> open_writer(const crypto::SigningKey* key = nullptr,
                                         uint64_t seal_every = 1000) {
    WriterOptions o;
    o.path = path_;
    o.key = key ? key : key_.get();
    o.clock_ns = [this] { return now_ += kSec; };
    o.seal_every = seal_every;
    o.state_path = state_path_;
    auto w = LogWriter::open(std::move(o));
    EXPECT_TRUE(w.ok()) << w.message();
    if (!w.ok()) return nullptr;
    return std::move(*w);
  }

  // The standard log:
  //   seq 1 start, 2..4 commands "echo 1".."echo 3", 5 interval seal,
  //   6..7 commands "echo 4", "echo 5", 8 closing seal (unless close is false).
  void write_standard_log(bool close = true) {
    auto w = open_writer();
    ASSERT_TRUE(w);
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(w->append(command("echo " + std::to_string(i))).ok());
    ASSERT_TRUE(w->seal(record::kSealInterval).ok());
    for (int i = 4; i <= 5; ++i) ASSERT_TRUE(w->append(command("echo " + std::to_string(i))).ok());
    if (close) {
      ASSERT_TRUE(w->close().ok());
    }
  }

  VerifyReport verify(const std::vector<std::string>& paths, bool allow_open = false,
                      const std::vector<const crypto::SigningKey*>& keys = {}) {
    VerifyOptions o;
    if (keys.empty()) o.keys.push_back(pub(*key_));
    for (const auto* k : keys) o.keys.push_back(pub(*k));
    o.allow_open = allow_open;
    return verify_logs(paths, o);
  }
  VerifyReport verify(bool allow_open = false) { return verify({path_}, allow_open); }

  VerifyReport verify_remote(const std::vector<std::string>& paths,
                             const std::vector<std::string>& remote, bool allow_open = false,
                             const std::vector<const crypto::SigningKey*>& keys = {}) {
    VerifyOptions o;
    if (keys.empty()) o.keys.push_back(pub(*key_));
    for (const auto* k : keys) o.keys.push_back(pub(*k));
    o.allow_open = allow_open;
    o.remote_seals = remote;
    return verify_logs(paths, o);
  }

  // Writes a remote seals file with these lines; returns its path.
  std::string remote_file(const std::vector<std::string>& ls, const std::string& name = "anchor") {
    std::string p = dir_.file(name + ".jsonl");
    write_file(p, join_lines(ls));
    return p;
  }

  std::vector<std::string> lines() const { return read_lines(path_); }
  void set_lines(const std::vector<std::string>& ls) { write_file(path_, join_lines(ls)); }

  TempDir dir_;
  std::string path_;
  std::string state_path_;  // the writers' state file ("": none)
  std::unique_ptr<crypto::SigningKey> key_;
  int64_t now_ = kT0;
};

// A failed report: the exact seq and (a distinctive part of) the message.
#define EXPECT_FAILS_AT(rep, seq, text)                                         \
  do {                                                                          \
    const VerifyReport& r_ = (rep);                                             \
    EXPECT_FALSE(r_.ok);                                                        \
    EXPECT_EQ(r_.bad_seq, std::optional<uint64_t>(seq)) << r_.error;            \
    EXPECT_NE(r_.error.find(text), std::string::npos) << "error: " << r_.error; \
  } while (0)

// ---- intact logs ----

TEST_F(VerifyTest, IntactLogVerifiesWithCounts) {
  write_standard_log();
  ASSERT_EQ(lines().size(), 8u);
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 8u);
  EXPECT_EQ(rep.seals, 2u);
  EXPECT_EQ(rep.unsealed, 0u);
  EXPECT_FALSE(rep.bad_seq.has_value());
  EXPECT_EQ(rep.error, "");
  EXPECT_TRUE(rep.notes.empty());
}

TEST_F(VerifyTest, LogWithCountSealsVerifies) {
  auto w = open_writer(nullptr, /*seal_every=*/3);
  ASSERT_TRUE(w);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(w->append(command("c" + std::to_string(i))).ok());
  ASSERT_TRUE(w->close().ok());
  // 1 start, 2-3, 4 seal, 5-7, 8 seal, 9-10, 11 close
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 11u);
  EXPECT_EQ(rep.seals, 3u);
}

TEST_F(VerifyTest, SeveralRunsInOneFileVerifyAsOneChain) {
  write_standard_log();  // clean run
  {
    auto w = open_writer();  // an unclean run
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("crash")).ok());
  }
  append_file(path_, "{\"partial");  // crash residue, cut off by the next run
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("after")).ok());
    ASSERT_TRUE(w->close().ok());
  }
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 8u + 2u + 3u);
  EXPECT_EQ(rep.seals, 3u);
}

TEST_F(VerifyTest, RecordSpanningReadChunksVerifies) {
  auto w = open_writer();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command(std::string(3u << 20, 'x'))).ok());  // a 3 MiB line
  ASSERT_TRUE(w->append(command("small")).ok());
  ASSERT_TRUE(w->close().ok());
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 4u);

  auto ls = lines();
  ls[1] = edit(ls[1], [](json::Object& o) { o["text"] = std::string(3u << 20, 'y'); });
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 2u, "seq 2 was changed");
}

// ---- open logs ----

TEST_F(VerifyTest, LogWithoutClosingSealFails) {
  write_standard_log(/*close=*/false);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 8u, "closing seal");
  EXPECT_EQ(rep.error, path_ +
                           " does not end with a closing seal (last record: seq 7, type "
                           "command): the log was cut short after seq 7, or shauditd has "
                           "not stopped cleanly yet (--allow-open accepts a live log)");
}

TEST_F(VerifyTest, AllowOpenAcceptsALiveLogAndCountsUnsealed) {
  write_standard_log(/*close=*/false);
  auto rep = verify(/*allow_open=*/true);
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 7u);
  EXPECT_EQ(rep.seals, 1u);
  EXPECT_EQ(rep.unsealed, 2u);  // seq 6 and 7
  EXPECT_FALSE(rep.bad_seq.has_value());
}

TEST_F(VerifyTest, AllowOpenRightAfterASeal) {
  auto w = open_writer();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("a")).ok());
  ASSERT_TRUE(w->seal(record::kSealInterval).ok());
  auto open = verify(/*allow_open=*/true);
  EXPECT_TRUE(open.ok) << open.error;
  EXPECT_EQ(open.unsealed, 0u);
  EXPECT_EQ(open.seals, 1u);
  EXPECT_FAILS_AT(verify(), 4u, "does not end with a closing seal (last record: seq 3, type seal)");
}

TEST_F(VerifyTest, AllowOpenStillRejectsTampering) {
  write_standard_log(/*close=*/false);
  auto ls = lines();
  ls.erase(ls.begin() + 5);  // seq 6
  set_lines(ls);
  EXPECT_FAILS_AT(verify(/*allow_open=*/true), 6u, "seq 6 is missing");
}

// A record appended after the closing seal, chained and numbered like a real one: a closing
// seal ends a run, so only a start record may follow it, also in a live log.
TEST_F(VerifyTest, RecordAppendedAfterTheClosingSealFailsAlsoWithAllowOpen) {
  write_standard_log();
  auto ls = lines();
  json::Object forged = parse_object(ls[1]);  // seq 2, a command
  forged["text"] = "forged";
  forged["seq"] = int64_t{9};
  forged["prev"] = hash_hex(ls.back());
  ls.push_back(json::encode(json::Value(std::move(forged))));
  set_lines(ls);
  const std::string want = path_ +
                           " line 9: seq 9 (command) follows the closing seal at seq 8: a closing "
                           "seal ends a run and only the start record of the next run may follow "
                           "it: records were appended after it";
  auto open = verify(/*allow_open=*/true);
  EXPECT_FAILS_AT(open, 9u, want);
  EXPECT_EQ(open.error, want);
  auto closed = verify();
  EXPECT_FAILS_AT(closed, 9u, want);
  EXPECT_EQ(closed.error, want);
}

// The next run after a closing seal begins with its start record: that is no insertion.
TEST_F(VerifyTest, AllowOpenAcceptsTheNextRunAfterAClosingSeal) {
  write_standard_log();
  auto w = open_writer();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("next run")).ok());
  auto rep = verify(/*allow_open=*/true);
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 10u);
  EXPECT_EQ(rep.unsealed, 2u);
}

// ---- the state file: a log that is not the one the writer left ----

TEST_F(VerifyTest, LogCutWhileTheWriterWasAwayIsAChainBreak) {
  state_path_ = dir_.file("log-state.json");
  write_standard_log();  // 8 lines, the state names seq 8
  auto ls = lines();
  const std::string head = hash_hex(ls[7]);
  ls.resize(3);  // the next run would chain to seq 3 without the state file
  set_lines(ls);
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->close().ok());
  }
  ls = lines();
  ASSERT_EQ(ls.size(), 6u);  // 4 start, 5 chain_break, 6 closing seal
  json::Object cb = parse_object(ls[4]);
  EXPECT_EQ(*json::get_string(cb, "type"), "chain_break");
  EXPECT_EQ(*json::get_string(cb, "found"), "shorter");
  EXPECT_EQ(*json::get_int(cb, "found_seq"), 3);
  EXPECT_EQ(*json::get_string(cb, "found_hash"), hash_hex(ls[2]));
  EXPECT_EQ(*json::get_int(cb, "expected_seq"), 8);
  EXPECT_EQ(*json::get_string(cb, "expected_hash"), head);
  const std::string want = path_ +
                           " line 5: seq 5 is a chain_break record: when shauditd started, the log "
                           "ended at seq 3, but it had written up to seq 8 (chain hash " +
                           head + "): records were cut off while shauditd was stopped";
  EXPECT_EQ(verify().error, want);
  EXPECT_FAILS_AT(verify(/*allow_open=*/true), 5u, want);
  // The state now names this run's head: the next run finds the log as left.
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->close().ok());
  }
  EXPECT_EQ(lines().size(), 8u);
}

TEST_F(VerifyTest, UnsealedRecordsLeftByACrashAreNoChainBreak) {
  state_path_ = dir_.file("log-state.json");
  write_standard_log(/*close=*/false);  // the state names the interval seal, seq 5
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->close().ok());
  }
  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 9u);
  // ... but a log whose record at the recorded head was rewritten (the records after it
  // chained again) ends at a different head, though it is longer.
  path_ = dir_.file("other.jsonl");
  state_path_ = dir_.file("other-state.json");
  write_standard_log(/*close=*/false);  // the state names the interval seal, seq 5
  auto ls = lines();
  ls[4] = edit(ls[4], [](json::Object& o) { o["records"] = int64_t{2}; });
  rechain(ls, 4);
  set_lines(ls);
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->close().ok());
  }
  json::Object cb = parse_object(lines()[8]);
  EXPECT_EQ(*json::get_string(cb, "found"), "different");
  EXPECT_EQ(*json::get_int(cb, "found_seq"), 7);
  EXPECT_EQ(*json::get_int(cb, "expected_seq"), 5);
}

// ---- tampering ----

TEST_F(VerifyTest, EditedCommandTextNamesThatRecord) {
  write_standard_log();
  auto ls = lines();
  ASSERT_EQ(*json::get_string(parse_object(ls[2]), "text"), "echo 2");
  ls[2] = edit(ls[2], [](json::Object& o) { o["text"] = "rm -rf /"; });
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 3u, "seq 3 was changed");
  EXPECT_EQ(rep.error, path_ +
                           " line 3: seq 3 was changed, or a record was inserted after it: "
                           "the prev of seq 4 does not match its hash");
}

TEST_F(VerifyTest, EditedRecordJustBeforeTheClosingSeal) {
  write_standard_log();
  auto ls = lines();
  ls[6] = edit(ls[6], [](json::Object& o) { o["pid"] = 1; });
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 7u, "seq 7 was changed");
}

TEST_F(VerifyTest, DeletedMiddleRecordNamesTheMissingSeq) {
  write_standard_log();
  auto ls = lines();
  ls.erase(ls.begin() + 2);  // seq 3
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 3u, "seq 3 is missing");
  EXPECT_EQ(rep.error, path_ +
                           " line 3: seq 3 is missing (seq 4 follows seq 2): records were "
                           "removed or reordered");
}

TEST_F(VerifyTest, InsertedCopyOfARecord) {
  write_standard_log();
  auto ls = lines();
  ls.insert(ls.begin() + 3, ls[2]);  // seq 3 twice
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 3u, "seq 3 appears again");
  EXPECT_EQ(rep.error, path_ +
                           " line 4: seq 3 appears again or out of order after seq 3: "
                           "records were inserted or reordered");

  // A copy of an older record further down.
  auto ls2 = lines();
  ls2.erase(ls2.begin() + 3);           // back to the original
  ls2.insert(ls2.begin() + 6, ls2[1]);  // seq 2 again after seq 6
  set_lines(ls2);
  EXPECT_FAILS_AT(verify(), 2u, "seq 2 appears again or out of order after seq 6");
}

TEST_F(VerifyTest, InsertedForgedRecordWithAValidLookingChain) {
  write_standard_log();
  auto ls = lines();
  // A new record with the right prev, taking seq 4; all later records renumbered and rechained.
  std::string forged = edit(ls[2], [&](json::Object& o) {
    o["text"] = "injected";
    o["seq"] = 4;
    o["prev"] = hash_hex(ls[2]);
  });
  ls.insert(ls.begin() + 3, forged);
  for (size_t i = 4; i < ls.size(); ++i)
    ls[i] = edit(ls[i], [&](json::Object& o) { o["seq"] = static_cast<int64_t>(i + 1); });
  rechain(ls, 3);
  set_lines(ls);
  // The chain is consistent, but the interval seal (now seq 6) no longer verifies.
  EXPECT_FAILS_AT(verify(), 6u, "seal seq 6 has an invalid signature");
}

TEST_F(VerifyTest, SwappedRecordsAreReordering) {
  write_standard_log();
  auto ls = lines();
  std::swap(ls[2], ls[3]);  // seq 4 before seq 3
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 3u, "records were removed or reordered");
  EXPECT_NE(rep.error.find("seq 3 is missing (seq 4 follows seq 2)"), std::string::npos)
      << rep.error;
}

TEST_F(VerifyTest, CutShortByRemovingTheClosingSeal) {
  write_standard_log();
  auto ls = lines();
  ls.pop_back();
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 8u,
                  "does not end with a closing seal (last record: seq 7, type command)");
}

TEST_F(VerifyTest, CutShortByRemovingTheLastLines) {
  write_standard_log();
  auto ls = lines();
  ls.resize(5);  // up to and including the interval seal
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 6u, "does not end with a closing seal (last record: seq 5, type seal)");
}

TEST_F(VerifyTest, TruncatedLastLineWithoutNewline) {
  write_standard_log();
  std::string data = read_file(path_);
  write_file(path_, data.substr(0, data.size() - 1));  // only the final newline gone
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 8u, "cut short");
  EXPECT_EQ(rep.error, path_ +
                           ": line 8 is cut short (no newline at the end of the file): the "
                           "record after seq 7 is incomplete");

  write_file(path_, data.substr(0, data.size() - 40));  // the closing seal half written
  EXPECT_FAILS_AT(verify(), 8u, "line 8 is cut short");
  EXPECT_FAILS_AT(verify(/*allow_open=*/true), 8u, "line 8 is cut short");
}

TEST_F(VerifyTest, NonCanonicalReencodingIsDetected) {
  write_standard_log();
  const auto orig = lines();

  auto ls = orig;
  ls[2].insert(1, " ");  // {"pid":... -> { "pid":...
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 3u, "canonical");
  EXPECT_EQ(rep.error, path_ + " line 3: seq 3 is not in canonical form: it was edited");

  ls = orig;
  auto pos = ls[3].find("echo 3");
  ASSERT_NE(pos, std::string::npos);
  ls[3].replace(pos, 6, "ech\\u006f 3");  // same value, escaped
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 4u, "seq 4 is not in canonical form");

  ls = orig;
  ls[1] += " ";  // trailing space
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 2u, "seq 2 is not in canonical form");
}

TEST_F(VerifyTest, GarbageAndIncompleteRecords) {
  write_standard_log();
  const auto orig = lines();

  auto ls = orig;
  ls[3] = "garbage";
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 4u, "seq 4 (expected here) is not a valid record: JSON error");

  ls = orig;
  ls[3] = "[1,2]";
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 4u, "is not a valid record: not a JSON object");

  ls = orig;
  ls[3] = edit(ls[3], [](json::Object& o) { o.erase("prev"); });
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 4u, "record lacks a valid seq, type, time or prev (expected seq 4)");

  ls = orig;
  ls[3] = "";  // an empty line
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 4u, "line 4: seq 4 (expected here) is not a valid record");

  ls = orig;
  ls[3] = edit(ls[3], [](json::Object& o) { o["time"] = "yesterday"; });
  rechain(ls, 3);
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 4u, "seq 4 has an invalid time");
}

TEST_F(VerifyTest, ForgedSealSignature) {
  write_standard_log();
  const auto orig = lines();

  // A made-up signature on the interval seal.
  auto ls = orig;
  ls[4] =
      edit(ls[4], [](json::Object& o) { o["sig"] = crypto::base64_encode(std::string(64, '\0')); });
  rechain(ls, 4);
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 5u, "invalid signature");
  EXPECT_EQ(rep.error, path_ +
                           " line 5: seal seq 5 has an invalid signature: the records it "
                           "covers were rewritten");

  // A rewritten record with the whole chain recomputed: the next seal gives it away.
  ls = orig;
  ls[2] = edit(ls[2], [](json::Object& o) { o["text"] = "innocent"; });
  rechain(ls, 2);
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 5u, "seal seq 5 has an invalid signature");

  // Same after the last interval seal: the closing seal gives it away.
  ls = orig;
  ls[6] = edit(ls[6], [](json::Object& o) { o["text"] = "innocent"; });
  rechain(ls, 6);
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 8u, "seal seq 8 has an invalid signature");

  // A seal's own fields are signed too.
  ls = orig;
  ls[7] = edit(ls[7], [](json::Object& o) { o["reason"] = "rotate"; });
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 8u, "seal seq 8 has an invalid signature");

  // A signature that is not base64, and a missing one.
  ls = orig;
  ls[7] = edit(ls[7], [](json::Object& o) { o["sig"] = "not base64!"; });
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 8u, "seal seq 8 has an invalid signature");
  ls = orig;
  ls[7] = edit(ls[7], [](json::Object& o) { o.erase("sig"); });
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 8u, "seal seq 8 lacks key_id or sig");
}

TEST_F(VerifyTest, SealByAnUnknownKeyNamesTheKeyId) {
  write_standard_log();
  auto other = make_key();
  auto rep = verify({path_}, false, {other.get()});
  EXPECT_FAILS_AT(rep, 5u, key_->key_id());
  EXPECT_EQ(rep.error, path_ + " line 5: seal seq 5 is signed by key " + key_->key_id() +
                           ", which is not among the given public keys");
  // With the right key among several, it verifies.
  auto both = verify({path_}, false, {other.get(), key_.get()});
  EXPECT_TRUE(both.ok) << both.error;
}

TEST_F(VerifyTest, SealClaimingAnotherKeyId) {
  write_standard_log();
  auto other = make_key();
  auto ls = lines();
  ls[7] = edit(ls[7], [&](json::Object& o) { o["key_id"] = other->key_id(); });
  set_lines(ls);
  // Verified with the claimed key, the signature (made by key_) does not match.
  auto rep = verify({path_}, false, {key_.get(), other.get()});
  EXPECT_FAILS_AT(rep, 8u, "seal seq 8 has an invalid signature");
}

// ---- beginnings ----

TEST_F(VerifyTest, FirstRecordsRemoved) {
  write_standard_log();
  const auto orig = lines();

  auto ls = orig;
  ls.erase(ls.begin(), ls.begin() + 2);  // seq 1 and 2
  set_lines(ls);
  auto rep = verify();
  EXPECT_FAILS_AT(rep, 1u, "records before it were removed");
  EXPECT_EQ(rep.error, path_ +
                           " line 1: the log begins with seq 3 (command), which neither "
                           "starts a chain nor follows a rotation: records before it were "
                           "removed");

  ls = orig;
  ls.erase(ls.begin());  // only the start record
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 1u, "the log begins with seq 2 (command)");
}

TEST_F(VerifyTest, LogBeginningAtALaterRunFails) {
  write_standard_log();
  size_t first_run = lines().size();
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->close().ok());
  }
  auto ls = lines();
  ls.erase(ls.begin(), ls.begin() + static_cast<long>(first_run));  // keep the second run only
  set_lines(ls);
  // A start record whose prev is not the genesis value does not begin a chain.
  EXPECT_FAILS_AT(verify(), 1u, "the log begins with seq 9 (start)");
}

TEST_F(VerifyTest, StartRecordWithWrongSeq) {
  write_standard_log();
  auto ls = lines();
  ls[0] = edit(ls[0], [](json::Object& o) { o["seq"] = 2; });
  rechain(ls, 0);
  set_lines(ls);
  EXPECT_FAILS_AT(verify(), 1u, "the log begins with seq 2, expected seq 1");
}

TEST_F(VerifyTest, EmptyMissingAndNoInput) {
  write_file(path_, "");
  auto empty = verify();
  EXPECT_FALSE(empty.ok);
  EXPECT_FALSE(empty.bad_seq.has_value());
  EXPECT_EQ(empty.error, path_ + ": the file is empty");

  const std::string missing = dir_.file("missing.jsonl");
  auto m = verify({missing});
  EXPECT_FALSE(m.ok);
  EXPECT_FALSE(m.bad_seq.has_value());
  EXPECT_EQ(m.error, missing + ": No such file or directory");

  VerifyOptions with_key;
  with_key.keys.push_back(pub(*key_));
  auto none = verify_logs({}, with_key);
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.error, "no log file given");

  write_standard_log();
  auto no_key = verify_logs({path_}, VerifyOptions{});
  EXPECT_FALSE(no_key.ok);
  EXPECT_EQ(no_key.error, "no public key given");
}

// ---- rotated sets ----

class RotatedSetTest : public VerifyTest {
 protected:
  // f1: seq 1 start, 2-3 commands, 4 rotate seal
  // f2: seq 1 rotate, 2 command, 3 rotate seal
  // path_: seq 1 rotate, 2-3 commands, 4 closing seal
  void SetUp() override {
    VerifyTest::SetUp();
    f1_ = dir_.file("audit.jsonl.2");
    f2_ = dir_.file("audit.jsonl.1");
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("one")).ok());
    ASSERT_TRUE(w->append(command("two")).ok());
    ASSERT_EQ(std::rename(path_.c_str(), f1_.c_str()), 0);
    ASSERT_TRUE(w->rotate().ok());
    ASSERT_TRUE(w->append(command("three")).ok());
    ASSERT_EQ(std::rename(path_.c_str(), f2_.c_str()), 0);
    ASSERT_TRUE(w->rotate().ok());
    ASSERT_TRUE(w->append(command("four")).ok());
    ASSERT_TRUE(w->append(command("five")).ok());
    ASSERT_TRUE(w->close().ok());
  }
  std::string f1_, f2_;
};

TEST_F(RotatedSetTest, OldestFirstVerifiesAsOneChain) {
  ASSERT_EQ(read_lines(f1_).size(), 4u);
  ASSERT_EQ(read_lines(f2_).size(), 3u);
  ASSERT_EQ(lines().size(), 4u);
  auto rep = verify({f1_, f2_, path_});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 11u);
  EXPECT_EQ(rep.seals, 3u);
  EXPECT_EQ(rep.unsealed, 0u);
  EXPECT_TRUE(rep.notes.empty());
}

TEST_F(RotatedSetTest, MiddleFileMissingFails) {
  auto rep = verify({f1_, path_});
  EXPECT_FAILS_AT(rep, 1u, "missing or out of order");
  EXPECT_EQ(rep.error, path_ + " does not continue " + f1_ +
                           " (first record seq 1, type rotate): a file of the rotated set is "
                           "missing or out of order");
}

TEST_F(RotatedSetTest, WrongOrderFails) {
  auto rep = verify({f2_, f1_, path_});
  EXPECT_FAILS_AT(rep, 1u, f1_ + " does not continue " + f2_ + " (first record seq 1, type start)");
  EXPECT_FAILS_AT(verify({f1_, path_, f2_}), 1u,
                  path_ + " does not continue " + f1_ + " (first record seq 1, type rotate)");
  EXPECT_FAILS_AT(verify({path_, f1_, f2_}), 5u,
                  path_ + " ends at seq 4 without a rotation seal, but another file follows it");
}

// Older files deleted by someone else than shauditd's retention: no retention record names
// the file the first one continues, so the records before it are missing.
TEST_F(RotatedSetTest, NewestFilesWithoutTheOlderOnesFail) {
  const std::string f2_last = hash_hex(read_lines(f2_).back());
  auto rep = verify({path_});
  EXPECT_FAILS_AT(rep, 1u, "no retention record");
  EXPECT_EQ(rep.error, path_ + " begins at a rotation after seq 3 (chain hash " + f2_last +
                           ") of an older file that was not given, and no retention record says "
                           "shauditd removed it: the records up to that seq are missing (give "
                           "the older files, oldest first)");
  EXPECT_FAILS_AT(verify({f2_, path_}), 1u, f2_ + " begins at a rotation after seq 4");
  EXPECT_FAILS_AT(verify({f2_, path_}, /*allow_open=*/true), 1u,
                  f2_ + " begins at a rotation after seq 4");
}

TEST_F(RotatedSetTest, OlderFilesWithoutTheNewestOne) {
  auto rep = verify({f1_, f2_});
  EXPECT_FAILS_AT(rep, 4u, "newer file of the rotated set is missing");
  EXPECT_EQ(rep.error, f2_ +
                           " ends with a rotation seal at seq 3: the newer file of the "
                           "rotated set is missing");
  auto open = verify({f1_, f2_}, /*allow_open=*/true);
  EXPECT_TRUE(open.ok) << open.error;
  ASSERT_EQ(open.notes.size(), 1u);
  EXPECT_EQ(open.notes[0], f2_ +
                               " ends with a rotation seal: the newer file of the rotated set "
                               "was not given");
}

TEST_F(RotatedSetTest, TamperingInALaterFileNamesItsSeq) {
  auto ls = lines();
  ls[1] = edit(ls[1], [](json::Object& o) { o["text"] = "changed"; });
  set_lines(ls);
  auto rep = verify({f1_, f2_, path_});
  EXPECT_FAILS_AT(rep, 2u, path_ + " line 2: seq 2 was changed");
}

TEST_F(RotatedSetTest, EditedRotationSealBreaksTheLink) {
  auto ls = read_lines(f1_);
  ls[3] = edit(ls[3], [](json::Object& o) { o["time"] = "2026-11-28T12:00:00.000000000Z"; });
  write_file(f1_, join_lines(ls));
  // The seal's own signature fails before the next file is even read.
  EXPECT_FAILS_AT(verify({f1_, f2_, path_}), 4u, "seal seq 4 has an invalid signature");
}

// ---- retention: shauditd removes the oldest rotated files and says so ----

TEST_F(VerifyTest, RetentionRecordAccountsForTheRemovedFiles) {
  const std::string f1 = dir_.file("audit.jsonl.1");
  const std::string other = dir_.file("audit.jsonl.unrelated");
  write_file(other, "not a log\n");  // named like the set, not part of its chain: kept
  std::vector<std::string> f1_lines;
  {
    WriterOptions o;
    o.path = path_;
    o.key = key_.get();
    o.clock_ns = [this] { return now_ += kSec; };
    o.retention_max_total_bytes = 1;  // keep no older file
    auto w = LogWriter::open(std::move(o));
    ASSERT_TRUE(w.ok()) << w.message();
    ASSERT_TRUE((*w)->append(command("in the removed file")).ok());
    ASSERT_EQ(std::rename(path_.c_str(), f1.c_str()), 0);
    ASSERT_TRUE((*w)->rotate().ok());
    ASSERT_TRUE((*w)->append(command("after")).ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  EXPECT_FALSE(std::ifstream(f1).good());  // removed
  EXPECT_TRUE(std::ifstream(other).good());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 4u);  // 1 rotate, 2 retention, 3 command, 4 closing seal
  json::Object rot = parse_object(ls[0]);
  json::Object ret = parse_object(ls[1]);
  EXPECT_EQ(*json::get_string(ret, "type"), "retention");
  const json::Array& removed = ret.at("removed").as_array();
  ASSERT_EQ(removed.size(), 1u);
  const json::Object& f = removed[0].as_object();
  EXPECT_EQ(*json::get_string(f, "file"), f1);
  EXPECT_EQ(*json::get_int(f, "first_seq"), 1);
  EXPECT_EQ(*json::get_int(f, "last_seq"), 3);  // start, command, rotation seal
  EXPECT_EQ(*json::get_string(f, "first_prev"), record::kGenesisPrev);
  EXPECT_EQ(*json::get_string(f, "last_hash"), *json::get_string(rot, "prev"));
  EXPECT_EQ(*json::get_string(f, "reason"), "max_total_mib");

  auto rep = verify();
  EXPECT_TRUE(rep.ok) << rep.error;
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_EQ(rep.notes[0], path_ +
                              " begins at a rotation: the older files, up to seq 3, were removed "
                              "by shauditd's retention (retention record seq 2)");
  // A retention record is signed like every record: one forged to name other files fails.
  ls[1] = edit(ls[1], [](json::Object& o) {
    o["removed"].as_array()[0].as_object()["last_seq"] = int64_t{2};
  });
  rechain(ls, 1);
  set_lines(ls);
  EXPECT_FAILS_AT(verify(/*allow_open=*/true), 4u, "seal seq 4 has an invalid signature");
}

// ---- key changes ----

TEST_F(VerifyTest, KeyChangeVerifiesWithBothKeys) {
  write_standard_log();  // seals by key_
  auto key_b = make_key();
  {
    auto w = open_writer(key_b.get());
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("after the change")).ok());
    ASSERT_TRUE(w->close().ok());
  }
  auto ls = lines();
  ASSERT_EQ(ls.size(), 12u);  // 8 + start, key_change, command, close
  ASSERT_EQ(*json::get_string(parse_object(ls[9]), "type"), "key_change");

  auto both = verify({path_}, false, {key_.get(), key_b.get()});
  EXPECT_TRUE(both.ok) << both.error;
  EXPECT_EQ(both.records, 12u);
  EXPECT_EQ(both.seals, 3u);

  auto only_new = verify({path_}, false, {key_b.get()});
  EXPECT_FAILS_AT(only_new, 5u, "signed by key " + key_->key_id() + ", which is not among");

  auto only_old = verify({path_}, false, {key_.get()});
  EXPECT_FAILS_AT(only_old, 12u, "signed by key " + key_b->key_id() + ", which is not among");
}

// ---- remote seals ----

// What an attacker holding a key of their own can do after editing lines[from]: recompute the
// chain and re-sign every later seal with that key (a log that verifies when their public key
// is accepted, e.g. after a forged key change).
void resign(std::vector<std::string>& lines, size_t from, const crypto::SigningKey& k) {
  for (size_t i = from + 1; i < lines.size(); ++i)
    lines[i] = edit(lines[i], [&](json::Object& o) {
      o["prev"] = hash_hex(lines[i - 1]);
      if (*json::get_string(o, "type") != record::kSeal) return;
      o["key_id"] = k.key_id();
      auto sig = k.sign(record::seal_message(o));
      ASSERT_TRUE(sig.ok());
      o["sig"] = crypto::base64_encode(*sig);
    });
}

TEST_F(VerifyTest, RemoteSealsThatAllMatch) {
  write_standard_log();
  const auto ls = lines();
  auto remote = remote_file({ls[4], ls[7]});
  auto rep = verify_remote({path_}, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.records, 8u);
  EXPECT_EQ(rep.remote_matched, 2u);
  EXPECT_EQ(rep.remote_ignored, 0u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(8));
  EXPECT_EQ(rep.remote_latest_time, time_of(ls[7]));
  EXPECT_TRUE(rep.notes.empty());

  // Other records in the file are ignored and counted; the file order does not matter; a
  // seal received twice counts once; blank lines and a last line without newline are fine.
  write_file(remote, ls[7] + "\n" + ls[2] + "\n\n" + ls[0] + "\n" + ls[4] + "\n" + ls[7]);
  rep = verify_remote({path_}, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 2u);
  EXPECT_EQ(rep.remote_ignored, 2u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(8));
  EXPECT_EQ(rep.notes, (std::vector<std::string>{
                           "2 record(s) in the remote seal files are not seals and were ignored",
                           "1 duplicate remote seal(s) were counted once"}));

  // Only the earlier seal shipped so far: still a match, latest seq 5.
  write_file(remote, ls[4] + "\n");
  rep = verify_remote({path_}, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 1u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(5));
  EXPECT_EQ(rep.remote_latest_time, time_of(ls[4]));

  // No seal at all in the file: nothing to compare, said in a note.
  write_file(remote, ls[1] + "\n");
  rep = verify_remote({path_}, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 0u);
  EXPECT_FALSE(rep.remote_latest_seq.has_value());
  ASSERT_EQ(rep.notes.size(), 2u);
  EXPECT_EQ(rep.notes[1], "the remote seal files hold no seal records: nothing to compare");
}

TEST_F(VerifyTest, RemoteSealsInWebhookItemsAndBatches) {
  write_standard_log();
  const auto ls = lines();
  auto items = remote_file({json::encode(webhook_item(ls[4])), json::encode(webhook_item(ls[2])),
                            json::encode(webhook_item(ls[7]))},
                           "items");
  auto rep = verify_remote({path_}, {items});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 2u);
  EXPECT_EQ(rep.remote_ignored, 1u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(8));

  auto batches =
      remote_file({webhook_batch({ls[2], ls[3], ls[4]}), webhook_batch({ls[7]})}, "batches");
  rep = verify_remote({path_}, {batches});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 2u);
  EXPECT_EQ(rep.remote_ignored, 2u);

  // Several files (--remote-seals repeated), holding the same seals in different forms.
  auto bare = remote_file({ls[4]}, "bare");
  rep = verify_remote({path_}, {bare, items, batches});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 2u);
  EXPECT_EQ(rep.remote_ignored, 3u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(8));

  // A forged seal inside a batch is still checked.
  auto forged = edit(ls[7], [](json::Object& o) { o["records"] = 1; });
  write_file(batches, webhook_batch({ls[4], forged}) + "\n");
  EXPECT_FAILS_AT(verify_remote({path_}, {batches}), 8u,
                  batches + ":1: remote seal seq 8: bad signature");
}

TEST_F(VerifyTest, LogCutShortAfterASealIsCaughtByTheRemoteSeals) {
  // Two runs: seq 1-8 as the standard log (closing seal at 8), then seq 9 start,
  // 10-11 commands, 12 interval seal, 13 command, 14 closing seal.
  write_standard_log();
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("later 1")).ok());
    ASSERT_TRUE(w->append(command("later 2")).ok());
    ASSERT_TRUE(w->seal(record::kSealInterval).ok());
    ASSERT_TRUE(w->append(command("later 3")).ok());
    ASSERT_TRUE(w->close().ok());
  }
  const auto full = lines();
  ASSERT_EQ(full.size(), 14u);
  const auto seals = seals_of(full);
  ASSERT_EQ(seals.size(), 4u);  // seq 5, 8, 12, 14
  // The anchor holds them newest first: the report is still about the first by seq.
  auto remote = remote_file({seals[3], seals[2], seals[1], seals[0]});
  auto rep = verify_remote({path_}, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 4u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(14));

  // Cut back to the first run's closing seal: the log verifies on its own...
  auto cut = full;
  cut.resize(8);
  set_lines(cut);
  auto alone = verify();
  ASSERT_TRUE(alone.ok) << alone.error;
  // ... but not against the seals shipped before it was cut.
  rep = verify_remote({path_}, {remote});
  EXPECT_FAILS_AT(rep, 9u, "log cut short");
  EXPECT_EQ(rep.error, "log cut short: remote seal seq 12 (time " + time_of(full[11]) +
                           ") is not in the log (the log ends at seq 8)");

  // A live log (--allow-open) cut back to its interval seal.
  cut.resize(5);
  set_lines(cut);
  ASSERT_TRUE(verify(/*allow_open=*/true).ok);
  rep = verify_remote({path_}, {remote}, /*allow_open=*/true);
  EXPECT_FAILS_AT(rep, 6u, "log cut short");
  EXPECT_EQ(rep.error, "log cut short: remote seal seq 8 (time " + time_of(full[7]) +
                           ") is not in the log (the log ends at seq 5)");

  // Cut short and then continued by a new run: the records at those seqs are other ones now.
  {
    auto w = open_writer();
    ASSERT_TRUE(w);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(w->append(command("new " + std::to_string(i))).ok());
    ASSERT_TRUE(w->close().ok());
  }
  ASSERT_TRUE(verify().ok);
  rep = verify_remote({path_}, {remote});
  EXPECT_FAILS_AT(rep, 8u,
                  "log rewritten: record seq 8 differs from the remote seal received at " + remote +
                      ":3 (seq 8, time " + time_of(full[7]) + ")");
}

TEST_F(VerifyTest, LogRewrittenAndResignedWithAnotherKey) {
  write_standard_log();
  const auto orig = lines();
  auto remote = remote_file({orig[7], orig[4]});  // seq 8, then seq 5
  auto attacker = make_key();

  // Record seq 3 rewritten, chain recomputed, both seals re-signed with the attacker's key.
  auto ls = orig;
  ls[2] = edit(ls[2], [](json::Object& o) { o["text"] = "innocent"; });
  resign(ls, 2, *attacker);
  set_lines(ls);
  auto alone = verify({path_}, false, {key_.get(), attacker.get()});
  ASSERT_TRUE(alone.ok) << alone.error;  // it verifies when the attacker's key is accepted

  auto rep = verify_remote({path_}, {remote}, false, {key_.get(), attacker.get()});
  EXPECT_FAILS_AT(rep, 5u, "log rewritten");
  EXPECT_EQ(rep.error, "log rewritten: record seq 5 differs from the remote seal received at " +
                           remote + ":2 (seq 5, time " + time_of(orig[4]) + "): " + path_ +
                           " line 5 is not byte-identical to it");

  // A record after the first seal rewritten: seal 5 matches, seal 8 does not.
  ls = orig;
  ls[5] = edit(ls[5], [](json::Object& o) { o["text"] = "innocent"; });
  resign(ls, 5, *attacker);
  set_lines(ls);
  rep = verify_remote({path_}, {remote}, false, {key_.get(), attacker.get()});
  EXPECT_FAILS_AT(rep, 8u,
                  "log rewritten: record seq 8 differs from the remote seal received at " + remote +
                      ":1 (seq 8, time " + time_of(orig[7]) + ")");

  // Only the seal itself re-signed (its prev unchanged): found by seq and prev, bytes differ.
  ls = orig;
  resign(ls, 6, *attacker);
  set_lines(ls);
  rep = verify_remote({path_}, {remote}, false, {key_.get(), attacker.get()});
  EXPECT_FAILS_AT(rep, 8u, "log rewritten: record seq 8 differs");
}

TEST_F(VerifyTest, ForgedRemoteSeals) {
  write_standard_log();
  const auto ls = lines();
  auto remote = dir_.file("anchor.jsonl");

  // A signature that does not verify.
  auto bad =
      edit(ls[4], [](json::Object& o) { o["sig"] = crypto::base64_encode(std::string(64, '\0')); });
  write_file(remote, join_lines({ls[7], bad}));
  auto rep = verify_remote({path_}, {remote});
  EXPECT_FAILS_AT(rep, 5u, "bad signature");
  EXPECT_EQ(rep.error, remote +
                           ":2: remote seal seq 5: bad signature (it does not verify with key " +
                           key_->key_id() + ")");

  // A signed field changed.
  write_file(remote, join_lines({edit(ls[4], [](json::Object& o) { o["first_seq"] = 2; })}));
  EXPECT_FAILS_AT(verify_remote({path_}, {remote}), 5u,
                  remote + ":1: remote seal seq 5: bad signature");

  // A seal "received" that says seq 9 (a copy of the closing seal renumbered): also caught.
  write_file(remote, join_lines({edit(ls[7], [](json::Object& o) { o["seq"] = 9; })}));
  EXPECT_FAILS_AT(verify_remote({path_}, {remote}), 9u,
                  remote + ":1: remote seal seq 9: bad signature");

  // A seal by a key that was not given.
  auto other = make_key();
  auto ols = ls;
  resign(ols, 3, *other);
  write_file(remote, join_lines({ols[4]}));
  rep = verify_remote({path_}, {remote});
  EXPECT_FAILS_AT(rep, 5u, "unknown key");
  EXPECT_EQ(rep.error, remote + ":1: remote seal seq 5: unknown key " + other->key_id() +
                           " (not among the given public keys)");

  // Without a signature.
  write_file(remote, join_lines({edit(ls[4], [](json::Object& o) { o.erase("sig"); })}));
  EXPECT_FAILS_AT(verify_remote({path_}, {remote}), 5u,
                  remote + ":1: remote seal seq 5: lacks key_id or sig");
}

TEST_F(VerifyTest, GarbageInTheRemoteSealsFile) {
  write_standard_log();
  const auto ls = lines();
  auto remote = dir_.file("anchor.jsonl");
  auto fails = [&](const std::string& line, const std::string& msg) {
    write_file(remote, join_lines({ls[4], line, ls[7]}));
    auto rep = verify_remote({path_}, {remote});
    EXPECT_FALSE(rep.ok) << line;
    EXPECT_FALSE(rep.bad_seq.has_value()) << line;
    EXPECT_EQ(rep.error.rfind(remote + ":2: " + msg, 0), 0u) << "error: " << rep.error;
  };
  fails("garbage",
        "not a JSON value (expected a seal record, a webhook item or a webhook batch): ");
  fails(ls[7].substr(0, ls[7].size() / 2), "not a JSON value");  // cut short
  fails("{\"id\":\"00\",\"record\":{\"type\":\"seal\"", "not a JSON value");
  fails("42", "the value is not an object");
  fails("\"seal\"", "the value is not an object");
  fails("[1]", "an item of the batch is not an object");
  fails("[[]]", "an item of the batch is not an object");
  fails("{\"id\":\"00\",\"record\":\"x\"}", "the \"record\" of a webhook item is not an object");
  fails("{\"foo\":1}", "neither a record (no \"type\") nor a webhook item (no \"record\")");
  fails("{\"type\":\"seal\"}", "remote seal lacks a valid seq, time or prev");
  fails(edit(ls[4], [](json::Object& o) { o.erase("seq"); }), "remote seal lacks a valid seq");
  fails(edit(ls[4], [](json::Object& o) { o["seq"] = "5"; }), "remote seal lacks a valid seq");
  fails(std::string("\xff\xfe"), "not a JSON value");
  // A seal with a seq but another field missing or invalid names that seq.
  write_file(remote, join_lines({edit(ls[4], [](json::Object& o) { o["time"] = "yesterday"; })}));
  EXPECT_FAILS_AT(verify_remote({path_}, {remote}), 5u,
                  remote + ":1: remote seal lacks a valid seq, time or prev");
  write_file(remote, join_lines({ls[4], edit(ls[7], [](json::Object& o) { o["prev"] = "abc"; })}));
  EXPECT_FAILS_AT(verify_remote({path_}, {remote}), 8u,
                  remote + ":2: remote seal lacks a valid seq, time or prev");

  // An empty file, and one that cannot be read.
  write_file(remote, "");
  auto empty = verify_remote({path_}, {remote});
  EXPECT_TRUE(empty.ok) << empty.error;
  EXPECT_EQ(empty.remote_matched, 0u);
  auto missing = dir_.file("missing.jsonl");
  auto rep = verify_remote({path_}, {missing});
  EXPECT_FALSE(rep.ok);
  EXPECT_EQ(rep.error, missing + ": No such file or directory");
}

TEST_F(RotatedSetTest, RemoteSealsOfARotatedSet) {
  // Seals: f1 seq 4 (rotate), f2 seq 3 (rotate), path_ seq 4 (close): seq 4 twice.
  std::vector<std::string> all;
  for (const auto& f : {f1_, f2_, path_})
    for (const auto& l : seals_of(read_lines(f))) all.push_back(l);
  ASSERT_EQ(all.size(), 3u);
  auto remote = remote_file(all);
  auto rep = verify_remote({f1_, f2_, path_}, {remote});
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 3u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(4));
  EXPECT_EQ(rep.remote_latest_time, time_of(all[2]));

  // The oldest file deleted (no retention record names it): a failure, not "not checked".
  rep = verify_remote({f2_, path_}, {remote});
  EXPECT_FAILS_AT(rep, 1u, f2_ + " begins at a rotation after seq 4");

  // The newest file not given (--allow-open): neither is its seal.
  rep = verify_remote({f1_, f2_}, {remote}, /*allow_open=*/true);
  EXPECT_TRUE(rep.ok) << rep.error;
  EXPECT_EQ(rep.remote_matched, 2u);
  EXPECT_EQ(rep.remote_latest_seq, std::optional<uint64_t>(3));
  ASSERT_EQ(rep.notes.size(), 2u);
  EXPECT_EQ(rep.notes[1], "1 remote seal(s) are newer than " + f2_ +
                              ", which ends with a rotation seal: not checked (the newer file "
                              "was not given)");

  // The newest file cut short and rewritten to end in a closing seal by another key: its
  // closing seal (seq 4, as in f1) is missing from it, not "differing" from f1's seq 4.
  auto attacker = make_key();
  auto ls = lines();
  ls.resize(2);  // rotate, "four"
  ls.push_back(edit(all[2], [](json::Object& o) { o["seq"] = 3; }));
  resign(ls, 1, *attacker);
  set_lines(ls);
  ASSERT_TRUE(verify({f1_, f2_, path_}, false, {key_.get(), attacker.get()}).ok);
  rep = verify_remote({f1_, f2_, path_}, {remote}, false, {key_.get(), attacker.get()});
  EXPECT_FAILS_AT(rep, 4u,
                  "log cut short: remote seal seq 4 (time " + time_of(all[2]) +
                      ") is not in the log (the log ends at seq 3)");
}

}  // namespace
}  // namespace shaudit
