// SPDX-License-Identifier: Apache-2.0
// Turns decoded reports into records: kernel identity per message, per-process report
// numbering (loss), session membership, command/exec linking, PAM session requests.
// Single-threaded: only the receiver thread calls it.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "containers.h"
#include "crosscheck.h"
#include "queue.h"
#include "record_fields.h"
#include "sessions.h"
#include "shaudit/redact.h"
#include "shaudit/wire_codec.h"
#include "stats.h"

namespace shaudit::daemon {

// What the daemon knows about one process (keyed by pid, checked by start time).
struct Proc {
  uint64_t ino = 0;  // the kernel's identity of the process (pidfs inode of SCM_PIDFD)
  uint64_t start_time = 0;
  pid_t ppid = 0;
  std::string loginuid, audit_session;
  uint64_t last_seq = 0;          // last report number seen from this process
  std::string session;            // "" when in none
  std::string command;            // the typed command it runs for ("<shell pid>.<n>")
  bool reported = false;          // sent at least one report
  bool gone = false;              // /proc had no entry: ppid is what the process reported
  bool exec_reported = false;     // its current image's exec was reported before it ran
  std::vector<uint64_t> spawned;  // argv hashes it reported for children it spawned
  bool shell = false, interactive = false;
  bool repl = false;  // reads lines through readline/libedit (hello SHAUDIT_HELLO_REPL)
  std::string exe, tty;
  uint64_t unsettled = 0;  // its last typed command whose status it did not report (number)
  // The physical lines of the command it is reading, as typed, joined by '\n' (a continuation
  // line is redacted in their context: `mysql \` then `-pS`). At most kCommandLinesMax bytes.
  std::string command_lines;
};
constexpr size_t kCommandLinesMax = 64 * 1024;

class ReportHandler {
 public:
  // watch(fd) / unwatch(fd) ask the receiver to start / stop polling a session entry's
  // pidfd (unwatch comes before the registry closes it).
  ReportHandler(RecordQueue& q, Stats& stats, SessionRegistry& sessions,
                std::function<void(int)> watch, std::function<void(int)> unwatch);
  // With the eBPF collector: reports go to the cross-check, and each session's entry is
  // tracked in the kernel (track(pid, session id)).
  void set_redactor(const Redactor* r) { redactor_ = r; }
  // Implicit sessions opened by a process in a container name it (session_start `container`).
  void set_containers(ContainerLookup* c) { containers_ = c; }
  void set_kernel_side(CrossCheck* cc, std::function<void(pid_t, const std::string&)> track) {
    cc_ = cc;
    track_ = std::move(track);
  }

  // What the kernel says about the sender of one message: its credentials, the identity of
  // the process (the inode of the pidfd the kernel attached; 0 when the kernel attaches none)
  // and when shauditd received it (realtime; the sender's own clock is never used).
  struct Sender {
    ucred cred;
    uint64_t ino = 0;
    int64_t recv_ns = 0;
    // Queued before shauditd accepted the connection: the kernel stamped it when it was read,
    // so it was sent at or before recv_ns, when exactly is unknown.
    bool receipt_time = false;
  };
  // Handles one message. reply receives an encoded answer when the sender expects one (PAM).
  // Returns false once the queue closed.
  bool handle(const wire::Message& m, const Sender& s, std::string& reply);
  // The typed command a process (or its nearest known ancestor) runs for, or "".
  std::string command_of(pid_t pid, pid_t ppid);
  // The entry process of a session exited (its pidfd became readable).
  bool entry_exited(int pidfd);
  // Reads the kernel's events that are waiting (the receiver's collector): before a shell
  // with no session opens one, the session the kernel may already follow it in is known.
  void set_kernel_catch_up(std::function<void()> f) { catch_up_ = std::move(f); }
  // The kernel began following a process a container runtime started in a container
  // (SA_FLAG_RUNTIME_EXEC): a session named after the kernel's key, entered by that process.
  struct RuntimeExec {
    pid_t pid = 0, ppid = 0, vpid = 0;
    uid_t uid = 0;
    uint64_t key = 0, pidns_ino = 0;
    std::string exe, tty;
    std::vector<std::string> argv;
  };
  // False when it runs in none of the containers the runtimes' state directories name (not
  // this shauditd's to follow: another runtime, a user's own namespaces); the caller stops
  // following it. Sets stop when the queue closed.
  bool open_runtime_session(const RuntimeExec& x, bool& stop);
  // Sessions whose entry had already exited when they were opened end now (after the
  // kernel's events of that time were written).
  bool end_gone_sessions();
  bool sessions_gone() const { return !gone_sessions_.empty(); }
  // A uid's name (cached), empty when the system has none.
  const std::string& user_name(uid_t uid);

 private:
  Proc& proc(pid_t pid, const wire::Message& m, uint64_t ino);
  Proc* ancestor_facts(pid_t pid);
  bool is_self_or_ancestor(pid_t pid, pid_t candidate);
  const std::string& resolve_session(pid_t pid, Proc& p);
  bool push(json::Object r);
  // A report of a process, past the checks every report gets (identity, session, numbering),
  // handed to the handler of its kind.
  struct Ctx {
    const wire::Message& m;
    const Sender& sender;
    pid_t pid;
    Proc& p;
    const std::string& session;
    bool in_order;
  };
  bool on_hello(const Ctx& c);
  bool on_line(const Ctx& c);
  bool on_exec(const Ctx& c);
  bool on_status(const Ctx& c);
  bool on_noncmd(const Ctx& c);
  json::Object record_for(const Ctx& c, std::string_view type);
  bool write(const Ctx& c, json::Object r);
  bool open_implicit(pid_t pid, Proc& p, uid_t uid, const char* why,
                     const std::vector<std::string_view>* argv = nullptr);
  json::Object implicit_start(const Session& opened, pid_t pid, pid_t ppid);
  bool end_session(const std::string& id, const char* reason);
  // A command_status derived from the kernel for a command whose shell reported none.
  bool derive_status(pid_t pid, Proc& p);
  bool session_open(const wire::Message& m, const ucred& cred, uint64_t ino, std::string& reply);
  bool session_close(const wire::Message& m, const ucred& cred, std::string& reply);
  void base_fields(json::Object& r, const wire::Message& m, const ucred& cred, const Proc& p);

  RecordQueue& q_;
  Stats& stats_;
  SessionRegistry& sessions_;
  std::function<void(int)> watch_, unwatch_;
  CrossCheck* cc_ = nullptr;
  const Redactor* redactor_ = nullptr;
  ContainerLookup* containers_ = nullptr;
  std::function<void(pid_t, const std::string&)> track_;
  std::function<void()> catch_up_;
  std::vector<std::string> gone_sessions_;
  std::unordered_map<uid_t, std::string> users_;
  std::unordered_map<pid_t, Proc> procs_;
};

std::string session_reply(const std::string& session, const std::string& error);

}  // namespace shaudit::daemon
