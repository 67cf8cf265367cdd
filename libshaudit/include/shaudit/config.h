// shauditd's YAML configuration, loaded strictly: an unknown key, a value of the wrong type
// or out of range, or a missing file is an error naming the key, file, line and column.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shaudit/result.h"

namespace shaudit {

enum class BpfMode { kOff, kOn, kAuto };

struct Config {
  std::string socket = "/run/shaudit/shaudit.sock";
  unsigned socket_mode = 0666;
  std::string socket_group;  // group owning the socket; empty: the daemon's
  std::string control_socket = "/run/shaudit/control.sock";
  std::string log = "/var/log/shaudit/audit.jsonl";
  std::string signing_key = "/etc/shaudit/signing.key";
  BpfMode bpf = BpfMode::kAuto;
  uint64_t seal_interval_ms = 100;
  uint64_t seal_every = 10000;
  uint64_t queue_capacity = 65536;
  uint64_t max_clients = 4096;
  uint64_t shutdown_timeout_ms = 10000;
  uint64_t bpf_ringbuf_kib = 8192;        // ring buffer between the eBPF programs and shauditd
  uint64_t crosscheck_window_ms = 1000;   // how long a kernel event waits for its report
  uint64_t receiver_batch_us = 500;       // gather events this long when wake-ups come back to back
  std::vector<std::string> unhooked_allowlist;  // paths whose unhooked runs are low severity
  std::vector<std::string> rules;  // rule files, loaded in order (later ones append/override)
  std::vector<std::string> redact_patterns;  // extra secret patterns (ECMAScript regexes)
};

// The configuration compiled into shauditd (used when no --config is given).
extern const char* const kDefaultConfigYaml;

Result<Config> parse_config(const std::string& yaml_text, const std::string& source);
Result<Config> load_config(const std::string& path);
const char* bpf_mode_name(BpfMode m);

}  // namespace shaudit
