// SPDX-License-Identifier: Apache-2.0
// The report handler fed crafted wire messages in process: the records it writes, exactly.
#include "reports.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <string>

#include "queue.h"
#include "sessions.h"
#include "shaudit/record.h"
#include "shaudit/wire_codec.h"
#include "stats.h"

namespace shaudit::daemon {
namespace {

class ReportHandlerTest : public ::testing::Test {
 protected:
  ReportHandlerTest()
      : dir_(make_dir()),
        q_(1000),
        sessions_(dir_ + "/sessions"),
        handler_(
            q_, stats_, sessions_, [](int) {}, [](int) {}) {
    me_.pid = ::getpid();
    me_.uid = ::getuid();
    me_.gid = ::getgid();
  }
  ~ReportHandlerTest() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }
  static std::string make_dir() {
    char tmpl[] = "/tmp/shaudit-reports-test.XXXXXX";
    return ::mkdtemp(tmpl);
  }

  // Hands one message to the handler as if this process had sent it.
  void send(uint16_t type, uint64_t seq,
            std::initializer_list<std::pair<uint16_t, std::string>> f) {
    wire::Builder b(type, seq, 1);
    for (const auto& [tag, data] : f) b.add(tag, data);
    std::string buf = b.finish();
    wire::Message m;
    wire::DecodeError err;
    ASSERT_TRUE(wire::decode(buf, m, err)) << err.detail;
    ReportHandler::Sender s{me_, 0, record::now_ns()};
    std::string reply;
    ASSERT_TRUE(handler_.handle(m, s, reply));
  }
  static std::string u64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

  std::deque<json::Object> records() {
    std::deque<json::Object> out;
    q_.pop_all(out, std::chrono::steady_clock::now());
    return out;
  }
  static std::string str(const json::Object& o, const char* k) {
    const std::string* s = json::get_string(o, k);
    return s ? *s : "<absent>";
  }
  static int64_t num(const json::Object& o, const char* k) {
    auto i = json::get_int(o, k);
    return i ? *i : INT64_MIN;
  }
  std::string cmd(int n) const { return std::to_string(me_.pid) + "." + std::to_string(n); }

  std::string dir_;
  RecordQueue q_;
  Stats stats_;
  SessionRegistry sessions_;
  ReportHandler handler_;
  ucred me_{};
};

TEST_F(ReportHandlerTest, ALineAndItsStatusAreACommandAndItsCommandStatus) {
  send(SHAUDIT_MSG_LINE, 1,
       {{SHAUDIT_F_SHELL, "minish"}, {SHAUDIT_F_CMD_NO, u64(1)}, {SHAUDIT_F_TEXT, "ls -l /tmp"}});
  send(
      SHAUDIT_MSG_STATUS, 2,
      {{SHAUDIT_F_CMD_NO, u64(1)}, {SHAUDIT_F_STATUS, u64(2)}, {SHAUDIT_F_DURATION_NS, u64(5000)}});
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(str(r[0], "type"), "command");
  EXPECT_EQ(str(r[0], "text"), "ls -l /tmp");
  EXPECT_EQ(str(r[0], "shell"), "minish");
  EXPECT_EQ(str(r[0], "command"), cmd(1));
  EXPECT_EQ(num(r[0], "pid"), me_.pid);
  EXPECT_EQ(num(r[0], "report_seq"), 1);
  EXPECT_EQ(str(r[1], "type"), "command_status");
  EXPECT_EQ(str(r[1], "command"), cmd(1));
  EXPECT_EQ(num(r[1], "exit_status"), 2);
  EXPECT_EQ(num(r[1], "duration_ns"), 5000);
  EXPECT_EQ(r[1].count("report_out_of_order"), 0u);
  EXPECT_EQ(stats_.accepted.load(), 2u);
}

TEST_F(ReportHandlerTest, MissingReportNumbersAreASignedLossBeforeTheNextRecord) {
  send(SHAUDIT_MSG_LINE, 1, {{SHAUDIT_F_SHELL, "sh"}, {SHAUDIT_F_TEXT, "one"}});
  send(SHAUDIT_MSG_LINE, 4, {{SHAUDIT_F_SHELL, "sh"}, {SHAUDIT_F_TEXT, "four"}});
  auto r = records();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(str(r[1], "type"), "loss");
  EXPECT_EQ(str(r[1], "cause"), "report_gap");
  EXPECT_EQ(num(r[1], "pid"), me_.pid);
  EXPECT_EQ(num(r[1], "first_missing"), 2);
  EXPECT_EQ(num(r[1], "last_missing"), 3);
  EXPECT_EQ(num(r[1], "missing"), 2);
  EXPECT_EQ(str(r[2], "text"), "four");
  EXPECT_EQ(stats_.reports_lost.load(), 2u);
}

TEST_F(ReportHandlerTest, AReportOlderThanOneAlreadySeenIsFlaggedOutOfOrder) {
  // (1 would start the numbering again: a process numbers from 1 after each exec)
  send(SHAUDIT_MSG_LINE, 3, {{SHAUDIT_F_SHELL, "sh"}, {SHAUDIT_F_TEXT, "third"}});
  send(SHAUDIT_MSG_NONCMD, 2,
       {{SHAUDIT_F_INPUT_KIND, u64(SHAUDIT_INPUT_ECHO_OFF)},
        {SHAUDIT_F_INPUT_LEN, u64(6)},
        {SHAUDIT_F_INPUT_HASH, u64(0x1234)}});
  auto r = records();
  ASSERT_EQ(r.size(), 2u);  // the first report a process sends sets its baseline: no loss
  EXPECT_EQ(r[0].count("report_out_of_order"), 0u);
  EXPECT_EQ(str(r[1], "type"), "noncmd_input");
  EXPECT_EQ(num(r[1], "length"), 6);
  EXPECT_EQ(str(r[1], "hash"), "0000000000001234");
  ASSERT_EQ(r[1].count("report_out_of_order"), 1u);
  EXPECT_TRUE(r[1].at("report_out_of_order").as_bool());
}

TEST_F(ReportHandlerTest, AMessageOfAKindNoReporterSendsIsCountedAndWritesNothing) {
  send(SHAUDIT_MSG_SESSION_REPLY, 1, {{SHAUDIT_F_SESSION, "s-forged"}});
  EXPECT_TRUE(records().empty());
  EXPECT_EQ(stats_.rejected[static_cast<size_t>(wire::Reject::kType)].load(), 1u);
}

TEST_F(ReportHandlerTest, AnInteractiveShellOutsideAnySessionOpensAnImplicitOne) {
  send(SHAUDIT_MSG_HELLO, 1,
       {{SHAUDIT_F_EXE, "/usr/local/bin/jumpsh"},
        {SHAUDIT_F_HELLO_FLAGS, u64(SHAUDIT_HELLO_SHELL | SHAUDIT_HELLO_INTERACTIVE)},
        {SHAUDIT_F_TTY, "/dev/pts/9"}});
  send(SHAUDIT_MSG_LINE, 2, {{SHAUDIT_F_SHELL, "jumpsh"}, {SHAUDIT_F_TEXT, "ssh db1"}});
  auto r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(str(r[0], "type"), "session_start");
  EXPECT_EQ(str(r[0], "service"), "implicit");
  EXPECT_EQ(str(r[0], "reason"), "interactive shell outside any session");
  EXPECT_EQ(str(r[0], "exe"), "/usr/local/bin/jumpsh");
  EXPECT_EQ(num(r[0], "pid"), me_.pid);
  EXPECT_EQ(str(r[1], "session"), str(r[0], "session"));
  EXPECT_EQ(stats_.sessions_opened.load(), 1u);
}

TEST_F(ReportHandlerTest, AReadlineProgramsLineIsACommandOfKindReplWithNoStatusOwed) {
  send(SHAUDIT_MSG_HELLO, 1,
       {{SHAUDIT_F_EXE, "/usr/bin/python3.11"},
        {SHAUDIT_F_HELLO_FLAGS, u64(SHAUDIT_HELLO_REPL | SHAUDIT_HELLO_INTERACTIVE)},
        {SHAUDIT_F_TTY, "/dev/pts/9"}});
  send(SHAUDIT_MSG_LINE, 2,
       {{SHAUDIT_F_SHELL, "python3"},
        {SHAUDIT_F_CMD_NO, u64(1)},
        {SHAUDIT_F_LINE_FLAGS, u64(SHAUDIT_LINE_REPL)},
        {SHAUDIT_F_TEXT, "os.system(\"id\")"}});
  send(SHAUDIT_MSG_EXEC, 3,
       {{SHAUDIT_F_PATH, "/bin/sh"},
        {SHAUDIT_F_CMD_PID, u64(static_cast<uint64_t>(me_.pid))},
        {SHAUDIT_F_CMD_NO, u64(1)},
        {SHAUDIT_F_ARGV, "sh"},
        {SHAUDIT_F_ARGV, "-c"},
        {SHAUDIT_F_ARGV, "id"}});
  send(SHAUDIT_MSG_LINE, 4,
       {{SHAUDIT_F_SHELL, "minish"}, {SHAUDIT_F_CMD_NO, u64(2)}, {SHAUDIT_F_TEXT, "ls"}});
  auto r = records();
  ASSERT_EQ(r.size(), 4u);
  // Interactive on a terminal outside any session: a session of its own, as a shell's.
  EXPECT_EQ(str(r[0], "type"), "session_start");
  EXPECT_EQ(str(r[0], "reason"), "interactive readline program outside any session");
  EXPECT_EQ(str(r[1], "type"), "command");
  EXPECT_EQ(str(r[1], "text"), "os.system(\"id\")");
  EXPECT_EQ(str(r[1], "shell"), "python3");
  EXPECT_EQ(str(r[1], "kind"), "repl");
  EXPECT_EQ(str(r[1], "command"), cmd(1));
  EXPECT_EQ(str(r[1], "session"), str(r[0], "session"));
  EXPECT_EQ(str(r[2], "type"), "exec");
  EXPECT_EQ(str(r[2], "command"), cmd(1));
  // A shell's line has no kind, and no status is owed for the line before it.
  EXPECT_EQ(str(r[3], "type"), "command");
  EXPECT_EQ(r[3].count("kind"), 0u);
}

TEST_F(ReportHandlerTest, LineFlagsSayHowTheInterposerGotTheLine) {
  send(SHAUDIT_MSG_HELLO, 1,
       {{SHAUDIT_F_EXE, "/usr/bin/mksh"},
        {SHAUDIT_F_HELLO_FLAGS, u64(SHAUDIT_HELLO_SHELL | SHAUDIT_HELLO_INTERACTIVE)},
        {SHAUDIT_F_TTY, "/dev/pts/9"}});
  send(SHAUDIT_MSG_LINE, 2,
       {{SHAUDIT_F_SHELL, "mksh"},
        {SHAUDIT_F_CMD_NO, u64(1)},
        {SHAUDIT_F_LINE_FLAGS, u64(SHAUDIT_LINE_EDITOR)},
        {SHAUDIT_F_TEXT, "echo hello"}});
  send(SHAUDIT_MSG_LINE, 3,
       {{SHAUDIT_F_SHELL, "mksh"},
        {SHAUDIT_F_CMD_NO, u64(2)},
        {SHAUDIT_F_LINE_FLAGS, u64(SHAUDIT_LINE_EDITOR | SHAUDIT_LINE_EDITOR_UNSURE)},
        {SHAUDIT_F_TEXT, "echo maybe"}});
  send(SHAUDIT_MSG_LINE, 4,
       {{SHAUDIT_F_SHELL, "dash"},
        {SHAUDIT_F_CMD_NO, u64(3)},
        {SHAUDIT_F_LINE_FLAGS, u64(SHAUDIT_LINE_TTY_READ | SHAUDIT_LINE_ECHO_OFF)},
        {SHAUDIT_F_TEXT, ": hidden from the screen"}});
  send(SHAUDIT_MSG_NONCMD, 5,
       {{SHAUDIT_F_INPUT_KIND, u64(SHAUDIT_INPUT_EDITOR_LINE)},
        {SHAUDIT_F_INPUT_LEN, u64(3)},
        {SHAUDIT_F_INPUT_HASH, u64(7)},
        {SHAUDIT_F_HASH_KEY, std::string(16, 'k')}});
  auto r = records();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[1].at("emulated").as_bool(), true);
  EXPECT_EQ(r[1].count("unknown_keys"), 0u);
  EXPECT_EQ(r[2].at("emulated").as_bool(), true);
  EXPECT_EQ(r[2].at("unknown_keys").as_bool(), true);
  EXPECT_EQ(r[3].at("echo_off").as_bool(), true);
  EXPECT_EQ(r[3].count("emulated"), 0u);
  EXPECT_EQ(str(r[4], "type"), "noncmd_input");
  EXPECT_EQ(str(r[4], "kind"), "editor_line");
}

}  // namespace
}  // namespace shaudit::daemon
