// SPDX-License-Identifier: Apache-2.0
// The socket side of shauditd: accepts reporter connections, receives one report per
// SOCK_SEQPACKET message with the sender's kernel credentials (SCM_CREDENTIALS, per message)
// and hands it to the ReportHandler; answers PAM session requests on the same connection;
// watches session entry processes (pidfds) to end sessions when they exit.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "collector_fwd.h"
#include "container_sockets.h"
#include "crosscheck.h"
#include "queue.h"
#include "reports.h"
#include "sessions.h"
#include "shaudit/config.h"
#include "shaudit/result.h"
#include "stats.h"

namespace shaudit::daemon {

class Receiver {
 public:
  // collector may be null (bpf off): then nothing is cross-checked.
  Receiver(const Config& cfg, Stats& stats, SessionRegistry& sessions, RecordQueue& q,
           bpf::Collector* collector);
  // Called by the collector for each kernel event (in the receiver thread, from consume()).
  void on_kernel_event(const void* data, size_t size);
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Fails when another daemon answers on the configured sockets (checked before the log is
  // touched, so a second daemon never writes into the first one's log).
  Result<void> refuse_if_running() const;
  // Creates (replacing a stale file) and binds the reporter socket.
  Result<void> listen();
  // Runs until stop() is called, then reads what connected clients already sent.
  void run();
  void stop();
  void remove_sockets();

 private:
  void accept_clients(int listen_fd);
  void scan_containers();
  bool read_client(int fd, int max_messages);
  void close_client(int fd);
  void watch_pidfd(int fd);
  void kernel_tick(bool timer, int64_t turn_ns);
  void check_kernel_loss(int64_t now);
  void refuse(int fd, const ucred& peer, const char* reason);
  void flush_refusals(int64_t now);
  bool over_share(int fd, bool half = false);

  const Config& cfg_;
  Stats& stats_;
  RecordQueue& q_;
  ReportHandler handler_;
  ContainerLookup containers_;
  ContainerSockets container_sockets_;
  int scan_fd_ = -1;  // a 1 s timer: look for new containers to reach into
  std::vector<std::string> genuine_interposers_;  // the interposers' bytes (with eBPF)
  bpf::Collector* collector_ = nullptr;
  std::unique_ptr<CrossCheck> cc_;
  Redactor redactor_;
  int timer_fd_ = -1, bpf_fd_ = -1;
  long timer_period_ = 20000000;  // ns (see kernel_tick)
  int idle_ticks_ = 0;
  uint64_t dropped_seen_ = 0;
  int64_t loss_checked_ns_ = 0;  // realtime of the last look at the kernel's drop counter
  int64_t loss_check_every_ns_ = 100000000;
  int epfd_ = -1, listen_fd_ = -1, wake_fd_ = -1;
  int reserve_fd_ = -1;  // held back so a connection can be refused when out of descriptors
  bool bound_socket_ = false;
  std::string kernel_flag_;
  struct Client {
    uid_t uid;  // from SO_PEERCRED at accept (for per-uid bounds; each message carries its own)
    // Bytes queued before SO_TIMESTAMPNS was set on it: the kernel stamps those when they are
    // read, not when they were sent (a loaded shauditd can accept a connection late).
    size_t unstamped = 0;
  };
  std::unordered_map<int, Client> clients_;
  std::unordered_map<uid_t, size_t> per_uid_;  // open connections per uid
  struct Refused {
    uint64_t count = 0;
    pid_t first_pid = 0;
    std::string reason;
  };
  std::unordered_map<uid_t, Refused> refused_;  // since the last loss record
  int64_t refusals_flushed_ns_ = 0;
  std::unordered_set<int> pidfds_;
  std::unordered_set<int> paused_;  // clients not read while their share of the queue is full
  char* buf_ = nullptr;
  bool stopping_ = false;
};

}  // namespace shaudit::daemon
