// SPDX-License-Identifier: Apache-2.0
// shauditd's YAML configuration, loaded strictly: an unknown key, a value of the wrong type
// or out of range, or a missing file is an error naming the key, file, line and column.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shaudit/result.h"
#include "shaudit/wire.h"

namespace shaudit {

enum class BpfMode { kOff, kOn, kAuto };

enum class OutputType {
  kFile,
  kStdout,
  kSyslog,
  kAuditd,
  kSlack,
  kLoki,
  kWebhook,
  kFalcosidekick,
  kOtlp
};
enum class OutputEvents { kAlerts, kRecords };  // alerts: alert records only; records: every record

// One entry of `outputs:`. Which keys apply depends on `type` (see the README's table).
struct OutputConfig {
  std::string name;  // unique, [A-Za-z0-9_.-]; names the spool directory
  OutputType type = OutputType::kWebhook;
  bool enabled = true;
  OutputEvents events = OutputEvents::kAlerts;
  std::string minimum_priority = "Debug";  // Falco's eight levels
  bool seals = true;                       // ship seal records too (anchor the chain off the host)
  std::string path;                        // file
  std::string url;                         // slack, loki, webhook, falcosidekick, otlp
  std::vector<std::pair<std::string, std::string>> headers;  // HTTP: extra request headers
  std::string address;                                       // syslog: host:port
  std::string protocol = "tcp";                              // syslog: tcp | udp | tls
  int facility = 10;                                         // syslog: 10 = authpriv
  std::string app_name = "shaudit";                          // syslog APP-NAME
  std::string server_name;  // TLS: name to verify (default: the host of url/address)
  bool tls_verify = true;   // TLS: verify the peer's certificate and name
  std::string ca_file, cert_file, key_file;  // TLS: trust anchors, client certificate and key
  std::string tenant;                        // loki: X-Scope-OrgID
  // loki: record fields as stream labels (host and job are always there); low cardinality only
  std::vector<std::string> labels = {"type"};
  bool gzip = true;  // loki: gzip the request body
  uint64_t timeout_ms = 5000;
  uint64_t batch_max = 100;      // records per request (slack, falcosidekick: always 1)
  uint64_t batch_wait_ms = 10;   // wait this long for more records before a partial batch
  uint64_t retry_max_ms = 4000;  // back-off ceiling between retries (and Retry-After's)
  uint64_t spool_max_mib = 64;   // disk spool bound (remote outputs)
  bool operator==(const OutputConfig&) const = default;
};

bool output_is_remote(OutputType t);  // everything but file and stdout: spooled, acknowledged
const char* output_type_name(OutputType t);

// Where the interposer is installed (<libdir>/libshaudit_preload.so of this build).
extern const char* const kDefaultInterposer;

struct Config {
  std::string socket = SHAUDIT_DEFAULT_SOCKET;
  unsigned socket_mode = 0666;
  std::string socket_group;  // group owning the socket; empty: the daemon's
  std::string control_socket = "/run/shaudit/control.sock";
  std::string log = "/var/log/shaudit/audit.jsonl";
  std::string signing_key = "/etc/shaudit/signing.key";
  BpfMode bpf = BpfMode::kAuto;
  uint64_t seal_interval_ms = 100;
  uint64_t seal_every = 10000;
  // Forward-secure sealing (key_state.h): the key state lives in <state_dir>/key-state and
  // the signing key file's private key is erased once it moved there. Off: signing_key
  // signs every seal, as is.
  bool forward_secure = true;
  uint64_t seal_epoch_s = 60;  // an epoch ends at the first seal once it is this old (0: each)
  uint64_t queue_capacity = 65536;
  uint64_t max_clients = 4096;
  uint64_t shutdown_timeout_ms = 10000;
  uint64_t bpf_ringbuf_kib = 8192;         // ring buffer between the eBPF programs and shauditd
  uint64_t crosscheck_window_ms = 1000;    // how long a kernel event waits for its report
  uint64_t client_queue_quota = 512;       // records one reporter connection may have queued
  uint64_t client_queue_bytes = 1u << 20;  // report bytes one uid may have queued (0: no bound)
  uint64_t max_clients_per_uid = 256;      // open reporter connections per uid (root: no bound)
  // The genuine interposer: the eBPF collector probes its initialisation in this file.
  std::string interposer = kDefaultInterposer;
  uint64_t receiver_batch_us = 500;  // gather events this long when wake-ups come back to back
  // Container runtimes' state directories (ROOT/[NAMESPACE/]ID/state.json names the bundle).
  std::vector<std::string> container_state_dirs{"/run/runc", "/run/containerd/runc"};
  std::vector<std::string> unhooked_allowlist;  // paths whose unhooked runs are low severity
  std::vector<std::string> rules;  // rule files, loaded in order (later ones append/override)
  std::vector<std::string> redact_patterns;    // extra secret patterns (ECMAScript regexes)
  std::string state_dir = "/var/lib/shaudit";  // output spools live in <state_dir>/spool/<name>
  std::vector<OutputConfig> outputs;
  // retention: {max_age_days, max_total_mib}: rotated files shauditd removes (0: no limit).
  uint64_t retention_max_age_days = 0;
  uint64_t retention_max_total_mib = 0;
  // enforce: the enforcing mode (BPF LSM): in an audited session an exec that would run a
  // program without the interposer is denied (EPERM). `enforce: true`, or a mapping.
  bool enforce = false;
  // Where the kernel lists its active security modules (`bpf` must be among them).
  std::string enforce_lsm_file = "/sys/kernel/security/lsm";
  // With enforce: no other process may write the log, read the key files, remove or rename
  // them, or ptrace shauditd (enforce: {protect: false} turns that off).
  bool enforce_protect = true;
  // enforce: {mode: kill}: no BPF LSM; the process is killed (SIGKILL) at sched_process_exec,
  // before its new image runs. `protect` (which needs BPF LSM) is then off unless set.
  bool enforce_kill = false;
  // enforce: {fail: closed}: while shauditd's heartbeat (every heartbeat_ms) is older than 3 x
  // heartbeat_ms, every exec in an audited session is refused (killed in the kill mode) but
  // those of the break-glass programs (absolute paths; device and inode at start), recorded.
  bool enforce_fail_closed = false;
  uint32_t enforce_heartbeat_ms = 1000;
  std::vector<std::string> enforce_break_glass;
  // enforce: {pin_root: DIR}: the BPF file system where the programs' links and state maps are
  // pinned (in shaudit-<hash of socket>), so enforcement outlives a killed shauditd.
  std::string enforce_pin_root = "/sys/fs/bpf";
};

// The configuration compiled into shauditd (used when no --config is given).
extern const char* const kDefaultConfigYaml;

Result<Config> parse_config(const std::string& yaml_text, const std::string& source);
Result<Config> load_config(const std::string& path);
const char* bpf_mode_name(BpfMode m);

}  // namespace shaudit
