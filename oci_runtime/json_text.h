// SPDX-License-Identifier: Apache-2.0
// An OCI config.json edited in place: the text is scanned once for where each value is, the
// wrapper reads the few strings it needs, and its additions are spliced into the text. Every
// byte it does not add stays as it was: key order, spacing, numbers of any size or precision
// (runc's rlimits are uint64, so 18446744073709551615 appears) and escapes. shaudit's
// canonical JSON (shaudit/json.h) cannot do that: it sorts keys and takes only int64.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/result.h"

namespace shaudit::oci {

struct JsonMember;

struct JsonNode {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  size_t begin = 0, end = 0;        // the value's bytes in the text: [begin, end)
  std::string string;               // kString: the decoded value
  std::vector<JsonNode> items;      // kArray
  std::vector<JsonMember> members;  // kObject, in the text's order

  bool is_object() const { return type == Type::kObject; }
  bool is_array() const { return type == Type::kArray; }
  bool is_string() const { return type == Type::kString; }
  bool is_null() const { return type == Type::kNull; }
};

struct JsonMember {
  std::string key;
  size_t key_begin = 0;  // the key's opening quote
  JsonNode value;
};

// Strict RFC 8259 (UTF-8 validated, nesting at most 128 deep); numbers are checked for their
// grammar only and kept as text.
Result<JsonNode> scan_json(std::string_view text);

// The member `key` of an object as Go's encoding/json (runc) would fill a struct field from
// it: nullptr when absent; an error when the object has it twice or under another spelling
// encoding/json also takes for it (it matches field names case-insensitively: "Mounts"),
// since an addition could then be overridden or be the one ignored.
Result<const JsonMember*> struct_field(const JsonNode& object, std::string_view key);
// The member `key` of an object that is a map (annotations): exact match; an error when the
// key is there twice.
Result<const JsonMember*> map_entry(const JsonNode& object, std::string_view key);

// Text edits on the scanned text, applied all at once. Each node is edited by one call.
class JsonEdits {
 public:
  explicit JsonEdits(std::string_view text) : text_(text) {}
  // Appends already-encoded elements at the end of an array.
  void append_items(const JsonNode& array, const std::vector<std::string>& items);
  // Replaces a value with already-encoded JSON.
  void replace_value(const JsonNode& value, std::string json);
  // One change to an object: set `key` to the already-encoded `json`, or remove it (nullopt).
  struct MemberChange {
    std::string key;
    std::optional<std::string> json;
  };
  // Applies changes to an object's members: an existing key (exact match) has its value
  // replaced or the member removed with its comma; a new key is added at the object's start.
  void update_object(const JsonNode& object, const std::vector<MemberChange>& changes);
  // The text with every edit applied; an error when two edits touch the same bytes.
  Result<std::string> apply() const;

 private:
  struct Splice {
    size_t begin, end;
    std::string text;
  };
  std::string_view text_;
  std::vector<Splice> splices_;
};

// A JSON string literal for s (UTF-8), as shaudit's encoder writes it.
std::string json_string(std::string_view s);

}  // namespace shaudit::oci
