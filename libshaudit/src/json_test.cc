// SPDX-License-Identifier: Apache-2.0
#include "shaudit/json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace shaudit::json {
namespace {

using namespace std::string_literals;

// The parse error message for text (and a test failure if it parses).
std::string parse_error(std::string_view text) {
  auto r = parse(text);
  EXPECT_FALSE(r.ok()) << "unexpectedly parsed: " << text;
  return r.ok() ? std::string() : r.message();
}

std::string reencode(std::string_view text) {
  auto r = parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.message());
  return r.ok() ? encode(*r) : std::string("<parse error>");
}

constexpr std::string_view kFFFD = "\xEF\xBF\xBD";

// ---- encoding ----

TEST(JsonEncode, Scalars) {
  EXPECT_EQ(encode(Value()), "null");
  EXPECT_EQ(encode(Value(nullptr)), "null");
  EXPECT_EQ(encode(Value(true)), "true");
  EXPECT_EQ(encode(Value(false)), "false");
  EXPECT_EQ(encode(Value(0)), "0");
  EXPECT_EQ(encode(Value(-17)), "-17");
  EXPECT_EQ(encode(Value(1234567890123LL)), "1234567890123");
  EXPECT_EQ(encode(Value("")), "\"\"");
  EXPECT_EQ(encode(Value("abc")), "\"abc\"");
  EXPECT_EQ(encode(Value(Array{})), "[]");
  EXPECT_EQ(encode(Value(Object{})), "{}");
}

TEST(JsonEncode, Int64Limits) {
  EXPECT_EQ(encode(Value(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(encode(Value(std::numeric_limits<int64_t>::max())), "9223372036854775807");
}

TEST(JsonEncode, NestedArraysAndObjectsHaveNoWhitespace) {
  Object inner;
  inner["k"] = Array{1, "two", nullptr, false};
  Object o;
  o["z"] = Object{};
  o["a"] = std::move(inner);
  o["m"] = Array{Array{}, Array{Object{}}};
  EXPECT_EQ(encode(Value(o)), R"({"a":{"k":[1,"two",null,false]},"m":[[],[{}]],"z":{}})");
}

TEST(JsonEncode, ObjectKeysSortedByteWiseForAscii) {
  Object o;
  o["b"] = 1;
  o["a"] = 2;
  o["ab"] = 3;
  o["B"] = 4;
  o[""] = 5;
  o["a b"] = 6;
  EXPECT_EQ(encode(Value(o)), R"({"":5,"B":4,"a":2,"a b":6,"ab":3,"b":1})");
}

TEST(JsonEncode, NonAsciiKeysSortByUtf16CodeUnits) {
  // U+E000 is one UTF-16 unit 0xE000; U+1F600 is the pair 0xD83D 0xDE00, so it sorts
  // first, although its code point (and its UTF-8 bytes F0.. vs EE..) is larger.
  const std::string pua = "\xEE\x80\x80";         // U+E000
  const std::string emoji = "\xF0\x9F\x98\x80";   // U+1F600
  const std::string e_acute = "\xC3\xA9";         // U+00E9
  const std::string d7ff = "\xED\x9F\xBF";        // U+D7FF (last before the surrogates)
  const std::string fffd = std::string(kFFFD);    // U+FFFD
  Object o;
  o[pua] = 1;
  o[emoji] = 2;
  o["z"] = 3;
  o[e_acute] = 4;
  o[d7ff] = 5;
  o[fffd] = 6;
  EXPECT_EQ(encode(Value(o)), "{\"z\":3,\"" + e_acute + "\":4,\"" + d7ff + "\":5,\"" + emoji +
                                  "\":2,\"" + pua + "\":1,\"" + fffd + "\":6}");

  KeyLess less;
  EXPECT_TRUE(less(emoji, pua));
  EXPECT_FALSE(less(pua, emoji));
  EXPECT_TRUE(less(d7ff, emoji));
  EXPECT_TRUE(less("a", "a" + pua));  // a prefix sorts first
  EXPECT_FALSE(less("a" + pua, "a"));
  EXPECT_FALSE(less(emoji, emoji));
  // Supplementary characters keep code point order among themselves.
  EXPECT_TRUE(less(emoji, "\xF0\x9F\x98\x81"));  // U+1F600 < U+1F601
  EXPECT_TRUE(less("\xF0\x90\x80\x80", emoji));  // U+10000 < U+1F600
}

TEST(JsonEncode, ParsedObjectIsReencodedSorted) {
  EXPECT_EQ(reencode(R"({"b":1,"a":2,"c":{"y":1,"x":2}})"), R"({"a":2,"b":1,"c":{"x":2,"y":1}})");
  EXPECT_EQ(reencode("{\"\xEE\x80\x80\":1,\"\xF0\x9F\x98\x80\":2}"),
            "{\"\xF0\x9F\x98\x80\":2,\"\xEE\x80\x80\":1}");
}

TEST(JsonEncode, StringEscapes) {
  EXPECT_EQ(encode(Value("say \"hi\"")), R"("say \"hi\"")");
  EXPECT_EQ(encode(Value("C:\\dir")), R"("C:\\dir")");
  EXPECT_EQ(encode(Value("\b\f\n\r\t")), R"("\b\f\n\r\t")");
  // Other control characters: \u00xx with lowercase hex.
  EXPECT_EQ(encode(Value(std::string("\0", 1))), R"("\u0000")");
  EXPECT_EQ(encode(Value("\x01")), R"("\u0001")");
  EXPECT_EQ(encode(Value("\x0b")), R"("\u000b")");
  EXPECT_EQ(encode(Value("\x1a")), R"("\u001a")");
  EXPECT_EQ(encode(Value("\x1b[0m")), R"("\u001b[0m")");
  EXPECT_EQ(encode(Value("\x1f")), R"("\u001f")");
  // '/', DEL and non-ASCII are written literally.
  EXPECT_EQ(encode(Value("a/b")), R"("a/b")");
  EXPECT_EQ(encode(Value("\x7f")), "\"\x7f\"");
  EXPECT_EQ(encode(Value("caf\xC3\xA9 \xF0\x9F\x98\x80")), "\"caf\xC3\xA9 \xF0\x9F\x98\x80\"");
  EXPECT_EQ(encode(Value("\xEF\xBF\xBF")), "\"\xEF\xBF\xBF\"");  // U+FFFF
  // A mix, including a NUL in the middle.
  EXPECT_EQ(encode(Value("a\"b\\c\nd"s + std::string("\0", 1) + "e\x7f")),
            "\"a\\\"b\\\\c\\nd\\u0000e\x7f\"");
}

TEST(JsonEncode, EncodeStringAppends) {
  std::string out = "x=";
  encode_string("q\"", out);
  EXPECT_EQ(out, "x=\"q\\\"\"");
  encode(Value(Array{1, 2}), out);
  EXPECT_EQ(out, "x=\"q\\\"\"[1,2]");
}

TEST(JsonEncode, InvalidUtf8BecomesReplacementCharacter) {
  const std::string r(kFFFD);
  EXPECT_EQ(encode(Value("a\xff" "b")), "\"a" + r + "b\"");
  EXPECT_EQ(encode(Value("\xC3")), "\"" + r + "\"");                  // truncated at end
  EXPECT_EQ(encode(Value("\xC0\xAF")), "\"" + r + r + "\"");          // overlong '/'
  EXPECT_EQ(encode(Value("\xED\xA0\x80")), "\"" + r + r + r + "\"");  // UTF-8 surrogate
  EXPECT_EQ(encode(Value("\xE2\x82" "x")), "\"" + r + r + "x\"");     // cut 3-byte sequence
  EXPECT_EQ(encode(Value("\x80\"")), "\"" + r + "\\\"\"");            // then an escape
  // Also in keys.
  Object o;
  o["k\xfe"] = 1;
  EXPECT_EQ(encode(Value(o)), "{\"k" + r + "\":1}");
  // And the result always parses.
  EXPECT_TRUE(parse(encode(Value("\xff\xfe\xC3"))).ok());
}

TEST(JsonEncode, ToValidUtf8) {
  const std::string r(kFFFD);
  EXPECT_EQ(to_valid_utf8("plain"), "plain");
  EXPECT_EQ(to_valid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(to_valid_utf8("ls \xff"), "ls " + r);
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98"), r + r + r);
  EXPECT_EQ(to_valid_utf8(""), "");
}

// ---- parsing ----

TEST(JsonParse, Scalars) {
  auto n = parse("null");
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->is_null());
  auto t = parse(" true ");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->is_bool());
  EXPECT_TRUE(t->as_bool());
  auto f = parse("false");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->as_bool());
  auto s = parse(R"("a\"b")");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->as_string(), "a\"b");
  auto i = parse("-42");
  ASSERT_TRUE(i.ok());
  ASSERT_TRUE(i->is_int());
  EXPECT_EQ(i->as_int(), -42);
}

TEST(JsonParse, Int64Limits) {
  auto mx = parse("9223372036854775807");
  ASSERT_TRUE(mx.ok());
  EXPECT_EQ(mx->as_int(), std::numeric_limits<int64_t>::max());
  auto mn = parse("-9223372036854775808");
  ASSERT_TRUE(mn.ok());
  EXPECT_EQ(mn->as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(encode(*mn), "-9223372036854775808");
  EXPECT_EQ(parse_error("9223372036854775808"), "JSON error at byte 19: integer out of range");
  EXPECT_EQ(parse_error("-9223372036854775809"), "JSON error at byte 20: integer out of range");
  EXPECT_EQ(parse_error("[99999999999999999999999]"),
            "JSON error at byte 24: integer out of range");
}

TEST(JsonParse, NegativeZeroParsesAsZeroAndIsNotCanonical) {
  auto z = parse("-0");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->as_int(), 0);
  EXPECT_EQ(encode(*z), "0");
  EXPECT_NE(encode(*z), "-0");
}

TEST(JsonParse, FloatsAreRejected) {
  EXPECT_EQ(parse_error("1.5"), "JSON error at byte 1: only integer numbers are allowed");
  EXPECT_EQ(parse_error("[1e3]"), "JSON error at byte 2: only integer numbers are allowed");
  EXPECT_EQ(parse_error("1E3"), "JSON error at byte 1: only integer numbers are allowed");
  EXPECT_EQ(parse_error("-0.0"), "JSON error at byte 2: only integer numbers are allowed");
  EXPECT_NE(parse_error(R"({"a":0.1})").find("only integer"), std::string::npos);
}

TEST(JsonParse, OtherBadNumbers) {
  EXPECT_EQ(parse_error("-"), "JSON error at byte 1: invalid number");
  EXPECT_EQ(parse_error("-a"), "JSON error at byte 1: invalid number");
  EXPECT_EQ(parse_error("01"), "JSON error at byte 1: unexpected data after the JSON value");
  EXPECT_EQ(parse_error("+1"), "JSON error at byte 0: unexpected character 0x2b");
}

TEST(JsonParse, DuplicateKeysAreRejected) {
  EXPECT_EQ(parse_error(R"({"a":1,"a":2})"), "JSON error at byte 12: duplicate key");
  // Also when the duplicate is spelled differently.
  EXPECT_NE(parse_error(R"({"a":1,"\u0061":2})").find("duplicate key"), std::string::npos);
  // The same key in different objects is fine.
  EXPECT_TRUE(parse(R"({"a":{"a":1},"b":{"a":2}})").ok());
}

TEST(JsonParse, EscapesAndSurrogatePairs) {
  auto s = parse(R"("\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00")");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->as_string(), "\"\\/\b\f\n\r\t" "A\xC3\xA9\xF0\x9F\x98\x80");
  auto nul = parse(R"("a\u0000b")");
  ASSERT_TRUE(nul.ok());
  EXPECT_EQ(nul->as_string(), std::string("a\0b", 3));
  auto upper = parse(R"("\u00C9")");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->as_string(), "\xC3\x89");
}

TEST(JsonParse, LoneSurrogatesAreRejected) {
  EXPECT_EQ(parse_error(R"("\ud800")"), "JSON error at byte 7: lone surrogate in \\u escape");
  EXPECT_EQ(parse_error(R"("\udc00")"), "JSON error at byte 7: lone surrogate in \\u escape");
  EXPECT_EQ(parse_error(R"("\ud800x")"), "JSON error at byte 7: lone surrogate in \\u escape");
  EXPECT_EQ(parse_error(R"("\ud800\u0041")"), "JSON error at byte 13: invalid surrogate pair");
  EXPECT_EQ(parse_error(R"("\ud800\ud800")"), "JSON error at byte 13: invalid surrogate pair");
}

TEST(JsonParse, BadEscapes) {
  EXPECT_EQ(parse_error(R"("\x")"), "JSON error at byte 3: invalid escape");
  EXPECT_EQ(parse_error(R"("\u12")"), "JSON error at byte 3: truncated \\u escape");
  EXPECT_EQ(parse_error(R"("\u12g4")"), "JSON error at byte 6: invalid \\u escape");
  EXPECT_EQ(parse_error("\"\\"), "JSON error at byte 2: unterminated escape");
}

TEST(JsonParse, InvalidUtf8IsRejected) {
  EXPECT_EQ(parse_error("\"a\xff\""), "JSON error at byte 2: invalid UTF-8 in string");
  EXPECT_EQ(parse_error("\"\xC0\x80\""), "JSON error at byte 1: invalid UTF-8 in string");
  EXPECT_EQ(parse_error("\"\xED\xA0\x80\""), "JSON error at byte 1: invalid UTF-8 in string");
  EXPECT_EQ(parse_error("\"\xF4\x90\x80\x80\""), "JSON error at byte 1: invalid UTF-8 in string");
  EXPECT_EQ(parse_error("\"\xE2\x82\""), "JSON error at byte 1: invalid UTF-8 in string");
  EXPECT_EQ(parse_error("{\"k\xff\":1}"), "JSON error at byte 3: invalid UTF-8 in string");
}

TEST(JsonParse, ControlCharactersMustBeEscaped) {
  EXPECT_EQ(parse_error("\"a\nb\""), "JSON error at byte 2: unescaped control character in string");
  EXPECT_EQ(parse_error("\"\t\""), "JSON error at byte 1: unescaped control character in string");
  // DEL is not a control character for JSON.
  auto del = parse("\"\x7f\"");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->as_string(), "\x7f");
}

TEST(JsonParse, TrailingDataIsRejected) {
  EXPECT_EQ(parse_error("{} x"), "JSON error at byte 3: unexpected data after the JSON value");
  EXPECT_EQ(parse_error("1 2"), "JSON error at byte 2: unexpected data after the JSON value");
  EXPECT_EQ(parse_error("{}{}"), "JSON error at byte 2: unexpected data after the JSON value");
  EXPECT_EQ(parse_error("{}\n{}"), "JSON error at byte 3: unexpected data after the JSON value");
  EXPECT_TRUE(parse("{} \n\t\r").ok());  // trailing whitespace is fine
}

TEST(JsonParse, Unterminated) {
  EXPECT_EQ(parse_error(""), "JSON error at byte 0: unexpected end of input");
  EXPECT_EQ(parse_error("  "), "JSON error at byte 2: unexpected end of input");
  EXPECT_EQ(parse_error("\"abc"), "JSON error at byte 4: unterminated string");
  EXPECT_EQ(parse_error("[1,2"), "JSON error at byte 4: unterminated array");
  EXPECT_EQ(parse_error("["), "JSON error at byte 1: unexpected end of input");
  EXPECT_EQ(parse_error("[1,"), "JSON error at byte 3: unexpected end of input");
  EXPECT_EQ(parse_error(R"({"a":1)"), "JSON error at byte 6: unterminated object");
  EXPECT_EQ(parse_error(R"({"a")"), "JSON error at byte 4: expected ':'");
  EXPECT_EQ(parse_error(R"({"a":)"), "JSON error at byte 5: unexpected end of input");
  EXPECT_EQ(parse_error("{"), "JSON error at byte 1: expected a string key");
}

TEST(JsonParse, SyntaxErrors) {
  EXPECT_EQ(parse_error("tru"), "JSON error at byte 0: invalid literal");
  EXPECT_EQ(parse_error("nul"), "JSON error at byte 0: invalid literal");
  EXPECT_EQ(parse_error("True"), "JSON error at byte 0: unexpected character 0x54");
  EXPECT_EQ(parse_error("{1:2}"), "JSON error at byte 1: expected a string key");
  EXPECT_EQ(parse_error("{'a':1}"), "JSON error at byte 1: expected a string key");
  EXPECT_EQ(parse_error("[1 2]"), "JSON error at byte 3: expected ',' or ']'");
  EXPECT_EQ(parse_error(R"({"a":1 "b":2})"), "JSON error at byte 7: expected ',' or '}'");
  EXPECT_EQ(parse_error("[1,]"), "JSON error at byte 3: unexpected character 0x5d");
  EXPECT_EQ(parse_error(R"({"a":1,})"), "JSON error at byte 7: expected a string key");
  EXPECT_EQ(parse_error("\xEF\xBB\xBF{}"), "JSON error at byte 0: unexpected character 0xef");
}

TEST(JsonParse, NestingDepthLimitIs64) {
  auto nested = [](int depth, std::string_view inner) {
    return std::string(static_cast<size_t>(depth), '[') + std::string(inner) +
           std::string(static_cast<size_t>(depth), ']');
  };
  EXPECT_TRUE(parse(nested(64, "")).ok());
  EXPECT_TRUE(parse(nested(64, "1")).ok());
  EXPECT_EQ(parse_error(nested(65, "")), "JSON error at byte 64: nesting too deep");
  EXPECT_EQ(parse_error(nested(65, "1")), "JSON error at byte 64: nesting too deep");
  EXPECT_EQ(parse_error(nested(100000, "")), "JSON error at byte 64: nesting too deep");

  std::string objs;
  for (int i = 0; i < 64; ++i) objs += "{\"a\":";
  objs += "1" + std::string(64, '}');
  EXPECT_TRUE(parse(objs).ok());
  std::string deeper;
  for (int i = 0; i < 65; ++i) deeper += "{\"a\":";
  deeper += "1" + std::string(65, '}');
  EXPECT_NE(parse_error(deeper).find("nesting too deep"), std::string::npos);
}

TEST(JsonParse, RoundTripOfCanonicalText) {
  const std::string canonical[] = {
      "null",
      "true",
      "0",
      "-1",
      "-9223372036854775808",
      "\"\"",
      R"("tab\there \"quoted\" back\\slash \u0001\u001f")",
      "\"caf\xC3\xA9 \xF0\x9F\x98\x80 \x7f /\"",
      "[]",
      "{}",
      R"([1,[2,[3,{}]],"x",null,false])",
      R"({"a":[1,-2,true,false,null,"x"],"b":{"c":"\n"},"seq":12})",
      "{\"z\":1,\"\xC3\xA9\":2,\"\xF0\x9F\x98\x80\":3,\"\xEE\x80\x80\":4}",
      R"({"prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"time":"2026-11-28T12:00:00.000000000Z","type":"start"})",
  };
  for (const auto& text : canonical) {
    auto v = parse(text);
    ASSERT_TRUE(v.ok()) << text << ": " << v.message();
    EXPECT_EQ(encode(*v), text);
  }
}

TEST(JsonParse, NonCanonicalTextReencodesDifferently) {
  EXPECT_EQ(reencode(R"({ "a" : 1 })"), R"({"a":1})");
  EXPECT_EQ(reencode("[1,\n 2]"), "[1,2]");
  EXPECT_EQ(reencode(R"("\u0041")"), R"("A")");
  EXPECT_EQ(reencode(R"("\/")"), R"("/")");
  EXPECT_EQ(reencode(R"("\u00e9")"), "\"\xC3\xA9\"");
  EXPECT_EQ(reencode(R"("\ud83d\ude00")"), "\"\xF0\x9F\x98\x80\"");
  EXPECT_EQ(reencode(R"("\u007f")"), "\"\x7f\"");
  EXPECT_EQ(reencode(R"("\u001B")"), R"("\u001b")");
  EXPECT_EQ(reencode(R"("\u000a")"), R"("\n")");
  EXPECT_EQ(reencode(R"({"b":1,"a":2})"), R"({"a":2,"b":1})");
  EXPECT_EQ(reencode("-0"), "0");
}

TEST(JsonParse, AccessorsAndLookups) {
  auto v = parse(R"({"n":5,"s":"x","a":[1],"o":{}})");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->is_object());
  const Object& o = v->as_object();
  ASSERT_NE(get_int(o, "n"), nullptr);
  EXPECT_EQ(*get_int(o, "n"), 5);
  EXPECT_EQ(get_int(o, "s"), nullptr);
  EXPECT_EQ(get_int(o, "missing"), nullptr);
  ASSERT_NE(get_string(o, "s"), nullptr);
  EXPECT_EQ(*get_string(o, "s"), "x");
  EXPECT_EQ(get_string(o, "n"), nullptr);
  EXPECT_EQ(get_string(o, "missing"), nullptr);
  ASSERT_NE(o.at("a").if_array(), nullptr);
  EXPECT_EQ(o.at("a").as_array().size(), 1u);
  EXPECT_NE(o.at("o").if_object(), nullptr);
  EXPECT_EQ(o.at("o").if_string(), nullptr);
  EXPECT_EQ(Value(Array{1, "x"}), Value(Array{1, "x"}));
  EXPECT_FALSE(Value(1) == Value("1"));
}

// ---- UTF-8 validation ----

TEST(JsonUtf8, ValidSequences) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8(std::string("\0", 1)));
  EXPECT_TRUE(is_valid_utf8("\x7f"));
  EXPECT_TRUE(is_valid_utf8("\xC2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(is_valid_utf8("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(is_valid_utf8("\xE0\xA0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));      // U+E000
  EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xF0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the largest
}

TEST(JsonUtf8, Overlong) {
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // NUL as 2 bytes
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // '/' as 3 bytes
  EXPECT_FALSE(is_valid_utf8("\xE0\x9F\xBF"));      // U+07FF as 3 bytes
  EXPECT_FALSE(is_valid_utf8("\xF0\x80\x80\xAF"));  // '/' as 4 bytes
  EXPECT_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF"));  // U+FFFF as 4 bytes
}

TEST(JsonUtf8, Surrogates) {
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));  // U+D800
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));  // U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\xBD\xED\xB8\x80"));  // CESU-8 pair for U+1F600
}

TEST(JsonUtf8, BeyondU10FFFF) {
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xFE"));
}

TEST(JsonUtf8, TruncatedAndStrayBytes) {
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xF0\x9F\x98"));
  EXPECT_FALSE(is_valid_utf8("abc\xF0\x9F\x98"));
  EXPECT_FALSE(is_valid_utf8("\xC3("));        // bad continuation
  EXPECT_FALSE(is_valid_utf8("\xE2(\xA1"));
  EXPECT_FALSE(is_valid_utf8("\x80"));         // lone continuation byte
  EXPECT_FALSE(is_valid_utf8("a\xBF" "b"));
  EXPECT_FALSE(is_valid_utf8("\xC3\xA9\xA9"));  // extra continuation
}

}  // namespace
}  // namespace shaudit::json
