// Verification of a signed record log (one file, or a rotated set given oldest first).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shaudit/crypto.h"

namespace shaudit {

struct VerifyOptions {
  std::vector<crypto::VerifyKey> keys;
  bool allow_open = false;  // accept a live log whose tail after the last seal is intact
};

struct VerifyReport {
  bool ok = false;
  uint64_t records = 0;    // records read (all files)
  uint64_t seals = 0;
  uint64_t unsealed = 0;   // records after the last seal
  std::optional<uint64_t> bad_seq;  // first offending seq, when one can be named
  std::string error;                // why verification failed
  std::vector<std::string> notes;   // things worth knowing that are not failures
};

VerifyReport verify_logs(const std::vector<std::string>& paths, const VerifyOptions& opts);

}  // namespace shaudit
