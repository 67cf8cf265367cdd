// SPDX-License-Identifier: Apache-2.0
// The signed record log writer.
//
// Each record is one canonical JSON line written with a single write(2) on an O_APPEND fd,
// carrying seq (consecutive within the file), time, and prev (SHA-256 hex of the previous
// line's bytes, without its newline). Seal records sign the chain head with Ed25519; one is
// written when `seal_every` records are unsealed, when the oldest unsealed record is
// `seal_interval` old (the caller drives this through seal_deadline()/maybe_seal()), at
// rotation and at close. fdatasync runs at each seal: a record is visible to readers once
// append() returns (or, when holding, release()) and durable against power loss once the next
// seal is written.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/key_state.h"
#include "shaudit/result.h"

namespace shaudit {

struct WriterOptions {
  std::string path;
  // The sealing key: a forward-secure key state (see key_state.h), or one fixed key. Not
  // owned; must outlive the writer. With key_state, every seal carries its `epoch`, and a seal
  // that ends an epoch carries `next_pub_b64`, the next epoch's public key, after which the
  // outgoing key is erased. An epoch ends at the first seal once it is epoch_ns old (0: at
  // every seal), and always at the rotation and closing seals.
  KeyState* key_state = nullptr;
  const crypto::SigningKey* key = nullptr;
  int64_t epoch_ns = 60'000'000'000;
  std::function<int64_t()> clock_ns;  // CLOCK_REALTIME in ns; default record::now_ns
  uint64_t seal_every = 10000;
  int64_t seal_interval_ns = 100'000'000;
  json::Object start_fields;  // extra fields for the start record (host, version, ...)
  // Called after each line (record or seal) is in the file, with the line (no newline) and
  // the record it encodes; on the writer's thread, so it must not block for long.
  std::function<void(std::string_view line, const json::Object& rec)> on_written;
  // The state file (empty: none): the chain head this writer last left in the log (seq, chain
  // hash, the file's path, device and inode), rewritten (fsync'd) at each seal and rotation.
  // At open, a log that is not the one it describes (missing, shorter, a different chain head,
  // or a log without a state file) gets a chain_break record after the start record.
  std::string state_path;
  // Retention of rotated files (0: no limit): after each rotation and at open, the older files
  // of this log's rotated set (found in the log's directory by following the chain back from
  // the current file) are removed, oldest first, while their last record is older than
  // retention_max_age_ns or together they hold more than retention_max_total_bytes; a
  // retention record names each removed file (path, first/last seq, chain hashes, times).
  int64_t retention_max_age_ns = 0;
  uint64_t retention_max_total_bytes = 0;
};

struct WriterStats {
  uint64_t records = 0;  // lines written by this writer, seals included
  uint64_t seals = 0;
  uint64_t epoch = 0;  // the key state's epoch (forward-secure sealing)
  uint64_t write_errors = 0;
  uint64_t last_seal_seq = 0;
  int64_t last_seal_ns = 0;
  uint64_t unsealed = 0;
  std::string last_error;
};

class LogWriter {
 public:
  // Opens (creating mode 0600) and continues the chain of an existing log; writes the start
  // record (previous_run: none|clean|unclean). A partial last line left by a crash is cut
  // off and kept, base64-encoded, in the start record's truncated_tail.
  static Result<std::unique_ptr<LogWriter>> open(WriterOptions opts);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Appends one record (fields must include "type"; seq/time/prev are assigned), then the
  // count seal when one is due. Fails only when the record was not written: then nothing is
  // left in the file (a partial write is truncated away) and the caller may retry the same
  // record. A count seal that failed stays due for maybe_seal().
  Result<void> append(json::Object fields);
  // Holding: from hold() on, appended records are encoded and chained but kept in memory;
  // release() writes them all with one write(2) (a busy writer's records, one system call per
  // batch instead of per record), then reports each to on_written. If that write fails,
  // nothing of it stays in the file and the writer is back where hold() found it (seq, chain,
  // counts): the caller appends the same records again. While holding, append() never seals
  // (seal_due() says when a count seal is due: release first, then maybe_seal()); seal(),
  // rotate() and close() release first.
  void hold();
  Result<void> release();
  bool seal_due() const { return unsealed_ >= opts_.seal_every; }
  // Time at which an interval seal is due; INT64_MAX when nothing is unsealed.
  int64_t seal_deadline_ns() const;
  // Seals if the count or interval is due.
  Result<void> maybe_seal(int64_t now_ns);
  Result<void> seal(std::string_view reason);
  // SIGHUP: seal, reopen the path (a new file continues the chain with a rotate record).
  Result<void> rotate();
  // Writes the closing seal and closes the file.
  Result<void> close();
  // Applies the retention options now (see WriterOptions); nothing when they set no limit.
  Result<void> apply_retention();

  const WriterStats& stats() const { return stats_; }
  uint64_t seq() const { return seq_; }
  const std::string& path() const { return opts_.path; }

 private:
  explicit LogWriter(WriterOptions opts);
  Result<void> open_file(bool at_start);
  Result<void> write_line(json::Object fields, bool is_seal);
  // The chain_break record for what open_file found at the path, or nullopt when the log is
  // the one the state file describes (or neither exists).
  std::optional<json::Object> check_state(int fd, off_t size, bool found_records);
  // Rewrites the state file with the current chain head; failures go to stats().last_error.
  void save_state();
  // The chain_break record when the key state does not continue the key chain of the log's
  // last seal (settling a key state left mid-evolution first), or nullopt.
  std::optional<json::Object> check_key_state(int fd, off_t size);
  const crypto::SigningKey& signer() const {
    return opts_.key_state ? opts_.key_state->key() : *opts_.key;
  }

  WriterOptions opts_;
  int fd_ = -1;
  uint64_t seq_ = 0;  // seq of the last record written
  std::string prev_;  // hex SHA-256 of the last line
  uint64_t first_unsealed_ = 0;
  int64_t first_unsealed_ns_ = 0;
  uint64_t unsealed_ = 0;
  std::string key_id_;
  int64_t epoch_started_ns_ = 0;
  uint64_t file_dev_ = 0, file_ino_ = 0;  // the file fd_ writes
  WriterStats stats_;
  std::string line_;  // reused encode buffer

  // hold()/release(): the lines not yet written, each record to report once they are, and
  // the state to return to if they cannot be.
  struct Held {
    size_t off, len;  // the line in held_ (no newline)
    json::Value rec;
  };
  struct Checkpoint {
    uint64_t seq, first_unsealed, unsealed;
    int64_t first_unsealed_ns;
    std::string prev;
    WriterStats stats;
  };
  bool holding_ = false;
  std::string held_;
  std::vector<Held> held_recs_;
  Checkpoint checkpoint_{};
};

}  // namespace shaudit
