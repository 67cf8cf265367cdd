// SPDX-License-Identifier: Apache-2.0
// The record model: record type names, field helpers and the lossless byte scheme.
//
// Lossless bytes: JSON strings must be valid UTF-8. When a captured byte string (a typed
// line, an argv element) is not valid UTF-8, the record holds the text with each invalid
// byte replaced by U+FFFD under the usual key, and the exact bytes, base64-encoded, under
// the key with "_b64" appended ("text_b64"; for argv, "argv_b64" is an array with one
// base64 string per element). Valid UTF-8 never gets a "_b64" twin.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/result.h"

namespace shaudit::record {

inline constexpr std::string_view kStart = "start";
inline constexpr std::string_view kSeal = "seal";
inline constexpr std::string_view kRotate = "rotate";
inline constexpr std::string_view kKeyChange = "key_change";
inline constexpr std::string_view kChainBreak = "chain_break";
inline constexpr std::string_view kRetention = "retention";
inline constexpr std::string_view kLoss = "loss";
inline constexpr std::string_view kRejected = "rejected";
inline constexpr std::string_view kSessionStart = "session_start";
inline constexpr std::string_view kSessionEnd = "session_end";
inline constexpr std::string_view kCommand = "command";
inline constexpr std::string_view kExec = "exec";
inline constexpr std::string_view kBypass = "bypass";
inline constexpr std::string_view kAlert = "alert";
inline constexpr std::string_view kCommandStatus = "command_status";
inline constexpr std::string_view kNoncmdInput = "noncmd_input";
inline constexpr std::string_view kCapture = "capture";

// Seal reasons.
inline constexpr std::string_view kSealInterval = "interval";
inline constexpr std::string_view kSealCount = "count";
inline constexpr std::string_view kSealClose = "close";
inline constexpr std::string_view kSealRotate = "rotate";

// prev of the first record of a new chain.
inline const std::string kGenesisPrev(64, '0');
// Prefix of the message an Ed25519 seal signs (domain separation).
inline constexpr std::string_view kSealDomain = "shaudit-seal-v1\n";

// RFC 3339 UTC with nanoseconds: 2026-11-28T12:00:00.123456789Z
std::string format_time(int64_t unix_ns);
Result<int64_t> parse_time(std::string_view text);
int64_t now_ns();

template <class Strings>
json::Array argv_b64(const Strings& argv);
// Sets o[key] to the bytes, applying the lossless scheme above.
void set_bytes(json::Object& o, const std::string& key, std::string_view bytes);
template <class Strings>
void set_argv(json::Object& o, const Strings& argv) {
  json::Array text;
  bool all_valid = true;
  for (const auto& a : argv) {
    std::string_view s(a);
    if (!json::is_valid_utf8(s)) all_valid = false;
    text.emplace_back(json::to_valid_utf8(s));
  }
  o["argv"] = std::move(text);
  if (!all_valid) o["argv_b64"] = argv_b64(argv);
}
// The exact bytes of o[key], undoing the lossless scheme.
std::string get_bytes(const json::Object& o, const std::string& key);
std::vector<std::string> get_argv(const json::Object& o);

// The message a seal's signature covers: domain prefix + canonical seal without "sig".
std::string seal_message(const json::Object& seal);

}  // namespace shaudit::record

#include "shaudit/crypto.h"

namespace shaudit::record {
template <class Strings>
json::Array argv_b64(const Strings& argv) {
  json::Array out;
  for (const auto& a : argv) out.emplace_back(crypto::base64_encode(std::string_view(a)));
  return out;
}
}  // namespace shaudit::record
