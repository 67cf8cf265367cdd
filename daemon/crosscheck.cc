// SPDX-License-Identifier: Apache-2.0
#include "crosscheck.h"

#include <fmt/format.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "record_fields.h"
#include "shaudit/record.h"
#include "shaudit/siphash.h"
#include "shaudit/zsh_meta.h"

static_assert(offsetof(sa_denied_event, filename) == 80 && offsetof(sa_denied_event, argv) == 336 &&
                  sizeof(sa_denied_event) == 8528,
              "struct sa_denied_event as the BPF side lays it out");

namespace shaudit::daemon {
namespace {

constexpr int64_t kSlackNs = 20'000'000;  // clock and scheduling slack between the two sides
// Reports kept per process: all those a kernel event may still be matched with (a pasted script
// or a fast typist sends hundreds within one window), within a memory bound.
constexpr size_t kMaxReportsPerProc = 4096;      // ~100 bytes each (hashes, not text)
constexpr int64_t kKeepExtraNs = 2'000'000'000;  // late ring-buffer delivery
constexpr size_t kMaxPrefixBytes = 64u << 20;    // long lines' beginnings kept, in all
// The bytes of kernel events waiting for a later turn, at most (far more than one turn reads);
// past that they are taken at once, in order.
constexpr size_t kMaxDeferredBytes = 32u << 20;

// A line's identity for matching (the text itself is not kept): the argv hash of a one-element
// argv.
uint64_t text_hash(std::string_view s) {
  return argv_hash(std::array<std::string_view, 1>{s});
}

int64_t clock_ns(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The command a line rebuilt from the kernel's bytes names: the n-th of process pid.
std::string rebuilt_command(pid_t pid, uint64_t n) {
  return fmt::format("{}.k{}", pid, n);
}

std::string cstr(const char* s, size_t max) {
  return std::string(s, strnlen(s, max));
}

// zsh's zleread returns its metafied line with the newline.
std::string unmetafy(std::string s) {
  s.resize(shaudit_unmetafy(s.data(), s.size()));
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

uint64_t CrossCheck::key_of(const std::string& session) {
  return std::strtoull(session.c_str(), nullptr, 16);
}

std::string CrossCheck::session_of(uint64_t key) {
  return fmt::format("{:016x}", key);
}

CrossCheck::CrossCheck(RecordQueue& q, Stats& stats, CrossCheckOptions opts,
                       std::function<std::string(pid_t, pid_t)> command_of)
    : q_(q), stats_(stats), opts_(std::move(opts)), command_of_(std::move(command_of)) {
  measure_clocks();
}

// Kernel events carry boot time, reports shauditd's realtime clock at receipt. The offset between
// the two moves only when the realtime clock is set: measured again at every tick, between two
// boot-time reads so its error is at most half their gap. A loaded machine can preempt shauditd
// between the reads (a gap of hundreds of ms: every kernel event then misplaced against the
// reports by half of it), so the tightest of a few tries counts, and a try whose gap is still
// wide keeps the offset measured before.
void CrossCheck::measure_clocks() {
  constexpr int64_t kTightNs = 200'000;
  int64_t best_gap = INT64_MAX, best = 0;
  for (int i = 0; i < 3 && best_gap > kTightNs / 4; ++i) {
    int64_t b0 = clock_ns(CLOCK_BOOTTIME);
    int64_t r = clock_ns(CLOCK_REALTIME);
    int64_t b1 = clock_ns(CLOCK_BOOTTIME);
    if (b1 - b0 < best_gap) {
      best_gap = b1 - b0;
      best = r - (b0 + (b1 - b0) / 2);
    }
  }
  if (best_gap <= kTightNs || !clocks_measured_) boot_to_real_ = best;
  clocks_measured_ = clocks_measured_ || best_gap <= kTightNs;
}

void CrossCheck::on_kernel_loss(int64_t since_ns, int64_t until_ns) {
  losses_.emplace_back(since_ns, until_ns);
}

// Whether kernel events may have been lost between from and to (a decision that needs the
// kernel's complete view of that time is not taken).
bool CrossCheck::lost_between(int64_t from, int64_t to) const {
  for (const auto& [a, b] : losses_)
    if (a <= to && b >= from) return true;
  return false;
}

bool CrossCheck::follows(pid_t pid) const {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return false;
  const Proc& p = it->second;
  return p.followed || p.parent != 0 || !p.execs.empty() || !p.hooked.empty();
}

std::string CrossCheck::kernel_session(pid_t pid, uint64_t ino) const {
  auto it = procs_.find(pid);
  if (it == procs_.end() || !ino || it->second.ino != ino || !it->second.key) return {};
  return session_of(it->second.key);
}

bool CrossCheck::kernel_facts(pid_t pid, uint64_t ino, ProcFacts& f) const {
  auto it = procs_.find(pid);
  if (it == procs_.end() || it->second.parent == 0 || !ino || it->second.ino != ino) return false;
  const Proc& p = it->second;
  f = ProcFacts{};
  f.ok = true;
  f.ppid = p.parent;
  if (p.loginuid != kUnset) f.loginuid = std::to_string(p.loginuid);
  if (p.sessionid != kUnset) f.audit_session = std::to_string(p.sessionid);
  return true;
}

void CrossCheck::on_track(pid_t pid, bool hooked) {
  Proc& p = procs_[pid];
  p.followed = true;
  // Its image started before the kernel followed it: whether it carries the interposer is what
  // the kernel recorded when the interposer initialised (not what the process says).
  // Every exec read so far came before what the kernel map says now.
  if (hooked) p.hooked.push_back(++ord_);
}

std::vector<std::string> CrossCheck::exec_argv(const sa_exec_event* e, size_t size) {
  std::vector<std::string> argv;
  size_t n = std::min<size_t>(e->argv_len, size - offsetof(sa_exec_event, argv));
  std::string_view all(e->argv, n);
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string_view::npos) end = all.size();
    argv.emplace_back(all.substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

void CrossCheck::ignore_key(uint64_t key) {
  if (!ignored_keys_.insert(key).second) return;
  ignored_order_.push_back(key);
  if (ignored_order_.size() > 4096) {
    ignored_keys_.erase(ignored_order_.front());
    ignored_order_.pop_front();
  }
}

// A kernel event's time (realtime); data holds at least its header.
int64_t CrossCheck::event_ns(const void* data) const {
  sa_event_hdr h;
  std::memcpy(&h, data, sizeof h);
  return to_realtime(h.ts_ns);
}

void CrossCheck::release(bool all) {
  while (!deferred_.empty() && (all || event_ns(deferred_.front().data()) <= horizon_ns_ ||
                                deferred_bytes_ > kMaxDeferredBytes)) {
    std::string ev = std::move(deferred_.front());
    deferred_.pop_front();
    deferred_bytes_ -= ev.size();
    take_kernel(ev.data(), ev.size());
  }
}

void CrossCheck::on_kernel(const void* data, size_t size) {
  if (size < sizeof(sa_event_hdr)) return;
  if (horizon_ns_) {
    release();
    if (!deferred_.empty() || event_ns(data) > horizon_ns_) {
      deferred_.emplace_back(static_cast<const char*>(data), size);
      deferred_bytes_ += size;
      release();  // over the bound: taken now
      return;
    }
  }
  take_kernel(data, size);
}

void CrossCheck::take_kernel(const void* data, size_t size) {
  sa_event_hdr h;
  if (size < sizeof h) return;
  std::memcpy(&h, data, sizeof h);
  if (!ignored_keys_.empty() && ignored_keys_.count(h.key)) return;
  int64_t ns = to_realtime(h.ts_ns);
  pid_t pid = static_cast<pid_t>(h.pid);
  uint64_t ord = ++ord_;
  // The header's part of an event that waits for a decision.
  auto from_header = [&](KEvent& k) {
    k.ns = ns;
    k.pid = pid;
    k.ppid = static_cast<pid_t>(h.ppid);
    k.uid = h.uid;
    k.session = session_of(h.key);
    k.comm = cstr(h.comm, sizeof h.comm);
  };
  switch (h.type) {
    case SA_EV_EXEC: {
      if (size < offsetof(sa_exec_event, argv)) return;
      const auto* e = static_cast<const sa_exec_event*>(data);
      KExec k;
      from_header(k);
      k.loginuid = h.loginuid;
      k.sessionid = h.sessionid;
      k.flags = h.flags;
      k.filename = cstr(e->filename, sizeof e->filename);
      k.tty = cstr(e->tty, sizeof e->tty);
      k.ns_pid = e->ns_pid;
      k.ns_level = e->ns_level;
      k.argv = exec_argv(e, size);
      k.argv_hash = argv_hash(k.argv);
      k.ord = ord;
      Proc& p = procs_[pid];
      // The command it runs for as the kernel's tree says at this exec (its own later lines
      // must not rename it).
      k.command = p.command;
      end_input(p, k);  // what the image before typed without an Enter
      p.input_checked = false;
      p.capture_said = false;
      p.silent_shell = false;
      p.exe = k.filename;
      p.execs.push_back(ord);
      p.last_exec_ns = ns;
      p.loginuid = h.loginuid;
      p.sessionid = h.sessionid;
      if (p.execs.size() > 64) p.execs.erase(p.execs.begin());
      execs_.push_back(std::move(k));
      execs_by_pid_[pid].push_back(&execs_.back());
      execs_by_ppid_[execs_.back().ppid].push_back(&execs_.back());
      fresh_.push_back(&execs_.back());
      break;
    }
    case SA_EV_DENIED:
    case SA_EV_BREAK_GLASS: {
      // The enforcing mode refused this exec in the kernel: nothing ran, the record is due now.
      if (size < offsetof(sa_denied_event, argv)) return;
      const auto* e = static_cast<const sa_denied_event*>(data);
      KExec k;
      from_header(k);
      k.ord = ord;
      k.flags = h.flags;
      k.filename = cstr(e->filename, sizeof e->filename);
      size_t n =
          std::min<size_t>({e->argv_len, SA_DENY_ARGV_MAX, size - offsetof(sa_denied_event, argv)});
      std::string_view all(e->argv, n);
      for (size_t start = 0; start < all.size();) {
        size_t end = all.find('\0', start);
        if (end == std::string_view::npos) end = all.size();
        k.argv.emplace_back(all.substr(start, end - start));
        start = end + 1;
      }
      k.command = procs_[pid].command;
      static constexpr const char* kReasons[] = {
          "", "unlinked_file", "no_interpreter", "unhooked_caller", "no_preload", "fail_closed"};
      static constexpr const char* kWhy[] = {
          "",
          "the file has no name on any file system (a memfd, an O_TMPFILE or deleted file)",
          "the image has no program interpreter (a static binary, or the dynamic loader run as "
          "a program)",
          "the calling process runs an image that never initialised the genuine interposer",
          "its environment's LD_PRELOAD does not name the interposer",
          "shauditd was not keeping up (fail: closed) and the file is not on the break-glass "
          "list"};
      uint32_t r = e->reason < std::size(kReasons) ? e->reason : 0;
      if (h.type == SA_EV_BREAK_GLASS) {
        // fail: closed: a break-glass program ran while shauditd was not keeping up.
        json::Object b;
        b["type"] = "break_glass";
        b["pid"] = static_cast<int64_t>(pid);
        b["ppid"] = static_cast<int64_t>(h.ppid);
        b["uid"] = static_cast<int64_t>(h.uid);
        record::set_bytes(b, "exe", k.filename);
        std::vector<std::string_view> v(k.argv.begin(), k.argv.end());
        record::set_argv(b, redact_argv(opts_.redactor, v, b));
        if (!k.session.empty()) b["session"] = k.session;
        if (!k.command.empty()) b["command"] = k.command;
        b["heartbeat_age_ms"] = static_cast<int64_t>(e->heartbeat_age_ms);
        (void)q_.push(std::move(b));
        break;
      }
      // The kill mode (no BPF LSM): the exec went through, and the kernel killed the process
      // before its new image ran.
      const bool killed = (h.flags & SA_FLAG_KILLED) != 0;
      (void)push_bypass(
          "unhooked_process", "high", &k, pid, k.session,
          fmt::format("enforcing mode: the kernel {} pid {}'s exec of {}: {}{}",
                      killed ? "killed (SIGKILL, before the new image ran)" : "refused (EPERM)",
                      pid, k.filename, r ? kWhy[r] : "unknown reason",
                      r == SA_DENY_FAIL_CLOSED
                          ? fmt::format(" (no heartbeat for {} ms)", e->heartbeat_age_ms)
                          : std::string()),
          &k.argv, nullptr, killed ? "killed" : "denied", r ? kReasons[r] : "unknown");
      break;
    }
    case SA_EV_TAMPER: {
      // Any process, in a session or not: written at once.
      if (size < sizeof(sa_tamper_event)) return;
      const auto* e = static_cast<const sa_tamper_event*>(data);
      static constexpr const char* kWhat[] = {"", "log_write", "key_read", "remove", "ptrace"};
      json::Object r;
      r["type"] = "tamper";
      r["what"] = e->what < std::size(kWhat) ? kWhat[e->what] : "unknown";
      r["action"] = "denied";
      r["pid"] = static_cast<int64_t>(pid);
      r["ppid"] = static_cast<int64_t>(h.ppid);
      r["uid"] = static_cast<int64_t>(h.uid);
      if (h.loginuid != kUnset) r["loginuid"] = static_cast<int64_t>(h.loginuid);
      record::set_bytes(r, "comm", cstr(h.comm, sizeof h.comm));
      // The program that tried, as the kernel names it (the process is still there: only its
      // access was refused).
      char exe[4096];
      ssize_t n = ::readlink(fmt::format("/proc/{}/exe", pid).c_str(), exe, sizeof exe);
      if (n > 0) record::set_bytes(r, "exe", std::string(exe, static_cast<size_t>(n)));
      if (e->what == SA_TAMPER_PTRACE) {
        r["target_pid"] = static_cast<int64_t>(getpid());
      } else {
        std::string path = opts_.protected_path ? opts_.protected_path(e->dev, e->ino) : "";
        if (!path.empty()) record::set_bytes(r, "file", path);
        r["dev"] = static_cast<int64_t>(e->dev);
        r["ino"] = static_cast<int64_t>(e->ino);
      }
      if (h.key) r["session"] = session_of(h.key);
      (void)q_.push(std::move(r));
      break;
    }
    case SA_EV_ATTEMPT: {
      if (size < sizeof(sa_attempt_event)) return;
      const auto* e = static_cast<const sa_attempt_event*>(data);
      failed_.push_back(
          {ns, pid, static_cast<pid_t>(h.ppid), cstr(e->filename, sizeof e->filename), e->result});
      break;
    }
    case SA_EV_FORK: {
      if (size < sizeof(sa_fork_event)) return;
      const auto* e = static_cast<const sa_fork_event*>(data);
      // The child's own reports may already be here (the socket can be read before the ring
      // buffer): keep those, drop what an earlier process with the same pid left.
      Proc& c = procs_[static_cast<pid_t>(e->child_pid)];
      while (!c.reports.empty() && c.reports.front().ns < ns - kSlackNs) {
        prefix_bytes_ -= std::min(prefix_bytes_, c.reports.front().prefix.size());
        c.reports.pop_front();
      }
      c.execs.clear();
      c.hooked.clear();
      c.last_exec_ns = 0;
      c.parent = pid;
      c.fork_ns = ns;
      c.exit_ns = 0;
      c.followed = false;
      c.ino = size >= offsetof(sa_fork_event, child_ino) + sizeof e->child_ino ? e->child_ino : 0;
      c.key = h.key;
      c.loginuid = h.loginuid;  // the parent's, which the child inherited
      c.sessionid = h.sessionid;
      if (auto par = procs_.find(pid); par != procs_.end()) {
        // The shell's command at the fork: a line it reported after the fork (by the kernel's
        // send time) is not what this child runs for, even when shauditd read that report
        // before this fork event.
        const Proc& sh = par->second;
        c.command = sh.command_ns > ns ? sh.prev_command : sh.command;
      }
      break;
    }
    case SA_EV_EXIT: {
      auto it = procs_.find(pid);
      if (it == procs_.end()) break;
      Proc& c = it->second;
      c.exit_ns = ns;
      if (c.input) {
        KEvent k;
        from_header(k);
        end_input(c, k);
        c.input.reset();
      }
      if (size < sizeof(sa_exit_event) || !c.parent || c.command.empty()) break;
      auto par = procs_.find(c.parent);
      if (par == procs_.end()) break;
      // Its shell's latest command's last-forked child, and how it ended (wait status).
      Proc& sh = par->second;
      int32_t code = static_cast<const sa_exit_event*>(data)->exit_code;
      if (sh.child_command != c.command || c.fork_ns >= sh.child_fork_ns) {
        sh.child_command = c.command;
        sh.child_fork_ns = c.fork_ns;
        sh.child_status = (code & 0x7f) ? 128 + (code & 0x7f) : (code >> 8) & 0xff;
      }
      break;
    }
    case SA_EV_HOOKED: {
      Proc& p = procs_[pid];
      p.hooked.push_back(ord);
      if (p.hooked.size() > 64) p.hooked.erase(p.hooked.begin());
      break;
    }
    case SA_EV_LINE: {
      if (size < offsetof(sa_line_event, line)) return;
      const auto* e = static_cast<const sa_line_event*>(data);
      KLine l;
      from_header(l);
      std::string text(e->line, std::min<size_t>(e->len, size - offsetof(sa_line_event, line)));
      l.text = (h.flags & SA_FLAG_ZLE) ? unmetafy(std::move(text)) : std::move(text);
      l.cut = h.flags & SA_FLAG_LINE_CUT;
      lines_.push_back(std::move(l));
      // The kernel's own account of the line read last from the terminal (readline or zle
      // returned it after its Enter, in the kernel's order).
      if (Proc& p = procs_[pid]; TtyLine* last = p.last_input) {
        last->covered = true;
        // No record will carry the line's rebuilt command: what it forks from now on runs for
        // the command it ran for before (the kernel's line is a bypass record, not a command).
        if (!last->command.empty() && p.command == last->command) p.command = last->prev_command;
        last->command.clear();
      }
      break;
    }
    case SA_EV_INPUT: {
      if (size < offsetof(sa_input_event, data)) return;
      KEvent k;
      from_header(k);
      on_input(k, static_cast<const sa_input_event*>(data), size, procs_[pid]);
      break;
    }
    default:
      break;
  }
}

void CrossCheck::on_report(pid_t pid, const wire::Message& m, const std::string& session,
                           int64_t recv_ns, bool receipt_time) {
  (void)session;
  if (m.type == SHAUDIT_MSG_HELLO) {
    Proc& p = procs_[pid];
    p.hello_ns = recv_ns;
    p.hello_flags = m.number(SHAUDIT_F_HELLO_FLAGS);
    // Read after a line it read from its terminal: that line's rebuilt command is withdrawn
    // from the process (its own report names its lines and what they start).
    if (TtyLine* last = p.last_input;
        last && exact_capable(p) && !last->command.empty() && p.command == last->command) {
      p.command = last->prev_command;
      last->command.clear();
    }
    return;
  }
  if (m.type != SHAUDIT_MSG_LINE && m.type != SHAUDIT_MSG_NONCMD) return;
  Report r;
  r.ns = recv_ns;
  r.receipt_time = receipt_time;
  r.type = m.type;
  Proc& p = procs_[pid];
  p.reported_ns = recv_ns;
  if (m.type == SHAUDIT_MSG_LINE) {
    // The shell's current typed command: what it forks from now on runs for it.
    auto text = m.find(SHAUDIT_F_TEXT);
    // An image the kernel did not see initialise the genuine interposer reports a line the
    // kernel already rebuilt from the terminal's bytes: the kernel's line stays the command
    // (its forks run for it whichever arrived first; the report is not trusted to name it).
    bool kernel_named = p.rebuilt_no && text && !image_hooked(p) &&
                        text_hash(text->data) == p.rebuilt_hash &&
                        p.command == rebuilt_command(pid, p.rebuilt_no);
    if (uint64_t n = m.number(SHAUDIT_F_CMD_NO); n && !kernel_named) {
      std::string command = fmt::format("{}.{}", pid, n);
      if (command != p.command) {
        p.prev_command = std::move(p.command);
        p.command = std::move(command);
        p.command_ns = recv_ns;
      }
    }
    if (auto f = text) {
      r.text_hash = text_hash(f->data);
      r.text_len = f->data.size();
      // The kernel keeps SA_LINE_MAX - 1 bytes of a line (metafied, for zsh): a line that
      // long may arrive cut, and is matched by its beginning. Bounded in all.
      if (f->data.size() >= SA_LINE_MAX / 2 && prefix_bytes_ < kMaxPrefixBytes) {
        r.prefix = std::string(f->data.substr(0, SA_LINE_MAX));
        prefix_bytes_ += r.prefix.size();
      }
    }
  } else {
    r.input_len = m.number(SHAUDIT_F_INPUT_LEN);
    r.input_hash = m.number(SHAUDIT_F_INPUT_HASH);
    if (auto f = m.find(SHAUDIT_F_HASH_KEY); f && f->data.size() == sizeof p.hash_key) {
      std::memcpy(p.hash_key, f->data.data(), sizeof p.hash_key);
      p.have_key = true;
    }
  }
  p.reports.push_back(std::move(r));
  auto drop_front = [&] {
    prefix_bytes_ -= std::min(prefix_bytes_, p.reports.front().prefix.size());
    p.reports.pop_front();
  };
  // Reports too old to match any kernel line still to be decided are dropped.
  int64_t horizon = recv_ns - 2 * opts_.window_ns - kKeepExtraNs;
  while (!p.reports.empty() && p.reports.front().ns < horizon) drop_front();
  while (p.reports.size() > kMaxReportsPerProc) drop_front();
}

bool CrossCheck::on_exec_report(pid_t pid, uid_t uid, const wire::Message& m,
                                const std::string& session, int64_t recv_ns, json::Object rec) {
  auto argv = m.all(SHAUDIT_F_ARGV);
  size_t bytes = sizeof(Held);
  for (auto a : argv) bytes += a.size() + 32;
  size_t& mine = held_bytes_[uid];
  if (mine + bytes > opts_.held_bytes_per_uid) {
    // Beyond this uid's share: written as the report said, marked unchecked, and counted in
    // a loss record naming the uid (never held without bound, never dropped).
    ++over_capacity_[uid];
    rec["unchecked"] = true;
    return q_.push(std::move(rec));
  }
  Held h;
  h.pid = pid;
  h.uid = uid;
  h.ns = recv_ns;
  h.spawn = m.flags & SHAUDIT_MSG_SPAWN;
  h.argv_hash = argv_hash(argv);
  h.argv_cut = (m.flags & SHAUDIT_MSG_ARGV_TRUNCATED) != 0;
  for (const auto& f : m.fields)
    if (f.tag == SHAUDIT_F_ARGV && (f.flags & SHAUDIT_FIELD_TRUNCATED)) h.argv_cut = true;
  h.argv.assign(argv.begin(), argv.end());
  if (auto f = m.find(SHAUDIT_F_PATH)) h.path = std::string(f->data.substr(0, SA_PATH_MAX));
  h.session = session;
  h.rec = std::move(rec);
  h.bytes = bytes;
  mine += bytes;
  held_.push_back(std::move(h));
  Held& held = held_.back();
  held_by_pid_[pid].push_back(&held);
  // The kernel's exec may have been read first.
  auto& index = held.spawn ? execs_by_ppid_ : execs_by_pid_;
  auto found = index.find(pid);
  if (found == index.end()) return true;
  for (KExec* e : found->second)
    if (pairs(*e, held)) return link(*e, held);
  return true;
}

// Whether a held report claims a kernel exec that no report claimed yet: within the window of
// each other, with the same argv.
bool CrossCheck::pairs(const KExec& e, const Held& h) const {
  return !e.reported && !h.matched && h.ns >= e.ns - opts_.window_ns - kSlackNs &&
         h.ns <= e.ns + opts_.window_ns + kSlackNs && matches(e, h);
}

// Links a report to the kernel exec it claims; the exec record is written once, with what the
// report adds (when it was not written from the kernel's event alone already).
bool CrossCheck::link(KExec& e, Held& h) {
  h.matched = true;
  if (!e.recorded) return emit_exec(e, &h);
  e.reported = true;
  return true;
}

// Whether an exec report claims this kernel exec: the same argv. A script started through its
// #! line runs its interpreter: the kernel's argv is then the interpreter's, ending with the
// script's path (as passed to execve) and the reported argv[1:]. An argv cut by the kernel
// (32 KiB) or by the reporter's message is compared as far as both have it.
bool CrossCheck::matches(const KExec& e, const Held& h) const {
  bool kcut = e.flags & SA_FLAG_ARGV_CUT;
  if (!kcut && !h.argv_cut) {
    if (e.argv_hash == h.argv_hash && e.argv == h.argv) return true;
    size_t k = e.argv.size(), r = h.argv.size();
    if (r == 0 || k < r + 1 || e.argv[k - r] != e.filename) return false;
    return std::equal(h.argv.begin() + 1, h.argv.end(), e.argv.begin() + (k - r) + 1);
  }
  // Compare the common prefix element by element (the last kept element may be partial).
  size_t n = std::min(e.argv.size(), h.argv.size());
  if (n == 0) return false;
  for (size_t i = 0; i < n; ++i) {
    const std::string &a = e.argv[i], &b = h.argv[i];
    bool last = i + 1 == n;
    if (a == b) continue;
    if (!last) return false;
    size_t m = std::min(a.size(), b.size());
    return a.compare(0, m, b, 0, m) == 0;
  }
  return true;
}

// A kernel exec just read: a held report of it (by the process, or a spawn by its parent)?
bool CrossCheck::try_match(KExec& e) {
  pid_t parent = procs_[e.pid].parent;
  // Its own report, or a spawn report by its parent (as the kernel names it, or as the fork
  // event did).
  pid_t whos[3] = {e.pid, e.ppid, parent != e.ppid ? parent : 0};
  for (pid_t who : whos) {
    auto it = held_by_pid_.find(who);
    if (who <= 0 || it == held_by_pid_.end()) continue;
    for (Held* h : it->second)
      if (h->spawn == (who != e.pid) && pairs(e, *h)) return link(e, *h);
  }
  return true;
}

// The exec record: the kernel's facts (pid, parent, path, argv) with, when a report claimed
// it, what only the reporter knows (the typed command it ran for, the working directory).
bool CrossCheck::emit_exec(KExec& e, Held* h) {
  e.recorded = true;
  json::Object x;
  if (h) {
    x = std::move(h->rec);
    e.reported = true;
    x["reported"] = true;
    if (h->spawn) x["spawn_by"] = x["pid"];
    x.erase("report_seq");
    x.erase("spawn");
    x.erase("redacted");
    x.erase("truncated");
    x.erase("ppid_reported");
  } else {
    x["type"] = record::kExec;
    x["uid"] = static_cast<int64_t>(e.uid);
    if (e.loginuid != kUnset) x["loginuid"] = std::to_string(e.loginuid);
    if (e.sessionid != kUnset) x["audit_session"] = std::to_string(e.sessionid);
    if (!e.session.empty()) x["session"] = e.session;
    std::string c = e.command.empty() ? command_for(e.pid, e.ppid) : e.command;
    if (!c.empty()) x["command"] = c;
  }
  x["source"] = "bpf";
  x["pid"] = static_cast<int64_t>(e.pid);
  x["ppid"] = static_cast<int64_t>(e.ppid);
  if (e.ns_level > 0) x["vpid"] = static_cast<int64_t>(e.ns_pid);
  record::set_bytes(x, "path", e.filename);
  std::vector<std::string_view> kargv(e.argv.begin(), e.argv.end());
  record::set_argv(x, redact_argv(opts_.redactor, kargv, x));
  if (!e.tty.empty()) x["tty"] = e.tty;
  if (e.flags & SA_FLAG_SECUREEXEC) x["secure_exec"] = true;
  if (e.flags & SA_FLAG_ARGV_CUT) x["truncated"] = true;
  if (auto c = x.find("command"); c != x.end() && c->second.is_string())
    e.command = c->second.as_string();
  return q_.push(std::move(x));
}

// The typed command a process runs for: what the kernel-side tree knows (its shell's line when
// it was forked), else what the reports say.
std::string CrossCheck::command_for(pid_t pid, pid_t ppid) {
  auto p = procs_.find(pid);
  if (p != procs_.end() && !p->second.command.empty()) return p->second.command;
  return command_of_ ? command_of_(pid, ppid) : std::string();
}

bool CrossCheck::push_bypass(const char* kind, const char* severity, const KExec* e, pid_t pid,
                             const std::string& session, std::string evidence,
                             const std::vector<std::string>* argv, const std::string* exe,
                             const char* action, const char* reason) {
  stats_.bypasses.fetch_add(1, std::memory_order_relaxed);
  json::Object b;
  b["type"] = record::kBypass;
  b["kind"] = kind;
  b["severity"] = severity;
  if (action) b["action"] = action;
  if (reason) b["reason"] = reason;
  b["pid"] = static_cast<int64_t>(pid);
  if (!session.empty()) b["session"] = session;
  b["evidence"] = std::move(evidence);
  // An exec's bypass names the command its exec record named (the program may have read lines
  // of its own since).
  std::string command = e && !e->command.empty() ? e->command : command_for(pid, e ? e->ppid : 0);
  if (!command.empty()) b["command"] = command;
  if (e) {
    b["ppid"] = static_cast<int64_t>(e->ppid);
    if (e->ns_level > 0) b["vpid"] = static_cast<int64_t>(e->ns_pid);
    b["uid"] = static_cast<int64_t>(e->uid);
    record::set_bytes(b, "exe", e->filename);
  } else if (exe) {
    record::set_bytes(b, "exe", *exe);
  }
  if (argv) {
    std::vector<std::string_view> v(argv->begin(), argv->end());
    record::set_argv(b, redact_argv(opts_.redactor, v, b));
  }
  return q_.push(std::move(b));
}

bool CrossCheck::decide_exec(KExec& e) {
  // Its record was written when it was read (flush_fresh, which tick() runs first); a report
  // read since was linked to it then (on_exec_report).
  Proc& p = procs_[e.pid];
  // The genuine interposer initialised in this image: the kernel emitted it after this exec and
  // before any later one. The kernel's order decides, not times: the interposer of the image
  // before (env, a wrapper) initialises microseconds before its exec of the next one, closer
  // than any clock could tell apart.
  bool hooked = false;
  for (uint64_t t : p.hooked) {
    if (t < e.ord) continue;
    bool later_exec = false;
    for (uint64_t x : p.execs)
      if (x > e.ord && x < t) later_exec = true;
    if (!later_exec) hooked = true;
  }
  if (!hooked && !(e.flags & SA_FLAG_SECUREEXEC) && !lost_between(e.ns, e.ns + opts_.window_ns)) {
    bool allowed = std::find(opts_.allowlist.begin(), opts_.allowlist.end(), e.filename) !=
                   opts_.allowlist.end();
    if (!push_bypass("unhooked_process", allowed ? "low" : "high", &e, e.pid, e.session,
                     fmt::format("pid {} runs {} without the genuine interposer: the kernel did "
                                 "not see it initialise within {} ms of the exec{}",
                                 e.pid, e.filename, opts_.window_ns / 1000000,
                                 allowed ? " (allowlisted)" : ""),
                     &e.argv))
      return false;
  }
  return true;
}

bool CrossCheck::flush_fresh() {
  release();  // what waited for this turn's horizon
  for (KExec* e : fresh_) {
    if (e->recorded) continue;
    if (!try_match(*e)) return false;
    if (!e->recorded && !emit_exec(*e, nullptr)) return false;
  }
  fresh_.clear();
  return true;
}

bool CrossCheck::decide_line(const KLine& l) {
  Proc& p = procs_[l.pid];
  uint64_t h = text_hash(l.text);
  for (Report& r : p.reports) {
    if (r.used || r.ns < l.ns - opts_.window_ns || r.ns > l.ns + opts_.window_ns) continue;
    bool match = false;
    if (r.type == SHAUDIT_MSG_LINE)
      match = (r.text_len == l.text.size() && r.text_hash == h) ||
              (l.cut && r.prefix.compare(0, l.text.size(), l.text) == 0 && !l.text.empty());
    else if (r.type == SHAUDIT_MSG_NONCMD && p.have_key)
      match = r.input_len == l.text.size() &&
              r.input_hash == shaudit_siphash(p.hash_key, l.text.data(), l.text.size());
    if (match) {
      r.used = true;
      return true;
    }
  }
  return push_input_bypass(
      "unreported_input", l, l.comm, l.text, l.cut, command_for(l.pid, l.ppid),
      fmt::format("{} (pid {}) read this line from its terminal; no interposer reported it", l.comm,
                  l.pid));
}

// A line a shell read from its terminal that no report accounts for (text: what it read).
bool CrossCheck::push_input_bypass(const char* kind, const KEvent& k, const std::string& exe,
                                   const std::string& text, bool cut, const std::string& command,
                                   std::string evidence, std::string_view before) {
  stats_.bypasses.fetch_add(1, std::memory_order_relaxed);
  json::Object b;
  b["type"] = record::kBypass;
  b["kind"] = kind;
  b["severity"] = "high";
  b["pid"] = static_cast<int64_t>(k.pid);
  b["uid"] = static_cast<int64_t>(k.uid);
  if (!k.session.empty()) b["session"] = k.session;
  record::set_bytes(b, "exe", exe);
  record::set_bytes(b, "text", redact_text(opts_.redactor, text, b, before));
  if (cut) b["truncated"] = true;
  b["argv"] = json::Array{};
  b["evidence"] = std::move(evidence);
  if (!command.empty()) b["command"] = command;
  return q_.push(std::move(b));
}

// An exec report whose window passed with no kernel exec claiming it.
bool CrossCheck::decide_held(Held& h) {
  if (h.matched) return true;
  // A failed attempt (the exec system call returned an error) by the reporter, or by a child
  // it spawned, of the reported path: recorded as the report said, with the kernel's result.
  for (const Failed& f : failed_) {
    bool mine = f.pid == h.pid || (h.spawn && f.ppid == h.pid);
    // (execvp tries each PATH directory: compared by the file's name.)
    auto base = [](std::string_view p) {
      auto slash = p.rfind('/');
      return slash == std::string_view::npos ? p : p.substr(slash + 1);
    };
    if (mine && f.ns >= h.ns - opts_.window_ns - kSlackNs && f.ns <= h.ns + opts_.window_ns &&
        (base(f.filename) == base(h.path) ||
         (!h.argv.empty() && base(f.filename) == base(h.argv[0])))) {
      h.rec["failed"] = true;
      h.rec["result"] = static_cast<int64_t>(f.result);
      return q_.push(std::move(h.rec));
    }
  }
  auto it = procs_.find(h.pid);
  // A process the kernel does not follow, or a time whose kernel events were not all
  // delivered: nothing to check against; written as reported, and said so.
  if (!follows(h.pid) || lost_between(h.ns - opts_.window_ns - kSlackNs, h.ns + kSlackNs)) {
    h.rec["unchecked"] = true;
    return q_.push(std::move(h.rec));
  }
  (void)it;
  return push_bypass("forged_report", "high", nullptr, h.pid, h.session,
                     fmt::format("pid {} reported an exec of {} that the kernel never saw (no exec "
                                 "with that argv, no failed attempt)",
                                 h.pid, h.path.empty() ? std::string("(no path)") : h.path),
                     &h.argv, &h.path);
}

bool CrossCheck::flush_capacity_loss(int64_t now) {
  if (over_capacity_.empty() || now - capacity_flushed_ns_ < 1'000'000'000) return true;
  capacity_flushed_ns_ = now;
  for (const auto& [uid, n] : over_capacity_) {
    json::Object loss;
    loss["type"] = record::kLoss;
    loss["cause"] = "crosscheck_capacity";
    loss["uid"] = static_cast<int64_t>(uid);
    loss["unchecked"] = static_cast<int64_t>(n);
    loss["evidence"] = fmt::format(
        "uid {} had more exec reports waiting for the kernel than its share ({} bytes): {} were "
        "written unchecked",
        uid, opts_.held_bytes_per_uid, n);
    stats_.loss_records.fetch_add(1, std::memory_order_relaxed);
    if (!q_.push(std::move(loss))) return false;
  }
  over_capacity_.clear();
  return true;
}

bool CrossCheck::tick(int64_t now) {
  measure_clocks();
  release(now >= INT64_MAX / 2);
  auto unindex = [](auto& index, pid_t key, const auto* item) {
    auto it = index.find(key);
    if (it == index.end()) return;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), item), v.end());
    if (v.empty()) index.erase(it);
  };
  if (!flush_fresh()) return false;
  while (!execs_.empty() && execs_.front().ns + opts_.window_ns <= now) {
    if (!decide_exec(execs_.front())) return false;
    unindex(execs_by_pid_, execs_.front().pid, &execs_.front());
    unindex(execs_by_ppid_, execs_.front().ppid, &execs_.front());
    execs_.pop_front();
  }
  while (!lines_.empty() && lines_.front().ns + opts_.window_ns <= now) {
    if (!decide_line(lines_.front())) return false;
    lines_.pop_front();
  }
  while (!captures_.empty() && captures_.front().ns + opts_.window_ns <= now) {
    if (!decide_capture(captures_.front())) return false;
    captures_.pop_front();
  }
  while (!inputs_.empty() && inputs_.front().ns + opts_.window_ns + kSlackNs <= now) {
    TtyLine& l = inputs_.front();
    // A process that reports its lines whose report is not here yet (a loaded machine: the
    // reporter not scheduled, shauditd behind on its sockets): up to one more window.
    if (!l.covered && now < l.ns + 2 * opts_.window_ns && awaits_report(l)) break;
    if (!decide_input(l)) return false;
    inputs_.pop_front();
  }
  // Held reports are in order of receipt (shauditd's clock): the head is always the first due.
  while (!held_.empty() && held_.front().ns + opts_.window_ns + kSlackNs <= now) {
    Held& h = held_.front();
    auto it = held_bytes_.find(h.uid);
    if (it != held_bytes_.end() && (it->second -= std::min(it->second, h.bytes)) == 0)
      held_bytes_.erase(it);
    if (!decide_held(h)) return false;
    unindex(held_by_pid_, h.pid, &h);
    held_.pop_front();
  }
  while (!failed_.empty() && failed_.front().ns < now - 4 * opts_.window_ns) failed_.pop_front();
  while (!losses_.empty() && losses_.front().second < now - 20 * opts_.window_ns)
    losses_.pop_front();
  if (!flush_capacity_loss(now)) return false;
  // Forget processes the kernel saw exit (once nothing can refer to them), and, past a bound,
  // those nobody asked about for a while.
  int64_t keep = 4 * opts_.window_ns + kKeepExtraNs;
  if (now - pruned_ns_ > opts_.window_ns) {
    pruned_ns_ = now;
    for (auto it = procs_.begin(); it != procs_.end();) {
      const Proc& p = it->second;
      int64_t last = std::max(p.fork_ns, p.exit_ns);
      last = std::max(last, p.last_exec_ns);
      if (!p.reports.empty()) last = std::max(last, p.reports.back().ns);
      if (p.input && p.input->pending()) last = now;  // a line still being typed
      bool gone = p.exit_ns && p.exit_ns < now - keep;
      bool stale = procs_.size() > 16384 && last < now - 10 * opts_.window_ns && !p.followed;
      if (gone || stale) {
        for (const Report& r : p.reports) prefix_bytes_ -= std::min(prefix_bytes_, r.prefix.size());
        it = procs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------- terminal input

namespace {

// Programs that read commands: their own lines are kept even when read with echo off.
bool shell_named(std::string_view exe) {
  auto slash = exe.rfind('/');
  std::string_view b = slash == std::string_view::npos ? exe : exe.substr(slash + 1);
  static constexpr std::string_view kShells[] = {"sh",    "dash", "bash", "rbash",  "zsh",  "ksh",
                                                 "ksh93", "mksh", "lksh", "posh",   "yash", "fish",
                                                 "tcsh",  "csh",  "ash",  "busybox"};
  return std::find(std::begin(kShells), std::end(kShells), b) != std::end(kShells);
}

std::string base_of(const std::string& exe) {
  auto slash = exe.rfind('/');
  return slash == std::string::npos ? exe : exe.substr(slash + 1);
}

}  // namespace

// The kernel saw the genuine interposer initialise in the process's current image.
bool CrossCheck::image_hooked(const Proc& p) const {
  return !p.hooked.empty() && (p.execs.empty() || p.hooked.back() > p.execs.back());
}

// The process's lines are reported by its interposer: an interactive shell the interposer
// captures (its hello says so) in an image that carries the genuine interposer (the kernel
// says so), or a readline program (SHAUDIT_HELLO_REPL).
bool CrossCheck::exact_capable(const Proc& p) const {
  if (!image_hooked(p) || !p.hello_ns || p.hello_ns < p.last_exec_ns - kSlackNs) return false;
  bool shell = (p.hello_flags & SHAUDIT_HELLO_SHELL) && (p.hello_flags & SHAUDIT_HELLO_INTERACTIVE);
  return shell || (p.hello_flags & SHAUDIT_HELLO_REPL);
}

void CrossCheck::on_input(const KEvent& k, const sa_input_event* e, size_t size, Proc& p) {
  std::string tty = cstr(e->tty, std::min<size_t>(e->tty_len, sizeof e->tty));
  bool canonical = e->lflag & ICANON, echo = e->lflag & ECHO;
  // (A password prompt's read, canonical with echo off, does not make a program one whose
  // lines are uncaptured: what it reads is never recorded anyway.)
  if (!p.input_checked && !(canonical && !echo)) {
    p.input_checked = true;
    CaptureCheck c;
    static_cast<KEvent&>(c) = k;
    c.tty = tty;
    c.exe = p.exe;
    c.image = p.execs.empty() ? 0 : p.execs.back();
    c.command = command_for(k.pid, k.ppid);  // what it was started for
    captures_.push_back(std::move(c));
  }
  if (!p.input) p.input = std::make_unique<TtyLineEditor>();
  size_t n = std::min<size_t>(e->len, size - offsetof(sa_input_event, data));
  std::vector<TtyLineEditor::Line> done;
  p.input->feed(std::string_view(e->data, n), canonical, echo, done);
  for (auto& l : done) queue_input(p, k, std::move(l), tty, false);
}

void CrossCheck::end_input(Proc& p, const KEvent& k) {
  if (!p.input || !p.input->pending()) return;
  TtyLineEditor::Line l = p.input->take_partial();
  if (!l.text.empty()) queue_input(p, k, std::move(l), {}, true);
}

void CrossCheck::queue_input(Proc& p, const KEvent& k, TtyLineEditor::Line l,
                             const std::string& tty, bool unterminated) {
  TtyLine t;
  static_cast<KEvent&>(t) = k;
  t.line = std::move(l);
  t.tty = tty;
  t.exe = p.exe.empty() ? t.comm : p.exe;
  t.hooked = image_hooked(p);
  t.exact_capable = exact_capable(p);
  t.unterminated = unterminated;
  // A program no interposer reports: this line is its current command from now on, in the
  // kernel's own order (what it forks next runs for it).
  // (Not for an image that reports its own lines, hello or not: its report names the command,
  // and may have been read before this line's bytes.)
  bool reports_lines = t.hooked && p.reported_ns && p.reported_ns >= p.last_exec_ns;
  if (((!t.exact_capable && !reports_lines) || p.silent_shell) &&
      (!t.line.text.empty() || t.line.unknown_keys)) {
    t.command = rebuilt_command(k.pid, ++p.input_lines);
    t.prev_command = p.command;
    p.prev_command = p.command;
    p.command = t.command;
    p.command_ns = 0;  // set in the kernel's own order
    p.rebuilt_no = p.input_lines;
    p.rebuilt_hash = text_hash(t.line.text);
  }
  inputs_.push_back(std::move(t));
  if (p.last_input) p.last_input->next_ns = k.ns;
  p.last_input = &inputs_.back();
}

bool CrossCheck::decide_capture(const CaptureCheck& c) {
  Proc& p = procs_[c.pid];
  if ((p.execs.empty() ? 0 : p.execs.back()) != c.image) return true;  // it exec'd since
  if (exact_capable(p) || p.capture_said) return true;
  p.capture_said = true;
  std::string why;
  if (!image_hooked(p))
    why = "no interposer in this image (a static binary, or LD_PRELOAD removed)";
  else if (p.hello_flags & SHAUDIT_HELLO_SHELL)
    why =
        "a shell reading its terminal but not as an interactive shell (a script or -s from "
        "the terminal, or the shell's input is a pipe)";
  else
    why =
        "a program that reads its terminal itself: the interposer captures the lines of "
        "bash, zsh, dash and the shells and readline programs it knows, not this one's";
  return write_capture(c, why);
}

// Who read the terminal, as the kernel says: the block a capture record and a rebuilt line's
// command record share.
void CrossCheck::kernel_identity(json::Object& r, const KEvent& e, const std::string& tty) {
  r["pid"] = static_cast<int64_t>(e.pid);
  r["ppid"] = static_cast<int64_t>(e.ppid);
  r["uid"] = static_cast<int64_t>(e.uid);
  if (opts_.user_of)
    if (std::string u = opts_.user_of(e.uid); !u.empty()) r["user"] = u;
  if (!e.session.empty()) r["session"] = e.session;
  if (!tty.empty()) r["tty"] = tty;
}

bool CrossCheck::write_capture(const CaptureCheck& c, const std::string& why) {
  Proc& p = procs_[c.pid];
  bool hooked = image_hooked(p);
  json::Object r;
  r["type"] = record::kCapture;
  r["capture"] = "none";
  kernel_identity(r, c, c.tty);
  record::set_bytes(r, "exe", c.exe.empty() ? c.comm : c.exe);
  record::set_bytes(r, "comm", c.comm);
  r["interposer"] = hooked;
  r["reason"] = why +
                "; what it reads from the terminal is recorded as the kernel saw it, "
                "rebuilt into lines (reconstructed: true)";
  if (!c.command.empty()) r["command"] = c.command;
  return q_.push(std::move(r));
}

// The line came from an image that reports its lines, and no report accounts for it yet.
bool CrossCheck::awaits_report(const TtyLine& l) {
  Proc& p = procs_[l.pid];
  if (!l.hooked || !(l.exact_capable || exact_capable(p)) || l.line.text.empty()) return false;
  int64_t until = l.next_ns ? l.next_ns : INT64_MAX;
  for (const Report& r : p.reports)
    if (!r.input_used && r.ns >= l.ns - kSlackNs && (r.ns < until || r.receipt_time)) return false;
  return true;
}

bool CrossCheck::decide_input(TtyLine& l) {
  Proc& p = procs_[l.pid];
  const TtyLineEditor::Line& line = l.line;
  if (p.last_input == &l) p.last_input = nullptr;
  if (line.text.empty() && !line.unknown_keys) return true;  // Enter alone
  // Accounted for: the kernel's readline/zle probe saw this line returned (covered), or the
  // genuine interposer of that image reported a line or non-command input after its Enter and
  // before the next line's (reports are timed by the kernel when sent: SO_TIMESTAMPNS; one
  // queued before shauditd accepted its connection is known only to be sent by its receipt).
  if (l.covered) return true;
  // Its hello may have been read after the line (a loaded machine).
  if (!l.exact_capable && l.hooked && exact_capable(p)) l.exact_capable = true;
  int64_t until = l.next_ns ? l.next_ns : INT64_MAX;
  if (l.hooked)
    for (Report& r : p.reports)
      if (!r.input_used && r.ns >= l.ns - kSlackNs && (r.ns < until || r.receipt_time)) {
        r.input_used = true;
        return true;
      }
  bool shell = l.exact_capable || shell_named(l.exe);
  // Typed while echo was off in canonical mode: a password prompt's answer, never recorded;
  // a shell's own command line read so is still a command.
  if (line.canonical && line.echo_off && !shell) return true;
  // A reporting shell's `read` builtin (one byte per read, in canonical mode): its input, not
  // a command, as the interposer treats it.
  if (l.exact_capable && line.canonical && line.one_byte) return true;
  // A shell the interposer knows that never reported a line in this image: its line editor
  // reads keys the interposer does not follow (yash, busybox ash as Alpine's /bin/sh). Named
  // once, like any program it does not capture; not a bypass. One that did report lines and
  // now read one it did not: a bypass (a terminal mode its hook does not see).
  bool never_reported = !p.reported_ns || p.reported_ns < p.last_exec_ns;
  bool bypass = l.exact_capable && !never_reported;
  if (l.exact_capable && never_reported && !p.capture_said) {
    p.capture_said = true;
    p.silent_shell = true;  // its next lines name the commands they start
    CaptureCheck c;
    static_cast<KEvent&>(c) = l;
    c.tty = l.tty;
    c.exe = l.exe;
    c.command = command_for(l.pid, l.ppid);
    c.image = p.execs.empty() ? 0 : p.execs.back();
    if (!write_capture(c,
                       "a shell whose line editor reads keys the interposer does not follow: "
                       "it reported none of its lines"))
      return false;
  }
  json::Object r;
  r["type"] = record::kCommand;
  kernel_identity(r, l, l.tty);
  r["shell"] = base_of(l.exe);
  std::string command = l.command.empty() ? rebuilt_command(l.pid, ++p.input_lines) : l.command;
  r["command"] = command;
  bool redacted_before = r.count("redacted") > 0;
  // A command over several lines: each is redacted in the context of the ones before it.
  std::string before = std::move(p.open_lines);
  p.open_lines.clear();
  record::set_bytes(r, "text", redact_text(opts_.redactor, line.text, r, before));
  if (std::string all = before.empty() ? line.text : before + '\n' + line.text;
      all.size() <= 64 * 1024 && line_continues(all))
    p.open_lines = std::move(all);
  // The raw keys carry what the redaction took out of the text: kept only when it took nothing.
  if (r.count("redacted") == redacted_before) record::set_bytes(r, "keys", line.keys);
  r["reconstructed"] = true;
  if (!line.canonical) r["raw_mode"] = true;
  if (line.unknown_keys) r["unknown_keys"] = true;
  if (line.echo_off) r["echo_off"] = true;
  if (line.cut) r["truncated"] = true;
  if (l.unterminated) r["unterminated"] = true;
  if (!q_.push(std::move(r))) return false;
  if (!bypass) return true;
  return push_input_bypass(
      "uncaptured_input", l, l.exe, line.text, line.cut, command,
      fmt::format("{} (pid {}) read a line from its terminal that its interposer did not report (a "
                  "terminal mode its hook does not see); recorded from the kernel as command {}",
                  base_of(l.exe), l.pid, command),
      before);
}

int CrossCheck::derived_status(pid_t shell, const std::string& command) const {
  auto it = procs_.find(shell);
  if (it == procs_.end() || command.empty() || it->second.child_command != command) return -1;
  return it->second.child_status;
}

bool CrossCheck::flush() {
  return tick(INT64_MAX / 2);
}

}  // namespace shaudit::daemon
