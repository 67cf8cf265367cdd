// SPDX-License-Identifier: Apache-2.0
#include "shaudit/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "internal/test_util.h"

namespace shaudit::rules {
namespace {

using shaudit::testing::TempDir;
using shaudit::testing::write_file;

json::Object command_record() {
  json::Object o;
  o["type"] = "command";
  o["text"] = "sudo cat /etc/shadow";
  o["shell"] = "bash";
  o["pid"] = 4242;
  o["uid"] = 1000;
  o["user"] = "alice";
  o["session"] = "s-1";
  o["tty"] = "/dev/pts/3";
  o["cwd"] = "/home/alice";
  return o;
}

json::Object exec_record() {
  json::Object o;
  o["type"] = "exec";
  o["argv"] = json::Array{"curl", "-s", "http://x.example/a.sh"};
  o["path"] = "/usr/bin/curl";
  o["pid"] = 77;
  o["source"] = "bpf";
  o["container"] = json::Object{{"id", "abc123"}, {"namespace", "prod"}, {"pod", "web-1"}};
  return o;
}

RuleSet load(const std::string& yaml) {
  auto r = load_rules_from_strings({{"rules.yaml", yaml}});
  EXPECT_TRUE(r.ok()) << yaml << "\n=> " << (r.ok() ? "" : r.message());
  return r.ok() ? std::move(*r) : RuleSet();
}

std::string load_error(const std::vector<std::pair<std::string, std::string>>& sources) {
  auto r = load_rules_from_strings(sources);
  EXPECT_FALSE(r.ok()) << "accepted:\n" << sources.back().second;
  return r.ok() ? std::string() : r.message();
}
std::string load_error(const std::string& yaml) {
  return load_error({{"rules.yaml", yaml}});
}

// Whether a single rule with this condition matches the record.
bool matches(const std::string& cond, const json::Object& rec, const EvalContext& ctx = {},
             const std::string& prelude = "") {
  std::string yaml =
      prelude + "- rule: t\n  condition: '" + cond + "'\n  output: o\n  priority: WARNING\n";
  auto r = load_rules_from_strings({{"rules.yaml", yaml}});
  EXPECT_TRUE(r.ok()) << cond << " => " << (r.ok() ? "" : r.message());
  if (!r.ok()) return false;
  return r->evaluate(rec, ctx).size() == 1;
}

TEST(Rules, Equality) {
  auto c = command_record();
  EXPECT_TRUE(matches("cmd.shell = bash", c));
  EXPECT_FALSE(matches("cmd.shell = zsh", c));
  EXPECT_TRUE(matches("cmd.shell != zsh", c));
  EXPECT_FALSE(matches("cmd.shell != bash", c));
  EXPECT_TRUE(matches("cmd.text = \"sudo cat /etc/shadow\"", c));
  EXPECT_TRUE(matches("evt.type=command", c));
  EXPECT_TRUE(matches("user.name = alice and session.id = s-1 and session.tty = /dev/pts/3", c));
}

TEST(Rules, NumericComparisons) {
  auto c = command_record();  // pid 4242, uid 1000
  EXPECT_TRUE(matches("proc.pid = 4242", c));
  EXPECT_FALSE(matches("proc.pid = 4243", c));
  EXPECT_TRUE(matches("proc.pid != 1", c));
  EXPECT_FALSE(matches("proc.pid != 4242", c));
  EXPECT_TRUE(matches("user.uid < 1001", c));
  EXPECT_FALSE(matches("user.uid < 1000", c));
  EXPECT_TRUE(matches("user.uid > 999", c));
  EXPECT_FALSE(matches("user.uid > 1000", c));
  EXPECT_TRUE(matches("user.uid <= 1000", c));
  EXPECT_FALSE(matches("user.uid <= 999", c));
  EXPECT_TRUE(matches("user.uid >= 1000", c));
  EXPECT_FALSE(matches("user.uid >= 1001", c));
  EXPECT_TRUE(matches("user.uid in (0, 1000)", c));
  EXPECT_FALSE(matches("user.uid in (0, 1)", c));
  EXPECT_TRUE(matches("user.uid=1000", c));
}

TEST(Rules, StringOperators) {
  auto c = command_record();
  EXPECT_TRUE(matches("cmd.text contains /etc/shadow", c));
  EXPECT_FALSE(matches("cmd.text contains /etc/passwd", c));
  EXPECT_TRUE(matches("cmd.text icontains \"CAT /ETC\"", c));
  EXPECT_FALSE(matches("cmd.text contains \"CAT /ETC\"", c));
  EXPECT_FALSE(matches("cmd.text icontains \"dog\"", c));
  EXPECT_TRUE(matches("cmd.text startswith sudo", c));
  EXPECT_FALSE(matches("cmd.text startswith cat", c));
  EXPECT_TRUE(matches("cmd.text endswith shadow", c));
  EXPECT_FALSE(matches("cmd.text endswith sudo", c));
  EXPECT_TRUE(matches("session.tty glob /dev/pts/*", c));
  EXPECT_FALSE(matches("session.tty glob /dev/tty?", c));
  EXPECT_TRUE(matches("cmd.text regex \"^sudo .*shadow$\"", c));
  EXPECT_FALSE(matches("cmd.text regex shadow", c));  // the whole value must match
  EXPECT_TRUE(matches("cmd.shell in (zsh, bash)", c));
  EXPECT_TRUE(matches("cmd.shell in (\"ba\" , \"bash\")", c));
  EXPECT_FALSE(matches("cmd.shell in (zsh, fish)", c));
}

TEST(Rules, ExistsAndAbsentFields) {
  auto c = command_record();
  EXPECT_TRUE(matches("cmd.text exists", c));
  EXPECT_FALSE(matches("bypass.kind exists", c));
  EXPECT_TRUE(matches("not bypass.kind exists", c));
  // A missing field makes every comparison false, != included.
  EXPECT_FALSE(matches("bypass.kind = x", c));
  EXPECT_FALSE(matches("bypass.kind != x", c));
  EXPECT_FALSE(matches("session.remote_host in (a, b)", c));
  EXPECT_FALSE(matches("proc.argv contains x", c));
  EXPECT_FALSE(matches("container.id exists", c));
  // A field of the wrong JSON type is absent.
  json::Object o = c;
  o["pid"] = "4242";
  EXPECT_FALSE(matches("proc.pid = 4242", o));
  EXPECT_FALSE(matches("proc.pid exists", o));
}

TEST(Rules, ExecAndOtherFields) {
  auto e = exec_record();
  EXPECT_TRUE(matches("proc.argv = \"curl -s http://x.example/a.sh\"", e));
  EXPECT_TRUE(matches("proc.cmdline startswith \"curl -s\"", e));
  EXPECT_TRUE(matches("proc.exe = /usr/bin/curl", e));
  EXPECT_TRUE(matches("proc.pid = 77", e));
  EXPECT_TRUE(matches("container.id = abc123 and k8s.ns.name = prod and k8s.pod.name = web-1", e));
  EXPECT_FALSE(matches("container.name exists or container.image exists", e));
  EXPECT_FALSE(matches("cmd.text exists", e));
  json::Object b;
  b["type"] = "bypass";
  b["kind"] = "unreported_input";
  b["exe"] = "/bin/dash";
  b["pid"] = 9;
  EXPECT_TRUE(matches("bypass.kind = unreported_input and proc.exe = /bin/dash", b));
  json::Object s;
  s["type"] = "session_start";
  s["service"] = "sshd";
  s["remote_host"] = "10.0.0.5";
  s["user"] = "root";
  s["uid"] = 0;
  EXPECT_TRUE(
      matches("session.service = sshd and session.remote_host startswith 10. and user.uid = 0", s));
  // path is the exe only for exec records.
  json::Object other;
  other["type"] = "command";
  other["path"] = "/x";
  EXPECT_FALSE(matches("proc.exe exists", other));
}

TEST(Rules, HostNameAndCmdTextOverride) {
  auto c = command_record();
  EXPECT_FALSE(matches("host.name exists", c));  // no hostname given
  EvalContext ctx;
  ctx.hostname = "web-01";
  EXPECT_TRUE(matches("host.name = web-01", c, ctx));
  EXPECT_TRUE(matches("host.name glob \"web-*\"", c, ctx));
  EXPECT_FALSE(matches("host.name = db-01", c, ctx));
  std::string joined = "echo a \\\n  b";
  ctx.cmd_text = joined;
  EXPECT_TRUE(matches("cmd.text startswith echo", c, ctx));
  EXPECT_FALSE(matches("cmd.text contains sudo", c, ctx));
}

TEST(Rules, Precedence) {
  auto c = command_record();
  // and binds tighter than or: false and false or true == true
  EXPECT_TRUE(matches("cmd.shell = zsh and user.name = bob or proc.pid = 4242", c));
  // with parentheses: false and (false or true) == false
  EXPECT_FALSE(matches("cmd.shell = zsh and (user.name = bob or proc.pid = 4242)", c));
  // true or false and false == true (not (true or false) and false)
  EXPECT_TRUE(matches("cmd.shell = bash or user.name = bob and proc.pid = 1", c));
  EXPECT_FALSE(matches("(cmd.shell = bash or user.name = bob) and proc.pid = 1", c));
  // not binds tighter than and
  EXPECT_TRUE(matches("not cmd.shell = zsh and user.name = alice", c));
  EXPECT_FALSE(matches("not cmd.shell = bash and user.name = alice", c));
  EXPECT_FALSE(matches("not (cmd.shell = zsh or user.name = alice)", c));
  EXPECT_TRUE(matches("not not cmd.shell = bash", c));
}

TEST(Rules, MacrosAndLists) {
  auto c = command_record();
  std::string prelude =
      "- list: shells\n  items: [zsh, fish]\n"
      "- list: all_shells\n  items: [shells, dash]\n"
      "- macro: interactive\n  condition: session.tty exists\n"
      "- macro: in_bash\n  condition: cmd.shell = bash and interactive\n";
  EXPECT_TRUE(matches("in_bash", c, {}, prelude));
  EXPECT_FALSE(matches("not in_bash", c, {}, prelude));
  EXPECT_FALSE(matches("cmd.shell in (shells)", c, {}, prelude));
  EXPECT_TRUE(matches("cmd.shell in (shells, bash)", c, {}, prelude));
  json::Object z = c;
  z["shell"] = "fish";
  EXPECT_TRUE(matches("cmd.shell in (all_shells)", z, {}, prelude));  // nested list
  z["shell"] = "dash";
  EXPECT_TRUE(matches("cmd.shell in (all_shells)", z, {}, prelude));
}

TEST(Rules, AppendAndOverride) {
  auto c = command_record();
  std::string prelude =
      "- list: shells\n  items: [zsh]\n"
      "- list: shells\n  items: [bash]\n  append: true\n"
      "- macro: m\n  condition: user.name = bob\n"
      "- macro: m\n  condition: or user.name = alice\n  append: true\n";
  EXPECT_TRUE(matches("cmd.shell in (shells) and m", c, {}, prelude));

  // A later list/macro replaces the earlier one.
  std::string over =
      "- list: shells\n  items: [bash]\n"
      "- list: shells\n  items: [zsh]\n"
      "- macro: m\n  condition: user.name = alice\n"
      "- macro: m\n  condition: user.name = bob\n";
  EXPECT_FALSE(matches("cmd.shell in (shells)", c, {}, over));
  EXPECT_FALSE(matches("m", c, {}, over));

  // Rule append: "(old) and ...", across files; rule override keeps its place.
  auto r = load_rules_from_strings(
      {{"a.yaml",
        "- rule: r1\n  condition: cmd.shell = bash\n  output: one\n  priority: NOTICE\n"
        "- rule: r2\n  condition: cmd.shell = bash\n  output: two\n  priority: NOTICE\n"},
       {"b.yaml",
        "- rule: r1\n  condition: and user.name = bob\n  append: true\n"
        "- rule: r2\n  condition: user.name = alice\n  output: two-b\n  priority: ERROR\n"
        "  tags: [t1]\n"}});
  ASSERT_TRUE(r.ok()) << r.message();
  auto m = r->evaluate(c, {});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].rule, "r2");
  EXPECT_EQ(m[0].output, "two-b");
  EXPECT_EQ(m[0].priority, Priority::kError);
  EXPECT_EQ(m[0].tags, std::vector<std::string>{"t1"});
  EXPECT_EQ(r->rule_count(), 2u);

  // The overridden r1 still comes before r2.
  r = load_rules_from_strings(
      {{"a.yaml",
        "- rule: r1\n  condition: cmd.shell = bash\n  output: one\n  priority: NOTICE\n"
        "- rule: r2\n  condition: cmd.shell = bash\n  output: two\n  priority: NOTICE\n"},
       {"b.yaml",
        "- rule: r1\n  condition: user.name = alice\n  output: one-b\n  priority: ERROR\n"}});
  ASSERT_TRUE(r.ok()) << r.message();
  m = r->evaluate(c, {});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].output, "one-b");
  EXPECT_EQ(m[1].output, "two");
}

TEST(Rules, OutputRenderingAndMatchFields) {
  auto rs = load(
      "- rule: Shadow read\n"
      "  condition: cmd.text contains shadow\n"
      "  output: \"%user.name (uid=%user.uid) ran %cmd.text on %host.name from "
      "%session.remote_host, 100% sure, pid %proc.pid.\"\n"
      "  priority: critical\n"
      "  tags: [files, mitre_credential_access]\n");
  EvalContext ctx;
  ctx.hostname = "h1";
  auto m = rs.evaluate(command_record(), ctx);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].rule, "Shadow read");
  EXPECT_EQ(m[0].priority, Priority::kCritical);
  EXPECT_EQ(m[0].tags, (std::vector<std::string>{"files", "mitre_credential_access"}));
  EXPECT_EQ(m[0].output,
            "alice (uid=1000) ran sudo cat /etc/shadow on h1 from <NA>, 100% sure, pid 4242.");
}

TEST(Rules, OutputFieldsInTemplateOrderWithoutDuplicates) {
  auto rs = load(
      "- rule: Shadow read\n"
      "  condition: cmd.text contains shadow\n"
      "  output: \"%user.name ran %cmd.text (pid %proc.pid, uid %user.uid) as %user.name "
      "from %session.remote_host on %host.name\"\n"
      "  priority: WARNING\n"
      "- rule: Plain\n"
      "  condition: cmd.text contains shadow\n"
      "  output: no fields here, 100% sure\n"
      "  priority: NOTICE\n");
  auto m = rs.evaluate(command_record(), {});
  ASSERT_EQ(m.size(), 2u);
  using Fields = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(m[0].output_fields, (Fields{{"user.name", "alice"},
                                        {"cmd.text", "sudo cat /etc/shadow"},
                                        {"proc.pid", "4242"},
                                        {"user.uid", "1000"},
                                        {"session.remote_host", "<NA>"},
                                        {"host.name", "<NA>"}}));
  EXPECT_TRUE(m[1].output_fields.empty());
  // The joined text of a logical command is what cmd.text renders to.
  EvalContext ctx;
  ctx.cmd_text = "cat \\\n /etc/shadow";
  m = rs.evaluate(command_record(), ctx);
  ASSERT_EQ(m.size(), 2u);
  ASSERT_GE(m[0].output_fields.size(), 2u);
  EXPECT_EQ(m[0].output_fields[1],
            (std::pair<std::string, std::string>{"cmd.text", "cat \\\n /etc/shadow"}));
}

TEST(Rules, DisabledRulesDoNotMatch) {
  auto c = command_record();
  auto rs = load(
      "- rule: a\n  condition: evt.type = command\n  output: a\n  priority: DEBUG\n"
      "  enabled: false\n"
      "- rule: b\n  condition: evt.type = command\n  output: b\n  priority: DEBUG\n"
      "- rule: c\n  condition: evt.type = command\n  output: c\n  priority: DEBUG\n"
      "- rule: b\n  enabled: false\n");
  auto m = rs.evaluate(c, {});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].rule, "c");
  EXPECT_EQ(rs.rule_count(), 3u);
}

TEST(Rules, Priorities) {
  EXPECT_EQ(parse_priority("EMERGENCY"), Priority::kEmergency);
  EXPECT_EQ(parse_priority("alert"), Priority::kAlert);
  EXPECT_EQ(parse_priority("Critical"), Priority::kCritical);
  EXPECT_EQ(parse_priority("error"), Priority::kError);
  EXPECT_EQ(parse_priority("WARNING"), Priority::kWarning);
  EXPECT_EQ(parse_priority("notice"), Priority::kNotice);
  EXPECT_EQ(parse_priority("INFORMATIONAL"), Priority::kInformational);
  EXPECT_EQ(parse_priority("INFO"), Priority::kInformational);
  EXPECT_EQ(parse_priority("debug"), Priority::kDebug);
  EXPECT_EQ(parse_priority("warn"), std::nullopt);
  EXPECT_STREQ(priority_name(Priority::kInformational), "Informational");
}

TEST(Rules, Counts) {
  auto rs = load(
      "- list: l\n  items: [a]\n- macro: m\n  condition: evt.type in (l)\n"
      "- macro: m2\n  condition: m\n"
      "- rule: r\n  condition: m2\n  output: o\n  priority: info\n");
  EXPECT_EQ(rs.rule_count(), 1u);
  EXPECT_EQ(rs.macro_count(), 2u);
  EXPECT_EQ(rs.list_count(), 1u);
}

const char* kRuleHead = "- rule: x\n  output: o\n  priority: WARNING\n";

TEST(RulesLoad, UnknownFieldInCondition) {
  EXPECT_EQ(load_error(std::string(kRuleHead) + "  condition: evt.type = a and proc.bogus = 1\n"),
            "rules.yaml:4:14: unknown field 'proc.bogus' in condition of rule 'x' at column 18");
  // A quoted condition: the column is within the string.
  EXPECT_EQ(load_error(std::string(kRuleHead) + "  condition: \"proc.bogus exists\"\n"),
            "rules.yaml:4:14: unknown field 'proc.bogus' in condition of rule 'x' at column 1");
}

TEST(RulesLoad, UnknownMacro) {
  EXPECT_EQ(load_error(std::string(kRuleHead) + "  condition: not_a_macro or evt.type = a\n"),
            "rules.yaml:4:14: unknown macro 'not_a_macro' in condition of rule 'x' at column 1");
  EXPECT_EQ(load_error("- macro: m\n  condition: evt.type = a and nope\n"),
            "rules.yaml:2:14: unknown macro 'nope' in condition of macro 'm' at column 18");
  EXPECT_EQ(load_error("- macro: a\n  condition: b\n- macro: b\n  condition: a\n"),
            "rules.yaml:4:14: macro 'a' refers to itself in condition of macro 'b' at column 1");
  EXPECT_EQ(load_error("- macro: m\n  condition: x\n  append: true\n"),
            "rules.yaml:1:3: unknown macro 'm' to append to");
}

TEST(RulesLoad, UnknownListAndRuleToAppendTo) {
  EXPECT_EQ(load_error("- list: l\n  items: [a]\n  append: true\n"),
            "rules.yaml:1:3: unknown list 'l' to append to");
  EXPECT_EQ(load_error("- rule: r\n  condition: and evt.type = a\n  append: true\n"),
            "rules.yaml:1:3: unknown rule 'r' to append to");
  EXPECT_EQ(load_error("- rule: r\n  enabled: false\n"),
            "rules.yaml:1:3: unknown rule 'r' to enable or disable");
}

TEST(RulesLoad, BadPriority) {
  EXPECT_EQ(load_error("- rule: x\n  condition: evt.type = a\n  output: o\n  priority: LOUD\n"),
            "rules.yaml:4:13: unknown priority 'LOUD' in rule 'x' (one of EMERGENCY, ALERT, "
            "CRITICAL, ERROR, WARNING, NOTICE, INFORMATIONAL, DEBUG)");
}

TEST(RulesLoad, YamlError) {
  EXPECT_EQ(load_error("- rule: x\n  condition: [a\n"),
            "rules.yaml:3:1: end of sequence flow not found");
  EXPECT_EQ(load_error("rule: x\n"),
            "rules.yaml:1:1: expected a list of list, macro and rule items");
  EXPECT_EQ(load_error("- required_engine_version: 9\n"),
            "rules.yaml:1:3: expected a list, macro or rule item");
  EXPECT_EQ(load_error("- rule: x\n  condition: evt.type = a\n  output: o\n  priority: INFO\n"
                       "  colour: red\n"),
            "rules.yaml:5:3: unknown key 'colour' in rule (known keys: rule, desc, condition, "
            "output, priority, tags, enabled, append)");
  EXPECT_EQ(load_error("- rule: x\n  condition: evt.type = a\n  priority: INFO\n"),
            "rules.yaml:1:3: rule 'x' has no 'output'");
  EXPECT_EQ(load_error("- rule: x\n  condition: evt.type = a\n  output: o\n  priority: INFO\n"
                       "  enabled: maybe\n"),
            "rules.yaml:5:12: 'enabled' must be true or false, got 'maybe'");
}

TEST(RulesLoad, SyntaxErrors) {
  auto err = [](const std::string& cond) {
    return load_error(std::string(kRuleHead) + "  condition: '" + cond + "'\n");
  };
  EXPECT_EQ(err("(evt.type = a"),
            "rules.yaml:4:14: expected ')' but found end of condition in condition of rule 'x' "
            "at column 14");
  EXPECT_EQ(err("evt.type = a)"),
            "rules.yaml:4:14: unexpected ')' in condition of rule 'x' at column 13");
  EXPECT_EQ(err("evt.type"),
            "rules.yaml:4:14: expected an operator after field 'evt.type' but found end of "
            "condition in condition of rule 'x' at column 9");
  EXPECT_EQ(err("evt.type = \"a"),
            "rules.yaml:4:14: unterminated string in condition of rule 'x' at column 12");
  EXPECT_EQ(err("evt.type in (a, b"),
            "rules.yaml:4:14: expected ',' or ')' but found end of condition in condition of "
            "rule 'x' at column 18");
  EXPECT_EQ(err("evt.type = a and"),
            "rules.yaml:4:14: expected a field, macro or '(' but found end of condition in "
            "condition of rule 'x' at column 17");
  EXPECT_EQ(err("proc.pid = abc"),
            "rules.yaml:4:14: expected a number for field 'proc.pid' but found 'abc' in "
            "condition of rule 'x' at column 12");
  EXPECT_EQ(err("cmd.text < 3"),
            "rules.yaml:4:14: operator '<' needs a numeric field, not 'cmd.text' in condition "
            "of rule 'x' at column 10");
  // The middle is RE2's own description of the regex error.
  std::string re = err("cmd.text regex \"(\"");
  EXPECT_TRUE(re.starts_with("rules.yaml:4:14: bad regex '(': ")) << re;
  EXPECT_TRUE(re.ends_with(" in condition of rule 'x' at column 16")) << re;
}

TEST(RulesLoad, NestingLimit) {
  std::string deep(101, '(');
  EXPECT_EQ(load_error(std::string(kRuleHead) + "  condition: '" + deep + "'\n"),
            "rules.yaml:4:14: condition nested too deeply in condition of rule 'x' at column 101");
  EXPECT_TRUE(matches(std::string(100, '(') + "evt.type = command" + std::string(100, ')'),
                      command_record()));
}

TEST(Rules, CommandAsTheShellSeesIt) {
  auto c = command_record();
  c["text"] = R"(h"istory" -c; echo 'a  b' | "n"c -e x)";
  EXPECT_TRUE(matches(R"(cmd.line = "history -c; echo a  b | nc -e x")", c));
  EXPECT_TRUE(matches(R"(cmd.words = "history -c echo a  b nc -e x")", c));
  EXPECT_TRUE(matches("cmd.words in (ncat, nc)", c));  // any one word
  EXPECT_FALSE(matches("cmd.words in (ncat, netcat)", c));
  EXPECT_FALSE(matches("cmd.words in (a)", c));  // 'a  b' is one word
  EXPECT_TRUE(matches("cmd.obfuscated = history", c));
  EXPECT_TRUE(matches("cmd.line contains \"| nc -e\"", c));
  c["text"] = "ls -l";
  EXPECT_FALSE(matches("cmd.obfuscated exists", c));
  EXPECT_TRUE(matches("cmd.line exists and cmd.words exists", c));
  auto x = exec_record();  // no command text: none of them
  EXPECT_FALSE(matches("cmd.line exists or cmd.words exists or cmd.words in (curl)", x));
  // EvalContext::cmd_text (a joined command) and shell_vars are what they read.
  EvalContext ctx;
  ctx.cmd_text = "a=ba; $a\\\n\"sh\"";
  EXPECT_TRUE(matches("cmd.line = \"a=ba; bash\"", c, ctx));
  shell::Vars vars{{"t", "tcp"}};
  EvalContext ctx2;
  ctx2.shell_vars = &vars;
  c["text"] = "cat </dev/$t/h/1";
  EXPECT_TRUE(matches("cmd.line = \"cat </dev/tcp/h/1\"", c, ctx2));
  // In outputs too.
  auto r = load(
      "- rule: t\n  condition: evt.type = command\n  output: '%cmd.line|%cmd.words'\n"
      "  priority: WARNING\n");
  c["text"] = "echo \"a\"'b' >x";
  auto m = r.evaluate(c, {});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].output, "echo ab >x|echo ab x");
}

TEST(Rules, TextRulesOnly) {
  auto r = load(R"(
- macro: shown
  condition: cmd.line contains shadow
- rule: by user
  condition: user.name = alice
  output: o
  priority: WARNING
- rule: by text
  condition: user.name = alice and cmd.text contains shadow
  output: o
  priority: WARNING
- rule: by macro
  condition: user.name = alice and shown
  output: o
  priority: WARNING
- rule: by evt.text
  condition: evt.text contains shadow
  output: o
  priority: WARNING
)");
  EvalContext ctx;
  std::vector<std::string> names;
  for (const auto& m : r.evaluate(command_record(), ctx)) names.push_back(m.rule);
  EXPECT_EQ(names, (std::vector<std::string>{"by user", "by text", "by macro", "by evt.text"}));
  ctx.text_rules_only = true;
  names.clear();
  for (const auto& m : r.evaluate(command_record(), ctx)) names.push_back(m.rule);
  EXPECT_EQ(names, (std::vector<std::string>{"by text", "by macro", "by evt.text"}));
}

// A chain of macros N deep: m0 uses no macro, m1 uses m0, ...
std::string macro_chain(int n, bool reversed = false) {
  std::vector<std::string> items;
  for (int i = 0; i < n; ++i)
    items.push_back("- macro: m" + std::to_string(i) + "\n  condition: " +
                    (i == 0 ? std::string("evt.type = command") : "m" + std::to_string(i - 1)) +
                    "\n");
  if (reversed) std::reverse(items.begin(), items.end());
  std::string y;
  for (auto& i : items) y += i;
  return y;
}

TEST(RulesLoad, MacroDepthLimit) {
  // 32 deep loads; 33 does not, in either order of definition (and 5,000 do not overflow).
  EXPECT_TRUE(matches("m31", command_record(), {}, macro_chain(32)));
  EXPECT_EQ(load_error(macro_chain(33)),
            "rules.yaml:66:14: macros nested more than 32 deep (macro 'm31') in condition of "
            "macro 'm32' at column 1");
  EXPECT_EQ(load_error(macro_chain(33, true)),
            "rules.yaml:64:14: macros nested more than 32 deep (macro 'm0') in condition of "
            "macro 'm1' at column 1");
  EXPECT_NE(load_error(macro_chain(5000, true)).find("macros nested more than 32 deep"),
            std::string::npos);
}

TEST(RulesLoad, ConditionNodeBudget) {
  // Each macro uses the one before twice: m_i stands for 2^(i+2)-1 nodes.
  std::string y = "- macro: m0\n  condition: evt.type = a or evt.type = b\n";
  for (int i = 1; i < 30; ++i)
    y += "- macro: m" + std::to_string(i) + "\n  condition: m" + std::to_string(i - 1) + " or m" +
         std::to_string(i - 1) + "\n";
  EXPECT_EQ(load_error(y),
            "rules.yaml:32:14: condition of macro 'm15' expands to more than 100000 nodes (each "
            "use of a macro counts its nodes again)");
  // A rule over the budget, its macros within it.
  std::string ok = "- macro: m0\n  condition: evt.type = a or evt.type = b\n";
  for (int i = 1; i < 15; ++i)
    ok += "- macro: m" + std::to_string(i) + "\n  condition: m" + std::to_string(i - 1) + " or m" +
          std::to_string(i - 1) + "\n";
  EXPECT_TRUE(matches("m14 or evt.type = command", command_record(), {}, ok));
  EXPECT_EQ(
      load_error(ok + "- rule: big\n  condition: m14 or m14\n  output: o\n  priority: INFO\n"),
      "rules.yaml:32:14: condition of rule 'big' expands to more than 100000 nodes (each "
      "use of a macro counts its nodes again)");
}

TEST(RulesLoad, ListSizeLimits) {
  auto items = [](int n, const std::string& item) {
    std::string s = "[";
    for (int i = 0; i < n; ++i)
      s += (i ? ", " : "") + item + (item == "x" ? std::to_string(i) : "");
    return s + "]";
  };
  std::string l10k = "- list: big\n  items: " + items(10000, "x") + "\n";
  EXPECT_TRUE(matches("proc.exe in (big)", command_record(), {}, l10k) == false);
  EXPECT_EQ(load_error("- list: big\n  items: " + items(10001, "x") + "\n"),
            "rules.yaml:1:3: list 'big' has more than 10000 items");
  EXPECT_EQ(load_error(l10k + "- list: big\n  append: true\n  items: [one]\n"),
            "rules.yaml:3:3: list 'big' has more than 10000 items");
  // Lists of lists: 100 items, 101 times.
  std::string nested = "- list: small\n  items: " + items(100, "x") +
                       "\n- list: wide\n  items: " + items(101, "small") + "\n";
  EXPECT_EQ(load_error(nested + std::string(kRuleHead) + "  condition: proc.exe in (wide)\n"),
            "rules.yaml:8:14: list 'wide' expands to more than 10000 items in condition of rule "
            "'x' at column 14");
  std::string many = "small";
  for (int i = 0; i < 100; ++i) many += ", small";
  EXPECT_EQ(
      load_error(nested + std::string(kRuleHead) + "  condition: proc.exe in (" + many + ")\n"),
      "rules.yaml:8:14: 'in' has more than 10000 values in condition of rule 'x' at column "
      "714");
}

TEST(RulesLoad, ErrorInAppendedConditionPointsAtTheAppend) {
  EXPECT_EQ(load_error({{"a.yaml",
                         "- rule: x\n  condition: evt.type = a\n  output: o\n  priority: INFO\n"},
                        {"b.yaml", "- rule: x\n  append: true\n  condition: and proc.nope = 1\n"}}),
            "b.yaml:3:14: unknown field 'proc.nope' in condition of rule 'x' at column 5");
}

TEST(RulesLoad, UnknownFieldInOutput) {
  EXPECT_EQ(load_error("- rule: x\n  condition: evt.type = a\n  output: \"by %user.nam\"\n"
                       "  priority: INFO\n"),
            "rules.yaml:3:11: unknown field 'user.nam' in output of rule 'x' at column 4");
}

TEST(RulesLoad, FromFiles) {
  TempDir dir;
  write_file(dir.file("a.yaml"), "- list: l\n  items: [bash]\n");
  write_file(dir.file("b.yaml"),
             "- rule: r\n  condition: cmd.shell in (l)\n  output: o\n  priority: info\n");
  auto rs = load_rules({dir.file("a.yaml"), dir.file("b.yaml")});
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_EQ(rs->evaluate(command_record(), {}).size(), 1u);
  auto missing = load_rules({dir.file("nope.yaml")});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), dir.file("nope.yaml") + ": cannot open: No such file or directory");
}

TEST(RulesLoad, DirectoryLoadsItsYamlFilesInNameOrder) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("rules.d"));
  // 10-list defines the list 20-rule uses: loading in any other order fails.
  write_file(dir.file("rules.d/20-rule.yaml"),
             "- rule: r\n  condition: cmd.shell in (l)\n  output: o\n  priority: info\n");
  write_file(dir.file("rules.d/10-list.yml"), "- list: l\n  items: [bash]\n");
  write_file(dir.file("rules.d/30-broken.yaml.dpkg-old"), "not: [valid");
  write_file(dir.file("rules.d/.40-hidden.yaml"), "not: [valid");
  auto rs = load_rules({dir.file("rules.d")});
  ASSERT_TRUE(rs.ok()) << rs.message();
  EXPECT_EQ(rs->rule_count(), 1u);
  EXPECT_EQ(rs->evaluate(command_record(), {}).size(), 1u);
  auto empty = load_rules({dir.path()});  // no *.yaml directly inside: an empty set
  ASSERT_TRUE(empty.ok()) << empty.message();
  EXPECT_EQ(empty->rule_count(), 0u);
}

TEST(Rules, ContainerFieldsComeFromTheSessionsContainer) {
  // A command record names its session only; the session's container comes in the context.
  json::Object cmd = command_record();
  json::Object c{{"id", std::string(64, 'a')},
                 {"pod", "nginx-pod"},
                 {"namespace", "web"},
                 {"name", "nginx"},
                 {"image", "registry.example:5000/team/nginx:1.25"}};
  auto rs = load(
      "- rule: r\n  condition: k8s.pod.name = nginx-pod and k8s.ns.name = web and container.name = "
      "nginx and container.image.repository = \"registry.example:5000/team/nginx\"\n"
      "  output: \"%container.id %container.image\"\n  priority: info\n");
  EXPECT_TRUE(rs.evaluate(cmd, {}).empty());
  EvalContext ctx;
  ctx.container = &c;
  auto m = rs.evaluate(cmd, ctx);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].output, std::string(64, 'a') + " registry.example:5000/team/nginx:1.25");
  for (auto [image, repo] : {std::pair{"nginx", "nginx"},
                             {"docker.io/library/nginx@sha256:ab", "docker.io/library/nginx"},
                             {"localhost:5000/x", "localhost:5000/x"}}) {
    c["image"] = image;
    auto r = load(std::string("- rule: r\n  condition: container.image.repository = \"") + repo +
                  "\"\n  output: o\n  priority: info\n");
    EXPECT_EQ(r.evaluate(cmd, ctx).size(), 1u) << image;
  }
}

}  // namespace
}  // namespace shaudit::rules
