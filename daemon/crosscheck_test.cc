// SPDX-License-Identifier: Apache-2.0
// The cross-check fed synthetic kernel events and reports: what it writes, exactly.
#include "crosscheck.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <termios.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "shaudit/record.h"
#include "shaudit/wire_encode.h"

namespace shaudit::daemon {
namespace {

constexpr int64_t kWindow = 300'000'000;
constexpr uint64_t kKey = 0xabcdef0123456789ull;

int64_t boot_now() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

class CrossCheckTest : public ::testing::Test {
 protected:
  CrossCheckTest()
      : q_(100000), cc_(q_, stats_, opts(), [](pid_t, pid_t) { return std::string(); }) {
    boot0_ = boot_now();
    real0_ = record::now_ns();
  }
  static CrossCheckOptions opts() {
    CrossCheckOptions o;
    o.window_ns = kWindow;
    o.held_bytes_per_uid = 64 * 1024;
    return o;
  }
  // Kernel time t (ns after the test's start) in boot time; realtime is real0_ + t.
  uint64_t kt(int64_t t) const { return static_cast<uint64_t>(boot0_ + t); }
  int64_t rt(int64_t t) const { return real0_ + t; }

  void hdr(sa_event_hdr& h, uint32_t type, pid_t pid, pid_t ppid, int64_t t) {
    std::memset(&h, 0, sizeof h);
    h.type = type;
    h.pid = static_cast<uint32_t>(pid);
    h.tid = h.pid;
    h.ppid = static_cast<uint32_t>(ppid);
    h.uid = 1000;
    h.loginuid = 1000;
    h.sessionid = 7;
    h.ts_ns = kt(t);
    h.key = kKey;
    std::strcpy(h.comm, "x");
  }
  void fork_ev(pid_t parent, pid_t child, int64_t t, uint64_t child_ino = 0) {
    sa_fork_event e;
    hdr(e.h, SA_EV_FORK, parent, 1, t);
    e.child_pid = static_cast<uint32_t>(child);
    e.pad = 0;
    e.child_ino = child_ino;
    cc_.on_kernel(&e, sizeof e);
  }
  void exit_ev(pid_t pid, int64_t t, int32_t code) {
    sa_exit_event e;
    hdr(e.h, SA_EV_EXIT, pid, 1, t);
    e.exit_code = code;
    e.pad = 0;
    cc_.on_kernel(&e, sizeof e);
  }
  void hooked(pid_t pid, int64_t t) {
    sa_hooked_event e;
    hdr(e.h, SA_EV_HOOKED, pid, 1, t);
    cc_.on_kernel(&e, sizeof e);
  }
  void attempt(pid_t pid, int64_t t, const std::string& file, int32_t result) {
    sa_attempt_event e;
    hdr(e.h, SA_EV_ATTEMPT, pid, 1, t);
    std::memset(e.filename, 0, sizeof e.filename);
    std::strncpy(e.filename, file.c_str(), sizeof e.filename - 1);
    e.filename_len = static_cast<uint32_t>(file.size());
    e.result = result;
    cc_.on_kernel(&e, sizeof e);
  }
  void exec_ev(pid_t pid, pid_t ppid, int64_t t, const std::string& file,
               const std::vector<std::string>& argv) {
    auto e = std::make_unique<sa_exec_event>();
    hdr(e->h, SA_EV_EXEC, pid, ppid, t);
    std::strncpy(e->filename, file.c_str(), sizeof e->filename - 1);
    size_t n = 0;
    for (const auto& a : argv) {
      std::memcpy(e->argv + n, a.c_str(), a.size() + 1);
      n += a.size() + 1;
    }
    e->argv_len = static_cast<uint32_t>(n);
    e->argc = static_cast<uint32_t>(argv.size());
    cc_.on_kernel(e.get(), offsetof(sa_exec_event, argv) + n);
  }
  // The enforcing mode refused pid's exec of file in the kernel (SA_EV_DENIED), or (type
  // SA_EV_BREAK_GLASS) let a break-glass program run while failing closed.
  void denied_ev(pid_t pid, pid_t ppid, int64_t t, const std::string& file,
                 const std::vector<std::string>& argv, uint32_t reason, uint32_t flags = 0,
                 uint32_t type = SA_EV_DENIED, uint32_t heartbeat_age_ms = 0) {
    auto e = std::make_unique<sa_denied_event>();
    hdr(e->h, type, pid, ppid, t);
    e->h.flags |= flags;
    e->reason = reason;
    e->heartbeat_age_ms = heartbeat_age_ms;
    std::memset(e->filename, 0, sizeof e->filename);
    std::strncpy(e->filename, file.c_str(), sizeof e->filename - 1);
    e->filename_len = static_cast<uint32_t>(file.size());
    size_t n = 0;
    for (const auto& a : argv) {
      std::memcpy(e->argv + n, a.c_str(), a.size() + 1);
      n += a.size() + 1;
    }
    e->argv_len = static_cast<uint32_t>(n);
    cc_.on_kernel(e.get(), offsetof(sa_denied_event, argv) + n);
  }
  // What pid read from its terminal (canonical mode, echo on), as the kernel saw it.
  void input_ev(pid_t pid, pid_t ppid, int64_t t, const std::string& data) {
    auto e = std::make_unique<sa_input_event>();
    std::memset(e.get(), 0, sizeof *e);
    hdr(e->h, SA_EV_INPUT, pid, ppid, t);
    e->lflag = ICANON | ECHO;
    e->tty_len = 4;
    std::memcpy(e->tty, "pts7", 4);
    e->len = static_cast<uint32_t>(data.size());
    std::memcpy(e->data, data.data(), data.size());
    cc_.on_kernel(e.get(), offsetof(sa_input_event, data) + data.size());
  }
  // An exec report of pid received at time t; sent_ns is what the sender claimed.
  void exec_report(pid_t pid, int64_t t, const std::string& path,
                   const std::vector<std::string>& argv, uint64_t sent_ns = 0, bool spawn = false) {
    std::vector<char> buf(4096 + argv.size() * 64 + 256 * 1024);
    shaudit_enc e;
    shaudit_enc_begin(&e, buf.data(), buf.size(), SHAUDIT_MSG_EXEC);
    if (spawn) e.flags |= SHAUDIT_MSG_SPAWN;
    shaudit_enc_str(&e, SHAUDIT_F_PATH, path.c_str());
    for (const auto& a : argv) shaudit_enc_add(&e, SHAUDIT_F_ARGV, a.data(), a.size());
    size_t n = shaudit_enc_finish(&e, 1, sent_ns ? sent_ns : static_cast<uint64_t>(rt(t)));
    wire::Message m;
    wire::DecodeError err;
    ASSERT_TRUE(wire::decode(std::string_view(buf.data(), n), m, err));
    json::Object rec;
    rec["type"] = record::kExec;
    rec["source"] = "report";
    rec["pid"] = static_cast<int64_t>(pid);
    rec["command"] = "42.1";
    record::set_argv(rec, std::vector<std::string>(argv.begin(), argv.end()));
    ASSERT_TRUE(cc_.on_exec_report(pid, 1000, m, "abcdef0123456789", rt(t), std::move(rec)));
  }
  // Process 101 (forked by 100, whose interposer initialises after its exec) reports an exec of
  // path/argv, then the kernel sees it exec file/kargv: the set-up of the argv tests.
  void report_then_exec(const std::string& path, const std::vector<std::string>& argv,
                        const std::string& file, const std::vector<std::string>& kargv) {
    fork_ev(100, 101, 0);
    exec_report(101, 900'000, path, argv);
    exec_ev(101, 100, 1'000'000, file, kargv);
    hooked(101, 1'100'000);
  }
  // A typed line (command number cmd_no) reported by the shell pid, received at time t.
  void line_report(pid_t pid, int64_t t, uint64_t cmd_no, const std::string& text) {
    char buf[4096];
    shaudit_enc e;
    shaudit_enc_begin(&e, buf, sizeof buf, SHAUDIT_MSG_LINE);
    shaudit_enc_u64(&e, SHAUDIT_F_CMD_NO, cmd_no);
    shaudit_enc_add(&e, SHAUDIT_F_TEXT, text.data(), text.size());
    size_t n = shaudit_enc_finish(&e, 2, static_cast<uint64_t>(rt(t)));
    wire::Message m;
    wire::DecodeError err;
    ASSERT_TRUE(wire::decode(std::string_view(buf, n), m, err));
    cc_.on_report(pid, m, "abcdef0123456789", rt(t));
  }
  std::vector<json::Object> records() {
    std::deque<json::Object> d;
    q_.pop_all(d, std::chrono::steady_clock::now());
    return {d.begin(), d.end()};
  }
  static std::string kind(const json::Object& r) {
    auto it = r.find("kind");
    return it == r.end() ? "" : it->second.as_string();
  }
  static std::string type(const json::Object& r) { return r.at("type").as_string(); }
  static json::Array argv(std::initializer_list<const char*> v) {
    json::Array a;
    for (auto s : v) a.emplace_back(std::string(s));
    return a;
  }

  RecordQueue q_;
  Stats stats_;
  CrossCheck cc_;
  int64_t boot0_, real0_;
};

TEST_F(CrossCheckTest, AHelloIsNoEvidenceTheKernelDidNotSeeTheInterposerInitialise) {
  // Attack: a forked child sends a hello dated in the past, then execs dash without the
  // interposer. The hello means nothing; the kernel never saw the interposer initialise.
  fork_ev(100, 101, 0);
  wire::Message hello;
  hello.type = SHAUDIT_MSG_HELLO;
  hello.report_seq = 1;
  hello.sent_ns = static_cast<uint64_t>(rt(-2'000'000));
  cc_.on_report(101, hello, "abcdef0123456789", rt(1'000'000));
  exec_ev(101, 100, 2'000'000, "/usr/bin/dash", {"/bin/dash", "-i"});
  ASSERT_TRUE(cc_.tick(rt(2'000'000 + kWindow + 1)));
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(type(r[0]), "exec");
  EXPECT_EQ(r[0].at("source").as_string(), "bpf");
  EXPECT_EQ(r[0].at("argv"), json::Value(argv({"/bin/dash", "-i"})));
  EXPECT_EQ(kind(r[1]), "unhooked_process");
  EXPECT_EQ(r[1].at("pid").as_int(), 101);
}

TEST_F(CrossCheckTest, AnExecTheKernelDeniedIsABypassRecordAtOnceWithItsReason) {
  // Enforcing mode: a static binary and `env -u LD_PRELOAD sh` were refused (EPERM) by the
  // BPF LSM. Each is an unhooked_process bypass with action "denied" and the kernel's reason,
  // written at once (no window: nothing ran), and no exec record.
  fork_ev(100, 101, 0);
  denied_ev(101, 100, 1'000'000, "/tmp/static", {"/tmp/static", "x"}, SA_DENY_NO_INTERP);
  denied_ev(101, 100, 2'000'000, "/bin/sh", {"/bin/sh", "-c", "id"}, SA_DENY_NO_PRELOAD);
  denied_ev(101, 100, 3'000'000, "/dev/fd/3", {"payload"}, SA_DENY_UNLINKED);
  denied_ev(101, 100, 4'000'000, "/bin/true", {"/bin/true"}, SA_DENY_UNHOOKED);
  auto r = records();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(json::encode(json::Value(r[0])),
            R"x({"action":"denied","argv":["/tmp/static","x"],"evidence":"enforcing mode: )x"
            R"x(the kernel refused (EPERM) pid 101's exec of /tmp/static: the image has no )x"
            R"x(program interpreter (a static binary, or the dynamic loader run as a program)",)x"
            R"x("exe":"/tmp/static","kind":"unhooked_process","pid":101,"ppid":100,)x"
            R"x("reason":"no_interpreter","session":"abcdef0123456789","severity":"high",)x"
            R"x("type":"bypass","uid":1000})x");
  EXPECT_EQ(r[1].at("reason").as_string(), "no_preload");
  EXPECT_EQ(r[1].at("argv"), json::Value(argv({"/bin/sh", "-c", "id"})));
  EXPECT_EQ(r[1].at("evidence").as_string(),
            "enforcing mode: the kernel refused (EPERM) pid 101's exec of /bin/sh: its "
            "environment's LD_PRELOAD does not name the interposer");
  EXPECT_EQ(r[2].at("reason").as_string(), "unlinked_file");
  EXPECT_EQ(r[2].at("exe").as_string(), "/dev/fd/3");
  EXPECT_EQ(r[3].at("reason").as_string(), "unhooked_caller");
  for (const auto& x : r) EXPECT_EQ(x.at("action").as_string(), "denied");
  ASSERT_TRUE(cc_.tick(rt(4'000'000 + 2 * kWindow)));
  EXPECT_TRUE(records().empty());  // no exec record, no second bypass
  EXPECT_TRUE(cc_.idle());
}

TEST_F(CrossCheckTest, AnExecTheKillModeKilledIsABypassRecordWithActionKilled) {
  // enforce: {mode: kill}: the exec went through and the kernel killed the process at
  // sched_process_exec (SA_FLAG_KILLED), before the new image ran; then the process exits.
  fork_ev(100, 101, 0);
  denied_ev(101, 100, 1'000'000, "/tmp/static", {"/tmp/static", "x"}, SA_DENY_NO_INTERP,
            SA_FLAG_KILLED);
  exit_ev(101, 2'000'000, 9);
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(json::encode(json::Value(r[0])),
            R"x({"action":"killed","argv":["/tmp/static","x"],"evidence":"enforcing mode: )x"
            R"x(the kernel killed (SIGKILL, before the new image ran) pid 101's exec of )x"
            R"x(/tmp/static: the image has no program interpreter (a static binary, or the )x"
            R"x(dynamic loader run as a program)","exe":"/tmp/static","kind":"unhooked_process",)x"
            R"x("pid":101,"ppid":100,"reason":"no_interpreter","session":"abcdef0123456789",)x"
            R"x("severity":"high","type":"bypass","uid":1000})x");
  ASSERT_TRUE(cc_.tick(rt(2'000'000 + 2 * kWindow)));
  EXPECT_TRUE(records().empty());  // no exec record, no second bypass
}

TEST_F(CrossCheckTest, ABreakGlassExecWhileFailingClosedIsABreakGlassRecord) {
  // enforce: {fail: closed}: the heartbeat was stale; pid 101 ran a break-glass program
  // (allowed, SA_EV_BREAK_GLASS), and pid 102's exec was killed (reason fail_closed).
  fork_ev(100, 101, 0);
  fork_ev(100, 102, 0);
  denied_ev(101, 100, 1'000'000, "/usr/local/sbin/rescue", {"rescue", "-x"}, 0, 0,
            SA_EV_BREAK_GLASS, 1234);
  denied_ev(102, 100, 2'000'000, "/bin/true", {"/bin/true"}, SA_DENY_FAIL_CLOSED, SA_FLAG_KILLED,
            SA_EV_DENIED, 1500);
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(
      json::encode(json::Value(r[0])),
      R"({"argv":["rescue","-x"],"exe":"/usr/local/sbin/rescue","heartbeat_age_ms":1234,)"
      R"("pid":101,"ppid":100,"session":"abcdef0123456789","type":"break_glass","uid":1000})");
  EXPECT_EQ(r[1].at("action").as_string(), "killed");
  EXPECT_EQ(r[1].at("reason").as_string(), "fail_closed");
  EXPECT_EQ(r[1].at("evidence").as_string(),
            "enforcing mode: the kernel killed (SIGKILL, before the new image ran) pid 102's exec "
            "of /bin/true: shauditd was not keeping up (fail: closed) and the file is not on the "
            "break-glass list (no heartbeat for 1500 ms)");
}

TEST_F(CrossCheckTest, ARefusedAccessToShauditsOwnFilesIsATamperRecord) {
  // Enforcing mode with protect: the kernel refused a write open of the log and a ptrace of
  // shauditd by process 4242 (gone by now: no exe), outside any session.
  CrossCheckOptions o = opts();
  o.protected_path = [](uint64_t dev, uint64_t ino) {
    return dev == 0x800001 && ino == 77 ? std::string("/var/log/shaudit/audit.jsonl") : "";
  };
  CrossCheck cc(q_, stats_, std::move(o), [](pid_t, pid_t) { return std::string(); });
  sa_tamper_event e;
  hdr(e.h, SA_EV_TAMPER, 4242, 1, 1'000'000);
  e.h.key = 0;
  e.h.uid = 0;
  e.h.loginuid = CrossCheck::kUnset;
  std::strcpy(e.h.comm, "sh");
  e.what = SA_TAMPER_WRITE;
  e.mode = 0x2;
  e.dev = 0x800001;
  e.ino = 77;
  cc.on_kernel(&e, sizeof e);
  e.what = SA_TAMPER_PTRACE;
  e.dev = e.ino = 0;
  e.h.key = kKey;  // from a process in an audited session
  cc.on_kernel(&e, sizeof e);
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(json::encode(json::Value(r[0])),
            R"({"action":"denied","comm":"sh","dev":8388609,"file":"/var/log/shaudit/audit.jsonl",)"
            R"("ino":77,"pid":4242,"ppid":1,"type":"tamper","uid":0,"what":"log_write"})");
  EXPECT_EQ(json::encode(json::Value(r[1])),
            R"({"action":"denied","comm":"sh","pid":4242,"ppid":1,"session":"abcdef0123456789",)"
            R"("target_pid":)" +
                std::to_string(getpid()) + R"(,"type":"tamper","uid":0,"what":"ptrace"})");
}

TEST_F(CrossCheckTest, AnImageTheInterposerInitialisedInIsNoBypass) {
  fork_ev(100, 101, 0);
  exec_ev(101, 100, 1'000'000, "/usr/bin/id", {"id"});
  hooked(101, 1'500'000);
  ASSERT_TRUE(cc_.tick(rt(1'000'000 + kWindow + 1)));
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(type(r[0]), "exec");
  EXPECT_FALSE(r[0].count("reported"));
}

TEST_F(CrossCheckTest, TheInterposerOfThePreviousImageDoesNotCoverTheNextExec) {
  // `env -u LD_PRELOAD /bin/true` as a session's last line: env's interposer initialises, and
  // env execs /bin/true a few microseconds later. The kernel's order (one ring buffer), not
  // the times, says which image the interposer initialised in.
  fork_ev(100, 101, 0);
  exec_ev(101, 100, 1'000'000, "/usr/bin/env", {"env", "-u", "LD_PRELOAD", "/bin/true"});
  hooked(101, 3'000'000);
  exec_ev(101, 100, 3'000'040, "/bin/true", {"/bin/true"});
  // And the same when the clocks put the hook a little after the exec it preceded.
  fork_ev(100, 102, 0);
  exec_ev(102, 100, 1'000'000, "/usr/bin/env", {"env", "-u", "LD_PRELOAD", "/bin/true"});
  hooked(102, 3'000'100);
  exec_ev(102, 100, 3'000'000, "/bin/true", {"/bin/true"});
  ASSERT_TRUE(cc_.tick(rt(3'000'100 + kWindow + 1)));
  auto r = records();
  ASSERT_EQ(r.size(), 6u);
  std::vector<std::string> kinds;
  for (const auto& x : r)
    if (type(x) == "bypass") {
      kinds.push_back(kind(x) + " " + std::to_string(x.at("pid").as_int()) + " " +
                      x.at("exe").as_string());
    }
  EXPECT_EQ(kinds, (std::vector<std::string>{"unhooked_process 101 /bin/true",
                                             "unhooked_process 102 /bin/true"}));
}

TEST_F(CrossCheckTest, AReportWithTheKernelsArgvGivesTheKernelsRecordWithTheCommandLink) {
  report_then_exec("/usr/bin/cat", {"cat", "/etc/hostname"}, "/bin/cat", {"cat", "/etc/hostname"});
  ASSERT_TRUE(cc_.flush_fresh());
  auto r = records();  // written at once (the receiver's turn), not after the window
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("source").as_string(), "bpf");
  EXPECT_TRUE(r[0].at("reported").as_bool());
  EXPECT_EQ(r[0].at("command").as_string(), "42.1");
  EXPECT_EQ(r[0].at("path").as_string(), "/bin/cat");
  ASSERT_TRUE(cc_.tick(rt(1'000'000 + kWindow + 50'000'000)));
  EXPECT_TRUE(records().empty());
}

TEST_F(CrossCheckTest, AnExecIsLinkedToTheLineItsShellReadBeforeForkingIt) {
  // No exec reports (the kernel records execs): the command comes from the shell's line report
  // and the fork tree.
  fork_ev(1, 100, 0);
  line_report(100, 500'000, 7, "ls | wc");
  fork_ev(100, 101, 600'000);
  fork_ev(101, 102, 700'000);  // a subshell's child
  exec_ev(102, 101, 800'000, "/usr/bin/wc", {"wc"});
  ASSERT_TRUE(cc_.flush_fresh());
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("command").as_string(), "100.7");
  EXPECT_EQ(r[0].at("pid").as_int(), 102);
}

TEST_F(CrossCheckTest, AShellWithoutTheInterposerRunsItsForksForTheLineTheKernelRebuilt) {
  // A shell whose image never initialised the genuine interposer (the kernel saw no hook)
  // still reports its lines. The kernel rebuilt the same line from the terminal's bytes: the
  // fork runs for the kernel's line (100.k1), whether the report was read before the kernel's
  // bytes or after them, and whenever shauditd read it relative to the fork.
  for (bool report_first : {true, false}) {
    SCOPED_TRACE(report_first ? "report read first" : "kernel bytes read first");
    pid_t sh = report_first ? 100 : 200;
    fork_ev(1, sh, 0);
    exec_ev(sh, 1, 100'000, "/bin/dash", {"/bin/dash"});
    if (report_first) line_report(sh, 350'000, 2, "mkdir -p /tmp/x");
    input_ev(sh, 1, 400'000, "mkdir -p /tmp/x\n");
    // Read after the kernel's bytes and before the fork (by shauditd's clock).
    if (!report_first) line_report(sh, 450'000, 2, "mkdir -p /tmp/x");
    fork_ev(sh, sh + 1, 500'000);
    exec_ev(sh + 1, sh, 600'000, "/bin/mkdir", {"mkdir", "-p", "/tmp/x"});
    ASSERT_TRUE(cc_.flush_fresh());
    auto r = records();
    ASSERT_EQ(r.size(), 2u);  // the shell's exec, then mkdir's
    EXPECT_EQ(r[1].at("pid").as_int(), sh + 1);
    EXPECT_EQ(r[1].at("command").as_string(), fmt::format("{}.k1", sh));
  }
  // A different line reported (the kernel did not see it read): the report names it.
  line_report(200, 800'000, 3, "ls");
  fork_ev(200, 202, 900'000);
  exec_ev(202, 200, 950'000, "/bin/ls", {"ls"});
  ASSERT_TRUE(cc_.flush_fresh());
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("command").as_string(), "200.3");
}

TEST_F(CrossCheckTest, KernelEventsPastTheTurnWaitForTheReportsSentBeforeThem) {
  // shauditd read a turn's reports, then was stopped (SIGSTOP, or preempted) before reading
  // the ring buffer; meanwhile the shell sent its next line and forked that command. The fork
  // is later than the turn's horizon: it waits until the next turn has read that line.
  fork_ev(1, 100, 0);
  line_report(100, 100'000, 1, "true");
  cc_.set_horizon(rt(300'000));
  fork_ev(100, 101, 400'000);
  exec_ev(101, 100, 450'000, "/bin/mkdir", {"mkdir", "d"});
  ASSERT_TRUE(cc_.flush_fresh());
  EXPECT_TRUE(records().empty());
  EXPECT_FALSE(cc_.idle());
  // The next turn: the line sent at 350 us is read, then the kernel's events.
  cc_.set_horizon(rt(600'000));
  line_report(100, 350'000, 2, "mkdir d");
  ASSERT_TRUE(cc_.tick(rt(600'000)));
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("pid").as_int(), 101);
  EXPECT_EQ(r[0].at("command").as_string(), "100.2");
  // Events at or before the horizon are taken at once.
  fork_ev(100, 102, 500'000);
  exec_ev(102, 100, 550'000, "/bin/ls", {"ls"});
  ASSERT_TRUE(cc_.flush_fresh());
  r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("pid").as_int(), 102);
}

TEST_F(CrossCheckTest, KernelFactsAreGivenOnlyForTheVeryProcessTheForkEventNamed) {
  // A pid reused by another process (another pidfs inode) gets nothing from the old one.
  fork_ev(100, 101, 0, /*child_ino=*/555);
  ProcFacts f;
  ASSERT_TRUE(cc_.kernel_facts(101, 555, f));
  EXPECT_EQ(f.ppid, 100);
  EXPECT_EQ(f.loginuid, "1000");
  EXPECT_EQ(f.audit_session, "7");
  EXPECT_EQ(cc_.kernel_session(101, 555), CrossCheck::session_of(kKey));
  EXPECT_FALSE(cc_.kernel_facts(101, 556, f));
  EXPECT_EQ(cc_.kernel_session(101, 556), "");
  EXPECT_FALSE(cc_.kernel_facts(101, 0, f));  // no pidfd: /proc decides
}

TEST_F(CrossCheckTest, AReportedArgvThatTheKernelContradictsIsForged) {
  // Attack: report `cat /etc/motd`, then a raw execve of `cat /etc/hostname`.
  report_then_exec("/bin/cat", {"cat", "/etc/motd"}, "/bin/cat", {"cat", "/etc/hostname"});
  ASSERT_TRUE(cc_.tick(rt(1'000'000 + kWindow + 50'000'000)));
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(type(r[0]), "exec");  // what ran, from the kernel
  EXPECT_EQ(r[0].at("argv"), json::Value(argv({"cat", "/etc/hostname"})));
  EXPECT_FALSE(r[0].count("reported"));
  EXPECT_EQ(kind(r[1]), "forged_report");  // the claim, only here
  EXPECT_EQ(r[1].at("argv"), json::Value(argv({"cat", "/etc/motd"})));
}

TEST_F(CrossCheckTest, ASpawnReportedByTheParentClaimsTheChildsExecInEitherOrder) {
  fork_ev(1, 100, 0);
  hooked(100, 100'000);
  exec_report(100, 900'000, "/bin/true", {"/bin/true", "spawn"}, 0, /*spawn=*/true);
  fork_ev(100, 102, 950'000);
  exec_ev(102, 100, 1'000'000, "/bin/true", {"/bin/true", "spawn"});
  hooked(102, 1'100'000);
  fork_ev(100, 103, 2'000'000);  // the kernel first this time
  exec_ev(103, 100, 2'100'000, "/bin/sh", {"sh", "-c", "x"});
  hooked(103, 2'200'000);
  exec_report(100, 2'300'000, "/bin/sh", {"sh", "-c", "x"}, 0, /*spawn=*/true);
  ASSERT_TRUE(cc_.tick(rt(2'300'000 + kWindow + 50'000'000)));
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  std::sort(r.begin(), r.end(), [](const json::Object& a, const json::Object& b) {
    return a.at("pid").as_int() < b.at("pid").as_int();
  });
  EXPECT_EQ(r[0].at("pid").as_int(), 102);
  EXPECT_EQ(r[0].at("spawn_by").as_int(), 100);
  EXPECT_TRUE(r[0].at("reported").as_bool());
  EXPECT_EQ(r[1].at("pid").as_int(), 103);
  EXPECT_TRUE(r[1].at("reported").as_bool());
}

TEST_F(CrossCheckTest, AScriptRunsItsInterpreterWithTheScriptPathAndTheReportedArguments) {
  report_then_exec("/tmp/s.sh", {"./s.sh", "a", "b"}, "./s.sh", {"/bin/sh", "./s.sh", "a", "b"});
  ASSERT_TRUE(cc_.tick(rt(1'000'000 + kWindow + 50'000'000)));
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].at("reported").as_bool());
}

TEST_F(CrossCheckTest, AFailedAttemptIsRecordedAsReportedWithTheKernelsResult) {
  // execvp("nosuch-tool"): the interposer names what it could not resolve; the kernel saw
  // each PATH directory tried and failing.
  fork_ev(100, 101, 0);
  exec_report(101, 900'000, "nosuch-tool", {"nosuch-tool", "-x"});
  attempt(101, 1'000'000, "/usr/local/bin/nosuch-tool", -2);
  attempt(101, 1'010'000, "/usr/bin/nosuch-tool", -2);
  ASSERT_TRUE(cc_.tick(rt(1'000'000 + kWindow + 50'000'000)));
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(type(r[0]), "exec");
  EXPECT_TRUE(r[0].at("failed").as_bool());
  EXPECT_EQ(r[0].at("result").as_int(), -2);
  EXPECT_EQ(r[0].at("source").as_string(), "report");
}

TEST_F(CrossCheckTest, AFutureDatedReportDoesNotHoldBackOtherDecisions) {
  fork_ev(100, 101, 0);
  fork_ev(100, 102, 0);
  exec_report(101, 1'000'000, "/x", {"x"},
              /*sent_ns=*/static_cast<uint64_t>(rt(0)) + 1'000'000'000'000'000'000ull);
  exec_report(102, 2'000'000, "/usr/bin/nonexistent-claim", {"nonexistent-claim"});
  ASSERT_TRUE(cc_.tick(rt(2'000'000 + kWindow + 50'000'000)));
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(kind(r[0]), "forged_report");
  EXPECT_EQ(r[0].at("pid").as_int(), 101);
  EXPECT_EQ(kind(r[1]), "forged_report");
  EXPECT_EQ(r[1].at("pid").as_int(), 102);
  EXPECT_EQ(cc_.held(), 0u);
}

TEST_F(CrossCheckTest, HeldReportsAreBoundedPerUidAndWhatIsBeyondIsWrittenUncheckedAndCounted) {
  fork_ev(100, 101, 0);
  std::string big(10000, 'a');
  for (int i = 0; i < 20; ++i) exec_report(101, 1'000'000 + i, "/x", {"x", big});
  EXPECT_GT(cc_.held(), 0u);  // some held within the 64 KiB share, not all
  EXPECT_LT(cc_.held(), 7u);
  auto now = records();
  ASSERT_EQ(now.size(), 20u - cc_.held());
  for (const auto& r : now) EXPECT_TRUE(r.at("unchecked").as_bool());
  ASSERT_TRUE(cc_.tick(rt(1'000'000 + kWindow + 50'000'000)));
  auto later = records();
  ASSERT_FALSE(later.empty());
  const auto& loss = later.back();
  EXPECT_EQ(type(loss), "loss");
  EXPECT_EQ(loss.at("cause").as_string(), "crosscheck_capacity");
  EXPECT_EQ(loss.at("uid").as_int(), 1000);
  EXPECT_EQ(static_cast<size_t>(loss.at("unchecked").as_int()), now.size());
}

}  // namespace
}  // namespace shaudit::daemon
