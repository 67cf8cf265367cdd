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
#include <optional>

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
    if (about_me(*type, rec)) return false;
    if (cfg_.events == OutputEvents::kAlerts && *type != record::kAlert) return false;
    auto p = outfmt::record_priority(rec);
    return p && static_cast<int>(*p) <= static_cast<int>(min_);
  }

  // This output's own state records (output_error, output_dropped, output_recovered, its spool
  // overflow alerts) are never offered to it: a destination that refuses them would make
  // another, and so on. They go to the log and to the other outputs.
  bool about_me(const std::string& type, const json::Object& rec) const {
    if (!type.starts_with("output_") && type != record::kAlert) return false;
    const std::string* name = json::get_string(rec, "output_name");
    return name && *name == cfg_.name;
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
  // How failures become records: an output starts failing at a batch dropped as malformed, or
  // when the batch at its head has failed for kFailingAfter (a blip retried in time is only
  // counted in stats); that writes one output_error. It has recovered once a batch was
  // delivered and kSettle passed without another failure; that writes one output_recovered
  // with the counts of the episode. Records of dropped batches stay at the head of the spool
  // (held) until an output_dropped record names them: kNameMax ids, or kNameAfter after the
  // first (other outputs' state records alone wait for one of the others), or at the recovery. A
  // stop before that leaves them spooled: the next run sends them again (a delivered one among them
  // may arrive twice, a refused one is named then).
  static constexpr auto kFailingAfter = std::chrono::seconds(1);
  static constexpr auto kSettle = std::chrono::seconds(1);
  static constexpr auto kNameAfter = std::chrono::seconds(2);
  static constexpr size_t kNameMax = 256;
  static constexpr size_t kHeldMax = 4096;

  void run() {
    int attempts = 0;
    Clock::time_point next_try = Clock::now();
    Clock::time_point last_delivery{};  // start of the last delivery attempt
    size_t batch_max = std::min<size_t>(cfg_.batch_max, sink_->max_batch());
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
      if (!stopping_ && service_timers(lk)) continue;
      size_t avail = spool_.pending() - held_;
      if (stopping_ && (avail == 0 || Clock::now() >= stop_deadline_ || next_try > stop_deadline_))
        break;
      auto timer = next_timer();
      if (avail == 0) {
        if (timer)
          cv_.wait_until(lk, *timer);
        else
          cv_.wait(lk);
        continue;
      }
      if (Clock::now() < next_try) {
        auto until = stopping_ ? std::min(next_try, stop_deadline_) : next_try;
        if (timer && !stopping_) until = std::min(until, *timer);
        cv_.wait_until(lk, until);
        continue;
      }
      // Batching: after a quiet spell the first record goes at once (a lone alert is not held
      // back); while records keep coming, wait up to batch_wait_ms to fill a batch.
      auto wait = std::chrono::milliseconds(cfg_.batch_wait_ms);
      if (!stopping_ && avail < batch_max && wait.count() > 0 &&
          Clock::now() - last_delivery < wait) {
        cv_.wait_until(lk, last_delivery + wait,
                       [&] { return stopping_ || spool_.pending() - held_ >= batch_max; });
      }
      last_delivery = Clock::now();
      size_t n = std::min(spool_.pending() - held_, batch_max);
      std::vector<std::string> lines = spool_.peek(n, held_);
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
      if (d.kind == Delivery::Kind::kTooLarge && n == 1) d.kind = Delivery::Kind::kRefused;
      lk.lock();
      if (d.kind == Delivery::Kind::kTooLarge) {
        // Smaller batches from now on (until a restart or reload); at once, no back-off.
        ++retries_;
        last_error_ = d.error;
        batch_max = std::max<size_t>(1, n / 2);
        continue;
      }
      if (d.kind == Delivery::Kind::kOk) {
        delivered_ += static_cast<int64_t>(n);
        attempts = 0;
        next_try = Clock::now();
        delivered(n);
        continue;
      }
      last_error_ = d.error;
      if (d.kind == Delivery::Kind::kRefused) {
        failed_ += static_cast<int64_t>(n);
        attempts = 0;
        next_try = Clock::now();
        held_ += n;
        for (const auto& it : items) {
          unnamed_ids_.push_back(it.id);
          // Other outputs' state records alone start no timer: two outputs refusing everything
          // would name each other's output_dropped records for ever.
          const std::string* t = json::get_string(*it.rec, "type");
          if (!unnamed_timed_ && !(t && t->starts_with("output_"))) {
            unnamed_timed_ = true;
            unnamed_since_ = Clock::now();
          }
        }
      } else {
        ++retries_;
        // Exponential back-off from 100 ms up to retry_max_ms, or the pause the destination
        // asked for (Retry-After), also at most retry_max_ms. A pause already over (a date in
        // the past, a skewed clock) is no pause: the back-off applies, never a busy loop.
        int64_t cap = static_cast<int64_t>(cfg_.retry_max_ms);
        int64_t ms = std::min<int64_t>(cap, 100LL << std::min(attempts, 16));
        if (d.retry_after_ms > 0) ms = std::min<int64_t>(d.retry_after_ms, cap);
        ++attempts;
        next_try = Clock::now() + std::chrono::milliseconds(ms);
      }
      failed_attempt(lk, d, last_delivery, n, items.front().id);
    }
  }

  // The batch at the head was delivered: acknowledged at once, unless refused lines before it
  // wait to be named (then it joins them and is acknowledged with them).
  void delivered(size_t n) {
    if (held_ > 0) {
      held_ += n;
    } else if (auto r = spool_.ack(n); !r) {
      last_error_ = r.message();
    }
    if (episode_ == Episode::kFailing) {
      episode_ = Episode::kRecovering;
      ok_since_ = Clock::now();
    } else if (episode_ == Episode::kStreak) {
      episode_ = Episode::kHealthy;
    }
  }

  // A delivery attempt (started at `at`) failed: counts it, and writes output_error when this
  // makes the output failing. Called and returns with lk held.
  void failed_attempt(std::unique_lock<std::mutex>& lk, const Delivery& d, Clock::time_point at,
                      size_t n, const std::string& first_id) {
    if (episode_ == Episode::kHealthy) {
      episode_ = Episode::kStreak;
      streak_start_ = at;
      ep_failed_attempts_ = ep_batches_dropped_ = ep_records_dropped_ = 0;
    }
    ++ep_failed_attempts_;
    if (d.kind == Delivery::Kind::kRefused) {
      ++ep_batches_dropped_;
      ep_records_dropped_ += static_cast<int64_t>(n);
    }
    ep_last_error_ = d.error;
    ep_last_status_ = d.status;
    if (episode_ == Episode::kRecovering) episode_ = Episode::kFailing;
    if (episode_ == Episode::kFailing ||
        (d.kind != Delivery::Kind::kRefused && Clock::now() - streak_start_ < kFailingAfter))
      return;
    episode_ = Episode::kFailing;
    json::Object r;
    r["type"] = "output_error";
    r["output_name"] = cfg_.name;
    r["state"] = "failing";
    r["action"] = d.kind == Delivery::Kind::kRefused ? "dropped" : "retrying";
    r["error"] = d.error;
    if (d.status) r["status"] = static_cast<int64_t>(d.status);
    r["records"] = static_cast<int64_t>(n);
    r["first_id"] = first_id;
    lk.unlock();
    push_(std::move(r));
    lk.lock();
  }

  // The next moment service_timers has something to do, if any.
  std::optional<Clock::time_point> next_timer() const {
    std::optional<Clock::time_point> t;
    if (unnamed_timed_) t = unnamed_since_ + kNameAfter;
    if (episode_ == Episode::kRecovering) {
      auto s = ok_since_ + kSettle;
      t = t ? std::min(*t, s) : s;
    }
    return t;
  }

  // Names the held refused lines when due, and writes output_recovered when due. True when it
  // did something (lk was released meanwhile).
  bool service_timers(std::unique_lock<std::mutex>& lk) {
    auto now = Clock::now();
    bool recovered = episode_ == Episode::kRecovering && now >= ok_since_ + kSettle;
    if (!unnamed_ids_.empty() &&
        (recovered || unnamed_ids_.size() >= kNameMax || held_ >= kHeldMax ||
         (unnamed_timed_ && now >= unnamed_since_ + kNameAfter))) {
      name_dropped(lk);
      return true;
    }
    if (held_ > 0 && unnamed_ids_.empty()) {  // (nothing left to name: acknowledge)
      if (auto r = spool_.ack(held_); !r) last_error_ = r.message();
      held_ = 0;
    }
    if (!recovered) return false;
    json::Object r;
    r["type"] = "output_recovered";
    r["output_name"] = cfg_.name;
    r["state"] = "recovered";
    r["duration_ms"] = static_cast<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(ok_since_ - streak_start_).count());
    r["failed_attempts"] = ep_failed_attempts_;
    r["batches_dropped"] = ep_batches_dropped_;
    r["records_dropped"] = ep_records_dropped_;
    r["error"] = ep_last_error_;
    if (ep_last_status_) r["status"] = static_cast<int64_t>(ep_last_status_);
    episode_ = Episode::kHealthy;
    lk.unlock();
    push_(std::move(r));
    lk.lock();
    return true;
  }

  // output_dropped records (kNameMax ids each) naming the held refused lines, then the spool
  // passes every held line.
  void name_dropped(std::unique_lock<std::mutex>& lk) {
    std::vector<std::string> ids = std::move(unnamed_ids_);
    unnamed_ids_.clear();
    unnamed_timed_ = false;
    size_t held = held_;
    std::string why = ep_last_error_;
    int status = ep_last_status_;
    lk.unlock();
    for (size_t at = 0; at < ids.size(); at += kNameMax) {
      size_t end = std::min(ids.size(), at + kNameMax);
      json::Object r;
      r["type"] = "output_dropped";
      r["output_name"] = cfg_.name;
      r["error"] = why;
      if (status) r["status"] = static_cast<int64_t>(status);
      r["records"] = static_cast<int64_t>(end - at);
      r["first_id"] = ids[at];
      r["last_id"] = ids[end - 1];
      json::Array a;
      for (size_t i = at; i < end; ++i) a.emplace_back(ids[i]);
      r["ids"] = std::move(a);
      push_(std::move(r));
    }
    lk.lock();
    if (auto r = spool_.ack(held); !r) last_error_ = r.message();
    held_ -= held;
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
  // Failure episodes (see run()): kStreak, attempts have failed since the last delivery (from
  // streak_start_) but output_error is not written yet; kFailing, output_error written and no
  // delivery since the last failure; kRecovering, a batch was delivered at ok_since_ while
  // failing and nothing failed since (output_recovered once that lasts kSettle).
  enum class Episode { kHealthy, kStreak, kFailing, kRecovering } episode_ = Episode::kHealthy;
  Clock::time_point streak_start_{}, ok_since_{};
  int64_t ep_failed_attempts_ = 0, ep_batches_dropped_ = 0, ep_records_dropped_ = 0;
  std::string ep_last_error_;
  int ep_last_status_ = 0;
  // held_: lines at the head of the spool already handled (refused, or delivered after a
  // refused one) that the spool keeps until the refused ones are named; unnamed_ids_: the ids
  // of those refused ones; unnamed_timed_: one of them is not another output's state record,
  // the first such refused at unnamed_since_.
  size_t held_ = 0;
  std::vector<std::string> unnamed_ids_;
  bool unnamed_timed_ = false;
  Clock::time_point unnamed_since_{};
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
