// SPDX-License-Identifier: Apache-2.0
#include "outputs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "out_sinks.h"
#include "outputs_format.h"
#include "shaudit/record.h"
#include "shaudit/rules.h"

namespace shaudit::daemon {

namespace {

using Clock = std::chrono::steady_clock;

// file and stdout: JSON lines, the records exactly as in the log.
class FdSink : public Sink {
 public:
  FdSink(int fd, bool owned, std::string what) : fd_(fd), owned_(owned), what_(std::move(what)) {}
  ~FdSink() override {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  Delivery deliver(const std::vector<OutItem>& batch) override {
    std::string buf;
    for (const auto& it : batch) {
      buf.append(it.line);
      buf.push_back('\n');
    }
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        return Delivery::retry(
            fmt::format("{}: write: {}", what_, std::strerror(n < 0 ? errno : ENOSPC)));
      done += static_cast<size_t>(n);
    }
    return Delivery::ok();
  }

 private:
  int fd_;
  bool owned_;
  std::string what_;
};

}  // namespace

Result<std::unique_ptr<Sink>> make_sink(const OutputConfig& cfg, const SinkContext& ctx) {
  switch (cfg.type) {
    case OutputType::kStdout:
      return std::unique_ptr<Sink>(std::make_unique<FdSink>(1, false, "stdout"));
    case OutputType::kFile: {
      int fd = ::open(cfg.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd < 0)
        return make_error(fmt::format("output '{}': cannot open {}: {}", cfg.name, cfg.path,
                                      std::strerror(errno)));
      return std::unique_ptr<Sink>(std::make_unique<FdSink>(fd, true, cfg.path));
    }
    case OutputType::kSyslog:
      return make_syslog_sink(cfg, ctx);
    case OutputType::kAuditd:
      return make_auditd_sink(cfg, ctx);
    case OutputType::kSlack:
    case OutputType::kLoki:
    case OutputType::kWebhook:
    case OutputType::kFalcosidekick:
    case OutputType::kOtlp:
      return make_http_sink(cfg, ctx);
  }
  return make_error(fmt::format("output '{}': unknown type", cfg.name));
}

// One configured output: its filter, spool, sink and delivery thread.
class Output {
 public:
  Output(OutputConfig cfg, Spool spool, std::unique_ptr<Sink> sink,
         std::function<bool(json::Object)> push)
      : cfg_(std::move(cfg)),
        spool_(std::move(spool)),
        sink_(std::move(sink)),
        push_(std::move(push)) {
    min_ = rules::parse_priority(cfg_.minimum_priority).value_or(rules::Priority::kDebug);
  }
  ~Output() { stop(); }

  bool wants(const json::Object& rec) const {
    const std::string* type = json::get_string(rec, "type");
    if (!type) return false;
    if (*type == record::kSeal) return cfg_.seals;
    if (cfg_.events == OutputEvents::kAlerts && *type != record::kAlert) return false;
    auto p = outfmt::record_priority(rec);
    return p && static_cast<int>(*p) <= static_cast<int>(min_);
  }

  void offer(std::string_view line, const json::Object& rec) {
    bool seal = false;
    if (const std::string* t = json::get_string(rec, "type"); t && *t == record::kSeal) seal = true;
    if (!wants(rec)) {
      if (seal) sync();
      return;
    }
    {
      std::lock_guard lk(mu_);
      if (spool_.append(line)) {
        ++offered_;
      } else {
        ++overflowed_;
        if (overflow_ == Overflow::kNone) overflow_ = Overflow::kStarted;
        if (!spool_.last_error().empty()) last_error_ = spool_.last_error();
      }
    }
    if (seal) sync();
    cv_.notify_one();
  }

  void sync() {
    std::lock_guard lk(mu_);
    spool_.sync();
  }

  // At start, before the writer runs: a crash between a log write and the spool append leaves
  // the log's last lines out of the spool. Appends what this output wants after the spool's
  // last line, if that line is found in the last 64 MiB of the log. Returns how many.
  size_t catch_up(const std::string& log_path) {
    const std::string& last = spool_.last_appended();
    if (last.empty()) return 0;
    int fd = ::open(log_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    std::string tail = "\n";  // so the first line matches like the others (a cut one never does)
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      off_t from = std::max<off_t>(0, st.st_size - (off_t{64} << 20));
      std::string buf(static_cast<size_t>(st.st_size - from), '\0');
      ssize_t n = ::pread(fd, buf.data(), buf.size(), from);
      buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
      tail += buf;
    }
    ::close(fd);
    // Only after an unclean stop: a clean one ends with a closing seal, every line offered.
    size_t end = tail.size() > 1 ? tail.rfind('\n', tail.size() - 2) : std::string::npos;
    if (end != std::string::npos && tail.back() == '\n') {
      auto v = json::parse(std::string_view(tail).substr(end + 1, tail.size() - end - 2));
      if (v && v->is_object()) {
        const std::string* t = json::get_string(v->as_object(), "type");
        const std::string* r = json::get_string(v->as_object(), "reason");
        if (t && *t == record::kSeal && r && *r == record::kSealClose) return 0;
      }
    }
    size_t at = tail.rfind("\n" + last + "\n");
    if (at == std::string::npos) return 0;
    size_t pos = at + last.size() + 2, added = 0;
    std::lock_guard lk(mu_);
    while (pos < tail.size()) {
      size_t nl = tail.find('\n', pos);
      if (nl == std::string::npos) break;  // a partial last line: the writer cuts it off
      std::string_view line(tail.data() + pos, nl - pos);
      pos = nl + 1;
      auto v = json::parse(line);
      if (!v || !v->is_object() || !wants(v->as_object())) continue;
      if (!spool_.append(line)) break;
      ++added;
    }
    return added;
  }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  // Stops after what is pending is delivered or drain_ms passed (the rest stays spooled).
  void stop(int64_t drain_ms = 0) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      stopping_ = true;
      stop_deadline_ = Clock::now() + std::chrono::milliseconds(drain_ms);
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lk(mu_);
    spool_.sync();
  }

  json::Object stats() {
    std::lock_guard lk(mu_);
    json::Object o;
    o["name"] = cfg_.name;
    o["type"] = output_type_name(cfg_.type);
    o["spooled"] = offered_;
    o["delivered"] = delivered_;
    o["pending"] = static_cast<int64_t>(spool_.pending());
    o["pending_bytes"] = static_cast<int64_t>(spool_.pending_bytes());
    o["failed"] = failed_;
    o["retries"] = retries_;
    o["overflowed"] = overflowed_;
    o["last_error"] = last_error_;
    return o;
  }

 private:
  void run() {
    int attempts = 0;
    Clock::time_point next_try = Clock::now();
    Clock::time_point last_delivery{};  // start of the last delivery attempt
    const size_t batch_max = std::min<size_t>(cfg_.batch_max, sink_->max_batch());
    std::unique_lock lk(mu_);
    for (;;) {
      if (overflow_ == Overflow::kStarted ||
          (overflow_ == Overflow::kOngoing &&
           spool_.pending_bytes() * 2 < (cfg_.spool_max_mib << 20))) {
        bool started = overflow_ == Overflow::kStarted;
        overflow_ = started ? Overflow::kOngoing : Overflow::kNone;
        uint64_t dropped = overflowed_;
        lk.unlock();
        push_(overflow_alert(started, dropped));
        lk.lock();
        continue;
      }
      if (stopping_ &&
          (spool_.pending() == 0 || Clock::now() >= stop_deadline_ || next_try > stop_deadline_))
        break;
      if (spool_.pending() == 0) {
        cv_.wait(lk);
        continue;
      }
      if (Clock::now() < next_try) {
        cv_.wait_until(lk, stopping_ ? std::min(next_try, stop_deadline_) : next_try);
        continue;
      }
      // Batching: after a quiet spell the first record goes at once (a lone alert is not held
      // back); while records keep coming, wait up to batch_wait_ms to fill a batch.
      auto wait = std::chrono::milliseconds(cfg_.batch_wait_ms);
      if (!stopping_ && spool_.pending() < batch_max && wait.count() > 0 &&
          Clock::now() - last_delivery < wait) {
        cv_.wait_until(lk, last_delivery + wait,
                       [&] { return stopping_ || spool_.pending() >= batch_max; });
      }
      last_delivery = Clock::now();
      size_t n = std::min(spool_.pending(), batch_max);
      std::vector<std::string> lines = spool_.peek(n);
      lk.unlock();
      std::vector<json::Object> recs;
      recs.reserve(n);  // never reallocated: items point into it
      std::vector<OutItem> items;
      items.reserve(n);
      for (const auto& l : lines) {
        auto v = json::parse(l);
        recs.push_back(v && v->is_object() ? std::move(v->as_object()) : json::Object{});
        items.push_back({l, &recs.back(), outfmt::record_id(l)});
      }
      Delivery d = sink_->deliver(items);
      lk.lock();
      if (d.kind == Delivery::Kind::kOk || d.kind == Delivery::Kind::kRefused) {
        if (auto r = spool_.ack(n); !r) last_error_ = r.message();
        attempts = 0;
        next_try = Clock::now();
        if (d.kind == Delivery::Kind::kOk) {
          delivered_ += static_cast<int64_t>(n);
        } else {
          failed_ += static_cast<int64_t>(n);
          last_error_ = d.error;
          lk.unlock();
          push_(refused_record(d.error, n, lines.front()));
          lk.lock();
        }
      } else {
        ++retries_;
        last_error_ = d.error;
        // Exponential back-off from 100 ms up to retry_max_ms, or the pause the destination
        // asked for (Retry-After), also at most retry_max_ms. A pause already over (a date in
        // the past, a skewed clock) is no pause: the back-off applies, never a busy loop.
        int64_t cap = static_cast<int64_t>(cfg_.retry_max_ms);
        int64_t ms = std::min<int64_t>(cap, 100LL << std::min(attempts, 16));
        if (d.retry_after_ms > 0) ms = std::min<int64_t>(d.retry_after_ms, cap);
        ++attempts;
        next_try = Clock::now() + std::chrono::milliseconds(ms);
      }
    }
  }

  json::Object overflow_alert(bool started, uint64_t dropped) {
    json::Object a;
    a["type"] = record::kAlert;
    a["rule"] = "shaudit output spool overflow";
    a["priority"] = started ? "Critical" : "Error";
    a["output_name"] = cfg_.name;
    a["dropped"] = static_cast<int64_t>(dropped);
    a["output"] =
        started
            ? fmt::format(
                  "output '{}' spool is full ({} MiB): records for it are dropped until it drains",
                  cfg_.name, cfg_.spool_max_mib)
            : fmt::format("output '{}' spool drained; {} record(s) were dropped for it in all",
                          cfg_.name, dropped);
    a["tags"] = json::Array{json::Value("shaudit"), json::Value("output")};
    return a;
  }

  json::Object refused_record(const std::string& why, size_t n, const std::string& first) {
    json::Object r;
    r["type"] = "output_error";
    r["output_name"] = cfg_.name;
    r["error"] = why;
    r["records"] = static_cast<int64_t>(n);
    r["first_id"] = outfmt::record_id(first);
    return r;
  }

  OutputConfig cfg_;
  rules::Priority min_ = rules::Priority::kDebug;
  std::mutex mu_;
  std::condition_variable cv_;
  Spool spool_;
  std::unique_ptr<Sink> sink_;
  std::function<bool(json::Object)> push_;
  std::thread thread_;
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  // Spool overflow: kStarted until the "spool is full" alert is pushed, then kOngoing until
  // the spool drains below half and the "drained" alert is pushed.
  enum class Overflow { kNone, kStarted, kOngoing } overflow_ = Overflow::kNone;
  int64_t offered_ = 0, delivered_ = 0, failed_ = 0, retries_ = 0, overflowed_ = 0;
  std::string last_error_;
};

Result<std::unique_ptr<Outputs>> Outputs::make(const Config& cfg, std::string hostname,
                                               std::function<bool(json::Object)> push_record,
                                               bool catch_up) {
  std::unique_ptr<Outputs> o(new Outputs());
  SinkContext ctx{std::move(hostname)};
  for (const auto& oc : cfg.outputs) {
    if (!oc.enabled) continue;
    auto sink = make_sink(oc, ctx);
    if (!sink) return sink.error();
    auto spool = Spool::open(cfg.state_dir + "/spool/" + oc.name, oc.spool_max_mib << 20);
    if (!spool) return make_error(fmt::format("output '{}': {}", oc.name, spool.message()));
    auto out = std::make_unique<Output>(oc, std::move(*spool), std::move(*sink), push_record);
    if (size_t n = catch_up ? out->catch_up(cfg.log) : 0)
      std::fprintf(
          stderr,
          "shauditd: output '%s': %zu record(s) at the end of the log were missing from its "
          "spool (an unclean stop); spooled now\n",
          oc.name.c_str(), n);
    o->outputs_.push_back(std::move(out));
  }
  return o;
}

Outputs::~Outputs() {
  stop();
}

void Outputs::offer(std::string_view line, const json::Object& rec) {
  for (auto& o : outputs_) o->offer(line, rec);
}

void Outputs::start() {
  for (auto& o : outputs_) o->start();
}

void Outputs::stop(int64_t drain_ms) {
  // Stop all at once (each drains in parallel), then wait for each.
  std::vector<std::thread> t;
  for (auto& o : outputs_) t.emplace_back([&o, drain_ms] { o->stop(drain_ms); });
  for (auto& x : t) x.join();
}

json::Array Outputs::stats() const {
  json::Array a;
  for (auto& o : outputs_) a.emplace_back(o->stats());
  return a;
}

}  // namespace shaudit::daemon
