// SPDX-License-Identifier: Apache-2.0
// C++ encoder and strict decoder for the wire format in shaudit/wire.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/result.h"
#include "shaudit/wire.h"

namespace shaudit::wire {

struct Field {
  uint16_t tag;
  uint16_t flags;
  std::string_view data;  // points into the decoded buffer
};

struct Message {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint64_t report_seq = 0;
  uint64_t sent_ns = 0;
  std::vector<Field> fields;

  const Field* find(uint16_t tag) const;
  std::vector<std::string_view> all(uint16_t tag) const;
  // A number field (8 bytes, host order); fallback when absent or of another size.
  uint64_t number(uint16_t tag, uint64_t fallback = 0) const;
  // A field's bytes; empty when absent.
  std::string text(uint16_t tag) const;
};

// Why a message was rejected; each has a stable name for counters and stats.
enum class Reject { kShort, kMagic, kVersion, kLength, kType, kField, kMissing, kOversize };
const char* reject_name(Reject r);

struct DecodeError {
  Reject reason;
  std::string detail;
};

// Decodes one message. Never reads outside [data, data+size).
bool decode(std::string_view buf, Message& out, DecodeError& err);

// Builds a message; fields that would exceed SHAUDIT_WIRE_MAX_MESSAGE are cut and flagged.
class Builder {
 public:
  Builder(uint16_t type, uint64_t report_seq, uint64_t sent_ns);
  Builder& add(uint16_t tag, std::string_view data);
  std::string finish();

 private:
  std::string buf_;
  uint16_t msg_flags_ = 0;
};

}  // namespace shaudit::wire
