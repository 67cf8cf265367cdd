// SPDX-License-Identifier: Apache-2.0
// The kernel cross-check: what the eBPF collector saw in an audited session against what the
// (untrusted) interposers reported. Every fact about a process comes from the kernel: whether
// its image carries the genuine interposer (the interposer's initialisation probed by inode,
// SA_EV_HOOKED), what it executed (path and argv from the exec event), when (kernel time;
// reports are timed by shauditd's clock when received, never by the sender's). A reporter only
// links a typed line to what it started. In a session the kernel follows, an exec record is
// written from the kernel's exec event (`source: "bpf"`, `reported: true` when a report with
// the same argv claimed it); a report is never a record of an exec the kernel did not see.
// Decisions are taken after a window (default 1 s), so a report and the kernel event it
// matches may arrive in either order.
//
//   unreported_exec   an exec by an image that carries the interposer, which no report with
//                     that argv claimed (a raw execve system call, a suppressed report)
//   unhooked_process  a new image in which the genuine interposer did not initialise within
//                     the window (static binary, LD_PRELOAD stripped, a copy of the library) —
//                     unless the kernel marked the exec secure (setuid, setgid, capabilities),
//                     which ignores LD_PRELOAD by design; an allowlisted path lowers severity
//   unreported_input  bash's readline or zsh's zleread returned a line that no interposer
//                     reported, as a command or as announced non-command input
//                     With the enforcing mode (`enforce:`), the BPF LSM refuses such an exec
//                     before it runs (EPERM; SA_EV_DENIED): the record is written at once, with
//                     `action: "denied"` and the kernel's `reason` (no_interpreter, no_preload,
//                     unlinked_file, unhooked_caller); it has no exec record (nothing ran)
// Enforcing mode with protect: an access to shauditd's own files or process that the BPF LSM
// refused (SA_EV_TAMPER) is a `tamper` record at once (what, the process that tried, the file).
//   forged_report     an exec report that no kernel exec (with that argv) or failed attempt
//                     confirms: it contradicts the kernel
//   uncaptured_input  a shell whose lines the interposer captures read a line from its terminal
//                     that it did not report (a terminal mode its hook does not see: bash
//                     without its editor after `stty -icanon`); the line is recorded as the
//                     kernel saw it
// Terminal input (SA_EV_INPUT, what each followed process read from a terminal) is the
// never-silent path: a program reading a terminal whose lines no interposer captures exactly
// (a static shell, fish, tcsh, a REPL, `cat | sh`) gets a `capture` record naming it
// (`capture: "none"`, its exe and why) once per image, and each line it read is a `command`
// record rebuilt from the kernel's bytes (`reconstructed: true`, the raw `keys`). Lines read
// with echo off in canonical mode (a password prompt) stay out, except a shell's own.
// Reports that went missing (a gap in report numbers, a refused connection) are loss, never
// bypass. Memory is bounded per uid: exec reports held beyond the bound are written unchecked
// and a `loss` record (cause crosscheck_capacity) says whose.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "proc.h"
#include "queue.h"
#include "sessions.h"
#include "shaudit/redact.h"
#include "shaudit/wire_codec.h"
#include "stats.h"
#include "tty_input.h"

namespace shaudit::daemon {

struct CrossCheckOptions {
  int64_t window_ns = 1'000'000'000;
  const Redactor* redactor = nullptr;         // applied to what the kernel captured too
  std::vector<std::string> allowlist;         // exe paths whose unhooked runs are low severity
  size_t held_bytes_per_uid = 16u << 20;      // exec reports held for checking, per uid
  std::function<std::string(uid_t)> user_of;  // a uid's name, for the records made here
  // The path of a file the enforcing mode protects (kernel dev_t, inode), for tamper records.
  std::function<std::string(uint64_t, uint64_t)> protected_path;
};

class CrossCheck {
 public:
  // command_of(pid, ppid): the typed command a process runs for (from the reports), so a
  // bypass is shown under the line that led to it.
  CrossCheck(RecordQueue& q, Stats& stats, CrossCheckOptions opts,
             std::function<std::string(pid_t, pid_t)> command_of);

  // A kernel event (a struct from bpf/proc.h). Once a horizon is set, an event later than it
  // waits (copied, in the kernel's order) until a turn whose reports were read after it.
  void on_kernel(const void* data, size_t size);
  // Reports sent up to horizon_ns (realtime) have been or are being read this turn: kernel events
  // up to it may be taken; later ones wait for the next turn (a shell's line sent before its
  // fork then names what the fork runs, even when shauditd read the ring buffer first — it was
  // stopped, or preempted, between a turn's reports and its kernel events).
  void set_horizon(int64_t horizon_ns) { horizon_ns_ = horizon_ns; }
  // Takes the waiting kernel events the horizon has reached (all of them with all: shutdown).
  void release(bool all = false);
  // A report the daemon accepted from pid, received at recv_ns (realtime), in session.
  // receipt_time: sent at or before recv_ns, when exactly unknown (queued before shauditd
  // accepted its connection).
  void on_report(pid_t pid, const wire::Message& m, const std::string& session, int64_t recv_ns,
                 bool receipt_time = false);
  // An exec report of a process in a session: rec is the exec record the report would make.
  // Held until the kernel's exec confirms it (then written with the kernel's path and argv) or
  // the window passes. Returns false once the queue closed.
  bool on_exec_report(pid_t pid, uid_t uid, const wire::Message& m, const std::string& session,
                      int64_t recv_ns, json::Object rec);
  // The daemon started following pid in the kernel (a session's entry); hooked: the kernel says
  // its current image initialised the genuine interposer (bpf map hooked_pids).
  void on_track(pid_t pid, bool hooked);
  // Kernel events were lost (ring buffer full) between these times (realtime): decisions
  // that need the kernel's complete view of that time are not taken.
  void on_kernel_loss(int64_t since_ns, int64_t until_ns);
  // The argument strings of an exec event of size bytes (at least offsetof(argv)).
  static std::vector<std::string> exec_argv(const sa_exec_event* e, size_t size);
  // Kernel events under this key are not this shauditd's to decide (a process the kernel
  // began following that is in none of its containers): dropped from now on (bounded).
  void ignore_key(uint64_t key);
  // Whether the kernel follows pid (it forked, exec'd or was tracked in a session).
  bool follows(pid_t pid) const;
  // What the kernel's events say of a followed process whose fork the kernel reported (its
  // parent, loginuid and audit session as they were at the fork or its last exec): the /proc
  // reads a report would otherwise cost. False when unknown.
  // ino: the sender's pidfs inode (from SCM_PIDFD); the facts are given only for that very
  // process (a pid reused since is another process, whose fork may not be read yet).
  bool kernel_facts(pid_t pid, uint64_t ino, ProcFacts& f) const;
  // The audited session the kernel followed that very process in ("" when unknown).
  std::string kernel_session(pid_t pid, uint64_t ino) const;
  // Writes the exec records of the kernel execs read since the last call, and of those that
  // waited for the horizon it has now reached (after the reports that were waiting in the
  // sockets were read: a typed line reported before its command's fork is then known, and
  // names the command). Returns false once the queue closed.
  bool flush_fresh();
  // Takes the decisions whose window has passed; returns false once the queue closed.
  bool tick(int64_t now_ns);
  // Decides everything still pending (at shutdown).
  bool flush();
  // The exit status of the process shell forked last for its typed command `command` (the
  // kernel's exit event: a signal gives 128 + its number), or -1 when it forked none that
  // exited: what a shell that reports no statuses (dash, bash --noediting) ended that command
  // with, derived.
  int derived_status(pid_t shell, const std::string& command) const;
  // Exec reports held for checking, and their bytes (for tests and stats).
  size_t held() const { return held_.size(); }
  // Nothing waits for a decision.
  bool idle() const {
    return execs_.empty() && lines_.empty() && held_.empty() && fresh_.empty() && inputs_.empty() &&
           captures_.empty() && deferred_.empty();
  }

  static constexpr uint32_t kUnset = 4294967295u;  // a loginuid or audit session id not set

  // Session key used in the kernel map for a session id (16 hex digits).
  static uint64_t key_of(const std::string& session);
  static std::string session_of(uint64_t key);  // the inverse of key_of

 private:
  struct Report {  // a line or non-command report, kept for the line probe (hashes, no text)
    int64_t ns;    // received (realtime)
    uint16_t type;
    uint64_t text_hash = 0, text_len = 0;
    std::string prefix;  // a long line's first SA_LINE_MAX bytes (the kernel may cut there)
    uint64_t input_len = 0, input_hash = 0;
    bool used = false;
    bool input_used = false;    // it accounts for a line the kernel saw read from the terminal
    bool receipt_time = false;  // ns is when shauditd read it; it was sent at or before
  };
  struct KEvent {  // from the event header
    int64_t ns;    // realtime
    pid_t pid, ppid;
    uint32_t uid;
    std::string session, comm;
  };
  struct KExec : KEvent {
    uint64_t ord;  // arrival number (kernel order)
    uint32_t loginuid, sessionid, flags;
    uint32_t ns_pid = 0, ns_level = 0;  // its pid in its own pid namespace, and that depth
    std::string filename, tty;
    std::vector<std::string> argv;
    uint64_t argv_hash;
    std::string command;    // the typed command its exec record names
    bool recorded = false;  // its exec record was written (matched by a report)
    bool reported = false;
  };
  struct KLine : KEvent {
    std::string text;
    bool cut;
  };
  // A line a process read from its terminal, rebuilt from the kernel's bytes, waiting for the
  // report (or kernel readline/zle line) that accounts for it.
  struct TtyLine : KEvent {
    TtyLineEditor::Line line;
    std::string tty, exe, command;
    std::string prev_command;    // the process's command before this line became it
    bool exact_capable = false;  // its image reports its lines (a hooked interactive shell)
    bool hooked = false;         // its image carries the genuine interposer
    bool unterminated = false;   // read without an Enter before the process exited or exec'd
    bool covered = false;        // the kernel saw readline/zle return it
    int64_t next_ns = 0;         // when the process's next line was complete (0: none yet)
  };
  // The first terminal read of an image: is it captured? (decided after the window, when its
  // interposer's hello, if any, has arrived)
  struct CaptureCheck : KEvent {
    std::string tty, exe, command;
    uint64_t image = 0;  // the exec (arrival number) of the image it read in (0: before any)
  };
  struct Held {  // an exec report waiting for its kernel exec
    pid_t pid;   // the reporter
    uid_t uid;
    int64_t ns;                     // received
    bool spawn;                     // a new child runs it (posix_spawn, system, popen)
    std::vector<std::string> argv;  // as reported (cut at kHeldArgvBytes: argv_cut)
    bool argv_cut;
    uint64_t argv_hash;  // of the whole reported argv
    std::string path, session;
    json::Object rec;
    size_t bytes;
    bool matched = false;
  };
  struct Failed {  // a failed exec attempt
    int64_t ns;
    pid_t pid, ppid;
    std::string filename;
    int32_t result;
  };
  // A queue that allocates nothing until its first element (libstdc++'s deque allocates in
  // its constructor): most processes never get a line report.
  template <class T>
  class LazyDeque {
   public:
    bool empty() const { return !d_ || d_->empty(); }
    size_t size() const { return d_ ? d_->size() : 0; }
    T& front() { return d_->front(); }
    T& back() { return d_->back(); }
    const T& back() const { return d_->back(); }
    void push_back(T&& v) {
      if (!d_) d_ = std::make_unique<std::deque<T>>();
      d_->push_back(std::move(v));
    }
    void pop_front() { d_->pop_front(); }
    auto begin() { return d_ ? d_->begin() : typename std::deque<T>::iterator(); }
    auto end() { return d_ ? d_->end() : typename std::deque<T>::iterator(); }
    auto begin() const { return d_ ? d_->cbegin() : typename std::deque<T>::const_iterator(); }
    auto end() const { return d_ ? d_->cend() : typename std::deque<T>::const_iterator(); }

   private:
    std::unique_ptr<std::deque<T>> d_;
  };

  struct Proc {
    LazyDeque<Report> reports;  // recent line reports, oldest first
    // Kernel events of this process in the order the kernel emitted them (one ring buffer:
    // for one process, the order of what it did), as arrival numbers, oldest first (<= 64).
    std::vector<uint64_t> execs;   // its execs
    std::vector<uint64_t> hooked;  // the genuine interposer initialised in the image then
    int64_t last_exec_ns = 0;
    pid_t parent = 0;
    int64_t fork_ns = 0;
    int64_t exit_ns = 0;                             // the kernel saw it exit (0: running)
    bool followed = false;                           // tracked by the daemon (a session's entry)
    uint32_t loginuid = kUnset, sessionid = kUnset;  // at the fork or last exec
    uint64_t ino = 0;     // its pidfs inode, from the fork event (0: unknown)
    uint64_t key = 0;     // the session key the kernel followed it under
    std::string command;  // the typed command it runs for (its own line, or its parent's at fork)
    // When a report made `command` its command (the kernel's send time; 0: set in the kernel's
    // order), and the one before: a fork earlier than that report runs for the one before.
    int64_t command_ns = 0;
    std::string prev_command;
    // Of a shell: the exit status of the child it forked last for its current command (the
    // kernel's exit events), for shells that do not report statuses themselves.
    std::string child_command;
    int64_t child_fork_ns = 0;
    int child_status = -1;
    uint8_t hash_key[16] = {};
    bool have_key = false;
    // Its terminal input (SA_EV_INPUT) and what decides whether it is captured already.
    std::unique_ptr<TtyLineEditor> input;
    uint64_t input_lines = 0;  // lines rebuilt from it so far
    // The number of the rebuilt line that last became its command (`<pid>.k<n>`; 0: none) and
    // that line's text hash: an image without the genuine interposer reporting the same line
    // does not rename the command.
    uint64_t rebuilt_no = 0, rebuilt_hash = 0;
    std::string open_lines;  // rebuilt lines of a command that goes on (`mysql \`, an open quote)
    bool input_checked = false;     // a CaptureCheck was queued for its current image
    bool capture_said = false;      // its capture record was written for its current image
    bool silent_shell = false;      // a shell the interposer knows that reports none of its lines
    int64_t reported_ns = 0;        // its last line or non-command report (received)
    std::string exe;                // its current image's file (from the exec event)
    int64_t hello_ns = 0;           // the interposer's last hello from it (received)
    uint64_t hello_flags = 0;       // SHAUDIT_HELLO_*
    TtyLine* last_input = nullptr;  // its latest line waiting in inputs_
  };

  uint64_t ord_ = 0;  // kernel events read so far (their arrival numbers)
  std::unordered_set<uint64_t> ignored_keys_;
  std::deque<uint64_t> ignored_order_;

  void take_kernel(const void* data, size_t size);
  int64_t event_ns(const void* data) const;
  bool decide_exec(KExec& e);
  bool decide_line(const KLine& l);
  bool decide_held(Held& h);
  bool decide_input(TtyLine& l);
  bool push_input_bypass(const char* kind, const KEvent& k, const std::string& exe,
                         const std::string& text, bool cut, const std::string& command,
                         std::string evidence, std::string_view before = {});
  bool awaits_report(const TtyLine& l);
  bool decide_capture(const CaptureCheck& c);
  void kernel_identity(json::Object& r, const KEvent& e, const std::string& tty);
  bool write_capture(const CaptureCheck& c, const std::string& why);
  void on_input(const KEvent& k, const sa_input_event* e, size_t size, Proc& p);
  void end_input(Proc& p, const KEvent& k);
  void queue_input(Proc& p, const KEvent& k, TtyLineEditor::Line l, const std::string& tty,
                   bool unterminated);
  bool image_hooked(const Proc& p) const;
  bool exact_capable(const Proc& p) const;
  bool matches(const KExec& e, const Held& h) const;
  bool try_match(KExec& e);
  bool pairs(const KExec& e, const Held& h) const;
  bool link(KExec& e, Held& h);
  bool emit_exec(KExec& e, Held* h);
  bool lost_between(int64_t from, int64_t to) const;
  void measure_clocks();
  std::string command_for(pid_t pid, pid_t ppid);
  bool push_bypass(const char* kind, const char* severity, const KExec* e, pid_t pid,
                   const std::string& session, std::string evidence,
                   const std::vector<std::string>* argv, const std::string* exe = nullptr,
                   const char* action = nullptr, const char* reason = nullptr);
  bool flush_capacity_loss(int64_t now);
  int64_t to_realtime(uint64_t boot_ns) const {
    return static_cast<int64_t>(boot_ns) + boot_to_real_;
  }

  RecordQueue& q_;
  Stats& stats_;
  CrossCheckOptions opts_;
  std::function<std::string(pid_t, pid_t)> command_of_;
  int64_t boot_to_real_ = 0;
  bool clocks_measured_ = false;  // boot_to_real_ came from a tight measurement
  std::unordered_map<pid_t, Proc> procs_;
  int64_t horizon_ns_ = 0;            // 0: no horizon (every event taken at once)
  std::deque<std::string> deferred_;  // kernel events later than the horizon, in order
  size_t deferred_bytes_ = 0;         // bounded (kMaxDeferredBytes): beyond, taken at once
  std::deque<KExec> execs_;
  std::vector<KExec*> fresh_;                       // read since the last flush_fresh()
  std::deque<std::pair<int64_t, int64_t>> losses_;  // (since, until) of lost kernel events
  std::deque<KLine> lines_;
  std::deque<TtyLine> inputs_;
  std::deque<CaptureCheck> captures_;
  std::deque<Held> held_;  // in order of receipt, so of deadline
  // Indexes (a deque keeps its elements in place when pushed or popped at either end): the
  // undecided kernel execs by pid and by parent, the held reports by reporter.
  std::unordered_map<pid_t, std::vector<KExec*>> execs_by_pid_, execs_by_ppid_;
  std::unordered_map<pid_t, std::vector<Held*>> held_by_pid_;
  std::deque<Failed> failed_;
  std::unordered_map<uid_t, size_t> held_bytes_;       // per uid
  std::unordered_map<uid_t, uint64_t> over_capacity_;  // reports written unchecked, per uid
  int64_t capacity_flushed_ns_ = 0;
  int64_t pruned_ns_ = 0;
  size_t prefix_bytes_ = 0;  // bytes of line prefixes kept (bounded)
};

}  // namespace shaudit::daemon
