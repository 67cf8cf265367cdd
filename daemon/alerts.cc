// SPDX-License-Identifier: Apache-2.0
#include "alerts.h"

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
  // The container of each live session: records name their session, its start the container.
  if (type && session && *type == record::kSessionStart) {
    auto c = rec.find(std::string_view("container"));
    if (c != rec.end() && c->second.is_object()) {
      if (containers_.size() >= 65536) containers_.clear();  // bounded: sessions that never ended
      containers_[*session] = c->second.as_object();
    }
  }
  struct ForgetAtEnd {  // a session's end is the last record its container applies to
    std::unordered_map<std::string, json::Object>& map;
    const std::string* session;
    ~ForgetAtEnd() {
      if (session) map.erase(*session);
    }
  } forget{containers_, type && session && *type == record::kSessionEnd ? session : nullptr};
  if (rules.rule_count() == 0) return out;
  rules::EvalContext ctx;
  ctx.hostname = hostname_;
  if (session) {
    if (auto it = containers_.find(*session); it != containers_.end()) ctx.container = &it->second;
  }
  std::vector<rules::Match> matches = rules.evaluate(rec, ctx);
  // The logical command: this line joined to the lines before it of the same command.
  const std::string* cmd = json::get_string(rec, "command");
  const std::string* text = json::get_string(rec, "text");
  if (type && *type == record::kCommand && cmd && text) {
    if (joined_.size() > 4096) joined_.clear();
    auto cont = rec.find("continuation");
    bool continuation = cont != rec.end() && cont->second.is_bool() && cont->second.as_bool();
    std::string& joined = joined_[*cmd];
    if (continuation && !joined.empty()) {
      joined += '\n';
      joined += *text;
    } else {
      joined = *text;
    }
    if (continuation) {
      ctx.cmd_text = joined;
      for (auto& m : rules.evaluate(rec, ctx)) {
        bool seen = false;
        for (const auto& have : matches) seen = seen || have.rule == m.rule;
        if (!seen) matches.push_back(std::move(m));
      }
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
