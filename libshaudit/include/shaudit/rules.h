// SPDX-License-Identifier: Apache-2.0
// A rules engine in the manner of Falco's rules: YAML files of lists, macros and rules whose
// conditions are evaluated against audit records.
//
// Items (several files loaded in order; a later definition of the same name replaces an
// earlier one, `append: true` extends it):
//   - list: NAME          items: [a, b, other_list]
//   - macro: NAME         condition: COND
//   - rule: NAME          condition: COND   output: "text %field"   priority: WARNING
//                         tags: [..]  enabled: true|false  desc: ..
//   - rule: NAME          enabled: false      (only `enabled`: toggles an earlier rule)
// Appended conditions become "(old) appended", as Falco joins them.
//
// Conditions: and, or, not, parentheses; FIELD OP VALUE with = != < > <= >= (the last four
// and numbers only for numeric fields), contains, icontains, startswith, endswith,
// glob (fnmatch), regex (RE2 syntax, whole value must match), FIELD in (v1, v2, list_name),
// FIELD exists; macro names as conditions. Bare words in `in (...)` that name a list are
// replaced by its items (lists may name other lists).
//
// Fields and the record keys they read: cmd.text (text, or EvalContext::cmd_text),
// cmd.shell (shell), proc.argv and proc.cmdline (argv joined by spaces), proc.exe (exe, or
// path on exec records), proc.pid (pid), user.name (user), user.uid (uid), session.id
// (session), session.service (service), session.remote_host (remote_host), session.tty
// (tty), host.name (EvalContext::hostname), container.id (container_id), k8s.ns.name
// (k8s_ns), k8s.pod.name (k8s_pod), bypass.kind (kind), evt.type (type), evt.text (cmd.text,
// else proc.argv); cmd.words, cmd.line and cmd.obfuscated (the command as the shell will see
// it, from shell::normalise of cmd.text: its words joined by spaces, where `in` is true when
// any one word is in the list; the normalised line; the first command name built from quoted
// or expanded pieces, absent when there is none). proc.pid and user.uid are numeric. A field
// absent from a record (or an empty hostname) makes every comparison on it false.
//
// Limits at load: a macro may use macros 32 deep; a condition, with each macro counted every
// time it is used, may have up to 100000 nodes; a list, and what an `in (...)` expands to, up
// to 10000 items.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/result.h"
#include "shaudit/shell_words.h"

namespace shaudit::rules {

enum class Priority {
  kEmergency,
  kAlert,
  kCritical,
  kError,
  kWarning,
  kNotice,
  kInformational,
  kDebug
};

// Falco's spelling: "Emergency", ..., "Informational", "Debug".
const char* priority_name(Priority p);
// Case-insensitive; "INFO" is accepted for Informational.
std::optional<Priority> parse_priority(std::string_view s);

struct EvalContext {
  std::string_view hostname;  // host.name; absent when empty
  // When set, cmd.text takes this value instead of the record's text (e.g. the joined text
  // of a logical command spanning several lines).
  std::optional<std::string_view> cmd_text;
  // The `container` object of the record's session (its session_start names it), for the
  // container.* and k8s.* fields; null outside containers.
  const json::Object* container = nullptr;
  // cmd.words, cmd.line and cmd.obfuscated: when set, this normalised form of the command
  // (e.g. made with the session's variables); else shell::normalise(cmd.text, shell_vars).
  const shell::Normalised* shell = nullptr;
  const shell::Vars* shell_vars = nullptr;
  // Only the rules whose condition reads the command's text (cmd.text, cmd.words, cmd.line,
  // cmd.obfuscated, evt.text): for a continuation line, whose other fields its command's
  // first line was already matched on.
  bool text_rules_only = false;
};

struct Match {
  std::string rule;
  Priority priority = Priority::kDebug;
  std::vector<std::string> tags;
  std::string output;  // the output template with each %field replaced (<NA> when absent)
  // Each field the output template names, with the text it was replaced by in `output`
  // (<NA> when absent, numbers in decimal): in template order, a field named twice once.
  std::vector<std::pair<std::string, std::string>> output_fields;
};

class RuleSet {
 public:
  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;
  RuleSet(const RuleSet&);
  RuleSet& operator=(const RuleSet&);

  // The enabled rules that match, in definition order.
  std::vector<Match> evaluate(const json::Object& record, const EvalContext& ctx) const;

  size_t rule_count() const;  // enabled or not
  size_t macro_count() const;
  size_t list_count() const;

  struct Impl;

 private:
  explicit RuleSet(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
  friend Result<RuleSet> load_rules_from_strings(
      const std::vector<std::pair<std::string, std::string>>& sources);
};

// Loads the files in order. Errors read "FILE:LINE:COL: message".
Result<RuleSet> load_rules(const std::vector<std::string>& paths);
// Each source is (name used in error messages, YAML text).
Result<RuleSet> load_rules_from_strings(
    const std::vector<std::pair<std::string, std::string>>& sources);

}  // namespace shaudit::rules
