// SPDX-License-Identifier: Apache-2.0
// Lines rebuilt from terminal bytes: one table, keys as typed -> the line.
#include "tty_input.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shaudit::daemon {
namespace {

struct Case {
  const char* name;
  std::string keys;  // fed one byte per read (raw mode), Enter included
  std::string line;
  bool unknown = false;
};

std::vector<TtyLineEditor::Line> raw(const std::string& keys) {
  TtyLineEditor ed;
  std::vector<TtyLineEditor::Line> out;
  for (char c : keys) ed.feed(std::string_view(&c, 1), false, false, out);
  return out;
}

TEST(TtyLineEditor, RawKeysTable) {
  const std::vector<Case> cases = {
      {"plain", "ls /bin\r", "ls /bin"},
      {"lf ends too", "ls\n", "ls"},
      {"backspace",
       "echo typo\x7f\x7f\x7f\x7f"
       "fixed\r",
       "echo fixed"},
      {"ctrl-h",
       "ab\x08"
       "c\r",
       "ac"},
      {"ctrl-u kills before the cursor",
       "echo gone\x15"
       "echo kept\r",
       "echo kept"},
      {"ctrl-w kills a word", "echo one two\x17three\r", "echo one three"},
      {"ctrl-w over spaces",
       "a b   \x17"
       "c\r",
       "a c"},
      {"left and insert", "echo helo\x1b[Dl\r", "echo hello"},
      {"ss3 left", "echo helo\x1bODl\r", "echo hello"},
      {"right", "ac\x1b[D\x1b[D\x1b[Cb\r", "abc"},
      {"ctrl-a ctrl-e",
       "cho\x01"
       "e\x05"
       " x\r",
       "echo x"},
      {"ctrl-b ctrl-f",
       "ac\x02"
       "b\x06"
       "d\r",
       "abcd"},
      {"home end",
       "bc\x1b[Ha\x1b[F"
       "d\r",
       "abcd"},
      {"home end tilde", "bc\x1b[1~a\x1b[4~d\r", "abcd"},
      {"delete", "abxc\x1b[D\x1b[D\x1b[3~\r", "abc"},
      {"ctrl-k", "abc\x01\x06\x0b\r", "a"},
      {"ctrl-d deletes under the cursor", "abc\x01\x04\r", "bc"},
      {"utf-8 backspace removes a character",
       "caf\xc3\xa9\x7f"
       "e\r",
       "cafe"},
      {"utf-8 left", "\xe2\x9c\x93x\x1b[D\x1b[Dy\r", "y\xe2\x9c\x93x"},
      {"bracketed paste", "\x1b[200~ls -l\x1b[201~\r", "ls -l"},
      {"history recall is unknown", "\x1b[A\r", "", true},
      {"tab completion is unknown", "cat exa\t\r", "cat exa", true},
      {"alt-key is unknown",
       "ab\x1b"
       "b\r",
       "ab", true},
  };
  for (const Case& c : cases) {
    auto out = raw(c.keys);
    ASSERT_EQ(out.size(), 1u) << c.name;
    EXPECT_EQ(out[0].text, c.line) << c.name;
    EXPECT_EQ(out[0].keys, c.keys) << c.name;
    EXPECT_FALSE(out[0].canonical) << c.name;
    EXPECT_TRUE(out[0].one_byte) << c.name;
    EXPECT_EQ(out[0].unknown_keys, c.unknown) << c.name;
  }
}

TEST(TtyLineEditor, CtrlCAbandonsTheLine) {
  auto out = raw("rm -rf x\x03ls\r");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "ls");
}

TEST(TtyLineEditor, CanonicalReadsAreTheLineExactly) {
  TtyLineEditor ed;
  std::vector<TtyLineEditor::Line> out;
  // The terminal applied the editing keys: control bytes that reach the reader are text.
  ed.feed("echo a\tb\x1b[D\nsecond", true, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "echo a\tb\x1b[D");
  EXPECT_TRUE(out[0].canonical);
  EXPECT_FALSE(out[0].one_byte);
  EXPECT_FALSE(out[0].unknown_keys);
  EXPECT_TRUE(ed.pending());
  ed.feed(" line\n", true, false, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].text, "second line");  // joined across reads (^D mid-line, partial reads)
  EXPECT_TRUE(out[1].echo_off);
}

TEST(TtyLineEditor, EchoOffCountsOnlyInCanonicalMode) {
  auto out = raw("ls\r");  // raw mode, echo off: every line editor does that
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].echo_off);
}

TEST(TtyLineEditor, AnUnterminatedLineIsTakenWithItsKeys) {
  TtyLineEditor ed;
  std::vector<TtyLineEditor::Line> out;
  ed.feed("vi\x7fim", false, false, out);
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(ed.pending());
  auto l = ed.take_partial();
  EXPECT_EQ(l.text, "vim");
  EXPECT_EQ(l.keys, "vi\x7fim");
  EXPECT_FALSE(ed.pending());
}

TEST(TtyLineEditor, ALongLineIsCutNotGrownWithoutBound) {
  TtyLineEditor ed;
  std::vector<TtyLineEditor::Line> out;
  std::string big(TtyLineEditor::kMaxLine + 100, 'x');
  ed.feed(big, true, true, out);
  ed.feed("\n", true, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text.size(), TtyLineEditor::kMaxLine);
  EXPECT_EQ(out[0].keys.size(), TtyLineEditor::kMaxLine);
  EXPECT_TRUE(out[0].cut);
}

}  // namespace
}  // namespace shaudit::daemon
