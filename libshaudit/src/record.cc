#include "shaudit/record.h"

#include <fmt/format.h>
#include <time.h>

#include <climits>
#include <cstring>

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
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  struct tm tm {};
  int y, mo, d, h = 0, mi = 0, se = 0;
  auto bad = [&] {
    return make_error(fmt::format("invalid time '{}' (expected RFC 3339, e.g. 2026-11-28T12:00:00Z)", s));
  };
  if (!digits(0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
      !digits(8, 2, d))
    return bad();
  size_t pos = 10;
  int64_t frac_ns = 0, offset_s = 0;
  if (pos < s.size()) {
    if ((s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') || !digits(pos + 1, 2, h) ||
        s.size() < pos + 9 || s[pos + 3] != ':' || !digits(pos + 4, 2, mi) || s[pos + 6] != ':' ||
        !digits(pos + 7, 2, se))
      return bad();
    pos += 9;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int64_t scale = 100000000;
      size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (scale > 0) frac_ns += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start) return bad();
    }
    if (pos >= s.size()) return bad();
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh, om;
      if (!digits(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
          !digits(pos + 4, 2, om))
        return bad();
      offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
      pos += 6;
    } else {
      return bad();
    }
    if (pos != s.size()) return bad();
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
      h > 23 || mi > 59 || se > 60)
    return bad();
  // Times are nanoseconds in an int64: 1678 to 2261 is the representable span.
  if (y < 1678 || y > 2261)
    return make_error(fmt::format("time '{}' is outside the supported years 1678..2261", s));
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
      auto raw = v.is_string() ? crypto::base64_decode(v.as_string()) : Result<std::string>(Error{});
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
