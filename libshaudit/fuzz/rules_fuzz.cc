// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the rules loader: arbitrary bytes as a rule file; when they load,
// the rules are evaluated against a few fixed records.
#include <string>

#include "shaudit/json.h"
#include "shaudit/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
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
  return 0;
}
