// SPDX-License-Identifier: Apache-2.0
#include "shaudit/log_writer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "internal/test_util.h"
#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/record.h"

namespace shaudit {
namespace {

using shaudit::testing::append_file;
using shaudit::testing::file_mode;
using shaudit::testing::read_file;
using shaudit::testing::read_lines;
using shaudit::testing::TempDir;
using shaudit::testing::write_file;

using shaudit::testing::command;
using shaudit::testing::hash_hex;
using shaudit::testing::kSec;
using shaudit::testing::kT0;
using shaudit::testing::parse_object;
const std::string kZeros(64, '0');

std::string str(const json::Object& o, std::string_view key) {
  auto s = json::get_string(o, key);
  return s ? *s : "<absent>";
}

int64_t num(const json::Object& o, std::string_view key) {
  auto i = json::get_int(o, key);
  return i ? *i : INT64_MIN;
}

class LogWriterTest : public ::testing::Test {
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

  WriterOptions options(uint64_t seal_every = 1000, const crypto::SigningKey* key = nullptr) {
    WriterOptions o;
    o.path = path_;
    o.key = key ? key : key_.get();
    o.clock_ns = [this] { return now_; };
    o.seal_every = seal_every;
    o.seal_interval_ns = kSec;
    return o;
  }

  std::unique_ptr<LogWriter> open_writer(WriterOptions o) {
    auto w = LogWriter::open(std::move(o));
    EXPECT_TRUE(w.ok()) << w.message();
    if (!w.ok()) return nullptr;
    return std::move(*w);
  }

  std::vector<std::string> lines() const { return read_lines(path_); }
  json::Object rec(size_t index) const { return parse_object(lines().at(index)); }
  json::Object last() const { return parse_object(lines().back()); }

  bool seal_signature_ok(const json::Object& seal, const crypto::SigningKey& key) const {
    auto vk = crypto::VerifyKey::from_raw(key.public_raw());
    auto sig = crypto::base64_decode(str(seal, "sig"));
    return vk.ok() && sig.ok() && vk->verify(record::seal_message(seal), *sig);
  }

  // Runs f while the log file may grow to `size` bytes only (RLIMIT_FSIZE, SIGXFSZ ignored):
  // a write past it comes up short.
  template <class F>
  static auto with_room(size_t size, F f) {
    struct sigaction ignore {};
    struct sigaction old_action {};
    ignore.sa_handler = SIG_IGN;
    EXPECT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
    struct rlimit old_limit;
    EXPECT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    struct rlimit limit = old_limit;
    limit.rlim_cur = size;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
    auto r = f();
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::sigaction(SIGXFSZ, &old_action, nullptr);
    return r;
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<crypto::SigningKey> key_;
  int64_t now_ = kT0;
};

TEST_F(LogWriterTest, NewLogStartsWithGenesisStartRecord) {
  auto opts = options();
  opts.start_fields["host"] = "h1";
  opts.start_fields["version"] = "0.1";
  auto w = open_writer(std::move(opts));
  ASSERT_TRUE(w);
  EXPECT_EQ(read_file(path_), "{\"host\":\"h1\",\"key_id\":\"" + key_->key_id() + "\",\"prev\":\"" +
                                  kZeros +
                                  "\",\"previous_run\":\"none\",\"seq\":1,\"time\":\"2026-11-28T12:"
                                  "00:00.000000000Z\",\"type\":\"start\",\"version\":\"0.1\"}\n");
  EXPECT_EQ(file_mode(path_), 0600);
  EXPECT_EQ(w->seq(), 1u);
  EXPECT_EQ(w->path(), path_);
  EXPECT_EQ(w->stats().records, 1u);
  EXPECT_EQ(w->stats().unsealed, 1u);
  EXPECT_EQ(w->stats().seals, 0u);
  EXPECT_EQ(w->stats().write_errors, 0u);
}

TEST_F(LogWriterTest, FileModeIs0600EvenWithPermissiveUmask) {
  mode_t old = ::umask(0);
  auto w = LogWriter::open(options());
  ::umask(old);
  ASSERT_TRUE(w.ok()) << w.message();
  EXPECT_EQ(file_mode(path_), 0600);
}

TEST_F(LogWriterTest, AppendAssignsSeqTimeAndPrevHashOfPreviousLine) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  now_ = kT0 + kSec + 5;
  auto cmd = command("ls -l");
  cmd["seq"] = 999;  // assigned by the writer, whatever the caller says
  cmd["prev"] = "forged";
  cmd["time"] = "yesterday";
  ASSERT_TRUE(w->append(cmd).ok());
  now_ = kT0 + 2 * kSec;
  ASSERT_TRUE(w->append(command("cd /tmp")).ok());

  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  EXPECT_EQ(ls[1], "{\"pid\":42,\"prev\":\"" + hash_hex(ls[0]) +
                       "\",\"seq\":2,\"session\":\"s1\",\"shell\":\"bash\",\"text\":\"ls -l\","
                       "\"time\":\"2026-11-28T12:00:01.000000005Z\",\"type\":\"command\"}");
  auto third = parse_object(ls[2]);
  EXPECT_EQ(num(third, "seq"), 3);
  EXPECT_EQ(str(third, "prev"), hash_hex(ls[1]));
  EXPECT_EQ(str(third, "time"), "2026-11-28T12:00:02.000000000Z");
  EXPECT_EQ(str(third, "text"), "cd /tmp");
  EXPECT_EQ(w->seq(), 3u);
  EXPECT_EQ(w->stats().records, 3u);
  EXPECT_EQ(w->stats().unsealed, 3u);
  // Every line is canonical JSON.
  for (const auto& l : ls) EXPECT_EQ(json::encode(json::Value(parse_object(l))), l);
}

TEST_F(LogWriterTest, SealEveryTriggersACountSeal) {
  auto w = open_writer(options(/*seal_every=*/3));
  ASSERT_TRUE(w);
  now_ += kSec;
  ASSERT_TRUE(w->append(command("a")).ok());
  EXPECT_EQ(lines().size(), 2u);  // start + a: 2 unsealed, no seal yet
  now_ += kSec;
  ASSERT_TRUE(w->append(command("b")).ok());  // 3 unsealed: seal
  auto ls = lines();
  ASSERT_EQ(ls.size(), 4u);
  auto seal = parse_object(ls[3]);
  EXPECT_EQ(str(seal, "type"), "seal");
  EXPECT_EQ(str(seal, "reason"), "count");
  EXPECT_EQ(num(seal, "seq"), 4);
  EXPECT_EQ(num(seal, "first_seq"), 1);
  EXPECT_EQ(num(seal, "records"), 3);
  EXPECT_EQ(str(seal, "key_id"), key_->key_id());
  EXPECT_EQ(str(seal, "prev"), hash_hex(ls[2]));
  EXPECT_EQ(str(seal, "time"), "2026-11-28T12:00:02.000000000Z");
  EXPECT_TRUE(seal_signature_ok(seal, *key_));
  EXPECT_EQ(w->stats().seals, 1u);
  EXPECT_EQ(w->stats().last_seal_seq, 4u);
  EXPECT_EQ(w->stats().last_seal_ns, kT0 + 2 * kSec);
  EXPECT_EQ(w->stats().unsealed, 0u);
  EXPECT_EQ(w->seal_deadline_ns(), INT64_MAX);

  for (const char* t : {"c", "d", "e"}) ASSERT_TRUE(w->append(command(t)).ok());
  ls = lines();
  ASSERT_EQ(ls.size(), 8u);
  auto seal2 = parse_object(ls[7]);
  EXPECT_EQ(str(seal2, "reason"), "count");
  EXPECT_EQ(num(seal2, "first_seq"), 5);
  EXPECT_EQ(num(seal2, "records"), 3);
  EXPECT_TRUE(seal_signature_ok(seal2, *key_));
  EXPECT_EQ(w->stats().seals, 2u);
}

TEST_F(LogWriterTest, SealEveryZeroSealsAfterEachAppend) {
  auto w = open_writer(options(/*seal_every=*/0));
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("a")).ok());
  EXPECT_EQ(str(last(), "reason"), "count");
  EXPECT_EQ(num(last(), "records"), 2);
  ASSERT_TRUE(w->append(command("b")).ok());
  EXPECT_EQ(str(last(), "reason"), "count");
  EXPECT_EQ(num(last(), "records"), 1);
  EXPECT_EQ(lines().size(), 5u);
}

TEST_F(LogWriterTest, IntervalSealFollowsTheFakeClock) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  // The start record is the oldest unsealed record.
  EXPECT_EQ(w->seal_deadline_ns(), kT0 + kSec);
  now_ = kT0 + kSec / 2;
  ASSERT_TRUE(w->append(command("a")).ok());
  EXPECT_EQ(w->seal_deadline_ns(), kT0 + kSec);  // still the oldest
  now_ = kT0 + kSec - 1;
  ASSERT_TRUE(w->maybe_seal(now_).ok());
  EXPECT_EQ(lines().size(), 2u);  // not due yet
  now_ = kT0 + kSec;
  ASSERT_TRUE(w->maybe_seal(now_).ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  auto seal = parse_object(ls[2]);
  EXPECT_EQ(str(seal, "type"), "seal");
  EXPECT_EQ(str(seal, "reason"), "interval");
  EXPECT_EQ(num(seal, "first_seq"), 1);
  EXPECT_EQ(num(seal, "records"), 2);
  EXPECT_EQ(str(seal, "time"), "2026-11-28T12:00:01.000000000Z");
  EXPECT_TRUE(seal_signature_ok(seal, *key_));
  EXPECT_EQ(w->seal_deadline_ns(), INT64_MAX);

  // Nothing unsealed: no seal however late it is.
  ASSERT_TRUE(w->maybe_seal(kT0 + 100 * kSec).ok());
  EXPECT_EQ(lines().size(), 3u);

  now_ = kT0 + 5 * kSec;
  ASSERT_TRUE(w->append(command("b")).ok());
  EXPECT_EQ(w->seal_deadline_ns(), kT0 + 6 * kSec);
  ASSERT_TRUE(w->maybe_seal(kT0 + 6 * kSec - 1).ok());
  EXPECT_EQ(lines().size(), 4u);
  now_ = kT0 + 7 * kSec;
  ASSERT_TRUE(w->maybe_seal(now_).ok());
  EXPECT_EQ(str(last(), "reason"), "interval");
  EXPECT_EQ(num(last(), "first_seq"), 4);
  EXPECT_EQ(num(last(), "records"), 1);
}

TEST_F(LogWriterTest, ExplicitSealWithNothingUnsealed) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->seal(record::kSealInterval).ok());
  ASSERT_TRUE(w->seal(record::kSealInterval).ok());
  auto s = last();
  EXPECT_EQ(num(s, "seq"), 3);
  EXPECT_EQ(num(s, "first_seq"), 3);  // covers no record but itself
  EXPECT_EQ(num(s, "records"), 0);
  EXPECT_TRUE(seal_signature_ok(s, *key_));
}

TEST_F(LogWriterTest, CloseWritesACloseSeal) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("exit")).ok());
  now_ = kT0 + 3 * kSec;
  ASSERT_TRUE(w->close().ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  auto seal = parse_object(ls[2]);
  EXPECT_EQ(str(seal, "type"), "seal");
  EXPECT_EQ(str(seal, "reason"), "close");
  EXPECT_EQ(num(seal, "seq"), 3);
  EXPECT_EQ(num(seal, "first_seq"), 1);
  EXPECT_EQ(num(seal, "records"), 2);
  EXPECT_EQ(str(seal, "time"), "2026-11-28T12:00:03.000000000Z");
  EXPECT_TRUE(seal_signature_ok(seal, *key_));
  // A second close does nothing.
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(lines().size(), 3u);
  EXPECT_EQ(w->stats().seals, 1u);
}

TEST_F(LogWriterTest, ReopenOfCleanlyClosedLogContinuesTheChain) {
  {
    auto w = open_writer(options());
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("a")).ok());
    ASSERT_TRUE(w->append(command("b")).ok());
    ASSERT_TRUE(w->close().ok());
  }
  auto before = lines();
  ASSERT_EQ(before.size(), 4u);
  now_ = kT0 + 60 * kSec;
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  auto ls = lines();
  ASSERT_EQ(ls.size(), 5u);  // one start record, no key_change
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(ls[i], before[i]);
  EXPECT_EQ(ls[4], "{\"key_id\":\"" + key_->key_id() + "\",\"prev\":\"" + hash_hex(ls[3]) +
                       "\",\"previous_run\":\"clean\",\"seq\":5,\"time\":\"2026-11-28T12:01:00."
                       "000000000Z\",\"type\":\"start\"}");
  EXPECT_EQ(w->seq(), 5u);
  ASSERT_TRUE(w->append(command("c")).ok());
  EXPECT_EQ(num(last(), "seq"), 6);
  EXPECT_EQ(str(last(), "prev"), hash_hex(ls[4]));
}

TEST_F(LogWriterTest, ReopenAfterCrashIsUnclean) {
  {
    auto w = open_writer(options());
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("a")).ok());
    // destroyed without close(): no closing seal
  }
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  auto start = parse_object(ls[2]);
  EXPECT_EQ(str(start, "type"), "start");
  EXPECT_EQ(str(start, "previous_run"), "unclean");
  EXPECT_EQ(num(start, "seq"), 3);
  EXPECT_EQ(str(start, "prev"), hash_hex(ls[1]));
}

TEST_F(LogWriterTest, LastRecordASealOtherThanCloseIsUnclean) {
  {
    auto w = open_writer(options(/*seal_every=*/2));
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("a")).ok());  // sealed by count
    EXPECT_EQ(str(last(), "reason"), "count");
  }
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  EXPECT_EQ(str(last(), "previous_run"), "unclean");
  EXPECT_EQ(num(last(), "seq"), 4);
}

TEST_F(LogWriterTest, PartialLastLineIsCutOffAndKeptInTheStartRecord) {
  {
    auto w = open_writer(options());
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(command("a")).ok());
    ASSERT_TRUE(w->close().ok());
  }
  const std::string complete = read_file(path_);
  auto before = lines();
  append_file(path_, "{\"partial");
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  const std::string after = read_file(path_);
  ASSERT_EQ(after.compare(0, complete.size(), complete), 0) << after;  // the partial bytes are gone
  auto ls = lines();
  ASSERT_EQ(ls.size(), before.size() + 1);
  auto start = parse_object(ls.back());
  EXPECT_EQ(str(start, "type"), "start");
  EXPECT_EQ(num(start, "seq"), 4);
  EXPECT_EQ(str(start, "prev"), hash_hex(before.back()));
  EXPECT_EQ(str(start, "previous_run"), "clean");
  ASSERT_NE(start.find("truncated_tail"), start.end());
  EXPECT_EQ(json::encode(start.at("truncated_tail")),
            "{\"bytes_b64\":\"eyJwYXJ0aWFs\",\"length\":9,\"offset\":" +
                std::to_string(complete.size()) + "}");
}

TEST_F(LogWriterTest, PartialBinaryTailAfterAnUncleanStop) {
  {
    auto w = open_writer(options());
    ASSERT_TRUE(w);
  }
  const size_t complete = read_file(path_).size();
  append_file(path_, "\xff\xfe");
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  auto start = last();
  EXPECT_EQ(str(start, "previous_run"), "unclean");
  EXPECT_EQ(json::encode(start.at("truncated_tail")),
            "{\"bytes_b64\":\"//4=\",\"length\":2,\"offset\":" + std::to_string(complete) + "}");
}

TEST_F(LogWriterTest, FileWithOnlyAPartialLineStartsANewChain) {
  write_file(path_, "garbage without newline");
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  auto ls = lines();
  ASSERT_EQ(ls.size(), 1u);
  auto start = parse_object(ls[0]);
  EXPECT_EQ(num(start, "seq"), 1);
  EXPECT_EQ(str(start, "prev"), kZeros);
  EXPECT_EQ(str(start, "previous_run"), "none");
  EXPECT_EQ(json::encode(start.at("truncated_tail")),
            R"({"bytes_b64":"Z2FyYmFnZSB3aXRob3V0IG5ld2xpbmU=","length":23,"offset":0})");
}

TEST_F(LogWriterTest, GarbageLastLineFailsToOpenNamingTheFile) {
  write_file(path_, "not json\n");
  auto w = LogWriter::open(options());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.message(), "log " + path_ +
                             ": the last line (ending at byte 9) is not a shaudit record: JSON "
                             "error at byte 0: invalid literal; move the file aside to start a "
                             "new log");
  EXPECT_EQ(read_file(path_), "not json\n");  // left alone

  write_file(path_, "{\"a\":1}\n");
  auto w2 = LogWriter::open(options());
  ASSERT_FALSE(w2.ok());
  EXPECT_EQ(w2.message(), "log " + path_ +
                              ": the last line (ending at byte 8) is not a shaudit record; move "
                              "the file aside to start a new log");

  write_file(path_, "{\"seq\":0,\"type\":\"start\"}\n");
  auto w3 = LogWriter::open(options());
  ASSERT_FALSE(w3.ok());
  EXPECT_NE(w3.message().find("is not a shaudit record"), std::string::npos) << w3.message();
  EXPECT_NE(w3.message().find(path_), std::string::npos) << w3.message();
}

TEST_F(LogWriterTest, ReopenWithAnotherKeyWritesKeyChange) {
  {
    auto w = open_writer(options());
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->close().ok());
  }
  auto key_b = make_key();
  {
    auto w = open_writer(options(1000, key_b.get()));
    ASSERT_TRUE(w);
    auto ls = lines();
    ASSERT_EQ(ls.size(), 4u);
    auto start = parse_object(ls[2]);
    EXPECT_EQ(str(start, "type"), "start");
    EXPECT_EQ(str(start, "key_id"), key_b->key_id());
    EXPECT_EQ(str(start, "previous_run"), "clean");
    EXPECT_EQ(ls[3], "{\"new_key_id\":\"" + key_b->key_id() + "\",\"new_public_key_b64\":\"" +
                         crypto::base64_encode(key_b->public_raw()) + "\",\"old_key_id\":\"" +
                         key_->key_id() + "\",\"prev\":\"" + hash_hex(ls[2]) +
                         "\",\"seq\":4,\"time\":\"2026-11-28T12:00:00.000000000Z\",\"type\":"
                         "\"key_change\"}");
    ASSERT_TRUE(w->close().ok());
    auto seal = last();
    EXPECT_EQ(str(seal, "key_id"), key_b->key_id());
    EXPECT_TRUE(seal_signature_ok(seal, *key_b));
    EXPECT_FALSE(seal_signature_ok(seal, *key_));
  }
  // The same key again: no key_change.
  auto w = open_writer(options(1000, key_b.get()));
  ASSERT_TRUE(w);
  EXPECT_EQ(str(last(), "type"), "start");
  EXPECT_EQ(num(last(), "seq"), 6);
}

TEST_F(LogWriterTest, RotateAfterRenameStartsTheNewFileWithARotateRecord) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("a")).ok());
  ASSERT_TRUE(w->append(command("b")).ok());
  const std::string old_path = path_ + ".1";
  ASSERT_EQ(std::rename(path_.c_str(), old_path.c_str()), 0);
  now_ = kT0 + 10 * kSec;
  ASSERT_TRUE(w->rotate().ok());

  auto old_lines = read_lines(old_path);
  ASSERT_EQ(old_lines.size(), 4u);
  auto rot_seal = parse_object(old_lines[3]);
  EXPECT_EQ(str(rot_seal, "type"), "seal");
  EXPECT_EQ(str(rot_seal, "reason"), "rotate");
  EXPECT_EQ(num(rot_seal, "seq"), 4);
  EXPECT_EQ(num(rot_seal, "records"), 3);
  EXPECT_TRUE(seal_signature_ok(rot_seal, *key_));

  auto ls = lines();
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0], "{\"prev\":\"" + hash_hex(old_lines[3]) +
                       "\",\"prev_seq\":4,\"seq\":1,\"time\":\"2026-11-28T12:00:10.000000000Z\","
                       "\"type\":\"rotate\"}");
  EXPECT_EQ(file_mode(path_), 0600);
  EXPECT_EQ(w->seq(), 1u);

  const std::string old_content = read_file(old_path);
  ASSERT_TRUE(w->append(command("c")).ok());
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(read_file(old_path), old_content);  // nothing more went to the old file
  ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  auto c = parse_object(ls[1]);
  EXPECT_EQ(num(c, "seq"), 2);
  EXPECT_EQ(str(c, "prev"), hash_hex(ls[0]));
  EXPECT_EQ(str(c, "text"), "c");
  auto close = parse_object(ls[2]);
  EXPECT_EQ(str(close, "reason"), "close");
  EXPECT_EQ(num(close, "first_seq"), 1);
  EXPECT_EQ(num(close, "records"), 2);
}

TEST_F(LogWriterTest, RotateWithoutRenameContinuesTheSameFile) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("a")).ok());
  ASSERT_TRUE(w->rotate().ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  EXPECT_EQ(str(parse_object(ls[2]), "reason"), "rotate");
  ASSERT_TRUE(w->append(command("b")).ok());
  ls = lines();
  ASSERT_EQ(ls.size(), 4u);  // no rotate or start record
  auto b = parse_object(ls[3]);
  EXPECT_EQ(str(b, "type"), "command");
  EXPECT_EQ(num(b, "seq"), 4);
  EXPECT_EQ(str(b, "prev"), hash_hex(ls[2]));
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(num(last(), "seq"), 5);
  EXPECT_EQ(num(last(), "first_seq"), 4);
}

TEST_F(LogWriterTest, RotateKeepsWritingToTheOldFileWhenTheNewOneCannotBeOpened) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->append(command("a")).ok());
  const std::string old_path = path_ + ".1";
  ASSERT_EQ(std::rename(path_.c_str(), old_path.c_str()), 0);
  ASSERT_EQ(::mkdir(path_.c_str(), 0700), 0);  // the new log cannot be created
  auto r = w->rotate();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "cannot open log " + path_ + ": Is a directory");
  EXPECT_EQ(w->seq(), 3u);

  ASSERT_TRUE(w->append(command("b")).ok());
  auto ls = read_lines(old_path);
  ASSERT_EQ(ls.size(), 4u);  // start, a, rotation seal, b
  EXPECT_EQ(str(parse_object(ls[2]), "reason"), "rotate");
  auto b = parse_object(ls[3]);
  EXPECT_EQ(str(b, "text"), "b");
  EXPECT_EQ(num(b, "seq"), 4);
  EXPECT_EQ(str(b, "prev"), hash_hex(ls[2]));
}

TEST_F(LogWriterTest, OpenErrors) {
  WriterOptions no_key = options();
  no_key.key = nullptr;
  auto a = LogWriter::open(std::move(no_key));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.message(), "log writer needs a signing key");

  WriterOptions missing_dir = options();
  missing_dir.path = dir_.file("no/such/dir/audit.jsonl");
  auto b = LogWriter::open(missing_dir);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.message(), "cannot open log " + missing_dir.path + ": No such file or directory");

  // A symlink is not followed.
  const std::string target = dir_.file("target.jsonl");
  const std::string link = dir_.file("link.jsonl");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  WriterOptions via_link = options();
  via_link.path = link;
  auto c = LogWriter::open(via_link);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.message(), "cannot open log " + link + ": Too many levels of symbolic links");
  EXPECT_EQ(file_mode(target), -1);  // nothing created behind the link

  const std::string fifo = dir_.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  WriterOptions to_fifo = options();
  to_fifo.path = fifo;
  auto d = LogWriter::open(to_fifo);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.message(), "log " + fifo + ": not a regular file");
}

TEST_F(LogWriterTest, FailedWriteLeavesNoPartialRecordAndCanBeRetried) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  const std::string before = read_file(path_);

  // Let only 10 more bytes fit in the file: the write of the record comes up short.
  auto r = with_room(before.size() + 10, [&] { return w->append(command(std::string(100, 'x'))); });

  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "write to " + path_ + " failed: No space left on device");
  EXPECT_EQ(read_file(path_), before);
  EXPECT_EQ(w->seq(), 1u);
  EXPECT_EQ(w->stats().write_errors, 1u);
  EXPECT_EQ(w->stats().last_error, r.message());

  // The same record again, now that there is room: the chain is intact.
  ASSERT_TRUE(w->append(command(std::string(100, 'x'))).ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 2u);
  EXPECT_EQ(num(parse_object(ls[1]), "seq"), 2);
  EXPECT_EQ(str(parse_object(ls[1]), "prev"), hash_hex(ls[0]));
}

TEST_F(LogWriterTest, HeldRecordsAreWrittenTogetherAtRelease) {
  WriterOptions o = options(/*seal_every=*/4);  // the start record counts
  std::vector<std::string> reported;
  o.on_written = [&](std::string_view line, const json::Object&) { reported.emplace_back(line); };
  auto w = open_writer(std::move(o));
  ASSERT_TRUE(w);
  reported.clear();  // the start record
  const std::string before = read_file(path_);
  w->hold();
  ASSERT_TRUE(w->append(command("one")).ok());
  ASSERT_TRUE(w->append(command("two")).ok());
  EXPECT_FALSE(w->seal_due());
  ASSERT_TRUE(w->append(command("three")).ok());
  // Not in the file, not reported, and no count seal while holding: the seal waits.
  EXPECT_EQ(read_file(path_), before);
  EXPECT_TRUE(reported.empty());
  EXPECT_EQ(w->seq(), 4u);
  EXPECT_TRUE(w->seal_due());
  ASSERT_TRUE(w->release().ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 4u);
  EXPECT_EQ(str(parse_object(ls[3]), "text"), "three");
  EXPECT_EQ(str(parse_object(ls[2]), "prev"), hash_hex(ls[1]));
  EXPECT_EQ(str(parse_object(ls[3]), "prev"), hash_hex(ls[2]));
  EXPECT_EQ(reported, (std::vector<std::string>{ls[1], ls[2], ls[3]}));
  ASSERT_TRUE(w->maybe_seal(now_).ok());
  EXPECT_EQ(str(last(), "type"), "seal");
  EXPECT_EQ(num(last(), "first_seq"), 1);
  EXPECT_EQ(num(last(), "records"), 4);
}

TEST_F(LogWriterTest, AFailedReleaseLeavesNothingAndTheSameRecordsCanBeAppendedAgain) {
  WriterOptions o = options();
  size_t reported = 0;
  o.on_written = [&](std::string_view, const json::Object&) { ++reported; };
  auto w = open_writer(std::move(o));
  ASSERT_TRUE(w);
  reported = 0;
  const std::string before = read_file(path_);
  w->hold();
  ASSERT_TRUE(w->append(command(std::string(100, 'a'))).ok());
  ASSERT_TRUE(w->append(command(std::string(100, 'b'))).ok());
  EXPECT_EQ(w->seq(), 3u);

  // Room for one of the two lines only: the group's write comes up short and is cut off.
  auto r = with_room(before.size() + 150, [&] { return w->release(); });

  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "write to " + path_ + " failed: No space left on device");
  EXPECT_EQ(read_file(path_), before);
  EXPECT_EQ(reported, 0u);
  EXPECT_EQ(w->seq(), 1u);
  EXPECT_EQ(w->stats().write_errors, 1u);
  EXPECT_EQ(w->stats().records, 1u);
  EXPECT_EQ(w->stats().unsealed, 1u);

  // Appended again (not holding): the chain goes on from the start record.
  ASSERT_TRUE(w->append(command(std::string(100, 'a'))).ok());
  ASSERT_TRUE(w->append(command(std::string(100, 'b'))).ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  EXPECT_EQ(num(parse_object(ls[2]), "seq"), 3);
  EXPECT_EQ(str(parse_object(ls[1]), "prev"), hash_hex(ls[0]));
  EXPECT_EQ(str(parse_object(ls[2]), "prev"), hash_hex(ls[1]));
  EXPECT_EQ(reported, 2u);
}

TEST_F(LogWriterTest, SealWhileHoldingWritesTheHeldRecordsFirst) {
  auto w = open_writer(options());
  ASSERT_TRUE(w);
  w->hold();
  ASSERT_TRUE(w->append(command("held")).ok());
  ASSERT_TRUE(w->seal("interval").ok());
  auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  EXPECT_EQ(str(parse_object(ls[1]), "text"), "held");
  EXPECT_EQ(str(parse_object(ls[2]), "type"), "seal");
  EXPECT_EQ(num(parse_object(ls[2]), "records"), 2);
  EXPECT_TRUE(seal_signature_ok(parse_object(ls[2]), *key_));
}

TEST_F(LogWriterTest, DefaultClockIsRealtime) {
  WriterOptions o = options();
  o.clock_ns = nullptr;
  int64_t before = record::now_ns();
  auto w = open_writer(std::move(o));
  ASSERT_TRUE(w);
  int64_t after = record::now_ns();
  auto t = record::parse_time(str(last(), "time"));
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_LE(before, *t);
  EXPECT_LE(*t, after);
}

}  // namespace
}  // namespace shaudit
