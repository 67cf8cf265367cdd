// SPDX-License-Identifier: Apache-2.0
// The output spool: order, acknowledgement, restart, bound, damaged files.
#include "spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace shaudit::daemon {
namespace {

namespace fs = std::filesystem;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shaudit-spool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/spool/hook";
  }
  void TearDown() override { fs::remove_all(root_); }

  Spool open(uint64_t max = 1 << 20) {
    auto s = Spool::open(dir_, max);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.message());
    return std::move(*s);
  }
  std::string read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string segment() {
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() == ".jsonl") return e.path().filename();
    return {};
  }

  std::string root_, dir_;
};

TEST_F(SpoolTest, KeepsOrderUntilAcknowledged) {
  Spool s = open();
  ASSERT_TRUE(s.append("{\"seq\":1}"));
  ASSERT_TRUE(s.append("{\"seq\":2}"));
  ASSERT_TRUE(s.append("{\"seq\":3}"));
  EXPECT_EQ(s.pending(), 3u);
  EXPECT_EQ(s.pending_bytes(), 30u);
  EXPECT_EQ(s.peek(2), (std::vector<std::string>{"{\"seq\":1}", "{\"seq\":2}"}));
  EXPECT_EQ(s.peek(9).size(), 3u);
  ASSERT_TRUE(s.ack(2).ok());
  EXPECT_EQ(s.peek(5), (std::vector<std::string>{"{\"seq\":3}"}));
  EXPECT_EQ(segment(), "0000000000000000.jsonl");
  EXPECT_EQ(read("cursor"), "0 20\n");  // segment 0, just past line 2
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// An output holds refused lines at the head until they are named, and sends what follows.
TEST_F(SpoolTest, PeekSkipsTheHeldHead) {
  Spool s = open();
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(s.append("{\"seq\":" + std::to_string(i) + "}"));
  EXPECT_EQ(s.peek(2, 1), (std::vector<std::string>{"{\"seq\":2}", "{\"seq\":3}"}));
  EXPECT_EQ(s.peek(9, 3), (std::vector<std::string>{"{\"seq\":4}"}));
  EXPECT_TRUE(s.peek(1, 4).empty());
  EXPECT_TRUE(s.peek(1, 7).empty());
  EXPECT_EQ(s.pending(), 4u);
}

TEST_F(SpoolTest, WhatWasNotAcknowledgedSurvivesAReopen) {
  {
    Spool s = open();
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(s.append("line " + std::to_string(i)));
    ASSERT_TRUE(s.ack(2).ok());
  }
  Spool s = open();
  EXPECT_EQ(s.loaded_at_open(), 3u);
  EXPECT_EQ(s.peek(10), (std::vector<std::string>{"line 3", "line 4", "line 5"}));
  ASSERT_TRUE(s.append("line 6"));
  ASSERT_TRUE(s.ack(3).ok());
  Spool again = open();
  EXPECT_EQ(again.peek(10), (std::vector<std::string>{"line 6"}));
}

TEST_F(SpoolTest, APartialLastLineIsCutOff) {
  {
    Spool s = open();
    ASSERT_TRUE(s.append("whole"));
  }
  std::string seg = dir_ + "/" + segment();
  {
    std::ofstream out(seg, std::ios::app);
    out << "{\"cut\":";  // a crash in the middle of a write
  }
  Spool s = open();
  EXPECT_EQ(s.peek(10), (std::vector<std::string>{"whole"}));
  EXPECT_EQ(fs::file_size(seg), 6u);
  ASSERT_TRUE(s.append("next"));
  Spool again = open();
  EXPECT_EQ(again.peek(10), (std::vector<std::string>{"whole", "next"}));
}

TEST_F(SpoolTest, TheBoundRefusesInsteadOfGrowing) {
  Spool s = open(20);
  EXPECT_TRUE(s.append("123456789"));  // 10 bytes with its newline
  EXPECT_TRUE(s.append("abcdefghi"));  // 20
  EXPECT_FALSE(s.append("x"));         // would be 22
  EXPECT_EQ(s.pending(), 2u);
  EXPECT_TRUE(s.last_error().empty());  // full, not broken
  ASSERT_TRUE(s.ack(1).ok());
  EXPECT_TRUE(s.append("x"));
}

TEST_F(SpoolTest, AMalformedCursorIsAClearError) {
  { Spool s = open(); }
  {
    std::ofstream out(dir_ + "/cursor");
    out << "twelve\n";
  }
  auto s = Spool::open(dir_, 1 << 20);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "spool " + dir_ + "/cursor: malformed (expected \"SEGMENT OFFSET\")");
}

TEST_F(SpoolTest, AnUncreatableDirectoryIsAClearError) {
  std::ofstream(root_ + "/file") << "x";
  auto s = Spool::open(root_ + "/file/sub", 1 << 20);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot create " + root_ + "/file"), std::string::npos) << s.message();
}

TEST_F(SpoolTest, AcknowledgedSegmentsAreDeleted) {
  Spool s = open(64u << 20);
  std::string big(1 << 20, 'y');  // 9 lines pass the 8 MiB segment size
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(s.append(big));
  size_t segments = 0;
  for (const auto& e : fs::directory_iterator(dir_)) segments += e.path().extension() == ".jsonl";
  EXPECT_EQ(segments, 2u);
  ASSERT_TRUE(s.ack(9).ok());
  segments = 0;
  for (const auto& e : fs::directory_iterator(dir_)) segments += e.path().extension() == ".jsonl";
  EXPECT_EQ(segments, 1u);
  EXPECT_EQ(s.pending(), 0u);
  Spool again = open(64u << 20);
  EXPECT_EQ(again.pending(), 0u);
}

TEST_F(SpoolTest, RemembersTheLastLineAppendedEvenWhenAcknowledged) {
  {
    Spool s = open();
    EXPECT_EQ(s.last_appended(), "");
    ASSERT_TRUE(s.append("first"));
    ASSERT_TRUE(s.append("second"));
    EXPECT_EQ(s.last_appended(), "second");
    ASSERT_TRUE(s.ack(2).ok());
  }
  Spool s = open();
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.last_appended(), "second");  // the catch-up after a crash starts after it
  Spool moved = std::move(s);
  EXPECT_EQ(moved.last_appended(), "second");
}

}  // namespace
}  // namespace shaudit::daemon
