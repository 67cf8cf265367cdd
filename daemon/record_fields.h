// SPDX-License-Identifier: Apache-2.0
// What the report handler and the cross-check both do to a record's fields: redact a typed
// line or an argv, and identify an argv across reports and the kernel. (Its own file so that
// neither of the two includes the other.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/redact.h"

namespace shaudit::daemon {

// Redacts a typed line / an argv before it goes into a record; adds "redacted" (what kind,
// where; never the secret). Returns the (possibly) changed bytes. `before`: a continuation
// line's command's earlier lines (Redactor::line).
std::string redact_text(const Redactor* r, std::string_view text, json::Object& rec,
                        std::string_view before = {});
std::vector<std::string> redact_argv(const Redactor* r, const std::vector<std::string_view>& argv,
                                     json::Object& rec);

// FNV-1a over argv elements and their ends: identifies an argv across reports and the kernel.
template <class Strings>
uint64_t argv_hash(const Strings& argv) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& a : argv) {
    for (unsigned char c : std::string_view(a)) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x100) * 1099511628211ull;
  }
  return h;
}

}  // namespace shaudit::daemon
