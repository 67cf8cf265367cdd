// SPDX-License-Identifier: Apache-2.0
// visible(): every class of character a reporter could use against an admin's terminal.
#include "text.h"

#include <gtest/gtest.h>

namespace shaudit::cli {
namespace {

TEST(Visible, PrintableTextAndUtf8StayAsTheyAre) {
  EXPECT_EQ(visible("ls -l /tmp"), "ls -l /tmp");
  EXPECT_EQ(visible("echo \"héllo wörld ✓\" 日本 😀"), "echo \"héllo wörld ✓\" 日本 😀");
  EXPECT_EQ(visible("a\\b"), "a\\b");
}

TEST(Visible, C0ControlsAndDelAreEscaped) {
  // Clear screen, retitle the window, ring the bell: none reaches the terminal.
  EXPECT_EQ(visible("\x1b[2J\x1b]0;owned\x07"), "\\x1b[2J\\x1b]0;owned\\x07");
  EXPECT_EQ(visible(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(visible("tab\there\r\n\x7f"), "tab\\x09here\\x0d\\x0a\\x7f");
}

TEST(Visible, C1ControlsAreEscaped) {
  EXPECT_EQ(visible("\xc2\x9b"
                    "2J"),
            "\\u{009B}2J");  // CSI
  EXPECT_EQ(visible("\xc2\x80\xc2\x9f"), "\\u{0080}\\u{009F}");
  EXPECT_EQ(visible("\xc2\xa0"), "\xc2\xa0");  // U+00A0 is not a control
}

TEST(Visible, BidiOverridesAndIsolatesAreEscaped) {
  // "Trojan Source": the line reads in another order than it runs.
  EXPECT_EQ(visible("rm -rf \xe2\x80\xae/ ~\xe2\x80\xac"), "rm -rf \\u{202E}/ ~\\u{202C}");
  EXPECT_EQ(visible("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");
  EXPECT_EQ(visible("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c"), "\\u{200E}\\u{200F}\\u{061C}");
}

TEST(Visible, ZeroWidthAndSeparatorsAreEscaped) {
  EXPECT_EQ(visible("s\xe2\x80\x8bu\xe2\x80\x8d"
                    "do"),
            "s\\u{200B}u\\u{200D}do");
  EXPECT_EQ(visible("\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf\xe2\x81\xa0"),
            "\\u{2028}\\u{2029}\\u{FEFF}\\u{2060}");
}

TEST(Visible, BytesThatAreNotUtf8AreEscaped) {
  EXPECT_EQ(visible("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(visible("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(visible("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(visible("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(visible("ok\xe2\x80"), "ok\\xe2\\x80");                // cut short
  EXPECT_EQ(visible("\xe2\x80\x1b"), "\\xe2\\x80\\x1b");           // a control inside
}

}  // namespace
}  // namespace shaudit::cli
