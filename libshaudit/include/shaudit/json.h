// SPDX-License-Identifier: Apache-2.0
// Canonical JSON for audit records, in the manner of RFC 8785:
//  - object members sorted by their keys' UTF-16 code units, no insignificant whitespace;
//  - numbers are integers only (int64), written in their shortest decimal form;
//  - strings escape only '"', '\\' and control characters below 0x20 (\b \f \n \r \t, others
//    as \u00xx with lowercase hex); everything else is written as literal UTF-8.
// parse() is strict (RFC 8259, UTF-8 validated, depth-limited, integers only), so
// encode(parse(line)) == line exactly when a line is in canonical form.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "shaudit/result.h"

namespace shaudit::json {

struct KeyLess {
  bool operator()(std::string_view a, std::string_view b) const;
  using is_transparent = void;
};

class Value;
using Array = std::vector<Value>;
using Object = std::map<std::string, Value, KeyLess>;

class Value {
 public:
  Value() : v_(nullptr) {}
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(bool b) : v_(b) {}
  Value(int v) : v_(static_cast<int64_t>(v)) {}
  Value(unsigned v) : v_(static_cast<int64_t>(v)) {}
  Value(long v) : v_(static_cast<int64_t>(v)) {}
  Value(long long v) : v_(static_cast<int64_t>(v)) {}
  Value(unsigned long v) : v_(static_cast<int64_t>(v)) {}
  Value(unsigned long long v) : v_(static_cast<int64_t>(v)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Object o) : v_(std::move(o)) {}

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  bool is_object() const { return std::holds_alternative<Object>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  const std::string* if_string() const { return std::get_if<std::string>(&v_); }
  const int64_t* if_int() const { return std::get_if<int64_t>(&v_); }
  const Array* if_array() const { return std::get_if<Array>(&v_); }
  const Object* if_object() const { return std::get_if<Object>(&v_); }

  bool operator==(const Value& o) const { return v_ == o.v_; }

 private:
  std::variant<std::nullptr_t, bool, int64_t, std::string, Array, Object> v_;
};

// Appends the canonical encoding. Strings that are not valid UTF-8 have each invalid byte
// written as U+FFFD (use record helpers to keep such bytes losslessly).
void encode(const Value& v, std::string& out);
std::string encode(const Value& v);
void encode_string(std::string_view s, std::string& out);

Result<Value> parse(std::string_view text);

// Lookup helpers on objects: nullptr when absent or of another type.
const std::string* get_string(const Object& o, std::string_view key);
const int64_t* get_int(const Object& o, std::string_view key);

bool is_valid_utf8(std::string_view s);
// The string with each byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);

}  // namespace shaudit::json
