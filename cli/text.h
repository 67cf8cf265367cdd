// SPDX-License-Identifier: Apache-2.0
// Display helpers shared by the shaudit commands.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace shaudit::cli {

// Quotes an argv element for display the way a shell would need it.
inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./=:,+@%") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

// What the CLI prints of a record (text a reporter sent or a user typed) made safe for the
// terminal it is printed on, and visible: C0 controls and DEL as \xNN (an escape sequence can
// clear the screen or retitle the window), C1 controls (U+0080-U+009F: CSI and friends),
// bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C:
// text that reads in another order than it runs), zero-width and separator characters
// (U+200B-U+200D, U+2028, U+2029, U+2060, U+FEFF) as \u{XXXX}, and bytes that are not UTF-8 as
// \xNN. Everything else as it is. The one function for every such string.
inline bool hidden_code_point(uint32_t c) {
  return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
         c == 0x200e || c == 0x200f || c == 0x061c || (c >= 0x200b && c <= 0x200d) || c == 0x2028 ||
         c == 0x2029 || c == 0x2060 || c == 0xfeff;
}

inline std::string visible(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        out += fmt::format("\\x{:02x}", c);
      else
        out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length, its code point, and whether it is well formed (shortest
    // form, no surrogates, at most U+10FFFF).
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    if (c >= 0xf5) n = 0;
    uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (ok && ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
               (n == 4 && (cp < 0x10000 || cp > 0x10ffff))))
      ok = false;
    if (!ok) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (hidden_code_point(cp))
      out += fmt::format("\\u{{{:04X}}}", cp);
    else
      out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

// Prints one line of the CLI's output, made visible (see visible()).
inline void print_line(const std::string& line) {
  std::string v = visible(line);
  v.push_back('\n');
  std::fwrite(v.data(), 1, v.size(), stdout);
}

}  // namespace shaudit::cli
