// SPDX-License-Identifier: Apache-2.0
// Unit tests of the interposer core, called directly (no LD_PRELOAD).
#include "core.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "lineedit.h"
#include "shaudit/siphash.h"
#include "shaudit/zsh_meta.h"

TEST(Siphash, ReferenceVector) {
  // SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e.
  uint8_t key[16];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  uint8_t msg[15];
  for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(shaudit_siphash(key, msg, sizeof msg), 0xa129ca6149be45e5ULL);
  EXPECT_EQ(shaudit_siphash(key, msg, 0), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(shaudit_siphash(key, msg, 8), 0x93f5f5799a932462ULL);
}

TEST(Siphash, KeyChangesHash) {
  uint8_t k1[16] = {1}, k2[16] = {2};
  EXPECT_NE(shaudit_siphash(k1, "hunter2", 7), shaudit_siphash(k2, "hunter2", 7));
}

TEST(Unmetafy, DecodesZshMetaBytes) {
  // zsh writes bytes 0x83..0x9f (and NUL) as Meta (0x83) followed by the byte XOR 32.
  std::string s =
      "a\x83\xa3"
      "b\x83\x20";
  size_t n = shaudit_unmetafy(s.data(), s.size());
  EXPECT_EQ(std::string(s.data(), n), std::string("a\x83"
                                                  "b\x00",
                                                  4));
}

TEST(Unmetafy, LeavesPlainUtf8Alone) {
  std::string s = "echo \xc3\xa9t\xc3\xa9";
  size_t n = shaudit_unmetafy(s.data(), s.size());
  EXPECT_EQ(std::string(s.data(), n), "echo \xc3\xa9t\xc3\xa9");
}

TEST(Unmetafy, TrailingMetaIsKept) {
  std::string s = "x\x83";
  EXPECT_EQ(shaudit_unmetafy(s.data(), s.size()), 2u);
}

TEST(Core, DisabledBeforeInitReportsNothing) {
  EXPECT_EQ(sa_enabled(), 0);
  EXPECT_EQ(sa_shell_kind(), 0);
  sa_report_line("ls", 2, 0);  // must be a no-op, not a crash
  EXPECT_EQ(sa_socket_fd(), -1);
}

namespace {
int args(const char* shell, std::vector<const char*> v) {
  v.insert(v.begin(), shell);
  v.push_back(nullptr);
  return sa_shell_args(shell, static_cast<int>(v.size() - 1), const_cast<char* const*>(v.data()));
}
}  // namespace

TEST(ShellArgs, OptionsThatTakeAValueAreNotScripts) {
  // Interactive: nothing but options, whatever their values.
  for (auto v : std::vector<std::vector<const char*>>{{},
                                                      {"-o", "vi"},
                                                      {"+o", "emacs"},
                                                      {"-O", "extglob"},
                                                      {"+O", "extglob"},
                                                      {"--rcfile", "/etc/x"},
                                                      {"--init-file", "f"},
                                                      {"--norc", "--noprofile", "-i"},
                                                      {"-eo", "vi", "-O", "globstar", "--login"},
                                                      {"-o", "vi", "-i"}})
    EXPECT_EQ(args("bash", v), 0) << (v.empty() ? "" : v[0]);
  EXPECT_EQ(args("zsh", {"-o", "vi", "-f"}), 0);
  EXPECT_EQ(args("ksh", {"-o", "emacs"}), 0);
  EXPECT_EQ(args("ksh93", {"-R", "xref", "-i"}), 0);
  EXPECT_EQ(args("mksh", {"-T", "/dev/tty2", "-o", "vi"}), 0);
  EXPECT_EQ(args("dash", {"-o", "vi"}), 0);
  // A script, after the options and their values, or after `--`.
  EXPECT_EQ(args("bash", {"-o", "vi", "script.sh"}), SA_ARGS_FILE);
  EXPECT_EQ(args("bash", {"--rcfile", "f", "script.sh", "a"}), SA_ARGS_FILE);
  EXPECT_EQ(args("bash", {"--", "-script"}), SA_ARGS_FILE);
  EXPECT_EQ(args("dash", {"script"}), SA_ARGS_FILE);
  // -O takes a value only for bash: for zsh it is an option letter, `x` the script.
  EXPECT_EQ(args("zsh", {"-O", "x"}), SA_ARGS_FILE);
  EXPECT_EQ(args("bash", {"-O", "x"}), 0);
  // A command string, alone or in a cluster; -s: standard input, operands are parameters.
  EXPECT_EQ(args("bash", {"-c", "echo hi"}), SA_ARGS_COMMAND);
  EXPECT_EQ(args("bash", {"-ec", "echo hi", "name"}), SA_ARGS_COMMAND);
  EXPECT_EQ(args("dash", {"-o", "vi", "-c", "echo"}), SA_ARGS_COMMAND);
  EXPECT_EQ(args("bash", {"-s", "a", "b"}), SA_ARGS_STDIN);
  EXPECT_EQ(args("bash", {"+c"}), 0);  // +c is not -c
  // A value option at the end with nothing after it, and a NULL-ended short argv.
  EXPECT_EQ(args("bash", {"-o"}), 0);
  EXPECT_EQ(args("bash", {"--rcfile"}), 0);
}

// ------------------------------------------------------------------ line editor emulation

namespace {
// Keys the shell read, each followed by what the shell echoed after it (only the echo after a
// completion or recall key is used).
struct Step {
  std::string keys;
  std::string echo;
};
struct Edited {
  int result;
  std::string line;
  bool unsure;
};

Edited edit(sa_le* e, const std::vector<Step>& steps, const std::string& prompt = "PROMPT> ") {
  sa_le_reset(e);
  sa_le_output(e, prompt.data(), prompt.size());
  for (const Step& s : steps) {
    for (unsigned char c : s.keys) {
      int r = sa_le_key(e, c);
      if (r != SA_LE_MORE)
        return {r, std::string(reinterpret_cast<char*>(e->buf), e->len), !!e->unsure};
    }
    sa_le_output(e, s.echo.data(), s.echo.size());
  }
  return {SA_LE_MORE, std::string(reinterpret_cast<char*>(e->buf), e->len), !!e->unsure};
}

std::unique_ptr<sa_le> editor(bool vi) {
  auto e = std::make_unique<sa_le>();  // value-initialised: zeroed
  e->vi = vi;
  return e;
}

// mksh's redraw after a completion or recall: CR, prompt, line, padding to the screen's last
// column but one, backspaces back to the end of the line.
std::string redraw(const std::string& line, size_t cols = 80,
                   const std::string& prompt = "PROMPT> ") {
  size_t pad = cols - 1 - prompt.size() - line.size();
  return "\r" + prompt + line + std::string(pad, ' ') + std::string(pad, '\b');
}

struct Case {
  const char* name;
  std::vector<Step> steps;
  const char* line;
  bool unsure;
};

void expect_cases(bool vi, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    auto e = editor(vi);
    Edited r = edit(e.get(), c.steps);
    EXPECT_EQ(r.result, SA_LE_ACCEPT) << c.name;
    EXPECT_EQ(r.line, c.line) << c.name;
    EXPECT_EQ(r.unsure, c.unsure) << c.name;
  }
}
}  // namespace

TEST(LineEditEmacs, KeysToLines) {
  static const std::string wide(71, 'x');
  expect_cases(false,
               {
                   {"plain", {{"ls /bin > /dev/null\r", ""}}, "ls /bin > /dev/null", false},
                   {"backspace",
                    {{"echo typo\x7f\x7f\x7f\x7f"
                      "fixed\r",
                      ""}},
                    "echo fixed",
                    false},
                   {"ctrl-h", {{"echo x\b\by\r", ""}}, "echoy", false},
                   {"ctrl-u kills the line",
                    {{"echo gone\x15"
                      "echo kept\r",
                      ""}},
                    "echo kept",
                    false},
                   {"left arrow", {{"echo helo\x1b[Dl\r", ""}}, "echo hello", false},
                   {"ss3 arrows", {{"ab\x1bODX\x1bOCY\r", ""}}, "aXbY", false},
                   {"home end", {{"bc\x1b[Ha\x1b[Fd\r", ""}}, "abcd", false},
                   {"home end ~", {{"bc\x1b[1~a\x1b[4~d\r", ""}}, "abcd", false},
                   {"delete key", {{"abc\x1b[H\x1b[3~\r", ""}}, "bc", false},
                   {"ctrl-a ctrl-e ctrl-b ctrl-f",
                    {{"bd\x01"
                      "a\x05"
                      "e\x02\x02\x06\x02"
                      "c\r",
                      ""}},
                    "abcde",
                    false},
                   {"ctrl-k", {{"abcdef\x02\x02\x02\x0b\r", ""}}, "abc", false},
                   {"ctrl-d deletes under the cursor", {{"abc\x01\x04\r", ""}}, "bc", false},
                   {"utf-8 backspace removes a character",
                    {{"h\xc3\xa9\x7f"
                      "e\r",
                      ""}},
                    "he",
                    false},
                   {"utf-8 left", {{"\xe2\x9c\x93\x1b[Dx\r", ""}}, "x\xe2\x9c\x93", false},
                   {"newline accepts", {{"true\n", ""}}, "true", false},
                   {"completion inserts",
                    {{"cat hered\t", "oc.txt "}, {"> t\r", ""}},
                    "cat heredoc.txt > t",
                    false},
                   {"completion redraws",
                    {{"cat heredo\t", redraw("cat heredoc.txt") + " "}, {"> t\r", ""}},
                    "cat heredoc.txt > t",
                    false},
                   {"completion with no match", {{"echo x\t", "\a"}, {"\r", ""}}, "echo x", false},
                   {"ctrl-w is not followed", {{"echo a b\x17\r", ""}}, "echo a b", true},
                   {"meta keys are not followed",
                    {{"echo a\x1b"
                      "b\r",
                      ""}},
                    "echo a",
                    true},
                   {"ctrl-arrows are not followed", {{"echo a\x1b[1;5D\r", ""}}, "echo a", true},
                   {"an escape sequence in the echo", {{"ls\t", "\x1b[K"}, {"\r", ""}}, "ls", true},
                   {"a redraw as wide as the screen may be scrolled",
                    {{"x\t", redraw(wide)}, {"\r", ""}},
                    wide.c_str(),
                    true},
               });
}

TEST(LineEditEmacs, RecallTakesTheRedrawnLine) {
  auto e = editor(false);
  Edited r =
      edit(e.get(), {{"\x1b[A", redraw("echo \"h\xc3\xa9llo \xe2\x9c\x93\" > u")}, {"\r", ""}});
  EXPECT_EQ(r.line, "echo \"h\xc3\xa9llo \xe2\x9c\x93\" > u");
  EXPECT_FALSE(r.unsure);
  r = edit(e.get(), {{"\x10", redraw("ls")}, {" -l\r", ""}});  // ^P, then typed on
  EXPECT_EQ(r.line, "ls -l");
  EXPECT_FALSE(r.unsure);
}

TEST(LineEditEmacs, AbortAndEndOfInput) {
  auto e = editor(false);
  EXPECT_EQ(edit(e.get(), {{"rm -rf x\x03", ""}}).result, SA_LE_ABORT);
  EXPECT_EQ(edit(e.get(), {{"\x04", ""}}).result, SA_LE_ABORT);
  EXPECT_EQ(edit(e.get(), {{"ls", ""}}).result, SA_LE_MORE);
}

TEST(LineEditEmacs, PromptIsItsLastLine) {
  auto e = editor(false);
  Edited r =
      edit(e.get(), {{"ca\t", redraw("cat ", 80, "host $ ")}, {"x\r", ""}}, "output\r\nhost $ ");
  EXPECT_EQ(r.line, "cat x");
  EXPECT_FALSE(r.unsure);
  r = edit(e.get(), {{"ca\t", redraw("cat ", 80, "other $ ")}, {"x\r", ""}}, "host $ ");
  EXPECT_TRUE(r.unsure);  // the redraw did not start with the prompt
}

TEST(LineEditVi, KeysToLines) {
  expect_cases(
      true,
      {
          {"plain insert", {{"ls /bin\r", ""}}, "ls /bin", false},
          {"backspace and ctrl-u",
           {{"echo gone\x15"
             "echo typo\x7f\x7f\x7f\x7f"
             "kept\r",
             ""}},
           "echo kept",
           false},
          // As measured on mksh R59: ec ESC h x x i Z ESC $ a h ESC 0 Enter ran `Zh`.
          {"command mode",
           {{"ec\x1bhxxiZ\x1b$ah\x1b"
             "0\r",
             ""}},
           "Zh",
           false},
          {"escape then insert", {{"echo helo\x1bil\r", ""}}, "echo hello", false},
          {"I and A",
           {{"b\x1bIa\x1b"
             "Ac\r",
             ""}},
           "abc",
           false},
          {"X and D", {{"abcdef\x1bhhXD\r", ""}}, "ab", false},
          {"C changes to the end",
           {{"abcdef\x1b"
             "0lCXY\r",
             ""}},
           "aXY",
           false},
          {"cc changes the line",
           {{"abc\x1b"
             "ccxyz\r",
             ""}},
           "xyz",
           false},
          {"dd deletes the line",
           {{"abc\x1b"
             "dd\r",
             ""}},
           "",
           false},
          {"d$ and d0", {{"abcdef\x1bhhd$\r", ""}}, "abc", false},
          {"r replaces", {{"echo x\x1brY\r", ""}}, "echo Y", false},
          {"S and s", {{"abc\x1bhsX\x1bSq\r", ""}}, "q", false},
          {"utf-8 x removes a character", {{"a\xc3\xa9\x1bx\r", ""}}, "a", false},
          {"^ skips blanks", {{"  ab\x1b^x\r", ""}}, "  b", false},
          {"completion", {{"cat hered\t", "oc.txt "}, {"> t\r", ""}}, "cat heredoc.txt > t", false},
          {"counts are not followed",
           {{"abc\x1b"
             "2x\r",
             ""}},
           "ab",
           true},
          {"words are not followed",
           {{"a b\x1b"
             "bx\r",
             ""}},
           "a ",
           true},
          {"undo is not followed", {{"ab\x1bxu\r", ""}}, "a", true},
          {"cw is not followed",
           {{"ab\x1b"
             "0cwx\r",
             ""}},
           "b",
           true},
      });
}

TEST(LineEditVi, RecallMatchesTheLinesReported) {
  // mksh's vi mode shows bytes 0x80-0x9f as ^ and the byte XOR 0x40: the check mark
  // e2 9c 93 shows as e2 ^ dc ^ d3. A reported line shown so is taken byte for byte.
  const std::string line = "echo \"h\xc3\xa9 \xe2\x9c\x93\" > u";
  const std::string shown = "echo \"h\xc3\xa9 \xe2^\xdc^\xd3\" > u";
  auto e = editor(true);
  Edited r = edit(e.get(), {{"\x1bk", shown + "\rPROMPT> "}, {"\r", ""}});
  EXPECT_EQ(r.line, shown);  // nothing reported yet to match: the shown bytes, unsure
  EXPECT_TRUE(r.unsure);
  sa_le_remember(e.get(), reinterpret_cast<const unsigned char*>(line.data()), line.size());
  sa_le_remember(e.get(), reinterpret_cast<const unsigned char*>("ls"), 2);
  r = edit(e.get(), {{"\x1bk", shown + "\rPROMPT> "}, {"\r", ""}});
  EXPECT_EQ(r.line, line);
  EXPECT_FALSE(r.unsure);
  r = edit(e.get(), {{"\x1bk", "ls\rPROMPT> "}, {"A -l\r", ""}});  // cursor first, then A
  EXPECT_EQ(r.line, "ls -l");
  EXPECT_FALSE(r.unsure);
}

TEST(LineEdit, BoundedAndHistoryRotates) {
  auto e = editor(false);
  std::string big(SA_LE_MAX + 100, 'x');
  Edited r = edit(e.get(), {{big + "\r", ""}});
  EXPECT_EQ(r.line.size(), static_cast<size_t>(SA_LE_MAX));
  EXPECT_TRUE(r.unsure);
  std::string l(4000, 'y');
  for (int i = 0; i < 10; ++i)
    sa_le_remember(e.get(), reinterpret_cast<const unsigned char*>(l.data()), l.size());
  EXPECT_LE(e->hist_len, static_cast<size_t>(SA_LE_HIST));
  EXPECT_EQ(e->hist_len, 4u * (4000 + 2));
}
