// SPDX-License-Identifier: Apache-2.0
// Outputs: copies of records and alerts for other systems (files, syslog, auditd, Slack, Loki,
// webhooks, falcosidekick, OTLP), each with its own filter, disk spool and delivery thread.
//
// The log writer hands every line it has written (offer()). An output that wants it appends
// it to its spool; its thread delivers the spool in order and drops a line from the spool only
// when the destination acknowledged it, or refused it as malformed and an output_dropped record
// in the log names it. So delivery is at least once: a destination that is down, or a shauditd
// restart, delays records but does not lose them; each carries a stable id
// (shaudit::outfmt::record_id) for deduplication. An output's own state records (output_error,
// output_dropped, output_recovered, its spool overflow alerts) go to the log and the other
// outputs, never to itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shaudit/config.h"
#include "shaudit/json.h"
#include "shaudit/result.h"
#include "spool.h"

namespace shaudit::daemon {

// What a destination said about one batch.
struct Delivery {
  // kOk: delivered. kRetry: not delivered, kept spooled and tried again with back-off (the
  // destination is down, throttling, or needs a fix of itself or of the configuration).
  // kRefused: the destination calls the payload malformed; retrying cannot help, so the batch
  // is dropped and its records are named in the log. kTooLarge: send smaller batches.
  enum class Kind { kOk, kRetry, kRefused, kTooLarge };
  Kind kind = Kind::kOk;
  int64_t retry_after_ms = -1;  // the destination asked for this pause (HTTP Retry-After)
  std::string error;            // why not kOk
  int status = 0;               // the destination's answer (HTTP status); 0 when it gave none
  static Delivery ok() { return {}; }
  static Delivery retry(std::string why, int64_t after_ms = -1, int status = 0) {
    return {Kind::kRetry, after_ms, std::move(why), status};
  }
  static Delivery refused(std::string why, int status = 0) {
    return {Kind::kRefused, -1, std::move(why), status};
  }
  static Delivery too_large(std::string why, int status) {
    return {Kind::kTooLarge, -1, std::move(why), status};
  }
};

struct OutItem {
  std::string_view line;  // the record exactly as in the log
  const json::Object* rec;
  std::string id;  // stable id of the record (outfmt::record_id)
};

// One destination's transport and payload format.
class Sink {
 public:
  virtual ~Sink() = default;
  // Delivers the batch (in order, all or nothing as far as the caller is concerned).
  virtual Delivery deliver(const std::vector<OutItem>& batch) = 0;
  // Largest batch the destination takes in one delivery.
  virtual size_t max_batch() const { return SIZE_MAX; }
};

struct SinkContext {
  std::string hostname;
};

// Makes the sink for one configured output (or an error naming the output and the problem).
Result<std::unique_ptr<Sink>> make_sink(const OutputConfig& cfg, const SinkContext& ctx);

class Output;

class Outputs {
 public:
  // push_record: puts a bookkeeping record (output_error, an overflow alert) into the log.
  // catch_up (at start): after an unclean stop, spool the log's last lines an output wants
  // that its spool lacks (a crash between a log write and the spool append).
  static Result<std::unique_ptr<Outputs>> make(const Config& cfg, std::string hostname,
                                               std::function<bool(json::Object)> push_record,
                                               bool catch_up = false);
  ~Outputs();

  // Writer thread, after a line is in the log. Never blocks on a destination.
  void offer(std::string_view line, const json::Object& rec);
  // Starts the delivery threads.
  void start();
  // Stops the delivery threads after at most drain_ms spent delivering what is pending (what
  // is not delivered stays spooled for the next run).
  void stop(int64_t drain_ms = 0);
  // Per-output counters for `shaudit stats`.
  json::Array stats() const;
  bool empty() const { return outputs_.empty(); }

 private:
  Outputs() = default;
  std::vector<std::unique_ptr<Output>> outputs_;
};

}  // namespace shaudit::daemon
