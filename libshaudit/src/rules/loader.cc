// SPDX-License-Identifier: Apache-2.0
// Loading rule files: their YAML items (lists, macros, rules) into a Loader, compiled into a
// RuleSet by load_rules and load_rules_from_strings; priority names; RuleSet's special members.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "internal/yaml_where.h"
#include "rules/internal.h"
#include "shaudit/rules.h"

namespace shaudit::rules {

namespace detail {

namespace {

struct RuleDef {
  std::string name;
  CondSource cond;
  std::string output;
  std::string output_where;
  Priority priority = Priority::kDebug;
  std::vector<std::string> tags;
  bool enabled = true;
};

// --- YAML items ------------------------------------------------------------------------

Result<std::string> scalar(const YAML::Node& n, const std::string& file, const std::string& key) {
  if (!n.IsScalar())
    return make_error(
        fmt::format("{}: '{}' needs a single value", internal::yaml_where(file, n.Mark()), key));
  return n.Scalar();
}

Result<bool> boolean(const YAML::Node& n, const std::string& file, const std::string& key) {
  auto s = scalar(n, file, key);
  if (!s) return s.error();
  if (*s == "true") return true;
  if (*s == "false") return false;
  return make_error(fmt::format("{}: '{}' must be true or false, got '{}'",
                                internal::yaml_where(file, n.Mark()), key, *s));
}

Result<std::vector<std::string>> strings(const YAML::Node& n, const std::string& file,
                                         const std::string& key) {
  if (!n.IsSequence())
    return make_error(
        fmt::format("{}: '{}' needs a list", internal::yaml_where(file, n.Mark()), key));
  std::vector<std::string> out;
  for (const auto& i : n) {
    auto s = scalar(i, file, key);
    if (!s) return s.error();
    out.push_back(*s);
  }
  return out;
}

Result<std::vector<OutputPart>> compile_output(const std::string& text, const std::string& loc,
                                               const std::string& rule) {
  std::vector<OutputPart> parts;
  std::string lit;
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '%') {
      lit += text[i++];
      continue;
    }
    size_t j = i + 1;
    while (j < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '.' || text[j] == '_'))
      ++j;
    while (j > i + 1 && text[j - 1] == '.') --j;  // "%user.name." ends a sentence
    if (j == i + 1) {
      lit += text[i++];
      continue;
    }
    std::string name = text.substr(i + 1, j - i - 1);
    const FieldInfo* f = find_field(name);
    if (!f)
      return make_error(fmt::format("{}: unknown field '{}' in output of rule '{}' at column {}",
                                    loc, name, rule, i + 1));
    if (!lit.empty()) parts.push_back({std::move(lit), nullptr});
    lit.clear();
    parts.push_back({{}, f});
    i = j;
  }
  if (!lit.empty()) parts.push_back({std::move(lit), nullptr});
  return parts;
}

struct Loader {
  Compiler c;
  size_t macro_order = 0;
  std::vector<RuleDef> rules;
  std::map<std::string, size_t> rule_index;

  Result<void> load(const std::string& file, const std::string& text);
  Result<void> item(const std::string& file, const YAML::Node& n);
};

Result<void> check_keys(const std::string& file, const YAML::Node& n,
                        std::initializer_list<std::string_view> allowed, const std::string& kind) {
  for (const auto& kv : n) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string known;
      for (auto a : allowed) known += (known.empty() ? "" : ", ") + std::string(a);
      return make_error(fmt::format("{}: unknown key '{}' in {} (known keys: {})",
                                    internal::yaml_where(file, kv.first.Mark()), k, kind, known));
    }
  }
  return {};
}

Result<void> Loader::item(const std::string& file, const YAML::Node& n) {
  if (!n.IsMap())
    return make_error(fmt::format("{}: expected a list, macro or rule item",
                                  internal::yaml_where(file, n.Mark())));
  bool append = false;
  if (n["append"]) {
    auto a = boolean(n["append"], file, "append");
    if (!a) return a.error();
    append = *a;
  }
  if (n["list"]) {
    auto ck = check_keys(file, n, {"list", "items", "append"}, "list");
    if (!ck) return ck;
    auto name = scalar(n["list"], file, "list");
    if (!name) return name.error();
    if (!n["items"])
      return make_error(
          fmt::format("{}: list '{}' has no 'items'", internal::yaml_where(file, n.Mark()), *name));
    auto items = strings(n["items"], file, "items");
    if (!items) return items.error();
    auto it = c.lists.find(*name);
    size_t have = append && it != c.lists.end() ? it->second.items.size() : 0;
    if (have + items->size() > kMaxListItems)
      return make_error(fmt::format("{}: list '{}' has more than {} items",
                                    internal::yaml_where(file, n.Mark()), *name, kMaxListItems));
    if (append) {
      if (it == c.lists.end())
        return make_error(fmt::format("{}: unknown list '{}' to append to",
                                      internal::yaml_where(file, n.Mark()), *name));
      it->second.items.insert(it->second.items.end(), items->begin(), items->end());
    } else {
      c.lists[*name].items = std::move(*items);
    }
    return {};
  }
  if (n["macro"]) {
    auto ck = check_keys(file, n, {"macro", "condition", "append"}, "macro");
    if (!ck) return ck;
    auto name = scalar(n["macro"], file, "macro");
    if (!name) return name.error();
    if (!n["condition"])
      return make_error(fmt::format("{}: macro '{}' has no 'condition'",
                                    internal::yaml_where(file, n.Mark()), *name));
    auto cond = scalar(n["condition"], file, "condition");
    if (!cond) return cond.error();
    auto it = c.macros.find(*name);
    if (append) {
      if (it == c.macros.end())
        return make_error(fmt::format("{}: unknown macro '{}' to append to",
                                      internal::yaml_where(file, n.Mark()), *name));
      it->second.cond.append(*cond, file, n["condition"].Mark());
    } else {
      MacroDef& m = c.macros[*name];
      if (it == c.macros.end()) m.order = macro_order++;
      m.cond.set(*cond, file, n["condition"].Mark());
    }
    return {};
  }
  if (n["rule"]) {
    auto ck = check_keys(
        file, n, {"rule", "desc", "condition", "output", "priority", "tags", "enabled", "append"},
        "rule");
    if (!ck) return ck;
    auto name = scalar(n["rule"], file, "rule");
    if (!name) return name.error();
    auto it = rule_index.find(*name);
    std::optional<bool> enabled;
    if (n["enabled"]) {
      auto e = boolean(n["enabled"], file, "enabled");
      if (!e) return e.error();
      enabled = *e;
    }
    if (append) {
      if (it == rule_index.end())
        return make_error(fmt::format("{}: unknown rule '{}' to append to",
                                      internal::yaml_where(file, n.Mark()), *name));
      for (const char* k : {"output", "priority", "tags", "desc"})
        if (n[k])
          return make_error(
              fmt::format("{}: rule '{}' with append: true may only append a condition",
                          internal::yaml_where(file, n[k].Mark()), *name));
      RuleDef& r = rules[it->second];
      if (n["condition"]) {
        auto cond = scalar(n["condition"], file, "condition");
        if (!cond) return cond.error();
        r.cond.append(*cond, file, n["condition"].Mark());
      }
      if (enabled) r.enabled = *enabled;
      return {};
    }
    if (n.size() == 2 && enabled) {  // "- rule: x / enabled: false" toggles an earlier rule
      if (it == rule_index.end())
        return make_error(fmt::format("{}: unknown rule '{}' to enable or disable",
                                      internal::yaml_where(file, n.Mark()), *name));
      rules[it->second].enabled = *enabled;
      return {};
    }
    RuleDef r;
    r.name = *name;
    for (const char* k : {"condition", "output", "priority"})
      if (!n[k])
        return make_error(fmt::format("{}: rule '{}' has no '{}'",
                                      internal::yaml_where(file, n.Mark()), *name, k));
    auto cond = scalar(n["condition"], file, "condition");
    if (!cond) return cond.error();
    r.cond.set(*cond, file, n["condition"].Mark());
    auto out = scalar(n["output"], file, "output");
    if (!out) return out.error();
    r.output = *out;
    r.output_where = internal::yaml_where(file, n["output"].Mark());
    auto pr = scalar(n["priority"], file, "priority");
    if (!pr) return pr.error();
    auto p = parse_priority(*pr);
    if (!p)
      return make_error(fmt::format(
          "{}: unknown priority '{}' in rule '{}' (one of EMERGENCY, ALERT, CRITICAL, ERROR, "
          "WARNING, NOTICE, INFORMATIONAL, DEBUG)",
          internal::yaml_where(file, n["priority"].Mark()), *pr, *name));
    r.priority = *p;
    if (n["tags"]) {
      auto tags = strings(n["tags"], file, "tags");
      if (!tags) return tags.error();
      r.tags = std::move(*tags);
    }
    r.enabled = enabled.value_or(true);
    if (it != rule_index.end()) {
      rules[it->second] = std::move(r);  // an override keeps the first definition's place
    } else {
      rule_index[*name] = rules.size();
      rules.push_back(std::move(r));
    }
    return {};
  }
  return make_error(
      fmt::format("{}: expected a list, macro or rule item", internal::yaml_where(file, n.Mark())));
}

Result<void> Loader::load(const std::string& file, const std::string& text) {
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return {};
    if (!root.IsSequence())
      return make_error(fmt::format("{}: expected a list of list, macro and rule items",
                                    internal::yaml_where(file, root.Mark())));
    for (const auto& n : root) {
      auto r = item(file, n);
      if (!r) return r;
    }
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("{}: {}", internal::yaml_where(file, e.mark), e.msg));
  }
  return {};
}

}  // namespace

}  // namespace detail

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::kEmergency:
      return "Emergency";
    case Priority::kAlert:
      return "Alert";
    case Priority::kCritical:
      return "Critical";
    case Priority::kError:
      return "Error";
    case Priority::kWarning:
      return "Warning";
    case Priority::kNotice:
      return "Notice";
    case Priority::kInformational:
      return "Informational";
    case Priority::kDebug:
      return "Debug";
  }
  return "?";
}

std::optional<Priority> parse_priority(std::string_view s) {
  std::string l;
  for (char c : s) l += detail::lower(c);
  static const std::pair<std::string_view, Priority> kNames[] = {
      {"emergency", Priority::kEmergency},
      {"alert", Priority::kAlert},
      {"critical", Priority::kCritical},
      {"error", Priority::kError},
      {"warning", Priority::kWarning},
      {"notice", Priority::kNotice},
      {"informational", Priority::kInformational},
      {"info", Priority::kInformational},
      {"debug", Priority::kDebug},
  };
  for (const auto& [name, p] : kNames)
    if (name == l) return p;
  return std::nullopt;
}

RuleSet::RuleSet() : impl_(std::make_shared<Impl>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;
RuleSet::RuleSet(const RuleSet&) = default;
RuleSet& RuleSet::operator=(const RuleSet&) = default;
RuleSet::RuleSet(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

size_t RuleSet::rule_count() const {
  return impl_ ? impl_->rules.size() : 0;
}
size_t RuleSet::macro_count() const {
  return impl_ ? impl_->macros : 0;
}
size_t RuleSet::list_count() const {
  return impl_ ? impl_->lists : 0;
}

Result<RuleSet> load_rules_from_strings(
    const std::vector<std::pair<std::string, std::string>>& sources) {
  detail::Loader l;
  for (const auto& [file, text] : sources) {
    auto r = l.load(file, text);
    if (!r) return r.error();
  }
  // Compile every macro (in definition order) so errors in unused macros are reported too.
  std::vector<std::pair<size_t, std::string>> order;
  for (const auto& [name, m] : l.c.macros) order.emplace_back(m.order, name);
  std::sort(order.begin(), order.end());
  for (const auto& [_, name] : order) {
    auto r = l.c.compile_macro(name, l.c.macros.at(name));
    if (!r) return r.error();
  }
  auto impl = std::make_shared<RuleSet::Impl>();
  impl->macros = l.c.macros.size();
  impl->lists = l.c.lists.size();
  for (auto& d : l.rules) {
    detail::Parser p(l.c, d.cond, fmt::format("rule '{}'", d.name));
    auto cond = p.parse();
    if (!cond) return cond.error();
    if ((*cond)->weight > detail::kMaxConditionNodes)
      return make_error(fmt::format(
          "{}: condition of rule '{}' expands to more than {} nodes (each use of a macro counts "
          "its nodes again)",
          d.cond.locate(0).first, d.name, detail::kMaxConditionNodes));
    auto out = detail::compile_output(d.output, d.output_where, d.name);
    if (!out) return out.error();
    bool text = (*cond)->text;
    impl->rules.push_back(RuleSet::Impl::Rule{d.name, *cond, std::move(*out), d.priority,
                                              std::move(d.tags), d.enabled, text});
  }
  return RuleSet(std::shared_ptr<const RuleSet::Impl>(std::move(impl)));
}

namespace {

// A directory in the list stands for its `*.yaml` / `*.yml` files in byte order of their
// names (as rules.d directories are read elsewhere: `00-default.yaml` before `50-local.yaml`);
// other names (editor backups, `.dpkg-old`) are skipped.
Result<std::vector<std::string>> expand_rule_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (!std::filesystem::is_directory(p, ec)) {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      auto ends = [&](std::string_view suf) {
        return name.size() > suf.size() &&
               name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
      };
      if (name[0] != '.' && (ends(".yaml") || ends(".yml"))) names.push_back(name);
    }
    if (ec) return make_error(fmt::format("{}: cannot read directory: {}", p, ec.message()));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) out.push_back((std::filesystem::path(p) / n).string());
  }
  return out;
}

}  // namespace

Result<RuleSet> load_rules(const std::vector<std::string>& paths) {
  auto files = expand_rule_paths(paths);
  if (!files) return files.error();
  std::vector<std::pair<std::string, std::string>> sources;
  for (const auto& p : *files) {
    std::ifstream in(p);
    if (!in) return make_error(fmt::format("{}: cannot open: {}", p, std::strerror(errno)));
    std::stringstream ss;
    ss << in.rdbuf();
    sources.emplace_back(p, ss.str());
  }
  return load_rules_from_strings(sources);
}

}  // namespace shaudit::rules
