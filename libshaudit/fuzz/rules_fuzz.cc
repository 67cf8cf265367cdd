// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the rules loader: arbitrary bytes as a rule file; when they load,
// the rules are evaluated against a few fixed records. The same bytes go through
// shell::normalise as a command line (with a variable set), and as the text of a command
// record evaluated by the fuzzed rules.
#include <string>

#include "shaudit/json.h"
#include "shaudit/rules.h"
#include "shaudit/shell_words.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  shaudit::shell::Vars vars{{"a", "ba"}};
  (void)shaudit::shell::normalise(text, &vars);
  auto rs = shaudit::rules::load_rules_from_strings({{"fuzz.yaml", text}});
  if (!rs) return 0;
  shaudit::json::Object cmd;
  cmd["type"] = "command";
  cmd["text"] = "sudo cat /etc/shadow";
  cmd["shell"] = "bash";
  cmd["pid"] = 1;
  cmd["uid"] = 0;
  shaudit::json::Object exec;
  exec["type"] = "exec";
  exec["argv"] = shaudit::json::Array{"curl", "-s"};
  exec["path"] = "/usr/bin/curl";
  shaudit::rules::EvalContext ctx;
  ctx.hostname = "h";
  (void)rs->evaluate(cmd, ctx);
  (void)rs->evaluate(exec, ctx);
  ctx.cmd_text = std::string_view("a b");
  (void)rs->evaluate(cmd, ctx);
  ctx.cmd_text = text;
  ctx.shell_vars = &vars;
  (void)rs->evaluate(cmd, ctx);
  return 0;
}
