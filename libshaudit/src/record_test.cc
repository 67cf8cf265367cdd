// SPDX-License-Identifier: Apache-2.0
#include "shaudit/record.h"

#include <gtest/gtest.h>
#include <time.h>

#include <string>
#include <vector>

#include "shaudit/crypto.h"
#include "shaudit/json.h"

namespace shaudit::record {
namespace {

constexpr int64_t kSec = 1'000'000'000;
// 2026-11-28T12:00:00Z
constexpr int64_t kNoon = 1795867200 * kSec;
const std::string kFFFD = "\xEF\xBF\xBD";

int64_t parsed(std::string_view text) {
  auto r = parse_time(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.message());
  return r.ok() ? *r : INT64_MIN;
}

// ---- time ----

TEST(RecordTime, FormatIsRfc3339UtcWithNanoseconds) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(format_time(kNoon), "2026-11-28T12:00:00.000000000Z");
  EXPECT_EQ(format_time(kNoon + 123456789), "2026-11-28T12:00:00.123456789Z");
  EXPECT_EQ(format_time(kNoon + 1), "2026-11-28T12:00:00.000000001Z");
  EXPECT_EQ(format_time(kNoon + 86399 * kSec + 999999999), "2026-11-29T11:59:59.999999999Z");
  EXPECT_EQ(format_time(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_time(-kSec / 2), "1969-12-31T23:59:59.500000000Z");
  EXPECT_EQ(format_time(951782400 * kSec), "2000-02-29T00:00:00.000000000Z");  // leap day
}

TEST(RecordTime, ParseFormatRoundTrip) {
  const int64_t values[] = {0,
                            1,
                            kNoon,
                            kNoon + 123456789,
                            kNoon + 999999999,
                            -1,
                            -kSec / 2,
                            951782400 * kSec + 42,
                            4102444799 * kSec + 999999999};  // 2099-12-31T23:59:59.999999999Z
  for (int64_t v : values) {
    std::string s = format_time(v);
    EXPECT_EQ(parsed(s), v) << s;
  }
}

TEST(RecordTime, ParseVariants) {
  EXPECT_EQ(parsed("2026-11-28T12:00:00Z"), kNoon);
  EXPECT_EQ(parsed("2026-11-28T12:00:00.123456789Z"), kNoon + 123456789);
  EXPECT_EQ(parsed("2026-11-28T12:00:00.5Z"), kNoon + 500000000);
  EXPECT_EQ(parsed("2026-11-28T12:00:00.000001Z"), kNoon + 1000);
  // Digits beyond nanoseconds are dropped (not rounded).
  EXPECT_EQ(parsed("2026-11-28T12:00:00.1234567899Z"), kNoon + 123456789);
  EXPECT_EQ(parsed("2026-11-28t12:00:00z"), kNoon);
  EXPECT_EQ(parsed("2026-11-28 12:00:00Z"), kNoon);
}

TEST(RecordTime, ParseOffsets) {
  EXPECT_EQ(parsed("2026-11-28T14:00:00+02:00"), kNoon);
  EXPECT_EQ(parsed("2026-11-28T14:00:00.25+02:00"), kNoon + 250000000);
  EXPECT_EQ(parsed("2026-11-28T06:30:00-05:30"), kNoon);
  EXPECT_EQ(parsed("2026-11-28T12:00:00+00:00"), kNoon);
  EXPECT_EQ(parsed("2026-11-28T12:00:00-00:00"), kNoon);
  EXPECT_EQ(parsed("2026-11-29T01:45:00+13:45"), kNoon);  // crosses midnight
}

TEST(RecordTime, ParseDateOnlyIsMidnightUtc) {
  EXPECT_EQ(parsed("2026-11-28"), kNoon - 12 * 3600 * kSec);
  EXPECT_EQ(parsed("1970-01-01"), 0);
}

TEST(RecordTime, ParseRejectsInvalid) {
  const char* bad[] = {
      "",
      "2026",
      "2026-11",
      "2026/11/28",
      "2026-11-28X",
      "2026-11-28T",
      "2026-11-28T12:00",
      "2026-11-28T12:00Z",
      "2026-11-28T12:00:00",        // no zone
      "2026-11-28T12:00:00.Z",      // empty fraction
      "2026-11-28T12:00:00+02",     // short offset
      "2026-11-28T12:00:00+0200",   // offset without colon
      "2026-11-28T12:00:00Zjunk",   // trailing data
      "2026-11-28T12:00:00Z ",
      "2026-13-01",                 // month 13
      "2026-00-10",
      "2026-11-32",
      "2026-11-00",
      "2026-11-28T24:00:00Z",
      "2026-11-28T12:60:00Z",
      "2026-11-28T12:00:61Z",
      "2026-1a-28",
      "+2026-11-28",
      "now",
  };
  for (const char* s : bad) {
    auto r = parse_time(s);
    ASSERT_FALSE(r.ok()) << "accepted '" << s << "' as " << *r;
    EXPECT_EQ(r.message(), std::string("invalid time '") + s +
                               "' (expected RFC 3339, e.g. 2026-11-28T12:00:00Z)");
  }
}

TEST(RecordTime, NowIsCurrentRealtime) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t before = static_cast<int64_t>(ts.tv_sec) * kSec + ts.tv_nsec;
  int64_t n = now_ns();
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t after = static_cast<int64_t>(ts.tv_sec) * kSec + ts.tv_nsec;
  EXPECT_LE(before, n);
  EXPECT_LE(n, after);
}

// ---- lossless bytes ----

TEST(RecordBytes, ValidUtf8HasNoB64Twin) {
  json::Object o;
  set_bytes(o, "text", "ls -l /tmp \xC3\xA9");
  EXPECT_EQ(json::encode(json::Value(o)), "{\"text\":\"ls -l /tmp \xC3\xA9\"}");
  EXPECT_EQ(o.count("text_b64"), 0u);
  EXPECT_EQ(get_bytes(o, "text"), "ls -l /tmp \xC3\xA9");
}

TEST(RecordBytes, InvalidUtf8KeepsExactBytesInB64) {
  json::Object o;
  set_bytes(o, "text", "ls \xff");
  EXPECT_EQ(json::encode(json::Value(o)),
            "{\"text\":\"ls " + kFFFD + "\",\"text_b64\":\"bHMg/w==\"}");
  EXPECT_EQ(get_bytes(o, "text"), "ls \xff");

  // Control characters and NUL are valid UTF-8: no twin, escaped in JSON.
  json::Object c;
  set_bytes(c, "text", std::string("a\0\x1b", 3));
  EXPECT_EQ(json::encode(json::Value(c)), R"({"text":"a\u0000\u001b"})");
  EXPECT_EQ(get_bytes(c, "text"), std::string("a\0\x1b", 3));
}

TEST(RecordBytes, SurvivesJsonRoundTrip) {
  const std::string bytes = std::string("echo \xC0\xAF \xED\xA0\x80 ok\n\0", 16);
  json::Object o;
  set_bytes(o, "text", bytes);
  auto back = json::parse(json::encode(json::Value(o)));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(get_bytes(back->as_object(), "text"), bytes);
}

TEST(RecordBytes, SetValidAfterInvalidDropsTheTwin) {
  json::Object o;
  set_bytes(o, "text", "\xff");
  ASSERT_EQ(o.count("text_b64"), 1u);
  set_bytes(o, "text", "fine");
  EXPECT_EQ(o.count("text_b64"), 0u);
  EXPECT_EQ(json::encode(json::Value(o)), R"({"text":"fine"})");
}

TEST(RecordBytes, GetBytesFallbacks) {
  json::Object o;
  EXPECT_EQ(get_bytes(o, "text"), "");
  o["text"] = 5;  // not a string
  EXPECT_EQ(get_bytes(o, "text"), "");
  o["text"] = "shown";
  o["text_b64"] = "not base64!";  // undecodable twin: fall back to the text
  EXPECT_EQ(get_bytes(o, "text"), "shown");
  o["text_b64"] = "/w==";
  EXPECT_EQ(get_bytes(o, "text"), "\xff");
}

TEST(RecordArgv, ValidArgvHasNoB64Twin) {
  json::Object o;
  set_argv(o, std::vector<std::string>{"ls", "-l", ""});
  EXPECT_EQ(json::encode(json::Value(o)), R"({"argv":["ls","-l",""]})");
  EXPECT_EQ(get_argv(o), (std::vector<std::string>{"ls", "-l", ""}));
}

TEST(RecordArgv, InvalidElementAddsB64ForEveryElement) {
  json::Object o;
  set_argv(o, std::vector<std::string>{"cat", "f\xff"});
  EXPECT_EQ(json::encode(json::Value(o)),
            "{\"argv\":[\"cat\",\"f" + kFFFD + "\"],\"argv_b64\":[\"Y2F0\",\"Zv8=\"]}");
  EXPECT_EQ(get_argv(o), (std::vector<std::string>{"cat", "f\xff"}));

  auto back = json::parse(json::encode(json::Value(o)));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(get_argv(back->as_object()), (std::vector<std::string>{"cat", "f\xff"}));
}

TEST(RecordArgv, AcceptsCStringsAndStringViews) {
  json::Object o;
  std::vector<const char*> argv = {"/bin/echo", "hi\x80"};
  set_argv(o, argv);
  EXPECT_EQ(json::encode(json::Value(o)),
            "{\"argv\":[\"/bin/echo\",\"hi" + kFFFD + "\"],\"argv_b64\":[\"L2Jpbi9lY2hv\",\"aGmA\"]}");
  json::Object v;
  set_argv(v, std::vector<std::string_view>{"a", "b"});
  EXPECT_EQ(json::encode(json::Value(v)), R"({"argv":["a","b"]})");
  EXPECT_EQ(argv_b64(std::vector<std::string>{"a", ""}), (json::Array{"YQ==", ""}));
}

TEST(RecordArgv, GetArgvFallbacks) {
  json::Object o;
  EXPECT_TRUE(get_argv(o).empty());
  o["argv"] = json::Array{"x", 1, "y"};  // non-strings are skipped
  EXPECT_EQ(get_argv(o), (std::vector<std::string>{"x", "y"}));
  o["argv_b64"] = json::Array{"eA==", "!!", 3};  // undecodable elements become ""
  EXPECT_EQ(get_argv(o), (std::vector<std::string>{"x", "", ""}));
}

// ---- seals ----

TEST(RecordSeal, MessageIsDomainPrefixPlusCanonicalSealWithoutSig) {
  json::Object seal;
  seal["type"] = "seal";
  seal["seq"] = 5;
  seal["reason"] = "count";
  seal["prev"] = kGenesisPrev;
  seal["sig"] = "c2lnbmF0dXJl";
  std::string msg = seal_message(seal);
  EXPECT_EQ(msg.rfind("shaudit-seal-v1\n", 0), 0u);
  EXPECT_EQ(msg, "shaudit-seal-v1\n{\"prev\":\"" + kGenesisPrev +
                     "\",\"reason\":\"count\",\"seq\":5,\"type\":\"seal\"}");
  EXPECT_EQ(msg.find("sig"), std::string::npos);
  EXPECT_EQ(seal.count("sig"), 1u);  // the argument is untouched

  // The signature does not cover itself: the message is the same without it or with another.
  json::Object unsigned_seal = seal;
  unsigned_seal.erase("sig");
  EXPECT_EQ(seal_message(unsigned_seal), msg);
  seal["sig"] = "b3RoZXI=";
  EXPECT_EQ(seal_message(seal), msg);
  // Any other field is covered.
  seal["seq"] = 6;
  EXPECT_NE(seal_message(seal), msg);
}

TEST(RecordSeal, Constants) {
  EXPECT_EQ(kGenesisPrev, std::string(64, '0'));
  EXPECT_EQ(kSealDomain, "shaudit-seal-v1\n");
}

}  // namespace
}  // namespace shaudit::record
