// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the wire decoder must never read out of bounds, and whatever it
// accepts must survive a re-encode/decode round trip unchanged.
#include <cstdlib>
#include <string>

#include "shaudit/wire_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buf(reinterpret_cast<const char*>(data), size);
  shaudit::wire::Message m;
  shaudit::wire::DecodeError err;
  if (!shaudit::wire::decode(buf, m, err)) {
    if (err.detail.empty()) std::abort();
    return 0;
  }
  shaudit::wire::Builder b(m.type, m.report_seq, m.sent_ns);
  for (const auto& f : m.fields) b.add(f.tag, f.data);
  std::string again = b.finish();
  shaudit::wire::Message m2;
  if (!shaudit::wire::decode(again, m2, err)) std::abort();
  if (m2.fields.size() != m.fields.size()) std::abort();
  for (size_t i = 0; i < m.fields.size(); ++i)
    if (m2.fields[i].tag != m.fields[i].tag || m2.fields[i].data != m.fields[i].data) std::abort();
  return 0;
}
