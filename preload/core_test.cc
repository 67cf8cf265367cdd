// SPDX-License-Identifier: Apache-2.0
// Unit tests of the interposer core, called directly (no LD_PRELOAD).
#include "core.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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
