// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the record-log parser: arbitrary bytes as a log file through
// `verify`, and each line through the strict JSON parser, whose canonical re-encoding must
// parse back to the same value and be a fixed point.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/verify.h"

namespace {
const shaudit::VerifyOptions& options() {
  static shaudit::VerifyOptions opts = [] {
    shaudit::VerifyOptions o;
    auto k = shaudit::crypto::VerifyKey::from_raw(std::string(32, '\x01'));
    if (!k) std::abort();
    o.keys.push_back(std::move(*k));
    return o;
  }();
  return opts;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start <= in.size()) {
    size_t nl = in.find('\n', start);
    if (nl == std::string_view::npos) nl = in.size();
    auto v = shaudit::json::parse(in.substr(start, nl - start));
    if (v) {
      std::string enc = shaudit::json::encode(*v);
      auto v2 = shaudit::json::parse(enc);
      if (!v2 || !(*v2 == *v) || shaudit::json::encode(*v2) != enc) std::abort();
    }
    start = nl + 1;
  }
  int fd = memfd_create("log", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, data, size) == static_cast<ssize_t>(size)) {
    auto rep = shaudit::verify_logs({"/proc/self/fd/" + std::to_string(fd)}, options());
    if (!rep.ok && rep.error.empty()) std::abort();
  }
  close(fd);
  return 0;
}
