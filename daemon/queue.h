// SPDX-License-Identifier: Apache-2.0
// Bounded multi-producer queue between the socket receiver and the log writer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "shaudit/json.h"

namespace shaudit::daemon {

class RecordQueue {
 public:
  explicit RecordQueue(size_t capacity) : capacity_(capacity) {}

  // Blocks while full (backpressure: the receiver stops reading, the kernel socket buffers
  // fill, reporters see EAGAIN and count their loss). Returns false once closed.
  bool push(json::Object rec) {
    if (staging_ == this) {
      // Staged by the receiver: handed over together at commit() (one lock, one wake-up of the
      // writer for everything one turn of the receiver's loop produced).
      if (closed_.load(std::memory_order_relaxed)) return false;
      staged_.push_back({std::move(rec), lane_, weight_});
      return true;
    }
    std::unique_lock lk(mu_);
    not_full_.wait(lk, [&] { return q_.size() < capacity_ || closed_; });
    if (closed_) return false;
    append(std::move(rec), lane_, weight_);
    not_empty_.notify_one();
    return true;
  }

  // From now on this thread's pushes are staged until commit() (the receiver, per turn).
  void begin_staging() { staging_ = this; }
  // Hands the staged records to the writer (waiting while the queue is full) and stops
  // staging. Returns false once closed.
  bool commit() {
    staging_ = nullptr;
    if (staged_.empty()) return !closed_.load(std::memory_order_relaxed);
    std::unique_lock lk(mu_);
    for (auto& st : staged_) {
      if (q_.size() >= capacity_ && !closed_) {
        not_empty_.notify_one();  // the writer drains what is there
        not_full_.wait(lk, [&] { return q_.size() < capacity_ || closed_; });
      }
      if (closed_) {
        staged_.clear();
        return false;
      }
      append(std::move(st.rec), st.lane, st.weight);
    }
    staged_.clear();
    not_empty_.notify_one();
    return true;
  }

  // Moves everything queued into out; waits until something is queued, wake() is called,
  // the queue is closed, or the deadline passes. Returns the weight (report bytes) it took.
  size_t pop_all(std::deque<json::Object>& out, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lk(mu_);
    not_empty_.wait_until(lk, deadline, [&] { return !q_.empty() || closed_ || woken_; });
    woken_ = false;
    out.swap(q_);
    lanes_.clear();
    size_t w = queued_bytes_;
    queued_bytes_ = 0;
    not_full_.notify_all();
    return w;
  }

  // Records this thread pushes from now on count against `lane` (the receiver: one per
  // reporting uid; -1: none), each weighing `weight` bytes (the report they came from).
  static void set_lane(int64_t lane, size_t weight = 0) {
    lane_ = lane;
    weight_ = weight;
  }
  // How many records of a lane wait in the queue, and their weight (the writer takes them all
  // at once).
  size_t lane_depth(int64_t lane) {
    std::lock_guard lk(mu_);
    auto it = lanes_.find(lane);
    return it == lanes_.end() ? 0 : it->second.records;
  }
  size_t lane_bytes(int64_t lane) {
    std::lock_guard lk(mu_);
    auto it = lanes_.find(lane);
    return it == lanes_.end() ? 0 : it->second.bytes;
  }

  void wake() {
    std::lock_guard lk(mu_);
    woken_ = true;
    not_empty_.notify_one();
  }

  // No more pushes; pop_all still drains what is queued.
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  bool closed_and_empty() {
    std::lock_guard lk(mu_);
    return closed_ && q_.empty();
  }

  size_t depth() {
    std::lock_guard lk(mu_);
    return q_.size();
  }
  size_t high_water() {
    std::lock_guard lk(mu_);
    return high_water_;
  }
  size_t capacity() const { return capacity_; }

 private:
  // Queues one record (mu_ held), counting it against its lane.
  void append(json::Object rec, int64_t lane, size_t weight) {
    q_.push_back(std::move(rec));
    if (lane >= 0) {
      Lane& l = lanes_[lane];
      ++l.records;
      l.bytes += weight;
    }
    queued_bytes_ += weight;
    if (q_.size() > high_water_) high_water_ = q_.size();
  }

  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<json::Object> q_;
  struct Lane {
    size_t records = 0, bytes = 0;
  };
  std::unordered_map<int64_t, Lane> lanes_;
  size_t queued_bytes_ = 0;  // weight of what q_ holds
  struct Staged {
    json::Object rec;
    int64_t lane;
    size_t weight;
  };
  std::vector<Staged> staged_;  // the staging thread's only
  static inline thread_local RecordQueue* staging_ = nullptr;
  static inline thread_local int64_t lane_ = -1;
  static inline thread_local size_t weight_ = 0;
  size_t capacity_;
  size_t high_water_ = 0;
  std::atomic<bool> closed_{false};  // read without the lock by a staged push
  bool woken_ = false;
};

}  // namespace shaudit::daemon
