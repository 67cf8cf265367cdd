// SPDX-License-Identifier: Apache-2.0
#include "record_fields.h"

namespace shaudit::daemon {

std::string redact_text(const Redactor* r, std::string_view text, json::Object& rec,
                        std::string_view before) {
  std::string s(text);
  if (!r) return s;
  auto found = r->line(s, before);
  if (found.empty()) return s;
  json::Array list;
  for (const auto& f : found)
    list.emplace_back(json::Object{
        {"kind", f.kind}, {"field", "text"}, {"offset", static_cast<int64_t>(f.offset)}});
  rec["redacted"] = std::move(list);
  return s;
}

std::vector<std::string> redact_argv(const Redactor* r, const std::vector<std::string_view>& argv,
                                     json::Object& rec) {
  std::vector<std::string> out(argv.begin(), argv.end());
  if (!r) return out;
  auto found = r->argv(out);
  if (found.empty()) return out;
  json::Array list;
  for (const auto& f : found)
    list.emplace_back(json::Object{{"kind", f.kind},
                                   {"field", "argv"},
                                   {"element", static_cast<int64_t>(f.element)},
                                   {"offset", static_cast<int64_t>(f.offset)}});
  rec["redacted"] = std::move(list);
  return out;
}

}  // namespace shaudit::daemon
