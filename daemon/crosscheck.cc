#include "crosscheck.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "reports.h"
#include "shaudit/record.h"
#include "shaudit/siphash.h"
#include "shaudit/zsh_meta.h"

namespace shaudit::daemon {
namespace {

constexpr int64_t kSlackNs = 20'000'000;  // clock and scheduling slack between the two sides
// Reports kept per process: all those a kernel event may still be matched with (a pasted script
// or a fast typist sends hundreds within one window), within a memory bound.
constexpr size_t kMaxReportsPerProc = 4096;
constexpr int64_t kKeepExtraNs = 2'000'000'000;  // late ring-buffer delivery

int64_t clock_ns(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
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

// Kernel events carry boot time, reports the sender's realtime clock. The offset between the
// two moves only when the realtime clock is set: measured again at every tick, between two
// boot-time reads so its error is a fraction of a microsecond.
void CrossCheck::measure_clocks() {
  int64_t b0 = clock_ns(CLOCK_BOOTTIME);
  int64_t r = clock_ns(CLOCK_REALTIME);
  int64_t b1 = clock_ns(CLOCK_BOOTTIME);
  boot_to_real_ = r - (b0 + (b1 - b0) / 2);
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

void CrossCheck::on_kernel(const void* data, size_t size) {
  sa_event_hdr h;
  if (size < sizeof h) return;
  std::memcpy(&h, data, sizeof h);
  int64_t ns = to_realtime(h.ts_ns);
  pid_t pid = static_cast<pid_t>(h.pid);
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
      size_t n = std::min<size_t>(e->argv_len, size - offsetof(sa_exec_event, argv));
      std::string_view all(e->argv, n);
      size_t start = 0;
      while (start < all.size()) {
        size_t end = all.find('\0', start);
        if (end == std::string_view::npos) end = all.size();
        k.argv.emplace_back(all.substr(start, end - start));
        start = end + 1;
      }
      k.argv_hash = argv_hash(k.argv);
      k.id = ++execs_seen_;
      procs_[pid].execs.push_back(ns);
      execs_.push_back(std::move(k));
      break;
    }
    case SA_EV_ATTEMPT: {
      if (size < sizeof(sa_attempt_event)) return;
      const auto* e = static_cast<const sa_attempt_event*>(data);
      procs_[pid].failed.emplace_back(ns, cstr(e->filename, sizeof e->filename));
      break;
    }
    case SA_EV_FORK: {
      if (size < sizeof(sa_fork_event)) return;
      const auto* e = static_cast<const sa_fork_event*>(data);
      // The child's own reports may already be here (the socket can be read before the ring
      // buffer): keep those, drop what an earlier process with the same pid left.
      Proc& c = procs_[static_cast<pid_t>(e->child_pid)];
      while (!c.reports.empty() && c.reports.front().ns < ns - kSlackNs) c.reports.pop_front();
      c.execs.clear();
      c.failed.clear();
      c.parent = pid;
      c.fork_ns = ns;
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
      break;
    }
    default:
      break;
  }
}

void CrossCheck::on_report(pid_t pid, const wire::Message& m, const std::string& session) {
  Report r;
  r.ns = static_cast<int64_t>(m.sent_ns);
  r.type = m.type;
  r.seq = m.report_seq;
  Proc& p = procs_[pid];
  switch (m.type) {
    case SHAUDIT_MSG_EXEC: {
      auto argv = m.all(SHAUDIT_F_ARGV);
      r.argv_hash = argv_hash(argv);
      if (auto f = m.find(SHAUDIT_F_PATH)) r.path = std::string(f->data);
      r.spawn = m.flags & SHAUDIT_MSG_SPAWN;
      if (!r.spawn) {
        // A copy waits for its kernel exec; it names what was claimed should none come.
        reports_.push_back({pid, r, session});
        reports_.back().r.argv.assign(argv.begin(), argv.end());
      }
      break;
    }
    case SHAUDIT_MSG_LINE:
      if (auto f = m.find(SHAUDIT_F_TEXT)) r.text = std::string(f->data);
      break;
    case SHAUDIT_MSG_NONCMD:
      r.input_len = m.number(SHAUDIT_F_INPUT_LEN);
      r.input_hash = m.number(SHAUDIT_F_INPUT_HASH);
      if (auto f = m.find(SHAUDIT_F_HASH_KEY); f && f->data.size() == sizeof p.hash_key) {
        std::memcpy(p.hash_key, f->data.data(), sizeof p.hash_key);
        p.have_key = true;
      }
      break;
    default:
      break;
  }
  p.reports.push_back(std::move(r));
  // Reports too old to match any kernel event still to be decided are dropped, except the
  // newest of them: it still says the image carries the interposer (interposed_before).
  int64_t horizon = p.reports.back().ns - 4 * opts_.window_ns - kKeepExtraNs;
  while (p.reports.size() > 1 && p.reports[1].ns < horizon) p.reports.pop_front();
  if (p.reports.size() > kMaxReportsPerProc) p.reports.pop_front();
}

// Whether the image pid ran at time ns carried the interposer: it reported something since
// its last exec before ns; or, with no exec since its fork, its parent's image did at the fork.
bool CrossCheck::interposed_before(pid_t pid, int64_t ns, int depth) {
  auto it = procs_.find(pid);
  if (it == procs_.end() || depth > 16) return false;
  Proc& p = it->second;
  int64_t image_start = INT64_MIN;
  for (int64_t e : p.execs)
    if (e < ns) image_start = std::max(image_start, e);
  // Events lost since: an exec of this process may be among them (its image unknown).
  if (lost_between(image_start == INT64_MIN ? p.fork_ns : image_start, ns)) return false;
  for (const Report& r : p.reports)
    if (r.ns > image_start && r.ns < ns) return true;
  if (image_start == INT64_MIN && p.parent)
    return interposed_before(p.parent, p.fork_ns, depth + 1);
  return false;
}

bool CrossCheck::push_bypass(const char* kind, const char* severity, const KExec* e, pid_t pid,
                             const std::string& session, std::string evidence,
                             const std::vector<std::string>* argv, const std::string* exe) {
  stats_.bypasses.fetch_add(1, std::memory_order_relaxed);
  if (e && e->id != last_exec_recorded_) {
    last_exec_recorded_ = e->id;
    // The kernel's view of what ran, so the log holds it whatever the interposer said.
    json::Object x;
    x["type"] = record::kExec;
    x["source"] = "bpf";
    x["pid"] = static_cast<int64_t>(e->pid);
    x["ppid"] = static_cast<int64_t>(e->ppid);
    x["uid"] = static_cast<int64_t>(e->uid);
    if (e->loginuid != 4294967295u) x["loginuid"] = std::to_string(e->loginuid);
    if (e->sessionid != 4294967295u) x["audit_session"] = std::to_string(e->sessionid);
    if (!session.empty()) x["session"] = session;
    record::set_bytes(x, "path", e->filename);
    std::vector<std::string_view> kargv(e->argv.begin(), e->argv.end());
    record::set_argv(x, redact_argv(opts_.redactor, kargv, x));
    if (!e->tty.empty()) x["tty"] = e->tty;
    if (e->flags & SA_FLAG_SECUREEXEC) x["secure_exec"] = true;
    if (e->flags & SA_FLAG_ARGV_CUT) x["truncated"] = true;
    if (!q_.push(std::move(x))) return false;
  }
  json::Object b;
  b["type"] = record::kBypass;
  b["kind"] = kind;
  b["severity"] = severity;
  b["pid"] = static_cast<int64_t>(pid);
  if (!session.empty()) b["session"] = session;
  b["evidence"] = std::move(evidence);
  std::string command = command_of_ ? command_of_(pid, e ? e->ppid : 0) : std::string();
  if (!command.empty()) b["command"] = command;
  if (e) {
    b["ppid"] = static_cast<int64_t>(e->ppid);
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

bool CrossCheck::decide_exec(const KExec& e) {
  Proc& p = procs_[e.pid];
  // A hello belongs to the image that said it: the process's last exec before the hello.
  // (A static busybox execs a dynamic /bin/true in the same process: the hello is true's.)
  auto later_exec_before = [&](int64_t ns) {
    for (int64_t x : p.execs)
      if (x > e.ns && x <= ns) return true;
    return false;
  };
  // An exec report (by the process itself, or a spawn by its parent) that claims this exec.
  auto claims = [&](const Report& r, bool spawn) {
    return !r.used && r.type == SHAUDIT_MSG_EXEC && r.spawn == spawn && r.ns <= e.ns + kSlackNs &&
           r.ns >= e.ns - opts_.window_ns && (r.argv_hash == e.argv_hash || r.path == e.filename);
  };
  bool reported = false, hello = false;
  for (Report& r : p.reports) {
    if (r.used) continue;
    if (!reported && claims(r, false)) {
      r.used = true;
      reported = true;
    } else if (!hello && r.type == SHAUDIT_MSG_HELLO && r.seq == 1 && r.ns >= e.ns - kSlackNs &&
               r.ns <= e.ns + opts_.window_ns && !later_exec_before(r.ns)) {
      r.used = true;
      hello = true;
    }
  }
  // posix_spawn, system() and popen() exec in a new child through libc's internal execve: the
  // parent reported it (as a spawn) before the child existed.
  for (pid_t parent : {e.ppid, p.parent}) {
    if (reported || parent <= 0) break;
    auto it = procs_.find(parent);
    if (it == procs_.end()) continue;
    for (Report& r : it->second.reports)
      if (claims(r, true)) {
        r.used = true;
        reported = true;
        break;
      }
  }
  if (!reported && interposed_before(e.pid, e.ns))
    if (!push_bypass("unreported_exec", "high", &e, e.pid, e.session,
                     fmt::format("the kernel saw pid {} exec {}; its image carries the interposer "
                                 "but reported no such exec",
                                 e.pid, e.filename),
                     &e.argv))
      return false;
  if (!hello && !(e.flags & SA_FLAG_SECUREEXEC)) {
    bool allowed = std::find(opts_.allowlist.begin(), opts_.allowlist.end(), e.filename) !=
                   opts_.allowlist.end();
    if (!push_bypass("unhooked_process", allowed ? "low" : "high", &e, e.pid, e.session,
                     fmt::format("pid {} runs {} without the interposer: no hello within {} ms of "
                                 "the exec{}",
                                 e.pid, e.filename, opts_.window_ns / 1000000,
                                 allowed ? " (allowlisted)" : ""),
                     &e.argv))
      return false;
  }
  return true;
}

bool CrossCheck::decide_line(const KLine& l) {
  Proc& p = procs_[l.pid];
  for (Report& r : p.reports) {
    if (r.used || r.ns < l.ns - opts_.window_ns || r.ns > l.ns + opts_.window_ns) continue;
    bool match = false;
    if (r.type == SHAUDIT_MSG_LINE)
      match = r.text == l.text || (l.cut && r.text.compare(0, l.text.size(), l.text) == 0);
    else if (r.type == SHAUDIT_MSG_NONCMD && p.have_key)
      match = r.input_len == l.text.size() &&
              r.input_hash == shaudit_siphash(p.hash_key, l.text.data(), l.text.size());
    if (match) {
      r.used = true;
      return true;
    }
  }
  stats_.bypasses.fetch_add(1, std::memory_order_relaxed);
  json::Object b;
  b["type"] = record::kBypass;
  b["kind"] = "unreported_input";
  b["severity"] = "high";
  b["pid"] = static_cast<int64_t>(l.pid);
  b["uid"] = static_cast<int64_t>(l.uid);
  if (!l.session.empty()) b["session"] = l.session;
  b["exe"] = l.comm;
  record::set_bytes(b, "text", redact_text(opts_.redactor, l.text, b));  // what the shell read
  if (l.cut) b["truncated"] = true;
  b["argv"] = json::Array{};
  b["evidence"] = fmt::format(
      "{} (pid {}) read this line from its terminal; no interposer reported it", l.comm, l.pid);
  if (command_of_)
    if (std::string c = command_of_(l.pid, l.ppid); !c.empty()) b["command"] = c;
  return q_.push(std::move(b));
}

bool CrossCheck::decide_report(pid_t pid, const Report& r, const std::string& session) {
  auto it = procs_.find(pid);
  // Only processes the kernel follows can be checked.
  if (it == procs_.end() || (it->second.parent == 0 && it->second.execs.empty())) return true;
  Proc& p = it->second;
  for (int64_t e : p.execs)
    if (e >= r.ns - kSlackNs && e <= r.ns + opts_.window_ns) return true;
  for (const auto& [ns, name] : p.failed)
    if (ns >= r.ns - kSlackNs && ns <= r.ns + opts_.window_ns) return true;
  // The kernel's events of that time were not all delivered (a loss record says so): the
  // exec may be among them.
  if (lost_between(r.ns - kSlackNs, r.ns + opts_.window_ns)) return true;
  // exe and argv: what the report claimed.
  return push_bypass("forged_report", "high", nullptr, pid, session,
                     fmt::format("pid {} reported an exec of {} that the kernel never saw", pid,
                                 r.path.empty() ? std::string("(no path)") : r.path),
                     &r.argv, &r.path);
}

bool CrossCheck::tick(int64_t now) {
  measure_clocks();
  while (!execs_.empty() && execs_.front().ns + opts_.window_ns <= now) {
    if (!decide_exec(execs_.front())) return false;
    execs_.pop_front();
  }
  while (!lines_.empty() && lines_.front().ns + opts_.window_ns <= now) {
    if (!decide_line(lines_.front())) return false;
    lines_.pop_front();
  }
  while (!reports_.empty() && reports_.front().r.ns + opts_.window_ns <= now) {
    const PendingReport& pr = reports_.front();
    if (!decide_report(pr.pid, pr.r, pr.session)) return false;
    reports_.pop_front();
  }
  while (!losses_.empty() && losses_.front().second < now - 20 * opts_.window_ns)
    losses_.pop_front();
  // Forget processes nobody asked about for a while.
  if (procs_.size() > 4096) {
    for (auto it = procs_.begin(); it != procs_.end();) {
      int64_t last = it->second.fork_ns;
      if (!it->second.execs.empty()) last = std::max(last, it->second.execs.back());
      if (!it->second.reports.empty()) last = std::max(last, it->second.reports.back().ns);
      it = last < now - 10 * opts_.window_ns ? procs_.erase(it) : std::next(it);
    }
  }
  return true;
}

bool CrossCheck::flush() {
  return tick(INT64_MAX / 2);
}

}  // namespace shaudit::daemon
