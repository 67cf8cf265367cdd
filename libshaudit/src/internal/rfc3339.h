// SPDX-License-Identifier: Apache-2.0
// The fields of an RFC 3339 time, read strictly. Shared by record::parse_time and
// outfmt::rfc3339_ns, which check the values and limits each in their own way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace shaudit::internal {

struct TimeFields {
  int year = 0, month = 0, day = 0;
  bool has_time = false;  // false: the date YYYY-MM-DD alone
  int hour = 0, minute = 0, second = 0;
  int64_t frac_ns = 0;  // the fraction, truncated to nanoseconds
  int offset_sign = 0;  // 0: 'Z'; +1 or -1: an offset of offset_hours:offset_minutes
  int offset_hours = 0, offset_minutes = 0;
};

// YYYY-MM-DD [ ('T'|'t'|' ') HH:MM:SS [ '.' 1*DIGIT ] ( 'Z'|'z' | ('+'|'-') HH:MM ) ] and
// nothing after; every field exactly that many ASCII digits. Values are not range-checked.
inline std::optional<TimeFields> scan_rfc3339(std::string_view s) {
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  TimeFields f;
  if (!digits(0, 4, f.year) || s.size() < 10 || s[4] != '-' || !digits(5, 2, f.month) ||
      s[7] != '-' || !digits(8, 2, f.day))
    return std::nullopt;
  size_t pos = 10;
  if (pos == s.size()) return f;
  f.has_time = true;
  if ((s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') || !digits(pos + 1, 2, f.hour) ||
      s.size() < pos + 9 || s[pos + 3] != ':' || !digits(pos + 4, 2, f.minute) ||
      s[pos + 6] != ':' || !digits(pos + 7, 2, f.second))
    return std::nullopt;
  pos += 9;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100000000;
    size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      f.frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos >= s.size()) return std::nullopt;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    if (!digits(pos + 1, 2, f.offset_hours) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(pos + 4, 2, f.offset_minutes))
      return std::nullopt;
    f.offset_sign = s[pos] == '+' ? 1 : -1;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  return f;
}

}  // namespace shaudit::internal
