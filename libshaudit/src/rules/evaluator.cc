// SPDX-License-Identifier: Apache-2.0
// Evaluation of compiled conditions against a record (Evaluator) and RuleSet::evaluate, which
// also renders the output of each rule that matches.
#include <fnmatch.h>
#include <re2/re2.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "rules/internal.h"
#include "shaudit/rules.h"

namespace shaudit::rules {

namespace detail {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

namespace {

// --- evaluation -------------------------------------------------------------------------

struct FieldValue {
  bool present = false;
  int64_t num = 0;
  std::string_view str;
  bool terminated = false;  // str is followed by a NUL (it views a std::string)
};

class Evaluator {
 public:
  Evaluator(const json::Object& rec, const EvalContext& ctx) : rec_(rec), ctx_(ctx) {}

  FieldValue get(Field f) {
    switch (f) {
      case Field::kCmdText:
        if (ctx_.cmd_text) return {true, 0, *ctx_.cmd_text};
        return str("text");
      case Field::kCmdShell:
        return str("shell");
      case Field::kProcArgv:
      case Field::kProcCmdline:
        return argv();
      case Field::kProcExe: {
        FieldValue v = str("exe");
        if (!v.present) {
          auto t = json::get_string(rec_, "type");
          if (t && *t == "exec") v = str("path");
        }
        return v;
      }
      case Field::kProcPid:
        return num("pid");
      case Field::kUserName:
        return str("user");
      case Field::kUserUid:
        return num("uid");
      case Field::kSessionId:
        return str("session");
      case Field::kSessionService:
        return str("service");
      case Field::kSessionRemoteHost:
        return str("remote_host");
      case Field::kSessionTty:
        return str("tty");
      case Field::kHostName:
        return ctx_.hostname.empty() ? FieldValue{} : FieldValue{true, 0, ctx_.hostname};
      // Falco's names; the values come from the session's container (see EvalContext).
      case Field::kContainerId:
        return container("id");
      case Field::kContainerName:
        return container("name");
      case Field::kContainerImage:
        return container("image");
      case Field::kContainerImageRepository: {
        FieldValue v = container("image");
        if (v.present) {
          v.str = image_repository(v.str);
          v.terminated = false;
        }
        return v;
      }
      case Field::kK8sNs:
        return container("namespace");
      case Field::kK8sPod:
        return container("pod");
      case Field::kBypassKind:
        return str("kind");
      case Field::kEvtType:
        return str("type");
      case Field::kEvtText: {
        FieldValue v = get(Field::kCmdText);
        return v.present ? v : argv();
      }
      case Field::kCmdWords: {
        const shell::Normalised* n = shell();
        if (!n) return {};
        if (!words_done_) {
          words_done_ = true;
          for (const auto& w : n->words) {
            if (!words_.empty()) words_ += ' ';
            words_ += w;
          }
        }
        return {true, 0, words_, true};
      }
      case Field::kCmdLine: {
        const shell::Normalised* n = shell();
        return n ? FieldValue{true, 0, n->line, true} : FieldValue{};
      }
      case Field::kCmdObfuscated: {
        const shell::Normalised* n = shell();
        if (!n || n->obfuscated.empty()) return {};
        return {true, 0, n->obfuscated, true};
      }
    }
    return {};
  }

  // The command's words (for `cmd.words in (...)`), or null when there is no command text.
  const std::vector<std::string>* words() {
    const shell::Normalised* n = shell();
    return n ? &n->words : nullptr;
  }

  bool eval(const Node& n);

 private:
  FieldValue str(std::string_view key) const {
    auto s = json::get_string(rec_, key);
    return s ? FieldValue{true, 0, *s, true} : FieldValue{};
  }
  FieldValue container(std::string_view key) const {
    // The record's own `container` (a session_start) or its session's.
    const json::Object* c = ctx_.container;
    auto it = rec_.find(std::string_view("container"));
    if (it != rec_.end() && it->second.is_object()) c = &it->second.as_object();
    if (!c) return {};
    auto s = json::get_string(*c, key);
    return s ? FieldValue{true, 0, *s, true} : FieldValue{};
  }
  // "registry/path/name:tag" or "...@sha256:..." -> "registry/path/name" (Falco's
  // container.image.repository).
  static std::string_view image_repository(std::string_view image) {
    if (size_t at = image.find('@'); at != std::string_view::npos) image = image.substr(0, at);
    size_t slash = image.rfind('/');
    size_t colon = image.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash))
      image = image.substr(0, colon);
    return image;
  }
  FieldValue num(std::string_view key) const {
    auto i = json::get_int(rec_, key);
    return i ? FieldValue{true, *i, {}} : FieldValue{};
  }
  const shell::Normalised* shell() {
    if (ctx_.shell) return ctx_.shell;
    if (!shell_done_) {
      shell_done_ = true;
      FieldValue t = get(Field::kCmdText);
      if (t.present) shell_ = shell::normalise(t.str, ctx_.shell_vars);
    }
    return shell_ ? &*shell_ : nullptr;
  }
  FieldValue argv() {
    if (!argv_done_) {
      argv_done_ = true;
      auto it = rec_.find(std::string_view("argv"));
      if (it != rec_.end() && it->second.is_array()) {
        argv_present_ = true;
        for (const auto& v : it->second.as_array()) {
          if (!v.is_string()) continue;
          if (!argv_.empty()) argv_ += ' ';
          argv_ += v.as_string();
        }
      }
    }
    return argv_present_ ? FieldValue{true, 0, argv_, true} : FieldValue{};
  }

  const json::Object& rec_;
  const EvalContext& ctx_;
  bool argv_done_ = false;
  bool argv_present_ = false;
  std::string argv_;
  bool shell_done_ = false;
  std::optional<shell::Normalised> shell_;
  bool words_done_ = false;
  std::string words_;
};

bool icontains(std::string_view hay, std::string_view lowered_needle) {
  if (lowered_needle.size() > hay.size()) return false;
  for (size_t i = 0; i + lowered_needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < lowered_needle.size() && lower(hay[i + j]) == lowered_needle[j]) ++j;
    if (j == lowered_needle.size()) return true;
  }
  return false;
}

bool Evaluator::eval(const Node& n) {
  switch (n.op) {
    case Op::kAnd:
      for (const auto& k : n.kids)
        if (!eval(*k)) return false;
      return true;
    case Op::kOr:
      for (const auto& k : n.kids)
        if (eval(*k)) return true;
      return false;
    case Op::kNot:
      return !eval(*n.kids[0]);
    default:
      break;
  }
  if (n.field == Field::kCmdWords && n.op == Op::kIn) {  // any one word in the list
    const auto* ws = words();
    if (!ws) return false;
    for (const auto& w : *ws)
      if (std::binary_search(n.strs.begin(), n.strs.end(), w)) return true;
    return false;
  }
  FieldValue v = get(n.field);
  if (!v.present) return false;
  if (n.numeric) {
    switch (n.op) {
      case Op::kEq:
        return v.num == n.num;
      case Op::kNe:
        return v.num != n.num;
      case Op::kLt:
        return v.num < n.num;
      case Op::kGt:
        return v.num > n.num;
      case Op::kLe:
        return v.num <= n.num;
      case Op::kGe:
        return v.num >= n.num;
      case Op::kIn:
        return std::binary_search(n.nums.begin(), n.nums.end(), v.num);
      case Op::kExists:
        return true;
      default:
        return false;
    }
  }
  std::string_view s = v.str;
  switch (n.op) {
    case Op::kEq:
      return s == n.str;
    case Op::kNe:
      return s != n.str;
    case Op::kIn:
      return std::binary_search(n.strs.begin(), n.strs.end(), s,
                                [](std::string_view a, std::string_view b) { return a < b; });
    case Op::kContains:
      return s.find(n.str) != std::string_view::npos;
    case Op::kIContains:
      return icontains(s, n.str);
    case Op::kStartsWith:
      return s.starts_with(n.str);
    case Op::kEndsWith:
      return s.ends_with(n.str);
    case Op::kGlob: {
      // fnmatch needs a NUL-terminated subject; record strings are std::strings except
      // host.name and an overridden cmd.text, which are copied.
      if (v.terminated) return ::fnmatch(n.str.c_str(), s.data(), 0) == 0;
      std::string copy(s);
      return ::fnmatch(n.str.c_str(), copy.c_str(), 0) == 0;
    }
    case Op::kRegex:
      return re2::RE2::FullMatch(re2::StringPiece(s.data(), s.size()), *n.re);
    case Op::kExists:
      return true;
    default:
      return false;
  }
}

}  // namespace

}  // namespace detail

std::vector<Match> RuleSet::evaluate(const json::Object& record, const EvalContext& ctx) const {
  std::vector<Match> out;
  if (!impl_) return out;
  detail::Evaluator ev(record, ctx);
  for (const auto& r : impl_->rules) {
    if (!r.enabled || (ctx.text_rules_only && !r.reads_text) || !ev.eval(*r.cond)) continue;
    Match m;
    m.rule = r.name;
    m.priority = r.priority;
    m.tags = r.tags;
    for (const auto& part : r.output) {
      if (!part.field) {
        m.output += part.literal;
        continue;
      }
      detail::FieldValue v = ev.get(part.field->id);
      std::string rendered;
      if (!v.present)
        rendered = "<NA>";
      else if (part.field->numeric)
        rendered = std::to_string(v.num);
      else
        rendered = v.str;
      m.output += rendered;
      std::string_view name = part.field->name;
      bool seen = false;
      for (const auto& have : m.output_fields) seen = seen || have.first == name;
      if (!seen) m.output_fields.emplace_back(std::string(name), std::move(rendered));
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace shaudit::rules
