// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the redactor: arbitrary bytes as a typed line (the part after the
// first NUL, with the part before it as the command's earlier lines) and as an argv (the
// bytes split at NULs). Offsets must lie within what was redacted, and the mask must not
// open a quote.
#include <cstdlib>
#include <string>
#include <vector>

#include "shaudit/redact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const shaudit::Redactor r = *shaudit::Redactor::make({"pin=([0-9]+)"});
  std::string all(reinterpret_cast<const char*>(data), size);
  auto nul = all.find('\0');
  std::string text = nul == std::string::npos ? all : all.substr(nul + 1);
  std::string before = nul == std::string::npos ? "" : all.substr(0, nul);
  const size_t n = text.size();
  for (const auto& f : r.line(text, before))
    if (f.offset >= n) std::abort();
  std::string alone = all;
  for (const auto& f : r.line(alone))
    if (f.offset >= all.size()) std::abort();
  // The mask keeps the quoting: a complete line stays complete. (An open quote may be masked
  // with the secret it opens: mysql -p'S... -> mysql -p***.)
  if (!shaudit::line_continues(all) && shaudit::line_continues(alone)) std::abort();
  std::vector<std::string> argv;
  for (size_t b = 0;;) {
    size_t e = all.find('\0', b);
    argv.push_back(all.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  auto sizes = argv;
  for (const auto& f : r.argv(argv))
    if (f.element >= argv.size() || f.offset >= sizes[f.element].size()) std::abort();
  return 0;
}
