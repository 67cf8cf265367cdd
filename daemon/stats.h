// SPDX-License-Identifier: Apache-2.0
// Counters shared by the receiver, the writer and the control socket.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "shaudit/json.h"

namespace shaudit::daemon {

inline constexpr size_t kRejectReasons = 12;  // wire::Reject values + daemon-side reasons
inline constexpr const char* kRejectNames[kRejectReasons] = {
    "short",         "bad_magic", "bad_version",    "bad_length", "bad_type", "bad_field",
    "missing_field", "oversize",  "no_credentials", "fd_passed",  "not_root", "unknown_session"};
inline constexpr size_t kNoCredentials = 8;
inline constexpr size_t kFdPassed = 9;
inline constexpr size_t kNotRoot = 10;  // a session request from a non-root peer
inline constexpr size_t kUnknownSession = 11;

struct Stats {
  std::atomic<uint64_t> accepted{0};  // messages turned into records and queued
  std::atomic<uint64_t> hellos{0};
  std::atomic<uint64_t> sessions_opened{0};
  std::atomic<uint64_t> sessions_closed{0};
  std::atomic<uint64_t> bypasses{0};
  std::atomic<uint64_t> alerts{0};
  std::atomic<uint64_t> bpf_events{0};
  std::atomic<uint64_t> bpf_dropped{0};  // kernel events lost to a full ring buffer
  std::atomic<bool> bpf_on{false};
  std::array<std::atomic<uint64_t>, kRejectReasons> rejected{};
  std::atomic<uint64_t> loss_records{0};
  std::atomic<uint64_t> reports_lost{0};  // reports missing from gaps in report numbers
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_refused{0};
  // times a reporter was not read: its queue share was full
  std::atomic<uint64_t> client_pauses{0};
  std::atomic<uint64_t> written{0};
  std::atomic<uint64_t> seals{0};
  std::atomic<uint64_t> last_seal_seq{0};
  std::atomic<int64_t> last_seal_ns{0};
  std::atomic<uint64_t> write_errors{0};
  std::atomic<uint64_t> unsealed{0};
  int64_t started_ns = 0;

  std::mutex mu;
  std::string last_error;  // guarded by mu

  void set_error(std::string e) {
    std::lock_guard lk(mu);
    last_error = std::move(e);
  }
  std::string error() {
    std::lock_guard lk(mu);
    return last_error;
  }
};

}  // namespace shaudit::daemon
