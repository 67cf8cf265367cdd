// SPDX-License-Identifier: Apache-2.0
// The daemon as a library: Pipeline builds, starts, reloads and stops shauditd's parts (eBPF
// collector, outputs, log writer and its thread, receiver, control socket) in their order.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "alerts.h"
#include "collector_fwd.h"
#include "control.h"
#include "outputs.h"
#include "queue.h"
#include "receiver.h"
#include "sessions.h"
#include "shaudit/config.h"
#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/log_writer.h"
#include "stats.h"

namespace shaudit::daemon {

class WriterLoop;

// The key shauditd seals with: the forward-secure key state (<state_dir>/key-state), or, with
// forward_secure: false, the signing key itself.
struct SealingKey {
  std::unique_ptr<KeyState> state;
  std::optional<crypto::SigningKey> fixed;
  // Opens it (creating the key state from signing_key, which is then erased, on first use).
  static Result<SealingKey> load(const Config& cfg);
  // What --check-config checks, changing nothing: the key file, or the key state.
  static Result<void> check(const Config& cfg);
};

class Pipeline {
 public:
  // The key must outlive the pipeline. Nothing starts before start().
  Pipeline(Config cfg, SealingKey& key);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Builds and starts everything, in order. Returns the exit code when shauditd cannot run
  // (stderr says why), or 0 with the daemon listening. SIGTERM, SIGINT and SIGHUP must be
  // blocked before (the threads started here inherit the mask).
  int start();
  // SIGHUP: rotates the log, reads the configuration file again (unless config_path is empty)
  // and reloads the rules.
  void reload(const std::string& config_path);
  // Stops everything after `sig` and returns the exit code.
  int stop(int sig);

 private:
  // The outputs, replaceable at SIGHUP: the writer offers each line under the slot's lock.
  struct OutputsSlot {
    std::mutex mu;
    std::unique_ptr<Outputs> cur;
  };

  // (Declared in the order start() builds them: destroyed in the reverse order.)
  Config cfg_;
  SealingKey& key_;
  std::unique_ptr<bpf::Collector> collector_;
  std::string bpf_reason_;
  std::vector<std::pair<uint64_t, uint64_t>> break_glass_;  // enforce: break_glass (st_dev, st_ino)
  Receiver* event_sink_ = nullptr;                          // (set, and used only with eBPF)
  RecordQueue queue_;
  std::function<bool(json::Object)> push_record_;  // into queue_
  OutputsSlot slot_;
  std::unique_ptr<LogWriter> writer_;
  Stats stats_;
  std::optional<SessionRegistry> sessions_;
  std::optional<Receiver> receiver_;
  std::optional<ControlServer> control_;
  std::optional<Alerter> alerter_;
  std::unique_ptr<WriterLoop> loop_;
  bool writer_ok_ = true;
  std::thread writer_thread_, receiver_thread_, control_thread_;
};

}  // namespace shaudit::daemon
