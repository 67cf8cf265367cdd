// SPDX-License-Identifier: Apache-2.0
#include "alerts.h"

#include <algorithm>

#include "shaudit/record.h"

namespace shaudit::daemon {

Result<size_t> Alerter::load(const std::vector<std::string>& paths) {
  auto r = rules::load_rules(paths);
  if (!r) return r.error();
  size_t n = r->rule_count();
  std::lock_guard lk(mu_);
  rules_ = std::move(*r);
  return n;
}

std::vector<json::Object> Alerter::evaluate(const json::Object& rec) {
  const rules::RuleSet rules = [&] {  // a copy of the handle (no default-made set per record)
    std::lock_guard lk(mu_);
    return rules_;
  }();
  std::vector<json::Object> out;
  const std::string* type = json::get_string(rec, "type");
  const std::string* session = json::get_string(rec, "session");
  const std::string key = session ? *session : std::string();
  auto sit = sessions_.find(key);
  if (sit == sessions_.end()) {
    if (sessions_.size() >= kMaxSessions) sessions_.erase(sessions_.begin());  // never ended
    sit = sessions_.emplace(key, Session{}).first;
  }
  Session& sess = sit->second;
  // The container of each live session: records name their session, its start the container.
  if (type && session && *type == record::kSessionStart) {
    auto c = rec.find(std::string_view("container"));
    if (c != rec.end() && c->second.is_object()) {
      sess.container = c->second.as_object();
      sess.has_container = true;
    }
  }
  struct ForgetAtEnd {  // a session's end is the last record its state applies to
    std::unordered_map<std::string, Session>& map;
    const std::string* session;
    ~ForgetAtEnd() {
      if (session) map.erase(*session);
    }
  } forget{sessions_, type && session && *type == record::kSessionEnd ? session : nullptr};
  if (rules.rule_count() == 0) return out;
  rules::EvalContext ctx;
  ctx.hostname = hostname_;
  if (sess.has_container) ctx.container = &sess.container;
  ctx.shell_vars = &sess.vars;
  const std::string* cmd = json::get_string(rec, "command");
  const std::string* text = json::get_string(rec, "text");
  const bool typed = type && *type == record::kCommand && text;
  auto cont = rec.find("continuation");
  const bool continuation =
      typed && cont != rec.end() && cont->second.is_bool() && cont->second.as_bool();
  shell::Normalised line_shell, joined_shell;
  if (typed) {
    line_shell = shell::normalise(*text, &sess.vars);
    ctx.shell = &line_shell;
  }
  // A continuation line belongs to a command whose other fields its first line was matched
  // on: only the rules reading the text run again.
  ctx.text_rules_only = continuation;
  std::vector<rules::Match> matches = rules.evaluate(rec, ctx);
  const shell::Normalised* assigned = typed ? &line_shell : nullptr;
  // The logical command: this line joined to the lines before it of the same command.
  if (typed && cmd) {
    auto& cmds = sess.commands;
    auto it =
        std::find_if(cmds.begin(), cmds.end(), [&](const auto& c) { return c.first == *cmd; });
    if (it == cmds.end()) {
      if (cmds.size() >= kMaxOpenCommands) cmds.erase(cmds.begin());  // this session's oldest
      cmds.emplace_back(*cmd, std::string());
      it = cmds.end() - 1;
    }
    std::string& joined = it->second;
    if (continuation && !joined.empty()) {
      joined += '\n';
      joined += *text;
    } else {
      joined = *text;
    }
    if (joined.size() > kMaxJoined) {  // its last bytes, from a line's start where there is one
      size_t cut = joined.size() - kMaxJoined;
      size_t nl = joined.find('\n', cut);
      joined.erase(0, nl == std::string::npos ? cut : nl + 1);
    }
    if (continuation) {
      joined_shell = shell::normalise(joined, &sess.vars);
      ctx.cmd_text = joined;
      ctx.shell = &joined_shell;
      assigned = &joined_shell;
      for (auto& m : rules.evaluate(rec, ctx)) {
        bool seen = false;
        for (const auto& have : matches) seen = seen || have.rule == m.rule;
        if (!seen) matches.push_back(std::move(m));
      }
    }
  }
  // What the command assigned, for the session's later commands (plain values, bounded).
  if (assigned) {
    for (const auto& [name, value] : assigned->assignments) {
      auto v = sess.vars.find(name);
      if (v != sess.vars.end())
        v->second = value;
      else if (sess.vars.size() < kMaxVars)
        sess.vars.emplace(name, value);
    }
  }
  for (auto& m : matches) {
    json::Object a;
    a["type"] = record::kAlert;
    a["rule"] = m.rule;
    a["priority"] = rules::priority_name(m.priority);
    record::set_bytes(a, "output", m.output);
    json::Array tags;
    for (auto& t : m.tags) tags.emplace_back(std::move(t));
    a["tags"] = std::move(tags);
    json::Object fields;
    for (auto& [name, value] : m.output_fields) fields[name] = json::to_valid_utf8(value);
    a["output_fields"] = std::move(fields);
    if (type) a["ref_type"] = *type;
    if (session) a["session"] = *session;
    if (auto p = json::get_int(rec, "pid")) a["pid"] = *p;
    // Who acted, as the matched record says: outputs that index by person (auditd's
    // `ausearch -ui`, syslog's uid SD-PARAM, OTLP's user.name) find the alert with the act.
    for (const char* k : {"user", "uid", "loginuid", "audit_session"})
      if (auto it = rec.find(std::string_view(k)); it != rec.end()) a[k] = it->second;
    // The session's container (pod, namespace, ...): what an alert's reader and the outputs'
    // labels need, without the session's start at hand.
    if (ctx.container) a["container"] = *ctx.container;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace shaudit::daemon
