// SPDX-License-Identifier: Apache-2.0
// A remote output's disk spool: the records it has been handed and the destination has not
// acknowledged yet, in order, surviving a restart of shauditd.
//
// Layout in its directory: segment files `NNNNNNNNNNNNNNNN.jsonl` (one record line each,
// appended), and `cursor` ("<segment> <byte offset>\n", replaced by rename) saying where the
// unacknowledged part begins. Segments wholly before the cursor are deleted. The bound counts
// the bytes of unacknowledged lines: a line that would pass it is refused (the caller turns
// that into an overflow alert), never silently dropped.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/result.h"

namespace shaudit::daemon {

class Spool {
 public:
  // Opens (creating, mode 0700) dir and loads what an earlier run left unacknowledged. A
  // partial last line (a crash mid-write) is cut off.
  static Result<Spool> open(std::string dir, uint64_t max_bytes);
  Spool(Spool&&) noexcept;
  Spool& operator=(Spool&&) noexcept;
  ~Spool();

  // Appends one line (without newline). False when the bound would be passed (not written).
  // An I/O error also returns false and sets last_error().
  bool append(std::string_view line);
  // fdatasync of the current segment (called at each seal of the log).
  void sync();

  // n pending lines after the first `skip` (fewer when there are not so many).
  std::vector<std::string> peek(size_t n, size_t skip = 0) const;
  // Drops the first n pending lines for good (delivered, or refused for good) and records
  // the new cursor durably.
  Result<void> ack(size_t n);

  size_t pending() const { return lines_.size(); }
  uint64_t pending_bytes() const { return bytes_; }
  const std::string& last_error() const { return last_error_; }
  uint64_t loaded_at_open() const { return loaded_; }
  // The last line appended, acknowledged or not (empty when unknown: a new spool, or its last
  // segment was emptied and removed).
  const std::string& last_appended() const { return last_appended_; }

 private:
  Spool() = default;
  struct Line {
    std::string text;
    uint64_t segment;
    uint64_t end;  // offset just past its newline
  };
  Result<void> open_segment(uint64_t n);
  std::string seg_path(uint64_t n) const;

  std::string dir_;
  uint64_t max_bytes_ = 0;
  int fd_ = -1;           // current segment, O_APPEND
  uint64_t segment_ = 0;  // its number
  uint64_t segment_size_ = 0;
  std::deque<Line> lines_;  // unacknowledged, oldest first
  uint64_t bytes_ = 0;      // their total size
  uint64_t loaded_ = 0;
  std::string last_appended_;
  std::string last_error_;
};

}  // namespace shaudit::daemon
