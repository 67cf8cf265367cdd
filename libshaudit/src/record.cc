// SPDX-License-Identifier: Apache-2.0
#include "shaudit/record.h"

#include <fmt/format.h>
#include <time.h>

#include <climits>
#include <cstring>

#include "internal/rfc3339.h"
#include "shaudit/crypto.h"

namespace shaudit::record {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string format_time(int64_t unix_ns) {
  int64_t sec = unix_ns / 1000000000;
  int64_t ns = unix_ns % 1000000000;
  if (ns < 0) {
    ns += 1000000000;
    --sec;
  }
  // The date and time of day change once a second: keep the formatted prefix per thread.
  thread_local int64_t cached_sec = INT64_MIN;
  thread_local char prefix[24];
  if (sec != cached_sec) {
    time_t t = static_cast<time_t>(sec);
    struct tm tm;
    gmtime_r(&t, &tm);
    fmt::format_to_n(prefix, sizeof prefix - 1, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    prefix[20] = 0;
    cached_sec = sec;
  }
  char out[31];
  std::memcpy(out, prefix, 20);
  for (int i = 28; i >= 20; --i) {
    out[i] = static_cast<char>('0' + ns % 10);
    ns /= 10;
  }
  out[29] = 'Z';
  return std::string(out, 30);
}

Result<int64_t> parse_time(std::string_view s) {
  // Accepts YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), or a date YYYY-MM-DD.
  auto bad = [&] {
    return make_error(
        fmt::format("invalid time '{}' (expected RFC 3339, e.g. 2026-11-28T12:00:00Z)", s));
  };
  auto f = internal::scan_rfc3339(s);
  if (!f) return bad();
  const int y = f->year, mo = f->month, d = f->day, h = f->hour, mi = f->minute, se = f->second;
  const int64_t frac_ns = f->frac_ns;
  const int64_t offset_s = (f->offset_hours * 3600 + f->offset_minutes * 60) * f->offset_sign;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 ||
      mi > 59 || se > 60)
    return bad();
  // Times are nanoseconds in an int64: 1678 to 2261 is the representable span.
  if (y < 1678 || y > 2261)
    return make_error(fmt::format("time '{}' is outside the supported years 1678..2261", s));
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  time_t t = timegm(&tm);
  return (static_cast<int64_t>(t) - offset_s) * 1000000000 + frac_ns;
}

void set_bytes(json::Object& o, const std::string& key, std::string_view bytes) {
  if (json::is_valid_utf8(bytes)) {
    o[key] = std::string(bytes);
    o.erase(key + "_b64");
    return;
  }
  o[key] = json::to_valid_utf8(bytes);
  o[key + "_b64"] = crypto::base64_encode(bytes);
}

std::string get_bytes(const json::Object& o, const std::string& key) {
  if (auto b = json::get_string(o, key + "_b64")) {
    auto raw = crypto::base64_decode(*b);
    if (raw) return *raw;
  }
  if (auto s = json::get_string(o, key)) return *s;
  return {};
}

std::vector<std::string> get_argv(const json::Object& o) {
  std::vector<std::string> out;
  auto it = o.find("argv_b64");
  if (it != o.end() && it->second.is_array()) {
    for (const auto& v : it->second.as_array()) {
      auto raw =
          v.is_string() ? crypto::base64_decode(v.as_string()) : Result<std::string>(Error{});
      out.push_back(raw ? *raw : std::string());
    }
    return out;
  }
  it = o.find("argv");
  if (it != o.end() && it->second.is_array())
    for (const auto& v : it->second.as_array())
      if (v.is_string()) out.push_back(v.as_string());
  return out;
}

std::string seal_message(const json::Object& seal) {
  json::Object copy = seal;
  copy.erase("sig");
  std::string msg(kSealDomain);
  json::encode(json::Value(std::move(copy)), msg);
  return msg;
}

}  // namespace shaudit::record
