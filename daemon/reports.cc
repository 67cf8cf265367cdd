// SPDX-License-Identifier: Apache-2.0
#include "reports.h"

#include <fmt/format.h>
#include <pwd.h>

#include <algorithm>
#include <cstring>

#include "shaudit/record.h"
#include "shaudit/wire_encode.h"

namespace shaudit::daemon {
namespace {

constexpr size_t kMaxTrackedProcs = 65536;
constexpr int kMaxAncestry = 64;

const char* input_kind(uint64_t k) {
  switch (k) {
    case SHAUDIT_INPUT_READ_E:
      return "read_e";
    case SHAUDIT_INPUT_VARED:
      return "vared";
    case SHAUDIT_INPUT_ECHO_OFF:
      return "echo_off";
    case SHAUDIT_INPUT_EDITOR_LINE:
      return "editor_line";
    default:
      return "other";
  }
}

}  // namespace

std::string session_reply(const std::string& session, const std::string& error) {
  char buf[1024];
  shaudit_enc e;
  shaudit_enc_begin(&e, buf, sizeof buf, SHAUDIT_MSG_SESSION_REPLY);
  if (error.empty())
    shaudit_enc_str(&e, SHAUDIT_F_SESSION, session.c_str());
  else
    shaudit_enc_str(&e, SHAUDIT_F_ERROR, error.c_str());
  size_t n = shaudit_enc_finish(&e, 1, static_cast<uint64_t>(record::now_ns()));
  return std::string(buf, n);
}

ReportHandler::ReportHandler(RecordQueue& q, Stats& stats, SessionRegistry& sessions,
                             std::function<void(int)> watch, std::function<void(int)> unwatch)
    : q_(q),
      stats_(stats),
      sessions_(sessions),
      watch_(std::move(watch)),
      unwatch_(std::move(unwatch)) {}

const std::string& ReportHandler::user_name(uid_t uid) {
  auto it = users_.find(uid);
  if (it != users_.end()) return it->second;
  struct passwd pw, *res = nullptr;
  char buf[4096];
  std::string name;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) name = res->pw_name;
  if (users_.size() > 4096) users_.clear();
  return users_.emplace(uid, std::move(name)).first->second;
}

bool ReportHandler::push(json::Object r) {
  return q_.push(std::move(r));
}

Proc& ReportHandler::proc(pid_t pid, const wire::Message& m, uint64_t ino) {
  uint64_t seq = m.report_seq;
  auto it = procs_.find(pid);
  bool found = it != procs_.end();
  // With a pidfd from the kernel, its inode (never reused) says whether this is the process the
  // entry was made for: a pid reused by another process (another user's, after enough forks) is
  // a new entry, whatever its report numbers say.
  bool same = found && (!ino || it->second.ino == ino);
  if (ino && same && it->second.reported && seq != 1) return it->second;
  // First report from this process, a new image (exec restarts report numbers at 1), or no
  // pidfd (then the start time is read for every message): the kernel's facts. A process whose
  // fork the kernel side reported (matched by that inode) is known without reading /proc; one
  // that is gone from /proc already is known from those events too.
  ProcFacts f;
  bool kernel_first = ino && cc_ && m.type != SHAUDIT_MSG_HELLO && !same;
  if (!(kernel_first && cc_->kernel_facts(pid, ino, f))) {
    f = read_proc_facts(pid);
    if (!f.ok && ino && cc_) cc_->kernel_facts(pid, ino, f);
  }
  // Without a pidfd the same start time means the same process (exec keeps it).
  if (!ino) same = found && (!f.ok || it->second.start_time == f.start_time);
  if (!ino && same && it->second.reported && seq != 1) return it->second;
  if (!same) {
    if (procs_.size() >= kMaxTrackedProcs) procs_.clear();
    Proc fresh;
    fresh.ino = ino;
    fresh.start_time = f.start_time;
    // A child inherits the typed command its parent runs for.
    auto parent = procs_.find(f.ppid);
    if (parent != procs_.end()) fresh.command = parent->second.command;
    it = procs_.insert_or_assign(pid, std::move(fresh)).first;
  }
  Proc& p = it->second;
  if (f.ok) {
    p.ppid = f.ppid;
    p.loginuid = f.loginuid;
    p.audit_session = f.audit_session;
    p.gone = false;
  } else if (p.ppid == 0) {
    // Already exited (a short-lived command is often gone before its report is read): its
    // own word for its parent is all there is; records say so with "ppid_reported".
    p.ppid = static_cast<pid_t>(m.number(SHAUDIT_F_PPID));
    p.gone = true;
    auto parent = procs_.find(p.ppid);
    if (parent != procs_.end() && p.command.empty()) p.command = parent->second.command;
  }
  if (!p.reported || seq == 1) p.last_seq = seq - 1;  // the first report sets the baseline
  p.reported = true;
  return p;
}

Proc* ReportHandler::ancestor_facts(pid_t pid) {
  auto it = procs_.find(pid);
  if (it != procs_.end()) return &it->second;
  ProcFacts f = read_proc_facts(pid);
  if (!f.ok) return nullptr;
  Proc p;
  p.start_time = f.start_time;
  p.ppid = f.ppid;
  p.loginuid = f.loginuid;
  p.audit_session = f.audit_session;
  return &procs_.insert_or_assign(pid, std::move(p)).first->second;
}

std::string ReportHandler::command_of(pid_t pid, pid_t ppid) {
  if (auto it = procs_.find(pid); it != procs_.end() && !it->second.command.empty())
    return it->second.command;
  pid_t cur = ppid;
  for (int hop = 0; hop < kMaxAncestry && cur > 1; ++hop) {
    auto it = procs_.find(cur);
    if (it == procs_.end()) break;
    if (!it->second.command.empty()) return it->second.command;
    cur = it->second.ppid;
  }
  return {};
}

bool ReportHandler::is_self_or_ancestor(pid_t pid, pid_t candidate) {
  pid_t cur = pid;
  for (int hop = 0; hop < kMaxAncestry && cur > 1; ++hop) {
    if (cur == candidate) return true;
    Proc* a = ancestor_facts(cur);
    if (!a) return false;
    cur = a->ppid;
  }
  return false;
}

// Membership follows the fork tree from a session's entry; the kernel audit session id
// (set by pam_loginuid) is the fallback for processes whose ancestry is gone.
const std::string& ReportHandler::resolve_session(pid_t pid, Proc& p) {
  if (!p.session.empty() && sessions_.find(p.session)) return p.session;
  p.session.clear();
  pid_t cur = pid;
  uint64_t start = p.start_time;
  for (int hop = 0; hop < kMaxAncestry && cur > 1; ++hop) {
    if (Session* s = sessions_.by_entry(cur, start)) {
      p.session = s->id;
      return p.session;
    }
    Proc* a = cur == pid ? &p : ancestor_facts(cur);
    if (!a) break;
    if (cur != pid && !a->session.empty() && sessions_.find(a->session)) {
      p.session = a->session;
      return p.session;
    }
    cur = a->ppid;
    Proc* next = ancestor_facts(cur);
    start = next ? next->start_time : 0;
  }
  if (Session* s = sessions_.by_audit_session(p.audit_session)) p.session = s->id;
  // Its ancestry is gone from /proc: the session the kernel followed it in.
  if (p.session.empty() && cc_ && p.ino)
    if (std::string k = cc_->kernel_session(pid, p.ino); !k.empty() && sessions_.find(k))
      p.session = k;
  return p.session;
}

void ReportHandler::base_fields(json::Object& r, const wire::Message& m, const ucred& cred,
                                const Proc& p) {
  r["pid"] = static_cast<int64_t>(cred.pid);
  r["ppid"] = static_cast<int64_t>(p.ppid);
  if (p.gone) r["ppid_reported"] = true;
  r["uid"] = static_cast<int64_t>(cred.uid);
  r["gid"] = static_cast<int64_t>(cred.gid);
  const std::string& user = user_name(cred.uid);
  if (!user.empty()) r["user"] = user;
  r["report_seq"] = static_cast<int64_t>(m.report_seq);
  if (!p.loginuid.empty()) r["loginuid"] = p.loginuid;
  if (!p.audit_session.empty()) r["audit_session"] = p.audit_session;
  if (!p.session.empty()) r["session"] = p.session;
  if (auto f = m.find(SHAUDIT_F_CWD)) record::set_bytes(r, "cwd", f->data);
  if (auto f = m.find(SHAUDIT_F_TTY)) record::set_bytes(r, "tty", f->data);
}

// The fields of an implicit session's session_start (counted as opened).
json::Object ReportHandler::implicit_start(const Session& opened, pid_t pid, pid_t ppid) {
  stats_.sessions_opened.fetch_add(1, std::memory_order_relaxed);
  json::Object r;
  r["type"] = record::kSessionStart;
  r["session"] = opened.id;
  r["user"] = opened.user;
  r["uid"] = opened.uid;
  r["service"] = "implicit";
  r["pid"] = static_cast<int64_t>(pid);
  r["ppid"] = static_cast<int64_t>(ppid);
  return r;
}

bool ReportHandler::open_implicit(pid_t pid, Proc& p, uid_t uid, const char* why,
                                  const std::vector<std::string_view>* argv) {
  Session s;
  s.user = user_name(uid);
  s.uid = uid;
  s.service = "implicit";
  s.tty = p.tty;
  s.audit_session = p.audit_session;
  s.loginuid = p.loginuid;
  s.entry_pid = pid;
  s.entry_start = p.start_time;
  s.implicit = true;
  Session& opened = sessions_.open(std::move(s));
  if (opened.pidfd >= 0) watch_(opened.pidfd);
  if (track_) track_(pid, opened.id);
  p.session = opened.id;
  json::Object r = implicit_start(opened, pid, p.ppid);
  r["reason"] = why;
  if (!p.exe.empty()) r["exe"] = p.exe;
  if (!p.tty.empty()) r["tty"] = p.tty;
  if (!p.audit_session.empty()) r["audit_session"] = p.audit_session;
  if (!p.loginuid.empty()) r["loginuid"] = p.loginuid;
  if (argv) record::set_argv(r, redact_argv(redactor_, *argv, r));
  if (containers_) {
    if (auto c = containers_->of_pid(pid)) r["container"] = std::move(*c);
  }
  return push(std::move(r));
}

bool ReportHandler::open_runtime_session(const RuntimeExec& x, bool& stop) {
  std::string id = CrossCheck::session_of(x.key);
  if (sessions_.find(id)) return true;  // a key the kernel gave twice: already open
  ProcFacts f = read_proc_facts(x.pid);
  std::optional<json::Object> container;
  if (containers_) {
    container = f.ok ? containers_->of_pid(x.pid) : std::nullopt;
    if (!container) container = containers_->of_pid_namespace(x.pidns_ino);
  }
  // Only a container whose runtime's state is in container_state_dirs (a cgroup path alone
  // names no runtime: another engine's container, or a look-alike).
  const std::string* runtime = container ? json::get_string(*container, "runtime") : nullptr;
  if (!runtime || *runtime == "unknown") return false;
  Session s;
  s.id = id;
  s.user = user_name(x.uid);
  s.uid = x.uid;
  s.service = "implicit";
  s.tty = x.tty;
  s.audit_session = f.audit_session;
  s.loginuid = f.loginuid;
  s.entry_pid = x.pid;
  s.entry_start = f.ok ? f.start_time : 0;
  s.implicit = true;
  Session& opened = sessions_.open(std::move(s));
  if (opened.id != id) {  // taken by another session: not this one's key
    sessions_.close(opened.id);
    return false;
  }
  if (opened.pidfd >= 0 && f.ok)
    watch_(opened.pidfd);
  else
    gone_sessions_.push_back(opened.id);  // it ran and exited before its exec was read
  if (cc_) cc_->on_track(x.pid, false);   // the kernel follows it already (since its exec)
  procs_[x.pid].session = opened.id;
  json::Object r = implicit_start(opened, x.pid, x.ppid);
  r["vpid"] = static_cast<int64_t>(x.vpid);
  record::set_bytes(r, "exe", x.exe);
  std::vector<std::string_view> argv(x.argv.begin(), x.argv.end());
  record::set_argv(r, redact_argv(redactor_, argv, r));
  if (!x.tty.empty()) r["tty"] = x.tty;
  if (!opened.audit_session.empty()) r["audit_session"] = opened.audit_session;
  if (!opened.loginuid.empty()) r["loginuid"] = opened.loginuid;
  r["container"] = std::move(*container);
  r["reason"] = "started in a container by its runtime";
  if (!push(std::move(r))) stop = true;
  return true;
}

bool ReportHandler::end_gone_sessions() {
  std::vector<std::string> ids;
  ids.swap(gone_sessions_);
  for (const auto& id : ids)
    if (!end_session(id, "entry_exit")) return false;
  return true;
}

bool ReportHandler::end_session(const std::string& id, const char* reason) {
  if (Session* live = sessions_.find(id); live && live->pidfd >= 0) unwatch_(live->pidfd);
  auto s = sessions_.close(id);
  if (!s) return true;
  stats_.sessions_closed.fetch_add(1, std::memory_order_relaxed);
  json::Object r;
  r["type"] = record::kSessionEnd;
  r["session"] = s->id;
  r["user"] = s->user;
  r["uid"] = s->uid;
  r["service"] = s->service;
  r["reason"] = reason;
  r["duration_ns"] = record::now_ns() - s->start_ns;
  r["commands"] = static_cast<int64_t>(s->commands);
  r["failed_commands"] = static_cast<int64_t>(s->failed);
  return push(std::move(r));
}

bool ReportHandler::entry_exited(int pidfd) {
  Session* s = sessions_.by_pidfd(pidfd);
  if (!s) return true;
  std::string id = s->id;
  // Its last command's status, when the shell reported none (dash's `exit` forks nothing:
  // none; a command that ended the shell, say `exec false`, has its own exit).
  if (auto it = procs_.find(s->entry_pid); it != procs_.end() && it->second.unsettled)
    if (!derive_status(s->entry_pid, it->second)) return false;
  return end_session(id, "entry_exit");
}

bool ReportHandler::session_open(const wire::Message& m, const ucred& cred, uint64_t ino,
                                 std::string& reply) {
  if (cred.uid != 0) {
    stats_.rejected[kNotRoot].fetch_add(1, std::memory_order_relaxed);
    reply = session_reply("", "only root may open a session");
    return true;
  }
  ProcFacts f = read_proc_facts(cred.pid);
  Session s;
  s.user = m.text(SHAUDIT_F_USER);
  s.uid = static_cast<int64_t>(m.number(SHAUDIT_F_UID, static_cast<uint64_t>(-1)));
  s.service = m.text(SHAUDIT_F_SERVICE);
  s.tty = m.text(SHAUDIT_F_TTY);
  s.remote_host = m.text(SHAUDIT_F_RHOST);
  s.audit_session = f.audit_session;  // kernel facts, not claims
  s.loginuid = f.loginuid;
  s.entry_pid = cred.pid;
  s.entry_start = f.start_time;
  // A session opened inside another (su, sudo) names it as its parent.
  Proc& opener = proc(cred.pid, m, ino);
  s.parent = resolve_session(cred.pid, opener);
  Session& opened = sessions_.open(std::move(s));
  if (opened.pidfd >= 0) watch_(opened.pidfd);
  if (track_) track_(cred.pid, opened.id);
  stats_.sessions_opened.fetch_add(1, std::memory_order_relaxed);
  reply = session_reply(opened.id, "");
  stats_.accepted.fetch_add(1, std::memory_order_relaxed);
  json::Object r;
  r["type"] = record::kSessionStart;
  r["session"] = opened.id;
  record::set_bytes(r, "user", opened.user);
  r["uid"] = opened.uid;
  record::set_bytes(r, "service", opened.service);
  record::set_bytes(r, "tty", opened.tty);
  if (!opened.remote_host.empty()) record::set_bytes(r, "remote_host", opened.remote_host);
  if (!opened.audit_session.empty()) r["audit_session"] = opened.audit_session;
  if (!opened.loginuid.empty()) r["loginuid"] = opened.loginuid;
  if (!opened.parent.empty()) r["parent_session"] = opened.parent;
  r["pid"] = static_cast<int64_t>(cred.pid);
  return push(std::move(r));
}

bool ReportHandler::session_close(const wire::Message& m, const ucred& cred, std::string& reply) {
  if (cred.uid != 0) {
    stats_.rejected[kNotRoot].fetch_add(1, std::memory_order_relaxed);
    reply = session_reply("", "only root may close a session");
    return true;
  }
  std::string id = m.text(SHAUDIT_F_SESSION);
  if (!sessions_.find(id)) {
    stats_.rejected[kUnknownSession].fetch_add(1, std::memory_order_relaxed);
    reply = session_reply("", fmt::format("unknown session '{}'", id));
    return true;
  }
  reply = session_reply(id, "");
  stats_.accepted.fetch_add(1, std::memory_order_relaxed);
  return end_session(id, "pam_close");
}

bool ReportHandler::handle(const wire::Message& m, const Sender& sender, std::string& reply) {
  const ucred& cred = sender.cred;
  if (m.type == SHAUDIT_MSG_SESSION_OPEN) return session_open(m, cred, sender.ino, reply);
  if (m.type == SHAUDIT_MSG_SESSION_CLOSE) return session_close(m, cred, reply);
  if (m.type == SHAUDIT_MSG_SESSION_REPLY) {
    stats_.rejected[static_cast<size_t>(wire::Reject::kType)].fetch_add(1);
    return true;
  }
  pid_t pid = cred.pid;
  Proc& p = proc(pid, m, sender.ino);
  const std::string& session = resolve_session(pid, p);
  if (m.report_seq > p.last_seq + 1) {
    json::Object loss;
    loss["type"] = record::kLoss;
    loss["cause"] = "report_gap";
    loss["pid"] = static_cast<int64_t>(pid);
    loss["uid"] = static_cast<int64_t>(cred.uid);
    if (!session.empty()) loss["session"] = session;
    loss["first_missing"] = static_cast<int64_t>(p.last_seq + 1);
    loss["last_missing"] = static_cast<int64_t>(m.report_seq - 1);
    loss["missing"] = static_cast<int64_t>(m.report_seq - 1 - p.last_seq);
    stats_.loss_records.fetch_add(1, std::memory_order_relaxed);
    stats_.reports_lost.fetch_add(m.report_seq - 1 - p.last_seq, std::memory_order_relaxed);
    if (!q_.push(std::move(loss))) return false;
  }
  bool in_order = m.report_seq > p.last_seq;
  if (in_order) p.last_seq = m.report_seq;
  if (cc_) cc_->on_report(pid, m, session, sender.recv_ns, sender.receipt_time);

  const Ctx c{m, sender, pid, p, session, in_order};
  switch (m.type) {
    case SHAUDIT_MSG_HELLO:
      return on_hello(c);
    case SHAUDIT_MSG_LINE:
      return on_line(c);
    case SHAUDIT_MSG_EXEC:
      return on_exec(c);
    case SHAUDIT_MSG_STATUS:
      return on_status(c);
    case SHAUDIT_MSG_NONCMD:
      return on_noncmd(c);
    default:
      stats_.rejected[static_cast<size_t>(wire::Reject::kType)].fetch_add(1);
      return true;
  }
}

// The fields every record made from a report has, and its type.
json::Object ReportHandler::record_for(const Ctx& c, std::string_view type) {
  json::Object r;
  base_fields(r, c.m, c.sender.cred, c.p);
  r["type"] = type;
  return r;
}

// A record made from a report: flagged when the report came out of order, counted as
// accepted once queued (a push refused at shutdown is not an accepted report).
bool ReportHandler::write(const Ctx& c, json::Object r) {
  if (!c.in_order) r["report_out_of_order"] = true;
  if (!push(std::move(r))) return false;
  stats_.accepted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool ReportHandler::on_hello(const Ctx& c) {
  const wire::Message& m = c.m;
  const ucred& cred = c.sender.cred;
  const pid_t pid = c.pid;
  Proc& p = c.p;
  stats_.hellos.fetch_add(1, std::memory_order_relaxed);
  uint64_t flags = m.number(SHAUDIT_F_HELLO_FLAGS);
  p.shell = flags & SHAUDIT_HELLO_SHELL;
  p.repl = flags & SHAUDIT_HELLO_REPL;
  p.interactive = flags & SHAUDIT_HELLO_INTERACTIVE;
  p.exe = m.text(SHAUDIT_F_EXE);
  p.tty = m.text(SHAUDIT_F_TTY);
  // A shell, or a readline program at its first line (`kubectl exec -it POD -- python3`), in no
  // session: the kernel may follow it already (a container runtime started it), with its exec
  // event still waiting to be read.
  const bool reads_lines = p.shell || p.repl;
  if (reads_lines && p.session.empty() && catch_up_) {
    catch_up_();
    resolve_session(pid, p);
  }
  // An interactive shell (or readline program) on a terminal that no session registered opens
  // one itself.
  if (reads_lines && p.interactive && p.session.empty())
    return open_implicit(pid, p, cred.uid,
                         p.shell ? "interactive shell outside any session"
                                 : "interactive readline program outside any session");
  auto argv = m.all(SHAUDIT_F_ARGV);
  // A shell the container runtime started in a container without a terminal (`kubectl exec
  // POD -- sh -c '...'`, `docker exec CTR sh -c`): a session of its own, named by its argv.
  // Kernel facts decide (cgroup, pid namespace, parent), not the report.
  // (With eBPF the kernel side decides this at the exec, before the shell runs anything.)
  if (!cc_ && p.shell && p.session.empty() && containers_ &&
      ContainerLookup::started_by_runtime(pid, p.ppid))
    return open_implicit(pid, p, cred.uid, "shell started in a container by its runtime", &argv);
  // A non-interactive shell names its own argv: recorded as its exec when nobody reported
  // that exec (its parent ran without the interposer: sshd for `ssh host CMD`, cron, ...).
  bool reported = p.exec_reported;
  p.exec_reported = false;
  if (argv.empty() || reported) return true;
  // In a session the kernel follows, its exec event is the record (written by the
  // cross-check, whoever started the shell).
  if (cc_ && !p.session.empty()) return true;
  if (auto parent = procs_.find(p.ppid); parent != procs_.end()) {
    auto& sp = parent->second.spawned;  // posix_spawn/system/popen reported it already
    auto it = std::find(sp.begin(), sp.end(), argv_hash(argv));
    if (it != sp.end()) {
      sp.erase(it);
      return true;
    }
  }
  json::Object r;
  base_fields(r, m, cred, p);
  r["type"] = record::kExec;
  r["source"] = "hello";
  record::set_bytes(r, "path", p.exe);
  record::set_argv(r, redact_argv(redactor_, argv, r));
  if (!p.command.empty()) r["command"] = p.command;
  if (!push(std::move(r))) return false;
  stats_.accepted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool ReportHandler::on_line(const Ctx& c) {
  const wire::Message& m = c.m;
  Proc& p = c.p;
  json::Object r = record_for(c, record::kCommand);
  uint64_t cmd_no = m.number(SHAUDIT_F_CMD_NO);
  uint64_t index = m.number(SHAUDIT_F_LINE_INDEX);
  uint64_t flags = m.number(SHAUDIT_F_LINE_FLAGS);
  if (cmd_no) {
    p.command = fmt::format("{}.{}", c.pid, cmd_no);
    r["command"] = p.command;
  }
  if (flags & SHAUDIT_LINE_CONTINUATION) {
    r["continuation"] = true;
    r["line_index"] = static_cast<int64_t>(index);
  } else if (Session* s = sessions_.find(p.session)) {
    ++s->commands;
  }
  // The command before ended without a status from its shell: the kernel's says it.
  if (cmd_no && !(flags & SHAUDIT_LINE_CONTINUATION) && p.unsettled && p.unsettled != cmd_no) {
    if (!derive_status(c.pid, p)) return false;
  }
  const wire::Field* t = m.find(SHAUDIT_F_TEXT);
  if (flags & SHAUDIT_LINE_CONTINUATION) {
    record::set_bytes(r, "text", redact_text(redactor_, t->data, r, p.command_lines));
    if (p.command_lines.size() + 1 + t->data.size() <= kCommandLinesMax)
      p.command_lines.append(1, '\n').append(t->data);
  } else {
    record::set_bytes(r, "text", redact_text(redactor_, t->data, r));
    p.command_lines.assign(t->data.substr(0, kCommandLinesMax));
  }
  if (flags & SHAUDIT_LINE_CUT) {
    r["truncated"] = true;
    r["truncated_by"] = "terminal";  // canonical mode delivers at most 4095 bytes a line
  } else if (t->flags & SHAUDIT_FIELD_TRUNCATED) {
    r["truncated"] = true;
    r["truncated_by"] = "message";
  }
  record::set_bytes(r, "shell", m.text(SHAUDIT_F_SHELL));
  if (flags & SHAUDIT_LINE_ECHO_OFF) r["echo_off"] = true;
  // Rebuilt by the interposer from the keys it saw the shell read (mksh's editor), not taken
  // from the shell; unknown_keys: keys it could not follow (the line may differ).
  if (flags & SHAUDIT_LINE_EDITOR) r["emulated"] = true;
  if (flags & SHAUDIT_LINE_EDITOR_UNSURE) r["unknown_keys"] = true;
  // A line a readline program (python3, psql, gdb, ...) read: `shell` names that program. It
  // reports no exit status (its lines are not commands run to completion).
  const bool repl = flags & SHAUDIT_LINE_REPL;
  if (repl) r["kind"] = "repl";
  if (cmd_no && !(flags & SHAUDIT_LINE_CONTINUATION) && !repl) p.unsettled = cmd_no;
  return write(c, std::move(r));
}

// From the kernel's events read so far: reading more here, while the new line is already the
// shell's command, would link forks of the old command to it.
bool ReportHandler::derive_status(pid_t pid, Proc& p) {
  uint64_t n = p.unsettled;
  p.unsettled = 0;
  if (!cc_ || !n) return true;
  std::string command = fmt::format("{}.{}", pid, n);
  int status = cc_->derived_status(pid, command);
  if (status < 0) return true;  // nothing it started ended: no status to tell
  json::Object r;
  r["type"] = record::kCommandStatus;
  r["command"] = command;
  r["exit_status"] = static_cast<int64_t>(status);
  r["derived"] = true;
  r["pid"] = static_cast<int64_t>(pid);
  if (!p.session.empty()) r["session"] = p.session;
  if (status != 0)
    if (Session* s = sessions_.find(p.session)) ++s->failed;
  return push(std::move(r));
}

bool ReportHandler::on_exec(const Ctx& c) {
  const wire::Message& m = c.m;
  Proc& p = c.p;
  json::Object r = record_for(c, record::kExec);
  r["source"] = "report";
  auto argv = m.all(SHAUDIT_F_ARGV);
  if (m.flags & SHAUDIT_MSG_SPAWN) {
    r["spawn"] = true;  // a new child runs it, not the reporting process
    p.spawned.push_back(argv_hash(argv));
    if (p.spawned.size() > 32) p.spawned.erase(p.spawned.begin());
  } else {
    p.exec_reported = true;
  }
  uint64_t cmd_pid = m.number(SHAUDIT_F_CMD_PID), cmd_no = m.number(SHAUDIT_F_CMD_NO);
  // The typed command is the one the sender's own shell ancestor read: a claim naming any
  // other process (another user's shell) is ignored.
  if (cmd_pid && cmd_no && is_self_or_ancestor(c.pid, static_cast<pid_t>(cmd_pid)))
    p.command = fmt::format("{}.{}", cmd_pid, cmd_no);
  if (!p.command.empty()) r["command"] = p.command;
  if (auto f = m.find(SHAUDIT_F_PATH)) record::set_bytes(r, "path", f->data);
  record::set_argv(r, redact_argv(redactor_, argv, r));
  bool cut = (m.flags & SHAUDIT_MSG_ARGV_TRUNCATED) != 0;
  for (const auto& f : m.fields)
    if (f.tag == SHAUDIT_F_ARGV && (f.flags & SHAUDIT_FIELD_TRUNCATED)) cut = true;
  if (cut) r["truncated"] = true;
  if (cc_ && !c.session.empty()) {
    // The kernel follows this session: the exec record is written from the kernel's exec
    // event once this report's argv matches it; a report the kernel contradicts is a
    // forged_report, never a record.
    if (!c.in_order) r["report_out_of_order"] = true;
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
    return cc_->on_exec_report(c.pid, c.sender.cred.uid, m, c.session, c.sender.recv_ns,
                               std::move(r));
  }
  return write(c, std::move(r));
}

bool ReportHandler::on_status(const Ctx& c) {
  const wire::Message& m = c.m;
  Proc& p = c.p;
  json::Object r = record_for(c, record::kCommandStatus);
  r["command"] = fmt::format("{}.{}", c.pid, m.number(SHAUDIT_F_CMD_NO));
  auto status = static_cast<int64_t>(m.number(SHAUDIT_F_STATUS));
  r["exit_status"] = status;
  r["duration_ns"] = static_cast<int64_t>(m.number(SHAUDIT_F_DURATION_NS));
  if (p.unsettled == m.number(SHAUDIT_F_CMD_NO)) p.unsettled = 0;
  if (status != 0)
    if (Session* s = sessions_.find(p.session)) ++s->failed;
  return write(c, std::move(r));
}

bool ReportHandler::on_noncmd(const Ctx& c) {
  const wire::Message& m = c.m;
  json::Object r = record_for(c, record::kNoncmdInput);
  r["kind"] = input_kind(m.number(SHAUDIT_F_INPUT_KIND));
  r["length"] = static_cast<int64_t>(m.number(SHAUDIT_F_INPUT_LEN));
  uint64_t h = m.number(SHAUDIT_F_INPUT_HASH);
  r["hash"] = fmt::format("{:016x}", h);  // SipHash under the process's key, never logged
  return write(c, std::move(r));
}

}  // namespace shaudit::daemon
