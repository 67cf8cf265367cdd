// SPDX-License-Identifier: Apache-2.0
#include "shaudit/wire_codec.h"

#include <fmt/format.h>

#include <cstring>

namespace shaudit::wire {

const Field* Message::find(uint16_t tag) const {
  for (const auto& f : fields)
    if (f.tag == tag) return &f;
  return nullptr;
}

std::vector<std::string_view> Message::all(uint16_t tag) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields)
    if (f.tag == tag) out.push_back(f.data);
  return out;
}

uint64_t Message::number(uint16_t tag, uint64_t fallback) const {
  const Field* f = find(tag);
  if (!f || f->data.size() != sizeof(uint64_t)) return fallback;
  uint64_t v;
  std::memcpy(&v, f->data.data(), sizeof v);
  return v;
}

std::string Message::text(uint16_t tag) const {
  const Field* f = find(tag);
  return f ? std::string(f->data) : std::string();
}

const char* reject_name(Reject r) {
  switch (r) {
    case Reject::kShort:
      return "short";
    case Reject::kMagic:
      return "bad_magic";
    case Reject::kVersion:
      return "bad_version";
    case Reject::kLength:
      return "bad_length";
    case Reject::kType:
      return "bad_type";
    case Reject::kField:
      return "bad_field";
    case Reject::kMissing:
      return "missing_field";
    case Reject::kOversize:
      return "oversize";
  }
  return "unknown";
}

bool decode(std::string_view buf, Message& out, DecodeError& err) {
  auto fail = [&](Reject r, std::string detail) {
    err.reason = r;
    err.detail = std::move(detail);
    return false;
  };
  if (buf.size() > SHAUDIT_WIRE_MAX_MESSAGE)
    return fail(Reject::kOversize, fmt::format("message of {} bytes exceeds the maximum {}",
                                               buf.size(), SHAUDIT_WIRE_MAX_MESSAGE));
  shaudit_wire_header h;
  if (buf.size() < sizeof h)
    return fail(Reject::kShort, fmt::format("message of {} bytes is shorter than the header",
                                            buf.size()));
  std::memcpy(&h, buf.data(), sizeof h);
  if (h.magic != SHAUDIT_WIRE_MAGIC)
    return fail(Reject::kMagic, fmt::format("bad magic 0x{:04x}", h.magic));
  if (h.version != SHAUDIT_WIRE_VERSION)
    return fail(Reject::kVersion, fmt::format("wire version {} (this daemon speaks {})", h.version,
                                              SHAUDIT_WIRE_VERSION));
  if (h.length != buf.size())
    return fail(Reject::kLength,
                fmt::format("header length {} but {} bytes received", h.length, buf.size()));
  if (h.type == 0 || h.type > SHAUDIT_MSG_MAX)
    return fail(Reject::kType, fmt::format("unknown message type {}", h.type));
  out.type = h.type;
  out.flags = h.flags;
  out.report_seq = h.report_seq;
  out.sent_ns = h.sent_ns;
  out.fields.clear();
  size_t pos = sizeof h;
  while (pos < buf.size()) {
    shaudit_wire_field f;
    if (buf.size() - pos < sizeof f)
      return fail(Reject::kField, fmt::format("truncated field header at offset {}", pos));
    std::memcpy(&f, buf.data() + pos, sizeof f);
    pos += sizeof f;
    if (f.length > buf.size() - pos)
      return fail(Reject::kField, fmt::format("field {} at offset {} claims {} bytes, {} remain",
                                              f.tag, pos - sizeof f, f.length, buf.size() - pos));
    out.fields.push_back(Field{f.tag, f.flags, buf.substr(pos, f.length)});
    pos += f.length;
  }
  if (h.report_seq == 0) return fail(Reject::kField, "report_seq is 0");
  switch (h.type) {
    case SHAUDIT_MSG_LINE:
      if (!out.find(SHAUDIT_F_TEXT)) return fail(Reject::kMissing, "line report without text");
      break;
    case SHAUDIT_MSG_EXEC:
      if (!out.find(SHAUDIT_F_ARGV) && !out.find(SHAUDIT_F_PATH))
        return fail(Reject::kMissing, "exec report without path or argv");
      break;
    default:
      break;
  }
  return true;
}

Builder::Builder(uint16_t type, uint64_t report_seq, uint64_t sent_ns) {
  shaudit_wire_header h{};
  h.magic = SHAUDIT_WIRE_MAGIC;
  h.version = SHAUDIT_WIRE_VERSION;
  h.type = type;
  h.report_seq = report_seq;
  h.sent_ns = sent_ns;
  buf_.assign(reinterpret_cast<const char*>(&h), sizeof h);
}

Builder& Builder::add(uint16_t tag, std::string_view data) {
  size_t room = SHAUDIT_WIRE_MAX_MESSAGE - buf_.size();
  if (room < sizeof(shaudit_wire_field)) {
    msg_flags_ |= SHAUDIT_MSG_ARGV_TRUNCATED;
    return *this;
  }
  shaudit_wire_field f{};
  f.tag = tag;
  room -= sizeof f;
  if (data.size() > room) {
    data = data.substr(0, room);
    f.flags |= SHAUDIT_FIELD_TRUNCATED;
  }
  f.length = static_cast<uint32_t>(data.size());
  buf_.append(reinterpret_cast<const char*>(&f), sizeof f);
  buf_.append(data);
  return *this;
}

std::string Builder::finish() {
  shaudit_wire_header h;
  std::memcpy(&h, buf_.data(), sizeof h);
  h.length = static_cast<uint32_t>(buf_.size());
  h.flags |= msg_flags_;
  std::memcpy(buf_.data(), &h, sizeof h);
  return std::move(buf_);
}

}  // namespace shaudit::wire
