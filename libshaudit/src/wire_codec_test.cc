// SPDX-License-Identifier: Apache-2.0
#include "shaudit/wire_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace shaudit::wire {
namespace {

constexpr size_t kHeader = sizeof(shaudit_wire_header);
constexpr size_t kFieldHeader = sizeof(shaudit_wire_field);

shaudit_wire_header header_of(const std::string& buf) {
  shaudit_wire_header h;
  std::memcpy(&h, buf.data(), sizeof h);
  return h;
}

void set_header(std::string& buf, const shaudit_wire_header& h) {
  std::memcpy(buf.data(), &h, sizeof h);
}

// A raw message: header with the given fields, length fixed up to the buffer size.
std::string raw_message(uint16_t type, uint64_t report_seq, const std::string& body = "") {
  shaudit_wire_header h{};
  h.magic = SHAUDIT_WIRE_MAGIC;
  h.version = SHAUDIT_WIRE_VERSION;
  h.type = type;
  h.report_seq = report_seq;
  h.length = static_cast<uint32_t>(kHeader + body.size());
  std::string buf(reinterpret_cast<const char*>(&h), sizeof h);
  return buf + body;
}

std::string raw_field(uint16_t tag, uint16_t flags, std::string_view data,
                      uint32_t claimed_length) {
  shaudit_wire_field f{};
  f.tag = tag;
  f.flags = flags;
  f.length = claimed_length;
  return std::string(reinterpret_cast<const char*>(&f), sizeof f) + std::string(data);
}

struct Decoded {
  bool ok;
  Message msg;
  DecodeError err;
};

Decoded run(std::string_view buf) {
  Decoded d;
  d.err = {Reject::kShort, "(unset)"};
  d.ok = decode(buf, d.msg, d.err);
  return d;
}

std::string line_message() {
  return Builder(SHAUDIT_MSG_LINE, 7, 123456789)
      .add(SHAUDIT_F_SHELL, "bash")
      .add(SHAUDIT_F_TEXT, "ls -l")
      .finish();
}

TEST(WireBuilder, ExactBytesOfALineMessage) {
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  GTEST_SKIP() << "expected bytes are written for a little-endian host";
#endif
  std::string buf = line_message();
  std::string expected = std::string(
                                   "\x41\x53"  // magic 0x5341
                                   "\x01\x00"  // version (patched below)
                                   "\x02\x00"  // type LINE
                                   "\x00\x00"  // flags
                                   "\x39\x00\x00\x00"  // length 57
                                   "\x00\x00\x00\x00"  // reserved
                                   "\x07\x00\x00\x00\x00\x00\x00\x00"  // report_seq 7
                                   "\x15\xcd\x5b\x07\x00\x00\x00\x00"  // sent_ns 123456789
                                   "\x02\x00\x00\x00\x04\x00\x00\x00"  // SHELL, 4 bytes
                                   "bash"
                                   "\x01\x00\x00\x00\x05\x00\x00\x00"  // TEXT, 5 bytes
                                   "ls -l",
                                   57);
  expected[2] = static_cast<char>(SHAUDIT_WIRE_VERSION & 0xff);
  expected[3] = static_cast<char>(SHAUDIT_WIRE_VERSION >> 8);
  EXPECT_EQ(buf, expected);
}

TEST(WireBuilder, RoundTrip) {
  std::string buf = line_message();
  ASSERT_EQ(buf.size(), kHeader + kFieldHeader + 4 + kFieldHeader + 5);
  EXPECT_EQ(header_of(buf).length, buf.size());
  EXPECT_EQ(header_of(buf).reserved, 0u);
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  EXPECT_EQ(d.msg.type, SHAUDIT_MSG_LINE);
  EXPECT_EQ(d.msg.flags, 0);
  EXPECT_EQ(d.msg.report_seq, 7u);
  EXPECT_EQ(d.msg.sent_ns, 123456789u);
  ASSERT_EQ(d.msg.fields.size(), 2u);
  EXPECT_EQ(d.msg.fields[0].tag, SHAUDIT_F_SHELL);
  EXPECT_EQ(d.msg.fields[0].flags, 0);
  EXPECT_EQ(d.msg.fields[0].data, "bash");
  EXPECT_EQ(d.msg.fields[1].tag, SHAUDIT_F_TEXT);
  EXPECT_EQ(d.msg.fields[1].data, "ls -l");
  ASSERT_NE(d.msg.find(SHAUDIT_F_TEXT), nullptr);
  EXPECT_EQ(d.msg.find(SHAUDIT_F_TEXT)->data, "ls -l");
  EXPECT_EQ(d.msg.find(SHAUDIT_F_CWD), nullptr);
}

TEST(WireBuilder, ExecWithRepeatedArgvAndBinaryData) {
  const std::string binary("a\0b\xff", 4);
  std::string buf = Builder(SHAUDIT_MSG_EXEC, 1, 0)
                        .add(SHAUDIT_F_PATH, "/bin/echo")
                        .add(SHAUDIT_F_ARGV, "echo")
                        .add(SHAUDIT_F_ARGV, "")
                        .add(SHAUDIT_F_ARGV, binary)
                        .add(SHAUDIT_F_CWD, "/tmp")
                        .finish();
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  EXPECT_EQ(d.msg.type, SHAUDIT_MSG_EXEC);
  std::vector<std::string_view> argv = d.msg.all(SHAUDIT_F_ARGV);
  ASSERT_EQ(argv.size(), 3u);
  EXPECT_EQ(argv[0], "echo");
  EXPECT_EQ(argv[1], "");
  EXPECT_EQ(argv[2], binary);
  EXPECT_EQ(d.msg.find(SHAUDIT_F_PATH)->data, "/bin/echo");
  EXPECT_EQ(d.msg.find(SHAUDIT_F_CWD)->data, "/tmp");
  EXPECT_TRUE(d.msg.all(SHAUDIT_F_TTY).empty());
}

TEST(WireBuilder, ExecNeedsOnlyOneOfPathOrArgv) {
  EXPECT_TRUE(run(Builder(SHAUDIT_MSG_EXEC, 1, 0).add(SHAUDIT_F_PATH, "/bin/ls").finish()).ok);
  EXPECT_TRUE(run(Builder(SHAUDIT_MSG_EXEC, 1, 0).add(SHAUDIT_F_ARGV, "ls").finish()).ok);
}

TEST(WireBuilder, HelloWithoutFields) {
  std::string buf = Builder(SHAUDIT_MSG_HELLO, 3, 9).finish();
  ASSERT_EQ(buf.size(), kHeader);
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  EXPECT_EQ(d.msg.type, SHAUDIT_MSG_HELLO);
  EXPECT_TRUE(d.msg.fields.empty());
}

TEST(WireBuilder, DecodeReplacesPreviousFields) {
  Message m;
  DecodeError e;
  std::string a = line_message();
  ASSERT_TRUE(decode(a, m, e));
  ASSERT_EQ(m.fields.size(), 2u);
  std::string b = Builder(SHAUDIT_MSG_HELLO, 2, 0).add(SHAUDIT_F_EXE, "/bin/bash").finish();
  ASSERT_TRUE(decode(b, m, e));
  ASSERT_EQ(m.fields.size(), 1u);
  EXPECT_EQ(m.type, SHAUDIT_MSG_HELLO);
  EXPECT_EQ(m.report_seq, 2u);
  EXPECT_EQ(m.fields[0].data, "/bin/bash");
}

TEST(WireBuilder, TruncatesAFieldBiggerThanTheMaximum) {
  const std::string big(SHAUDIT_WIRE_MAX_MESSAGE, 'x');
  std::string buf = Builder(SHAUDIT_MSG_LINE, 1, 0).add(SHAUDIT_F_TEXT, big).finish();
  ASSERT_EQ(buf.size(), SHAUDIT_WIRE_MAX_MESSAGE);
  EXPECT_EQ(header_of(buf).flags, 0);  // the field was cut, not left out
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  ASSERT_EQ(d.msg.fields.size(), 1u);
  EXPECT_EQ(d.msg.fields[0].flags, SHAUDIT_FIELD_TRUNCATED);
  EXPECT_EQ(d.msg.fields[0].data.size(), SHAUDIT_WIRE_MAX_MESSAGE - kHeader - kFieldHeader);
  EXPECT_EQ(d.msg.fields[0].data, big.substr(0, SHAUDIT_WIRE_MAX_MESSAGE - kHeader - kFieldHeader));
}

TEST(WireBuilder, FieldThatFitsExactlyIsNotFlagged) {
  const std::string exact(SHAUDIT_WIRE_MAX_MESSAGE - kHeader - kFieldHeader, 'y');
  std::string buf = Builder(SHAUDIT_MSG_LINE, 1, 0).add(SHAUDIT_F_TEXT, exact).finish();
  ASSERT_EQ(buf.size(), SHAUDIT_WIRE_MAX_MESSAGE);
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  EXPECT_EQ(d.msg.fields[0].flags, 0);
  EXPECT_EQ(d.msg.fields[0].data.size(), exact.size());
}

TEST(WireBuilder, FieldsThatNoLongerFitAreLeftOutAndFlagged) {
  const std::string big(SHAUDIT_WIRE_MAX_MESSAGE - kHeader - kFieldHeader - kFieldHeader - 3, 'a');
  std::string buf = Builder(SHAUDIT_MSG_EXEC, 1, 0)
                        .add(SHAUDIT_F_ARGV, big)
                        .add(SHAUDIT_F_ARGV, "abcdef")  // 3 bytes of room: cut to "abc"
                        .add(SHAUDIT_F_ARGV, "zzz")     // no room for a field header
                        .finish();
  ASSERT_EQ(buf.size(), SHAUDIT_WIRE_MAX_MESSAGE);
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  EXPECT_EQ(d.msg.flags, SHAUDIT_MSG_ARGV_TRUNCATED);
  auto argv = d.msg.all(SHAUDIT_F_ARGV);
  ASSERT_EQ(argv.size(), 2u);
  EXPECT_EQ(argv[1], "abc");
  EXPECT_EQ(d.msg.fields[0].flags, 0);
  EXPECT_EQ(d.msg.fields[1].flags, SHAUDIT_FIELD_TRUNCATED);
}

TEST(WireBuilder, UnknownTagsAreKeptButHarmless) {
  std::string buf = Builder(SHAUDIT_MSG_LINE, 5, 0)
                        .add(200, "future field")
                        .add(SHAUDIT_F_TEXT, "pwd")
                        .add(0, "")
                        .finish();
  auto d = run(buf);
  ASSERT_TRUE(d.ok) << d.err.detail;
  ASSERT_EQ(d.msg.fields.size(), 3u);
  EXPECT_EQ(d.msg.fields[0].tag, 200);
  EXPECT_EQ(d.msg.fields[0].data, "future field");
  EXPECT_EQ(d.msg.fields[2].tag, 0);
  EXPECT_EQ(d.msg.find(SHAUDIT_F_TEXT)->data, "pwd");
  // An unknown tag does not stand in for a required one.
  auto missing = run(Builder(SHAUDIT_MSG_LINE, 5, 0).add(200, "x").finish());
  ASSERT_FALSE(missing.ok);
  EXPECT_EQ(missing.err.reason, Reject::kMissing);
}

// ---- rejections ----

TEST(WireReject, Names) {
  EXPECT_STREQ(reject_name(Reject::kShort), "short");
  EXPECT_STREQ(reject_name(Reject::kMagic), "bad_magic");
  EXPECT_STREQ(reject_name(Reject::kVersion), "bad_version");
  EXPECT_STREQ(reject_name(Reject::kLength), "bad_length");
  EXPECT_STREQ(reject_name(Reject::kType), "bad_type");
  EXPECT_STREQ(reject_name(Reject::kField), "bad_field");
  EXPECT_STREQ(reject_name(Reject::kMissing), "missing_field");
  EXPECT_STREQ(reject_name(Reject::kOversize), "oversize");
}

TEST(WireReject, Short) {
  std::string buf = line_message();
  auto d = run(std::string_view(buf).substr(0, kHeader - 1));
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kShort);
  EXPECT_EQ(d.err.detail, "message of 31 bytes is shorter than the header");
  auto empty = run("");
  ASSERT_FALSE(empty.ok);
  EXPECT_EQ(empty.err.reason, Reject::kShort);
  EXPECT_EQ(empty.err.detail, "message of 0 bytes is shorter than the header");
}

TEST(WireReject, BadMagic) {
  std::string buf = line_message();
  auto h = header_of(buf);
  h.magic = 0x1234;
  set_header(buf, h);
  auto d = run(buf);
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kMagic);
  EXPECT_EQ(d.err.detail, "bad magic 0x1234");
  // Byte-swapped magic (a peer of the other endianness) is refused too.
  h.magic = 0x4153;
  set_header(buf, h);
  EXPECT_EQ(run(buf).err.detail, "bad magic 0x4153");
}

TEST(WireReject, BadVersionNamesTheVersion) {
  std::string buf = line_message();
  auto h = header_of(buf);
  const std::string speaks = " (this daemon speaks " + std::to_string(SHAUDIT_WIRE_VERSION) + ")";
  h.version = SHAUDIT_WIRE_VERSION + 1;
  set_header(buf, h);
  auto d = run(buf);
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kVersion);
  EXPECT_EQ(d.err.detail, "wire version " + std::to_string(SHAUDIT_WIRE_VERSION + 1) + speaks);
  h.version = 0;
  set_header(buf, h);
  EXPECT_EQ(run(buf).err.detail, "wire version 0" + speaks);
  h.version = 0x0100;  // version 1 written big-endian
  set_header(buf, h);
  EXPECT_EQ(run(buf).err.detail, "wire version 256" + speaks);
}

TEST(WireReject, LengthMismatch) {
  std::string buf = line_message();
  auto h = header_of(buf);
  h.length = static_cast<uint32_t>(buf.size() + 1);
  set_header(buf, h);
  auto d = run(buf);
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kLength);
  EXPECT_EQ(d.err.detail, "header length 58 but 57 bytes received");

  std::string extra = line_message() + "junk";
  auto e = run(extra);
  ASSERT_FALSE(e.ok);
  EXPECT_EQ(e.err.reason, Reject::kLength);
  EXPECT_EQ(e.err.detail, "header length 57 but 61 bytes received");
}

TEST(WireReject, BadType) {
  const uint16_t types[] = {0, static_cast<uint16_t>(SHAUDIT_MSG_MAX + 1), 99, 0xffff};
  for (uint16_t type : types) {
    std::string buf = line_message();
    auto h = header_of(buf);
    h.type = type;
    set_header(buf, h);
    auto d = run(buf);
    ASSERT_FALSE(d.ok) << type;
    EXPECT_EQ(d.err.reason, Reject::kType);
    EXPECT_EQ(d.err.detail, "unknown message type " + std::to_string(type));
  }
}

TEST(WireReject, FieldClaimsMoreBytesThanRemain) {
  std::string buf = raw_message(SHAUDIT_MSG_LINE, 1, raw_field(SHAUDIT_F_TEXT, 0, "hello", 100));
  auto d = run(buf);
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kField);
  EXPECT_EQ(d.err.detail, "field 1 at offset 32 claims 100 bytes, 5 remain");

  // A second field whose length runs one byte past the end.
  std::string two = raw_message(SHAUDIT_MSG_LINE, 1,
                                raw_field(SHAUDIT_F_TEXT, 0, "ab", 2) +
                                    raw_field(SHAUDIT_F_CWD, 0, "/tmp", 5));
  auto d2 = run(two);
  ASSERT_FALSE(d2.ok);
  EXPECT_EQ(d2.err.reason, Reject::kField);
  EXPECT_EQ(d2.err.detail, "field 5 at offset 42 claims 5 bytes, 4 remain");

  // A huge length does not wrap around.
  std::string huge = raw_message(SHAUDIT_MSG_LINE, 1, raw_field(SHAUDIT_F_TEXT, 0, "x", 0xffffffffu));
  auto d3 = run(huge);
  ASSERT_FALSE(d3.ok);
  EXPECT_EQ(d3.err.detail, "field 1 at offset 32 claims 4294967295 bytes, 1 remain");
}

TEST(WireReject, TruncatedFieldHeader) {
  std::string body = raw_field(SHAUDIT_F_TEXT, 0, "ok", 2) + std::string("\x01\x00\x00\x00", 4);
  auto d = run(raw_message(SHAUDIT_MSG_LINE, 1, body));
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kField);
  EXPECT_EQ(d.err.detail, "truncated field header at offset 42");
  auto one = run(raw_message(SHAUDIT_MSG_HELLO, 1, "x"));
  ASSERT_FALSE(one.ok);
  EXPECT_EQ(one.err.detail, "truncated field header at offset 32");
}

TEST(WireReject, ReportSeqZero) {
  auto d = run(Builder(SHAUDIT_MSG_LINE, 0, 0).add(SHAUDIT_F_TEXT, "ls").finish());
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kField);
  EXPECT_EQ(d.err.detail, "report_seq is 0");
  auto h = run(Builder(SHAUDIT_MSG_HELLO, 0, 0).finish());
  ASSERT_FALSE(h.ok);
  EXPECT_EQ(h.err.detail, "report_seq is 0");
}

TEST(WireReject, LineWithoutText) {
  auto d = run(Builder(SHAUDIT_MSG_LINE, 1, 0).add(SHAUDIT_F_SHELL, "bash").finish());
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kMissing);
  EXPECT_EQ(d.err.detail, "line report without text");
}

TEST(WireReject, ExecWithoutPathOrArgv) {
  auto d = run(Builder(SHAUDIT_MSG_EXEC, 1, 0).add(SHAUDIT_F_CWD, "/").finish());
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kMissing);
  EXPECT_EQ(d.err.detail, "exec report without path or argv");
}

TEST(WireReject, Oversize) {
  std::string buf = raw_message(SHAUDIT_MSG_LINE, 1,
                                raw_field(SHAUDIT_F_TEXT, 0,
                                          std::string(SHAUDIT_WIRE_MAX_MESSAGE - kHeader -
                                                          kFieldHeader + 1,
                                                      'x'),
                                          SHAUDIT_WIRE_MAX_MESSAGE - kHeader - kFieldHeader + 1));
  ASSERT_EQ(buf.size(), SHAUDIT_WIRE_MAX_MESSAGE + 1);
  auto d = run(buf);
  ASSERT_FALSE(d.ok);
  EXPECT_EQ(d.err.reason, Reject::kOversize);
  EXPECT_EQ(d.err.detail, "message of 131073 bytes exceeds the maximum 131072");
  // One byte less is the largest accepted message.
  std::string max = raw_message(SHAUDIT_MSG_LINE, 1,
                                raw_field(SHAUDIT_F_TEXT, 0,
                                          std::string(SHAUDIT_WIRE_MAX_MESSAGE - kHeader -
                                                          kFieldHeader,
                                                      'x'),
                                          SHAUDIT_WIRE_MAX_MESSAGE - kHeader - kFieldHeader));
  EXPECT_TRUE(run(max).ok);
}

TEST(WireReject, ReadsOnlyInsideTheBuffer) {
  // Decoding every prefix of a valid message fails cleanly (and under ASan, in bounds).
  std::string buf = line_message();
  for (size_t n = 0; n < buf.size(); ++n) {
    std::string prefix = buf.substr(0, n);  // its own allocation, so overreads are caught
    auto d = run(prefix);
    EXPECT_FALSE(d.ok) << n;
    EXPECT_EQ(d.err.reason, n < kHeader ? Reject::kShort : Reject::kLength) << n;
  }
}

}  // namespace
}  // namespace shaudit::wire

TEST(WireMessage, TypedFieldAccessors) {
  shaudit::wire::Builder b(SHAUDIT_MSG_STATUS, 3, 0);
  uint64_t status = 7;
  b.add(SHAUDIT_F_STATUS, std::string_view(reinterpret_cast<const char*>(&status), sizeof status));
  b.add(SHAUDIT_F_SHELL, "bash");
  b.add(SHAUDIT_F_CMD_NO, "short");  // not 8 bytes: not a number
  std::string buf = b.finish();
  shaudit::wire::Message m;
  shaudit::wire::DecodeError err;
  ASSERT_TRUE(shaudit::wire::decode(buf, m, err)) << err.detail;
  EXPECT_EQ(m.number(SHAUDIT_F_STATUS), 7u);
  EXPECT_EQ(m.number(SHAUDIT_F_CMD_NO, 99), 99u);
  EXPECT_EQ(m.number(SHAUDIT_F_UID, 42), 42u);
  EXPECT_EQ(m.text(SHAUDIT_F_SHELL), "bash");
  EXPECT_EQ(m.text(SHAUDIT_F_TEXT), "");
}
