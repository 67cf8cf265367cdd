// SPDX-License-Identifier: Apache-2.0
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
  // Files of seal records received elsewhere (remote outputs), one JSON value per line: a
  // record object, a webhook item {"id": ..., "record": {...}} or a webhook batch array of
  // items. Other record types are ignored (counted). Every seal must verify with one of
  // `keys` and be in the log byte for byte: a log cut short or rewritten after a seal was
  // shipped fails. Seals older than the first given file (when it begins at a rotation) or
  // newer than the last one (when it ends at a rotation, with allow_open) are not checked.
  std::vector<std::string> remote_seals;
};

struct VerifyReport {
  bool ok = false;
  uint64_t records = 0;  // records read (all files)
  uint64_t seals = 0;
  uint64_t unsealed = 0;            // records after the last seal
  std::optional<uint64_t> bad_seq;  // first offending seq, when one can be named
  // Forward-secure sealing: the key epoch the offending record or seal belongs to, and the
  // epochs the log's seals went through (when its seals carry epochs).
  std::optional<uint64_t> bad_epoch;
  std::optional<uint64_t> first_epoch, last_epoch;
  std::string error;               // why verification failed
  std::vector<std::string> notes;  // things worth knowing that are not failures

  // With VerifyOptions::remote_seals:
  uint64_t remote_matched = 0;  // distinct remote seals found byte-identical in the log
  uint64_t remote_ignored = 0;  // records in the remote files that are not seals
  std::optional<uint64_t> remote_latest_seq;  // the latest matched one (in chain order)
  std::string remote_latest_time;             // ... and its time
};

VerifyReport verify_logs(const std::vector<std::string>& paths, const VerifyOptions& opts);

}  // namespace shaudit
