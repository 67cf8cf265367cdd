// The socket side of shauditd: accepts reporter connections, receives one report per
// SOCK_SEQPACKET message with the sender's kernel credentials, turns reports into records
// and queues them for the writer; also serves the root-only control socket.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "shaudit/config.h"
#include "queue.h"
#include "stats.h"
#include "shaudit/result.h"
#include "shaudit/wire_codec.h"

namespace shaudit::daemon {

struct ProcInfo {
  uint64_t last_seq = 0;
  std::string loginuid;   // from /proc/PID/loginuid at first report ("" if unreadable)
  std::string sessionid;  // kernel audit session id
};

// Converts decoded reports to records; kept apart from the sockets so tests can drive it.
class ReportHandler {
 public:
  ReportHandler(RecordQueue& q, Stats& stats) : q_(q), stats_(stats) {}
  // Returns false only when the queue was closed (shutting down).
  bool handle(const wire::Message& m, pid_t pid, uid_t uid, gid_t gid);

 private:
  const std::string& user_name(uid_t uid);
  ProcInfo& proc(pid_t pid, uint64_t seq);

  RecordQueue& q_;
  Stats& stats_;
  std::unordered_map<uid_t, std::string> users_;
  std::unordered_map<pid_t, ProcInfo> procs_;
};

class Receiver {
 public:
  Receiver(const Config& cfg, RecordQueue& q, Stats& stats,
           std::function<std::string()> stats_json);
  ~Receiver();
  // Fails when another daemon already accepts connections on either socket; called before
  // the log is opened, so a refused second daemon never writes into the live one's log.
  Result<void> refuse_if_running() const;
  // Creates (replacing a stale file) and binds both sockets.
  Result<void> listen();
  // Runs until stop() is called.
  void run();
  void stop();
  void remove_sockets();

 private:
  void accept_clients();
  void serve_control();
  void read_client(int fd);
  void close_client(int fd);

  const Config& cfg_;
  RecordQueue& q_;
  Stats& stats_;
  std::function<std::string()> stats_json_;
  ReportHandler handler_;
  int epfd_ = -1, listen_fd_ = -1, control_fd_ = -1, wake_fd_ = -1;
  int reserve_fd_ = -1;  // held back so a connection can be refused when out of descriptors
  bool bound_socket_ = false, bound_control_ = false;
  std::unordered_map<int, bool> clients_;
  char* buf_ = nullptr;
  bool stopping_ = false;
};

}  // namespace shaudit::daemon
