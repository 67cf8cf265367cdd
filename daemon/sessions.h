// SPDX-License-Identifier: Apache-2.0
// Audited sessions: opened by the PAM module (root only) or implicitly by an interactive
// shell that belongs to no session; ended by PAM close or when the entry process exits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace shaudit::daemon {

struct Session {
  std::string id;
  std::string user;
  int64_t uid = -1;
  std::string service;  // PAM service, or "implicit"
  std::string tty, remote_host;
  std::string audit_session, loginuid;  // "" when not set by a login
  pid_t entry_pid = 0;
  uint64_t entry_start = 0;  // entry's start time (/proc/PID/stat), guards against pid reuse
  int pidfd = -1;            // readable when the entry process exits
  int64_t start_ns = 0;
  uint64_t commands = 0, failed = 0;
  bool implicit = false;
  std::string parent;  // enclosing session (su/sudo inside a login), if any
};

// Kernel facts about a process from /proc (never from what a report claims).
struct ProcFacts {
  bool ok = false;
  pid_t ppid = 0;
  uint64_t start_time = 0;  // clock ticks after boot
  std::string loginuid;     // "" when unset (4294967295)
  std::string audit_session;
};
ProcFacts read_proc_facts(pid_t pid);

class SessionRegistry {
 public:
  // table_dir: where the session table for host-wide mode is published (one empty file per
  // audit session id of a live session). Stale entries are cleared.
  explicit SessionRegistry(std::string table_dir);
  ~SessionRegistry();
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // Registers a session: assigns its id (unless s.id names a free one) and start time, opens a
  // pidfd on its entry and publishes its audit session id.
  Session& open(Session s);
  std::optional<Session> close(const std::string& id);

  Session* find(const std::string& id);
  Session* by_entry(pid_t pid, uint64_t start_time);
  Session* by_audit_session(const std::string& sid);
  Session* by_pidfd(int fd);
  size_t size() const { return sessions_.size(); }
  const std::string& table_dir() const { return dir_; }

 private:
  void publish(const Session& s);
  void unpublish(const Session& s);

  std::string dir_;
  std::unordered_map<std::string, Session> sessions_;
  std::unordered_map<pid_t, std::string> entries_;
};

}  // namespace shaudit::daemon
