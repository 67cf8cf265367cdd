// SPDX-License-Identifier: Apache-2.0
// Unit tests of the interposer core, called directly (no LD_PRELOAD).
#include "core.h"

#include <gtest/gtest.h>

#include <string>

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
