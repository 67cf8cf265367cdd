// SPDX-License-Identifier: Apache-2.0
#include "shaudit/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>

namespace shaudit::json {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_seq_len(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  unsigned char c = p[i];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    if (i + 1 < n && (p[i + 1] & 0xC0) == 0x80) return 2;
    return 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (i + 2 >= n) return 0;
    unsigned char c1 = p[i + 1], c2 = p[i + 2];
    if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (i + 3 >= n) return 0;
    unsigned char c1 = p[i + 1], c2 = p[i + 2], c3 = p[i + 3];
    if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && c1 < 0x90) return 0;  // overlong
    if (c == 0xF4 && c1 >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

uint32_t decode_utf8(std::string_view s, size_t i, size_t len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  switch (len) {
    case 1:
      return p[0];
    case 2:
      return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3:
      return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default:
      return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
             (p[3] & 0x3Fu);
  }
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Result<Value> run() {
    auto v = value(0);
    if (!v) return v;
    skip_ws();
    if (pos_ != t_.size()) return fail("unexpected data after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;  // arrays and objects nested in one another

  Error fail(std::string_view what) const {
    return Error{fmt::format("JSON error at byte {}: {}", pos_, what)};
  }

  void skip_ws() {
    while (pos_ < t_.size() &&
           (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
      ++pos_;
  }

  bool literal(std::string_view lit) {
    if (t_.substr(pos_, lit.size()) == lit) {
      pos_ += lit.size();
      return true;
    }
    return false;
  }

  // depth: the number of arrays and objects enclosing this value.
  Result<Value> value(int depth) {
    skip_ws();
    if (pos_ >= t_.size()) return fail("unexpected end of input");
    char c = t_[pos_];
    if ((c == '{' || c == '[') && depth >= kMaxDepth) return fail("nesting too deep");
    switch (c) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"': {
        auto s = string();
        if (!s) return s.error();
        return Value(std::move(*s));
      }
      case 't':
        if (literal("true")) return Value(true);
        return fail("invalid literal");
      case 'f':
        if (literal("false")) return Value(false);
        return fail("invalid literal");
      case 'n':
        if (literal("null")) return Value(nullptr);
        return fail("invalid literal");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        return fail(fmt::format("unexpected character 0x{:02x}", static_cast<unsigned char>(c)));
    }
  }

  Result<Value> number() {
    size_t start = pos_;
    if (t_[pos_] == '-') ++pos_;
    if (pos_ >= t_.size() || !(t_[pos_] >= '0' && t_[pos_] <= '9')) return fail("invalid number");
    if (t_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') ++pos_;
    }
    if (pos_ < t_.size() && (t_[pos_] == '.' || t_[pos_] == 'e' || t_[pos_] == 'E'))
      return fail("only integer numbers are allowed");
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t_.data() + start, t_.data() + pos_, v);
    if (ec != std::errc() || p != t_.data() + pos_) return fail("integer out of range");
    return Value(v);
  }

  Result<uint32_t> hex4() {
    if (pos_ + 4 > t_.size()) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = t_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("invalid \\u escape");
    }
    return v;
  }

  Result<std::string> string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= t_.size()) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(t_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) return fail("unescaped control character in string");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= t_.size()) return fail("unterminated escape");
        char e = t_[pos_++];
        switch (e) {
          case '"':
            out.push_back('"');
            break;
          case '\\':
            out.push_back('\\');
            break;
          case '/':
            out.push_back('/');
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'n':
            out.push_back('\n');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'u': {
            auto hi = hex4();
            if (!hi) return hi.error();
            uint32_t cp = *hi;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (!literal("\\u")) return fail("lone surrogate in \\u escape");
              auto lo = hex4();
              if (!lo) return lo.error();
              if (*lo < 0xDC00 || *lo > 0xDFFF) return fail("invalid surrogate pair");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (*lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return fail("lone surrogate in \\u escape");
            }
            append_utf8(cp, out);
            break;
          }
          default:
            return fail("invalid escape");
        }
        continue;
      }
      size_t len = utf8_seq_len(t_, pos_);
      if (len == 0) return fail("invalid UTF-8 in string");
      out.append(t_.data() + pos_, len);
      pos_ += len;
    }
  }

  Result<Value> array(int depth) {
    ++pos_;
    Array a;
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == ']') {
      ++pos_;
      return Value(std::move(a));
    }
    while (true) {
      auto v = value(depth + 1);
      if (!v) return v;
      a.push_back(std::move(*v));
      skip_ws();
      if (pos_ >= t_.size()) return fail("unterminated array");
      if (t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (t_[pos_] == ']') {
        ++pos_;
        return Value(std::move(a));
      }
      return fail("expected ',' or ']'");
    }
  }

  Result<Value> object(int depth) {
    ++pos_;
    Object o;
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == '}') {
      ++pos_;
      return Value(std::move(o));
    }
    while (true) {
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != '"') return fail("expected a string key");
      auto k = string();
      if (!k) return k.error();
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      auto v = value(depth + 1);
      if (!v) return v;
      if (!o.emplace(std::move(*k), std::move(*v)).second) return fail("duplicate key");
      skip_ws();
      if (pos_ >= t_.size()) return fail("unterminated object");
      if (t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (t_[pos_] == '}') {
        ++pos_;
        return Value(std::move(o));
      }
      return fail("expected ',' or '}'");
    }
  }

  std::string_view t_;
  size_t pos_ = 0;
};

}  // namespace

bool KeyLess::operator()(std::string_view a, std::string_view b) const {
  // RFC 8785 sorts keys by UTF-16 code units. That equals code point order except that
  // supplementary characters (surrogate pairs, 0xD800..0xDFFF) sort before U+E000..U+FFFF.
  auto utf16_rank = [](uint32_t cp) -> uint64_t {
    if (cp < 0xD800) return cp;
    if (cp >= 0x10000) return 0xD800 + (cp - 0x10000);
    return cp + 0x100000;
  };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    auto ca = static_cast<unsigned char>(a[i]);
    auto cb = static_cast<unsigned char>(b[j]);
    if (ca < 0x80 && cb < 0x80) {
      if (ca != cb) return ca < cb;
      ++i;
      ++j;
      continue;
    }
    size_t la = utf8_seq_len(a, i), lb = utf8_seq_len(b, j);
    uint32_t pa = la ? decode_utf8(a, i, la) : ca;
    uint32_t pb = lb ? decode_utf8(b, j, lb) : cb;
    if (pa != pb) return utf16_rank(pa) < utf16_rank(pb);
    i += la ? la : 1;
    j += lb ? lb : 1;
  }
  return (a.size() - i) < (b.size() - j);
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len = utf8_seq_len(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_seq_len(s, i);
    if (len == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(s.data() + i, len);
      i += len;
    }
  }
  return out;
}

void encode_string(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Copy runs of plain ASCII in one go.
    size_t run = i;
    while (run < s.size()) {
      auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out.append(s.data() + i, run - i);
    i = run;
    if (i >= s.size()) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = utf8_seq_len(s, i);
      if (len == 0) {
        out.append(kReplacement);
        ++i;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
    ++i;
  }
  out.push_back('"');
}

void encode(const Value& v, std::string& out) {
  if (v.is_null()) {
    out.append("null");
  } else if (v.is_bool()) {
    out.append(v.as_bool() ? "true" : "false");
  } else if (auto i = v.if_int()) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, *i);
    (void)ec;
    out.append(buf, p);
  } else if (auto s = v.if_string()) {
    encode_string(*s, out);
  } else if (auto a = v.if_array()) {
    out.push_back('[');
    bool first = true;
    for (const auto& e : *a) {
      if (!first) out.push_back(',');
      first = false;
      encode(e, out);
    }
    out.push_back(']');
  } else if (auto o = v.if_object()) {
    out.push_back('{');
    bool first = true;
    for (const auto& [k, e] : *o) {
      if (!first) out.push_back(',');
      first = false;
      encode_string(k, out);
      out.push_back(':');
      encode(e, out);
    }
    out.push_back('}');
  }
}

std::string encode(const Value& v) {
  std::string out;
  encode(v, out);
  return out;
}

Result<Value> parse(std::string_view text) { return Parser(text).run(); }

const std::string* get_string(const Object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : it->second.if_string();
}

const int64_t* get_int(const Object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : it->second.if_int();
}

}  // namespace shaudit::json
