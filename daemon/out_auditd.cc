// SPDX-License-Identifier: Apache-2.0
// auditd output: one AUDIT_USER_CMD message per record, through libaudit, into the kernel's
// audit stream (which auditd writes to /var/log/audit/audit.log).
//
// Identity. The kernel stamps a user message with its SENDER's pid, uid, auid and ses: here
// shauditd's (pid=<shauditd> uid=0 auid=unset ses=unset). So the person's identity travels in
// the message body, outfmt::audit_message: shaudit_type, shaudit_session, user, uid, loginuid,
// audit_session, pid, seq, shaudit_id, [rule, priority], cmd (hex when it has a space or
// another byte auditd encodes). ausearch takes the second uid= of a user message as its uid
// (it does the same for USER_LOGIN), so `ausearch -m USER_CMD -ui 1000` finds the commands of
// uid 1000.
//
// Which libaudit call. audit_log_user_command() is for a program logging its OWN command: it
// hex-encodes the text it is given and adds cwd= (shauditd's), so it cannot carry another
// person's identity; audit_send() is not declared in libaudit.h (3.0.9: it is exported but
// private). audit_log_user_message(fd, AUDIT_USER_CMD, body, hostname, addr, tty, result) sends
// the body as given and appends the fields every user message has, which ausearch/aureport
// search: exe="<shauditd>" (ausearch -x), hostname= and addr= (ausearch -hn: the session's
// remote host, for a session_start that names one, else ?), terminal= (ausearch -tm, aureport
// -tm: the record's tty, else ?) and res= (ausearch -sv, aureport --failed: failed for a
// command_status with a non-zero exit status, success otherwise). hostname, addr and tty are
// always passed (never NULL/empty) so libaudit neither resolves a name nor looks at
// shauditd's own terminal; values from the record that hold anything but [A-Za-z0-9._:/-]
// are sent as ? (they are not encoded by libaudit).
//
// Errors. audit_open() failing (no audit in the kernel, out of descriptors) does not stop the
// sink from being made: deliver() answers retry with the errno text, and reopens each time.
// audit_log_user_message returns the netlink sequence number (> 0) when the kernel accepted
// the message. It returns 0 and leaves errno set when libaudit swallowed the kernel's answer
// (it does so to let logins proceed): EPERM, no CAP_AUDIT_WRITE; ECONNREFUSED, which the
// kernel gives to every sender outside the initial user namespace (a container): such a
// message is logged nowhere, so both are retried with that reason (the records stay spooled;
// `shaudit stats` shows last_error). A negative return is another error: retried too, on a
// fresh socket. Messages of a batch that reached the kernel before a failure are not sent
// again when the same batch is retried (their ids are remembered); after a restart they may
// be (at least once: shaudit_id tells duplicates apart).
//
// No auditd running is NOT an error (checked on Linux 6.18): with auditing enabled the kernel
// accepts the message (positive return) and prints it to the kernel log ("audit: type=1123
// ... msg='...'", rate-limited) or holds it for the next auditd. With auditing disabled
// (auditctl -s: enabled 0) the kernel accepts and discards every user message: shauditd
// prints a notice on stderr when it opens the socket and the kernel says so.
//
// Size. The kernel keeps at most 8560 bytes of a user message's text; the formatter cuts cmd
// at 2048 bytes (4096 hex digits); a body longer than kMaxBody is cut at a field boundary so
// that the trailing fields (exe, terminal, res) always arrive.
//
// libaudit keeps process-wide state without locks (a static sequence number, the cached exe
// name), so every call into it holds one mutex (the sends are short: the kernel acks each).
#include <fmt/format.h>
#include <libaudit.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "out_sinks.h"
#include "outputs_format.h"
#include "shaudit/record.h"

namespace shaudit::daemon {

namespace {

// Longest message body sent (see "Size" above): leaves room for the trailer libaudit appends
// (exe, hostname up to 255, addr, terminal up to 64, res) below the kernel's 8560.
constexpr size_t kMaxBody = 7680;
constexpr size_t kMaxTty = 64;
constexpr size_t kMaxHost = 255;

std::mutex g_libaudit_mu;
std::once_flag g_libaudit_quiet;

// A value libaudit would put into the message unencoded: only characters that need no quoting.
std::string plain_token(const json::Object& rec, const char* key, size_t max) {
  const std::string* v = json::get_string(rec, key);
  if (!v || v->empty() || v->size() > max) return "?";
  for (char c : *v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
    if (!ok) return "?";
  }
  return *v;
}

// res=failed for what failed: a typed command that exited non-zero.
int record_result(const json::Object& rec) {
  const std::string* type = json::get_string(rec, "type");
  if (type && *type == record::kCommandStatus) {
    auto st = json::get_int(rec, "exit_status");
    if (st && *st != 0) return 0;
  }
  return 1;
}

std::string cut_body(std::string body) {
  if (body.size() <= kMaxBody) return body;
  size_t sp = body.rfind(' ', kMaxBody);
  body.resize(sp == std::string::npos ? kMaxBody : sp);
  return body;
}

class AuditdSink : public Sink {
 public:
  explicit AuditdSink(std::string name) : name_(std::move(name)) {
    std::call_once(g_libaudit_quiet, [] { set_aumessage_mode(MSG_QUIET, DBG_NO); });
    std::lock_guard lk(g_libaudit_mu);
    open_locked();
  }
  ~AuditdSink() override {
    std::lock_guard lk(g_libaudit_mu);
    close_locked();
  }

  Delivery deliver(const std::vector<OutItem>& batch) override {
    try {
      return deliver_locked(batch);
    } catch (const std::exception& e) {
      return Delivery::retry(fmt::format("output '{}': {}", name_, e.what()));
    }
  }

 private:
  Delivery deliver_locked(const std::vector<OutItem>& batch) {
    std::lock_guard lk(g_libaudit_mu);
    if (fd_ < 0 && !open_locked()) return Delivery::retry(open_error_);
    // What an earlier attempt at this batch already got into the kernel is not sent again.
    size_t done = 0;
    while (done < sent_.size() && done < batch.size() && batch[done].id == sent_[done]) ++done;
    sent_.resize(done);
    for (size_t i = done; i < batch.size(); ++i) {
      const json::Object& rec = *batch[i].rec;
      std::string body = cut_body(outfmt::audit_message(rec));
      std::string tty = plain_token(rec, "tty", kMaxTty);
      std::string host = plain_token(rec, "remote_host", kMaxHost);
      std::string addr = is_ip_literal(host) ? host : "?";
      errno = 0;
      int rc = audit_log_user_message(fd_, AUDIT_USER_CMD, body.c_str(), host.c_str(), addr.c_str(),
                                      tty.c_str(), record_result(rec));
      int err = errno;
      if (rc > 0) {
        sent_.push_back(batch[i].id);
        continue;
      }
      close_locked();
      return Delivery::retry(fmt::format("output '{}': {} ({} of {} messages of this batch sent)",
                                         name_, send_error(rc, err), i, batch.size()));
    }
    sent_.clear();
    return Delivery::ok();
  }

  static std::string send_error(int rc, int err) {
    if (rc == 0 && err == EPERM)
      return "the kernel refused the audit message (EPERM): shauditd lacks CAP_AUDIT_WRITE";
    if (rc == 0 && err == ECONNREFUSED)
      return "the kernel refused the audit message (ECONNREFUSED): it takes audit messages only "
             "from the initial user namespace, and shauditd runs in another one (a container?)";
    if (rc < 0 && err == 0) err = -rc;
    return fmt::format("audit_log_user_message: {}", err ? std::strerror(err) : "message not sent");
  }

  bool open_locked() {
    errno = 0;
    int fd = audit_open();
    if (fd < 0) {
      int err = errno;
      bool no_audit = err == EINVAL || err == EPROTONOSUPPORT || err == EAFNOSUPPORT;
      open_error_ = fmt::format("output '{}': audit_open: {}{}", name_, std::strerror(err),
                                no_audit ? " (the kernel has no audit support)" : "");
      return false;
    }
    fd_ = fd;
    open_error_.clear();
    // The kernel discards user messages while auditing is disabled: say so (once per state).
    // Asked on a socket of its own: audit_is_enabled can leave the kernel's status reply or
    // ack queued, and audit_log_user_message reads the first queued answer as its own ack.
    // It needs CAP_AUDIT_CONTROL; when the kernel refuses to answer nothing is said.
    bool disabled = false;
    if (int probe = audit_open(); probe >= 0) {
      errno = 0;
      int enabled = audit_is_enabled(probe);
      disabled = enabled == 0 && errno != EPERM && errno != ECONNREFUSED;
      audit_close(probe);
    }
    if (disabled && !said_disabled_)
      std::fprintf(stderr,
                   "shauditd: output '%s': kernel auditing is disabled (auditctl -s: enabled 0): "
                   "the kernel discards its messages until auditing is enabled (auditctl -e 1, "
                   "or auditd starting)\n",
                   name_.c_str());
    said_disabled_ = disabled;
    return true;
  }

  void close_locked() {
    if (fd_ >= 0) audit_close(fd_);
    fd_ = -1;
  }

  std::string name_;
  int fd_ = -1;
  std::string open_error_;
  bool said_disabled_ = false;
  std::vector<std::string> sent_;  // ids of the current batch's messages the kernel accepted
};

}  // namespace

Result<std::unique_ptr<Sink>> make_auditd_sink(const OutputConfig& cfg, const SinkContext&) {
  try {
    return std::unique_ptr<Sink>(std::make_unique<AuditdSink>(cfg.name));
  } catch (const std::exception& e) {
    return make_error(fmt::format("output '{}': {}", cfg.name, e.what()));
  }
}

}  // namespace shaudit::daemon
