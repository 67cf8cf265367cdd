// SPDX-License-Identifier: Apache-2.0
#include "json_text.h"

#include <fmt/format.h>

#include <algorithm>

#include "shaudit/json.h"

namespace shaudit::oci {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}

  Result<JsonNode> run() {
    auto v = value(0);
    if (!v) return v;
    skip_ws();
    if (pos_ != t_.size()) return fail("unexpected data after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 128;

  Error fail(std::string_view what) const {
    return make_error(fmt::format("JSON error at byte {}: {}", pos_, what));
  }
  bool at_end() const { return pos_ >= t_.size(); }
  char peek() const { return t_[pos_]; }
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }

  Result<JsonNode> value(int depth) {
    skip_ws();
    if (at_end()) return fail("unexpected end of input");
    JsonNode n;
    n.begin = pos_;
    char c = peek();
    if ((c == '{' || c == '[') && depth >= kMaxDepth) return fail("nesting too deep");
    if (c == '{') {
      if (auto r = object(n, depth); !r) return r.error();
    } else if (c == '[') {
      if (auto r = array(n, depth); !r) return r.error();
    } else if (c == '"') {
      auto s = string();
      if (!s) return s.error();
      n.type = JsonNode::Type::kString;
      n.string = std::move(*s);
    } else if (literal("true") || literal("false")) {
      n.type = JsonNode::Type::kBool;
    } else if (literal("null")) {
      n.type = JsonNode::Type::kNull;
    } else if (c == '-' || digit(c)) {
      if (auto r = number(); !r) return r.error();
      n.type = JsonNode::Type::kNumber;
    } else {
      return fail(fmt::format("unexpected character 0x{:02x}", static_cast<unsigned char>(c)));
    }
    n.end = pos_;
    return n;
  }

  bool literal(std::string_view lit) {
    if (t_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }

  // RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Result<void> number() {
    if (peek() == '-') ++pos_;
    if (at_end() || !digit(peek())) return fail("invalid number");
    if (peek() == '0') {
      ++pos_;
    } else {
      while (!at_end() && digit(peek())) ++pos_;
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (at_end() || !digit(peek())) return fail("invalid number");
      while (!at_end() && digit(peek())) ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !digit(peek())) return fail("invalid number");
      while (!at_end() && digit(peek())) ++pos_;
    }
    return {};
  }

  // A string value, decoded. The JSON is decoded by shaudit's strict parser (escapes,
  // surrogate pairs, UTF-8 validation); this finds where the literal ends.
  Result<std::string> string() {
    size_t start = pos_++;
    while (true) {
      if (at_end()) return fail("unterminated string");
      char c = t_[pos_++];
      if (c == '"') break;
      if (c == '\\') {
        if (at_end()) return fail("unterminated string");
        ++pos_;
      }
    }
    auto v = json::parse(t_.substr(start, pos_ - start));
    if (!v) {
      pos_ = start;
      return fail(fmt::format("invalid string ({})", v.message()));
    }
    return v->as_string();
  }

  Result<void> array(JsonNode& n, int depth) {
    n.type = JsonNode::Type::kArray;
    ++pos_;
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return {};
    }
    while (true) {
      auto v = value(depth + 1);
      if (!v) return v.error();
      n.items.push_back(std::move(*v));
      skip_ws();
      if (at_end()) return fail("unterminated array");
      char c = t_[pos_++];
      if (c == ']') return {};
      if (c != ',') {
        --pos_;
        return fail("expected ',' or ']'");
      }
    }
  }

  Result<void> object(JsonNode& n, int depth) {
    n.type = JsonNode::Type::kObject;
    ++pos_;
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return {};
    }
    while (true) {
      skip_ws();
      if (at_end() || peek() != '"') return fail("expected a string key");
      JsonMember m;
      m.key_begin = pos_;
      auto k = string();
      if (!k) return k.error();
      m.key = std::move(*k);
      skip_ws();
      if (at_end() || peek() != ':') return fail("expected ':'");
      ++pos_;
      auto v = value(depth + 1);
      if (!v) return v.error();
      m.value = std::move(*v);
      n.members.push_back(std::move(m));
      skip_ws();
      if (at_end()) return fail("unterminated object");
      char c = t_[pos_++];
      if (c == '}') return {};
      if (c != ',') {
        --pos_;
        return fail("expected ',' or '}'");
      }
    }
  }

  std::string_view t_;
  size_t pos_ = 0;
};

// A key as encoding/json compares it with a field name: ASCII letters folded to lower case,
// and the two non-ASCII letters its fold knows (KELVIN SIGN -> k, LATIN SMALL LETTER LONG S
// -> s).
std::string go_fold(std::string_view key) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key.substr(i, 3) == "\xE2\x84\xAA") {
      out.push_back('k');
      i += 2;
    } else if (key.substr(i, 2) == "\xC5\xBF") {
      out.push_back('s');
      i += 1;
    } else {
      char c = key[i];
      out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
  }
  return out;
}

}  // namespace

Result<JsonNode> scan_json(std::string_view text) {
  return Scanner(text).run();
}

Result<const JsonMember*> struct_field(const JsonNode& object, std::string_view key) {
  const JsonMember* found = nullptr;
  const std::string folded = go_fold(key);
  for (const auto& m : object.members) {
    if (go_fold(m.key) != folded) continue;
    if (found)
      return make_error(
          fmt::format("\"{}\" is there twice (\"{}\", \"{}\")", key, found->key, m.key));
    found = &m;
  }
  if (found && found->key != key)
    return make_error(fmt::format("\"{}\" is spelled \"{}\"", key, found->key));
  return found;
}

Result<const JsonMember*> map_entry(const JsonNode& object, std::string_view key) {
  const JsonMember* found = nullptr;
  for (const auto& m : object.members) {
    if (m.key != key) continue;
    if (found) return make_error(fmt::format("\"{}\" is there more than once", key));
    found = &m;
  }
  return found;
}

void JsonEdits::append_items(const JsonNode& array, const std::vector<std::string>& items) {
  if (items.empty()) return;
  std::string text;
  for (const auto& it : items) {
    if (!text.empty() || !array.items.empty()) text += ',';
    text += it;
  }
  // After the last element (or the opening bracket): the text's spacing before ']' stays.
  size_t at = array.items.empty() ? array.begin + 1 : array.items.back().end;
  splices_.push_back({at, at, std::move(text)});
}

void JsonEdits::replace_value(const JsonNode& value, std::string json) {
  splices_.push_back({value.begin, value.end, std::move(json)});
}

void JsonEdits::update_object(const JsonNode& object, const std::vector<MemberChange>& changes) {
  const auto& ms = object.members;
  std::vector<bool> removed(ms.size(), false);
  std::string added;
  for (const auto& ch : changes) {
    bool present = false;
    for (size_t i = 0; i < ms.size(); ++i) {
      if (ms[i].key != ch.key) continue;
      present = true;
      if (ch.json)
        splices_.push_back({ms[i].value.begin, ms[i].value.end, *ch.json});
      else
        removed[i] = true;
    }
    if (!present && ch.json) {
      if (!added.empty()) added += ',';
      added += json_string(ch.key) + ':' + *ch.json;
    }
  }
  // Each run of removed members goes with one comma: the one after it, or (at the end) the
  // one before it.
  bool kept_any = false;
  for (size_t i = 0; i < ms.size();) {
    if (!removed[i]) {
      kept_any = true;
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < ms.size() && removed[j + 1]) ++j;
    if (j + 1 < ms.size())
      splices_.push_back({ms[i].key_begin, ms[j + 1].key_begin, ""});
    else if (i > 0)
      splices_.push_back({ms[i - 1].value.end, ms[j].value.end, ""});
    else
      splices_.push_back({ms[i].key_begin, ms[j].value.end, ""});
    i = j + 1;
  }
  if (!added.empty()) {
    if (kept_any) added += ',';
    splices_.push_back({object.begin + 1, object.begin + 1, std::move(added)});
  }
}

Result<std::string> JsonEdits::apply() const {
  std::vector<Splice> s = splices_;
  std::stable_sort(s.begin(), s.end(), [](const Splice& a, const Splice& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::string out;
  size_t at = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    bool clash =
        s[i].begin < at || (i > 0 && s[i].begin == s[i - 1].begin && s[i].end == s[i - 1].end);
    if (clash || s[i].end > text_.size())
      return make_error(fmt::format("internal error: overlapping edits at byte {}", s[i].begin));
    out.append(text_.substr(at, s[i].begin - at));
    out += s[i].text;
    at = s[i].end;
  }
  out.append(text_.substr(at));
  return out;
}

std::string json_string(std::string_view s) {
  std::string out;
  json::encode_string(s, out);
  return out;
}

}  // namespace shaudit::oci
