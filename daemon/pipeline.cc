// SPDX-License-Identifier: Apache-2.0
// The daemon's wiring: the writer loop, the stats JSON, config reload at SIGHUP, and the
// start-up and shutdown sequence of the collector, outputs, writer, receiver and control socket.
#include "pipeline.h"

#include <fmt/format.h>
#include <glob.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "shaudit/record.h"
#include "sockets.h"

namespace shaudit::daemon {

namespace {

std::string hostname() {
  char buf[256];
  if (gethostname(buf, sizeof buf) != 0) return {};
  buf[sizeof buf - 1] = 0;
  return buf;
}

// Why the enforcing mode cannot work with this configuration and kernel ("" when it can): it
// needs eBPF, and `bpf` among the active LSMs the kernel lists in enforce_lsm_file.
std::string enforce_unavailable(const Config& c) {
  if (c.bpf == BpfMode::kOff)
    return "the enforcing mode needs the eBPF collector, but the configuration says bpf: off";
#ifndef SHAUDIT_HAVE_BPF
  return "this build of shauditd has no eBPF collector (built with SHAUDIT_BPF=OFF or without "
         "bpftool, clang, libbpf-dev)";
#endif
  if (c.enforce_kill && !c.enforce_protect) return {};  // the kill mode needs no BPF LSM
  FILE* f = std::fopen(c.enforce_lsm_file.c_str(), "re");
  if (!f)
    return fmt::format(
        "cannot read the kernel's active security modules from {}: {} (is securityfs mounted? "
        "mount -t securityfs securityfs /sys/kernel/security)",
        c.enforce_lsm_file, std::strerror(errno));
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string lsms(buf, n);
  while (!lsms.empty() && (lsms.back() == '\n' || lsms.back() == '\0')) lsms.pop_back();
  std::string_view rest = lsms;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    if (rest.substr(0, comma) == "bpf") return {};
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return fmt::format(
      "the kernel has no BPF LSM: 'bpf' is not among the active security modules in {} ({}); "
      "boot with CONFIG_BPF_LSM=y and lsm=...,bpf{}",
      c.enforce_lsm_file, lsms.empty() ? "none" : lsms,
      c.enforce_kill ? " (enforce: {mode: kill} needs it only for protect: true)"
                     : ", or use enforce: {mode: kill}, which needs no BPF LSM");
}

#ifdef SHAUDIT_HAVE_BPF
// zsh's line editor modules (zleread lives there): every installed zsh version.
std::vector<std::string> find_zle_modules() {
  std::vector<std::string> out;
  glob_t g;
  if (glob("/usr/lib/*/zsh/*/zsh/zle.so", 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}
#endif

// Every reporter holds a connection: allow as many descriptors as the hard limit permits.
void raise_fd_limit(const Config& cfg) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && cfg.max_clients + 64 > rl.rlim_cur)
    std::fprintf(stderr,
                 "shauditd: notice: max_clients %llu is above the descriptor limit %llu; extra "
                 "connections will be refused\n",
                 static_cast<unsigned long long>(cfg.max_clients),
                 static_cast<unsigned long long>(rl.rlim_cur));
}

}  // namespace

class WriterLoop {
 public:
  WriterLoop(LogWriter& w, RecordQueue& q, Stats& s, Alerter* alerter)
      : w_(w), q_(q), s_(s), alerter_(alerter) {}

  void request_rotate() {
    rotate_.store(true);
    q_.wake();
  }

  // Runs until the queue is closed and drained; returns false when records could not be
  // written (the error is in stats).
  bool run() {
    std::deque<json::Object> batch;
    while (true) {
      int64_t deadline = w_.seal_deadline_ns();
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3600);
      if (deadline != INT64_MAX) {
        int64_t wait = deadline - record::now_ns();
        until =
            std::chrono::steady_clock::now() + std::chrono::nanoseconds(std::max<int64_t>(wait, 0));
      }
      if (batch.empty()) trim_due_ += q_.pop_all(batch, until);
      while (!batch.empty()) {
        if (!write_group(batch)) {
          unwritten_.store(batch.size());
          return false;
        }
        publish();
      }
      if (!retry([&] { return w_.maybe_seal(record::now_ns()); })) return false;
      // After a flood of big reports, give the memory back (glibc keeps freed chunks in its
      // arenas otherwise): shauditd's size follows what it holds, not what it once held.
      if (trim_due_ > (16u << 20) && q_.depth() == 0) {
        trim_due_ = 0;
        malloc_trim(0);
      }
      if (rotate_.exchange(false)) {
        auto r = w_.rotate();
        if (!r) {
          s_.set_error(r.message());
          std::fprintf(stderr, "shauditd: log rotation failed: %s\n", r.message().c_str());
        }
      }
      publish();
      if (q_.closed_and_empty()) {
        bool ok = retry([&] { return w_.close(); });
        publish();
        return ok;
      }
    }
  }

  // Writes records from the front of the batch, each followed by its alerts, as one group: one
  // write(2) for all of them (LogWriter::hold), up to kGroupMax records or a due count seal. If
  // that write fails, the same records are written one at a time, each retried until it is in
  // the file. Returns false only when the daemon gave up (shutdown with the disk still failing).
  bool write_group(std::deque<json::Object>& batch) {
    constexpr size_t kGroupMax = 256;
    std::vector<std::vector<json::Object>> alerts;  // each record's alerts
    w_.hold();
    for (size_t i = 0; i < batch.size() && alerts.size() < kGroupMax; ++i) {
      // Rules see the record before it is written; their alerts follow it, naming its seq.
      std::vector<json::Object> a;
      if (alerter_) a = alerter_->evaluate(batch[i]);
      uint64_t ref_seq = w_.seq() + 1;
      (void)w_.append(batch[i]);  // while holding, append cannot fail: nothing is written yet
      for (auto& x : a) {
        x["ref_seq"] = static_cast<int64_t>(ref_seq);
        (void)w_.append(x);
      }
      alerts.push_back(std::move(a));
      if (w_.seal_due()) break;
    }
    // If the group's write failed, the writer is back where hold() found it: the same records
    // one at a time, as many tries as each takes.
    const bool written = w_.release().ok();
    for (auto& a : alerts) {
      if (!written) {
        uint64_t ref_seq = w_.seq() + 1;
        if (!retry([&] { return w_.append(batch.front()); })) return false;
        for (auto& x : a) {
          x["ref_seq"] = static_cast<int64_t>(ref_seq);
          if (!retry([&] { return w_.append(x); })) return false;
        }
      }
      s_.alerts.fetch_add(a.size(), std::memory_order_relaxed);
      batch.pop_front();
    }
    if (w_.seal_due()) (void)w_.maybe_seal(record::now_ns());  // a failure stays due: retried below
    return true;
  }

  void abandon() { abandon_.store(true); }
  // Records taken from the queue but not written when run() gave up.
  size_t unwritten() const { return unwritten_.load(); }

 private:
  // Retries a failing write (disk full, I/O error) until it succeeds or the daemon gives
  // up at shutdown; the record is kept meanwhile, so nothing accepted is lost.
  template <class F>
  bool retry(F&& f) {
    int64_t first_failure = 0;
    std::string first_error;
    while (true) {
      auto r = f();
      if (r) break;
      if (first_failure == 0) {
        first_failure = record::now_ns();
        first_error = r.message();
        std::fprintf(stderr, "shauditd: %s (holding records and retrying)\n", r.message().c_str());
      }
      s_.set_error(r.message());
      s_.write_errors.fetch_add(1, std::memory_order_relaxed);
      if (abandon_.load()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (first_failure != 0) {
      std::fprintf(stderr, "shauditd: log writable again\n");
      json::Object e;
      e["type"] = "log_error";
      e["error"] = first_error;
      e["since"] = record::format_time(first_failure);
      e["until"] = record::format_time(record::now_ns());
      // The outage itself is recorded; this write is retried like any other.
      while (!w_.append(e)) {
        if (abandon_.load()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return true;
  }

  void publish() {
    const auto& st = w_.stats();
    s_.written.store(st.records, std::memory_order_relaxed);
    s_.seals.store(st.seals, std::memory_order_relaxed);
    s_.last_seal_seq.store(st.last_seal_seq, std::memory_order_relaxed);
    s_.last_seal_ns.store(st.last_seal_ns, std::memory_order_relaxed);
    s_.unsealed.store(st.unsealed, std::memory_order_relaxed);
  }

  LogWriter& w_;
  RecordQueue& q_;
  Stats& s_;
  Alerter* alerter_;
  std::atomic<bool> rotate_{false};
  std::atomic<bool> abandon_{false};
  std::atomic<size_t> unwritten_{0};
  size_t trim_due_ = 0;  // report bytes taken since memory was last given back
};

namespace {

std::string stats_json(Stats& s, RecordQueue& q, const Config& cfg, json::Array outputs) {
  json::Object o;
  uint64_t opened = s.sessions_opened.load(), closed = s.sessions_closed.load();
  o["sessions_opened"] = opened;
  o["sessions_open"] = opened - std::min(opened, closed);
  o["accepted"] = s.accepted.load();
  o["hellos"] = s.hellos.load();
  json::Object rej;
  uint64_t total = 0;
  for (size_t i = 0; i < kRejectReasons; ++i) {
    uint64_t v = s.rejected[i].load();
    total += v;
    if (v) rej[kRejectNames[i]] = v;
  }
  o["rejected"] = total;
  o["rejected_by_reason"] = std::move(rej);
  o["loss_records"] = s.loss_records.load();
  o["reports_lost"] = s.reports_lost.load();
  o["connections_total"] = s.connections_total.load();
  o["connections_open"] = s.connections_open.load();
  o["connections_refused"] = s.connections_refused.load();
  o["client_pauses"] = s.client_pauses.load();
  o["queue_depth"] = static_cast<uint64_t>(q.depth());
  o["queue_high_water"] = static_cast<uint64_t>(q.high_water());
  o["queue_capacity"] = static_cast<uint64_t>(q.capacity());
  o["records_written"] = s.written.load();
  o["seals"] = s.seals.load();
  o["unsealed"] = s.unsealed.load();
  o["last_seal_seq"] = s.last_seal_seq.load();
  int64_t ls = s.last_seal_ns.load();
  o["last_seal_time"] = ls ? json::Value(record::format_time(ls)) : json::Value(nullptr);
  o["write_errors"] = s.write_errors.load();
  std::string err = s.error();
  o["last_error"] = err.empty() ? json::Value(nullptr) : json::Value(err);
  o["log"] = cfg.log;
  o["started"] = record::format_time(s.started_ns);
  o["pid"] = static_cast<int64_t>(getpid());
  o["bpf"] = s.bpf_on.load() ? "on" : "off";
  o["bpf_events"] = s.bpf_events.load();
  o["bpf_dropped"] = s.bpf_dropped.load();
  o["bypasses"] = s.bypasses.load();
  o["alerts"] = s.alerts.load();
  o["outputs"] = std::move(outputs);
  return json::encode(json::Value(std::move(o)));
}

// How loading the rule files went: rules_loaded (how many, from which files) or rules_error.
json::Object rules_record(const Result<size_t>& loaded, const std::vector<std::string>& files) {
  json::Object r;
  if (!loaded) {
    r["type"] = "rules_error";
    r["error"] = loaded.message();
    return r;
  }
  r["type"] = "rules_loaded";
  r["rules"] = static_cast<int64_t>(*loaded);
  json::Array names;
  for (const auto& f : files) names.emplace_back(f);
  r["files"] = std::move(names);
  return r;
}

// SIGHUP: reads the configuration file again. A file that does not load changes nothing (a
// `config_error` record and stderr say why). Otherwise `rules` and `outputs` take effect now;
// keys that need a restart are named in the `config_loaded` record.
void reload_config(const std::string& path, Config& cfg, std::mutex& outputs_mu,
                   std::unique_ptr<Outputs>& outputs,
                   const std::function<bool(json::Object)>& push_record, RecordQueue& queue) {
  auto next = load_config(path);
  json::Object r;
  if (!next) {
    std::fprintf(stderr, "shauditd: configuration not reloaded, the running one stays: %s\n",
                 next.message().c_str());
    r["type"] = "config_error";
    r["error"] = next.message();
    queue.push(std::move(r));
    return;
  }
  json::Array restart;
  auto differs = [&](const char* key, bool d) {
    if (d) restart.emplace_back(key);
  };
  const Config& n = *next;
  differs("socket", n.socket != cfg.socket);
  differs("socket_mode", n.socket_mode != cfg.socket_mode);
  differs("socket_group", n.socket_group != cfg.socket_group);
  differs("control_socket", n.control_socket != cfg.control_socket);
  differs("log", n.log != cfg.log);
  differs("signing_key", n.signing_key != cfg.signing_key);
  differs("bpf", n.bpf != cfg.bpf);
  differs("bpf_ringbuf_kib", n.bpf_ringbuf_kib != cfg.bpf_ringbuf_kib);
  differs("seal_interval_ms", n.seal_interval_ms != cfg.seal_interval_ms);
  differs("seal_every", n.seal_every != cfg.seal_every);
  differs("forward_secure", n.forward_secure != cfg.forward_secure);
  differs("seal_epoch_s", n.seal_epoch_s != cfg.seal_epoch_s);
  differs("queue_capacity", n.queue_capacity != cfg.queue_capacity);
  differs("max_clients", n.max_clients != cfg.max_clients);
  differs("shutdown_timeout_ms", n.shutdown_timeout_ms != cfg.shutdown_timeout_ms);
  differs("crosscheck_window_ms", n.crosscheck_window_ms != cfg.crosscheck_window_ms);
  differs("receiver_batch_us", n.receiver_batch_us != cfg.receiver_batch_us);
  differs("client_queue_quota", n.client_queue_quota != cfg.client_queue_quota);
  differs("unhooked_allowlist", n.unhooked_allowlist != cfg.unhooked_allowlist);
  differs("redact_patterns", n.redact_patterns != cfg.redact_patterns);
  differs("state_dir", n.state_dir != cfg.state_dir);
  differs("retention", n.retention_max_age_days != cfg.retention_max_age_days ||
                           n.retention_max_total_mib != cfg.retention_max_total_mib);
  differs("container_state_dirs", n.container_state_dirs != cfg.container_state_dirs);
  r["type"] = "config_loaded";
  r["restart_needed"] = std::move(restart);
  cfg.rules = n.rules;
  if (n.outputs != cfg.outputs) {
    // The old outputs' threads stop first, outside the lock (one may be waiting to push a
    // record into a full queue that only the writer drains); the writer keeps appending to
    // their spools meanwhile. Then, under the lock, the new outputs open the same spools: no
    // line is offered to neither, and undelivered lines carry over.
    Outputs* old = nullptr;
    {
      std::lock_guard lk(outputs_mu);
      old = outputs.get();
    }
    if (old) old->stop(0);
    std::lock_guard lk(outputs_mu);
    outputs.reset();
    Config c = cfg;
    c.outputs = n.outputs;
    auto made = Outputs::make(c, hostname(), push_record);
    if (made) {
      cfg.outputs = n.outputs;
      r["outputs"] = static_cast<int64_t>(n.outputs.size());
    } else {
      std::fprintf(stderr, "shauditd: outputs not reloaded, the previous ones stay: %s\n",
                   made.message().c_str());
      r["outputs_error"] = made.message();
      made = Outputs::make(cfg, hostname(), push_record);
    }
    if (made) {
      outputs = std::move(*made);
      outputs->start();
    }
  }
  queue.push(std::move(r));
}

}  // namespace

Result<SealingKey> SealingKey::load(const Config& cfg) {
  SealingKey k;
  if (!cfg.forward_secure) {
    auto key = crypto::SigningKey::load(cfg.signing_key);
    if (!key) return key.error();
    k.fixed.emplace(std::move(*key));
    return k;
  }
  std::string state = cfg.state_dir + "/key-state";
  if (auto r = make_parent_dirs(state, 0700); !r) return r.error();
  auto ks = KeyState::open(cfg.signing_key, state);
  if (!ks) return ks.error();
  if (!(*ks)->key_file_kept().empty())
    std::fprintf(stderr,
                 "shauditd: notice: %s: the epoch-0 private key stays readable there, so "
                 "whoever can read it can re-sign the log (see forward_secure)\n",
                 (*ks)->key_file_kept().c_str());
  k.state = std::move(*ks);
  return k;
}

Result<void> SealingKey::check(const Config& cfg) {
  if (cfg.forward_secure) {
    std::string state = cfg.state_dir + "/key-state";
    auto s = KeyState::inspect(state);
    if (!s) return s.error();
    if (*s) return {};  // the key file may be the note left when its key moved
  }
  auto key = crypto::SigningKey::load(cfg.signing_key);
  if (!key) return key.error();
  return {};
}

Pipeline::Pipeline(Config cfg, SealingKey& key)
    : cfg_(std::move(cfg)),
      key_(key),
      queue_(cfg_.queue_capacity),
      push_record_([this](json::Object r) { return queue_.push(std::move(r)); }) {}

Pipeline::~Pipeline() = default;

int Pipeline::start() {
  // Reports up to 128 KiB become strings of that size: from the heap, not one mmap/munmap
  // each (page faults and TLB shootdowns on every CPU under a flood of big lines); the writer
  // gives memory back after floods (malloc_trim). Between floods a heap does not give back
  // and take again the few hundred KiB one turn of the receiver allocates and frees (an
  // mprotect or brk each time): up to 8 MiB free at its top is kept.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);

  // Before touching anything: a second shauditd on the same config must not append its
  // start record and closing seal into the log the running one writes (that breaks the
  // chain), nor clear its session table.
  for (auto [path, type] :
       {std::pair{cfg_.socket, SOCK_SEQPACKET}, std::pair{cfg_.control_socket, SOCK_STREAM}})
    if (socket_is_live(path, type)) {
      std::fprintf(stderr, "shauditd: another shauditd is listening on %s\n", path.c_str());
      return 1;
    }
  raise_fd_limit(cfg_);

  // The enforcing mode needs the eBPF collector and a kernel with BPF LSM active: anything less
  // is an error, never a silent no-op.
  if (cfg_.enforce) {
    if (std::string why = enforce_unavailable(cfg_); !why.empty()) {
      std::fprintf(stderr, "shauditd: enforce: %s\n", why.c_str());
      return 1;
    }
    for (const auto& path : cfg_.enforce_break_glass) {  // by device and inode, now
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) {
        std::fprintf(stderr, "shauditd: enforce: break_glass: %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return 1;
      }
      break_glass_.emplace_back(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    }
  }
  // The eBPF collector comes first: the socket appears only once the probes are attached, so
  // nothing typed before goes unchecked.
  if (cfg_.bpf != BpfMode::kOff) {
#ifdef SHAUDIT_HAVE_BPF
    bpf::CollectorOptions co;
    co.ringbuf_bytes = static_cast<size_t>(cfg_.bpf_ringbuf_kib) * 1024;
    co.zle_modules = find_zle_modules();
    co.interposer = cfg_.interposer;
    co.follow_runtime_execs = !cfg_.container_state_dirs.empty();
    co.enforce = cfg_.enforce;
    co.kill = cfg_.enforce && cfg_.enforce_kill;
    co.fail_closed = cfg_.enforce && cfg_.enforce_fail_closed;
    co.heartbeat_ms = cfg_.enforce_heartbeat_ms;
    co.break_glass = break_glass_;
    if (cfg_.enforce) {
      // One directory per shauditd (by its socket's path) under the BPF file system.
      uint64_t h = 1469598103934665603ull;  // FNV-1a
      for (unsigned char ch : cfg_.socket) h = (h ^ ch) * 1099511628211ull;
      // Only on a BPF file system (not mounted: nothing is pinned, the start record says so).
      struct statfs fs {};
      if (::statfs(cfg_.enforce_pin_root.c_str(), &fs) == 0 &&
          static_cast<uint64_t>(fs.f_type) == 0xcafe4a11u /* BPF_FS_MAGIC */)
        co.pin_dir = fmt::format("{}/shaudit-{:016x}", cfg_.enforce_pin_root, h);
      else
        std::fprintf(stderr,
                     "shauditd: enforce: %s is not a BPF file system (mount -t bpf bpf %s): "
                     "enforcement ends with shauditd\n",
                     cfg_.enforce_pin_root.c_str(), cfg_.enforce_pin_root.c_str());
      co.keep_pins = cfg_.enforce_fail_closed;
    }
    co.protect = cfg_.enforce && cfg_.enforce_protect;
    auto c = bpf::Collector::start(co, [this](const void* d, size_t n) {
      if (event_sink_) event_sink_->on_kernel_event(d, n);
    });
    if (c)
      collector_ = std::move(*c);
    else
      bpf_reason_ = c.message();
#else
    bpf_reason_ =
        "this build of shauditd has no eBPF collector (built with SHAUDIT_BPF=OFF or without "
        "bpftool, clang, libbpf-dev)";
#endif
    if (!collector_ && cfg_.enforce) {
      std::fprintf(stderr, "shauditd: enforce: the enforcing mode cannot start: %s\n",
                   bpf_reason_.c_str());
      return 1;
    }
    if (!collector_ && cfg_.bpf == BpfMode::kOn) {
      std::fprintf(stderr, "shauditd: bpf: on, but the eBPF collector cannot start: %s\n",
                   bpf_reason_.c_str());
      return 1;
    }
    if (!collector_)
      std::fprintf(stderr,
                   "shauditd: notice: bpf: auto: kernel cross-checking is off (%s); the start "
                   "record says so\n",
                   bpf_reason_.c_str());
  }

  // Outputs before the log: the start record is offered to them too.
  {
    auto outputs = Outputs::make(cfg_, hostname(), push_record_, /*catch_up=*/true);
    if (!outputs) {
      std::fprintf(stderr, "shauditd: %s\n", outputs.message().c_str());
      return 1;
    }
    slot_.cur = std::move(*outputs);
  }
  auto output_stats = [this] {
    std::lock_guard lk(slot_.mu);
    return slot_.cur ? slot_.cur->stats() : json::Array{};
  };

  (void)make_parent_dirs(cfg_.log, 0700);  // a failure shows when the log is opened
  WriterOptions wo;
  wo.on_written = [this](std::string_view line, const json::Object& rec) {
    std::lock_guard lk(slot_.mu);
    if (slot_.cur) slot_.cur->offer(line, rec);
  };
  wo.path = cfg_.log;
  wo.state_path = cfg_.state_dir + "/log-state.json";
  wo.retention_max_age_ns = static_cast<int64_t>(cfg_.retention_max_age_days) * 86400 * 1000000000;
  wo.retention_max_total_bytes = cfg_.retention_max_total_mib << 20;
  if (auto r = make_parent_dirs(wo.state_path, 0700); !r)
    std::fprintf(stderr, "shauditd: notice: %s: the log's state file cannot be kept\n",
                 r.message().c_str());
  wo.key_state = key_.state.get();
  wo.key = key_.fixed ? &*key_.fixed : nullptr;
  wo.epoch_ns = static_cast<int64_t>(cfg_.seal_epoch_s) * 1000000000;
  wo.seal_every = cfg_.seal_every;
  wo.seal_interval_ns = static_cast<int64_t>(cfg_.seal_interval_ms) * 1000000;
  wo.start_fields["host"] = hostname();
  wo.start_fields["version"] = SHAUDIT_VERSION;
  wo.start_fields["pid"] = static_cast<int64_t>(getpid());
  wo.start_fields["bpf"] = collector_ ? "on" : "off";
  wo.start_fields["cross_check"] = collector_ != nullptr;
  wo.start_fields["enforce"] = cfg_.enforce && collector_ != nullptr;
  if (cfg_.enforce && collector_) {
    wo.start_fields["enforce_mode"] = cfg_.enforce_kill ? "kill" : "deny";
    wo.start_fields["fail"] = cfg_.enforce_fail_closed ? "closed" : "open";
#ifdef SHAUDIT_HAVE_BPF
    wo.start_fields["pin_dir"] = collector_->pin_dir();
#endif
    wo.start_fields["protect"] = cfg_.enforce_protect;
  }
  if (!bpf_reason_.empty()) wo.start_fields["bpf_error"] = bpf_reason_;
  auto writer = LogWriter::open(std::move(wo));
  if (!writer) {
    std::fprintf(stderr, "shauditd: %s\n", writer.message().c_str());
    return 1;
  }
  writer_ = std::move(*writer);
#ifdef SHAUDIT_HAVE_BPF
  if (collector_ && cfg_.enforce && cfg_.enforce_protect) {
    // From here on no other process writes the log, reads the key files or traces shauditd.
    collector_->protect_file(cfg_.log, SA_PROTECT_WRITE);
    collector_->protect_file(cfg_.signing_key, SA_PROTECT_READ);
    collector_->protect_file(cfg_.state_dir + "/key-state", SA_PROTECT_READ);
  }
#endif

  stats_.started_ns = record::now_ns();
  sessions_.emplace(socket_dir(cfg_.socket) + "/sessions");  // host-wide mode's table
  receiver_.emplace(cfg_, stats_, *sessions_, queue_, collector_.get());
  event_sink_ = &*receiver_;
  stats_.bpf_on.store(collector_ != nullptr);
  control_.emplace(cfg_.control_socket, [this, output_stats] {
    return stats_json(stats_, queue_, cfg_, output_stats());
  });
  Result<void> lr = control_->listen();
  if (lr) lr = receiver_->listen();
  // A start that fails from here on removes the sockets and closes the log it opened.
  auto give_up = [this] {
    receiver_->remove_sockets();
    control_->remove_socket();
    (void)writer_->close();
    return 1;
  };
  if (!lr) {
    std::fprintf(stderr, "shauditd: %s\n", lr.message().c_str());
    return give_up();
  }
  alerter_.emplace(hostname());
  if (!cfg_.rules.empty()) {
    auto n = alerter_->load(cfg_.rules);
    if (!n) {
      std::fprintf(stderr, "shauditd: rules: %s\n", n.message().c_str());
      return give_up();
    }
    queue_.push(rules_record(n, cfg_.rules));
  }
  // (no rules loaded: no alerts)
  loop_ = std::make_unique<WriterLoop>(*writer_, queue_, stats_, &*alerter_);
  slot_.cur->start();
  writer_thread_ = std::thread([this] { writer_ok_ = loop_->run(); });
  receiver_thread_ = std::thread([this] { receiver_->run(); });
  control_thread_ = std::thread([this] { control_->run(); });
  std::fprintf(stderr, "shauditd: listening on %s, writing %s\n", cfg_.socket.c_str(),
               cfg_.log.c_str());
  return 0;
}

void Pipeline::reload(const std::string& config_path) {
  loop_->request_rotate();
  bool had_rules = !cfg_.rules.empty();
  if (!config_path.empty())
    reload_config(config_path, cfg_, slot_.mu, slot_.cur, push_record_, queue_);
  if (had_rules || !cfg_.rules.empty()) {
    // Rules are reloaded too; a set that fails to load keeps the old one running.
    auto n = alerter_->load(cfg_.rules);
    if (!n)
      std::fprintf(stderr, "shauditd: rules not reloaded, the previous set stays: %s\n",
                   n.message().c_str());
    queue_.push(rules_record(n, cfg_.rules));
  }
}

int Pipeline::stop(int sig) {
  // Shutdown: stop taking reports, then flush everything accepted and write the closing seal.
  receiver_->stop();
  receiver_->remove_sockets();
  control_->stop();
  control_thread_.join();
  control_->remove_socket();
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.shutdown_timeout_ms);
  // The watchdog runs from here on: a receiver blocked on a full queue (the writer stuck on
  // a full disk) must not keep the daemon from exiting. At the deadline it gives up on the
  // writer and closes the queue, which also releases a receiver waiting to push.
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    while (!done.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!done.load()) {
      loop_->abandon();
      queue_.close();
    }
  });
  receiver_thread_.join();
  queue_.close();
  writer_thread_.join();
  done.store(true);
  watchdog.join();
  // What the outputs have not delivered within a short drain stays in their spools.
  {
    std::lock_guard lk(slot_.mu);
    // (none when a reload could remake neither the new outputs nor the old ones)
    if (slot_.cur)
      slot_.cur->stop(static_cast<int64_t>(std::min<uint64_t>(cfg_.shutdown_timeout_ms, 2000)));
  }
  if (!writer_ok_) {
    std::fprintf(
        stderr,
        "shauditd: exiting with %zu accepted record(s) not written and no closing seal: %s\n",
        queue_.depth() + loop_->unwritten(), stats_.error().c_str());
    return 1;
  }
  std::fprintf(stderr, "shauditd: stopped on signal %d after %llu records; log sealed\n", sig,
               static_cast<unsigned long long>(stats_.written.load()));
  return 0;
}

}  // namespace shaudit::daemon
