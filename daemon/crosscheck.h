// The kernel cross-check: what the eBPF collector saw in an audited session against what the
// (untrusted) interposers reported. Decisions are taken after a window (default 1 s), so a
// report and the kernel event it matches may arrive in either order.
//
//   unreported_exec   an exec by a process image that carries the interposer, which it did not
//                     report (a raw execve system call, or a report that was suppressed)
//   unhooked_process  a new process image that never said hello within the window (static
//                     binary, LD_PRELOAD stripped, empty environment) — unless the kernel
//                     marked the exec secure (setuid, setgid, file capabilities), which ignores
//                     LD_PRELOAD by design; an allowlisted path lowers the severity only
//   unreported_input  bash's readline() or zsh's zleread() returned a line that no interposer
//                     reported, as a command or as announced non-command input
//   forged_report     an exec report the kernel never saw (neither an exec nor a failed
//                     attempt by that process)
// Reports that went missing (a gap in report numbers) are loss, never bypass.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events.h"
#include "queue.h"
#include "shaudit/redact.h"
#include "shaudit/wire_codec.h"
#include "stats.h"

namespace shaudit::daemon {

struct CrossCheckOptions {
  int64_t window_ns = 1'000'000'000;
  const Redactor* redactor = nullptr;  // applied to what the kernel captured too
  std::vector<std::string> allowlist;  // exe paths whose unhooked runs are low severity
};

class CrossCheck {
 public:
  // command_of(pid, ppid): the typed command a process runs for (from the reports), so a
  // bypass is shown under the line that led to it.
  CrossCheck(RecordQueue& q, Stats& stats, CrossCheckOptions opts,
             std::function<std::string(pid_t, pid_t)> command_of);

  // A kernel event (a struct from events.h).
  void on_kernel(const void* data, size_t size);
  // A report the daemon accepted from pid (after decoding), in the given session.
  void on_report(pid_t pid, const wire::Message& m, const std::string& session);
  // Kernel events were lost (ring buffer full) between these times (realtime): decisions
  // that need the kernel's complete view of that time are not taken.
  void on_kernel_loss(int64_t since_ns, int64_t until_ns);
  // Takes the decisions whose window has passed; returns false once the queue closed.
  bool tick(int64_t now_ns);
  // Decides everything still pending (at shutdown).
  bool flush();

  // Session key used in the kernel map for a session id (16 hex digits).
  static uint64_t key_of(const std::string& session);
  static std::string session_of(uint64_t key);  // the inverse of key_of

 private:
  struct Report {
    int64_t ns;  // sender's send time (realtime)
    uint16_t type;
    uint64_t seq;
    uint64_t argv_hash = 0;
    std::string path, text;
    bool spawn = false;
    uint64_t input_len = 0, input_hash = 0;
    bool used = false;
    std::vector<std::string> argv;  // only in an exec report waiting for its kernel exec
  };
  struct KEvent {  // from the event header
    int64_t ns;    // realtime
    pid_t pid, ppid;
    uint32_t uid;
    std::string session, comm;
  };
  struct KExec : KEvent {
    uint32_t loginuid, sessionid, flags;
    std::string filename, tty;
    std::vector<std::string> argv;
    uint64_t argv_hash;
    uint64_t id;  // 1, 2, 3, ... in arrival order
  };
  struct KLine : KEvent {
    std::string text;
    bool cut;
  };
  struct PendingReport {  // an exec report waiting for its kernel exec
    pid_t pid;
    Report r;
    std::string session;
  };
  struct Proc {
    std::deque<Report> reports;                          // recent reports, oldest first
    std::deque<int64_t> execs;                           // kernel exec times, oldest first
    std::deque<std::pair<int64_t, std::string>> failed;  // failed attempts (time, filename)
    pid_t parent = 0;
    int64_t fork_ns = 0;
    uint8_t hash_key[16] = {};
    bool have_key = false;
  };

  bool decide_exec(const KExec& e);
  bool decide_line(const KLine& l);
  bool decide_report(pid_t pid, const Report& r, const std::string& session);
  bool interposed_before(pid_t pid, int64_t ns, int depth = 0);
  bool lost_between(int64_t from, int64_t to) const;
  void measure_clocks();
  bool push_bypass(const char* kind, const char* severity, const KExec* e, pid_t pid,
                   const std::string& session, std::string evidence,
                   const std::vector<std::string>* argv, const std::string* exe = nullptr);
  int64_t to_realtime(uint64_t boot_ns) const {
    return static_cast<int64_t>(boot_ns) + boot_to_real_;
  }

  RecordQueue& q_;
  Stats& stats_;
  CrossCheckOptions opts_;
  std::function<std::string(pid_t, pid_t)> command_of_;
  int64_t boot_to_real_ = 0;
  uint64_t execs_seen_ = 0;
  uint64_t last_exec_recorded_ = 0;  // id of the exec whose kernel record was written (once)
  std::unordered_map<pid_t, Proc> procs_;
  std::deque<KExec> execs_;
  std::deque<std::pair<int64_t, int64_t>> losses_;  // (since, until) of lost kernel events
  std::deque<KLine> lines_;
  std::deque<PendingReport> reports_;  // exec reports to confirm
};

}  // namespace shaudit::daemon
