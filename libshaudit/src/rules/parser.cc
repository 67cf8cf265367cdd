// SPDX-License-Identifier: Apache-2.0
// The condition tokenizer, parser and compiler: condition text into a tree of Nodes, with
// macros compiled once each and lists expanded in `in (...)`.
#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include "rules/internal.h"

namespace shaudit::rules::detail {

// --- condition parser ------------------------------------------------------------------

namespace {

constexpr int kMaxDepth = 100;

bool is_word_char(char c) {
  return !(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == ',' ||
           c == '\'' || c == '"' || c == '=' || c == '!' || c == '<' || c == '>');
}

std::string describe(const Token& t) {
  if (t.kind == Tok::kEnd) return "end of condition";
  return fmt::format("'{}'", t.text);
}

bool is_keyword(const std::string& w) {
  return w == "and" || w == "or" || w == "not" || w == "in" || w == "exists" || w == "contains" ||
         w == "icontains" || w == "startswith" || w == "endswith" || w == "glob" || w == "regex";
}

std::optional<int64_t> to_int(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

Error Parser::fail(size_t pos, const std::string& msg) const {
  auto [loc, col] = src_.locate(pos);
  return make_error(fmt::format("{}: {} in condition of {} at column {}", loc, msg, what_, col));
}

Result<Token> Parser::peek() {
  size_t save = i_;
  auto t = next();
  i_ = save;
  return t;
}

bool Compiler::expand_list(const std::string& name, std::vector<std::string>& out,
                           int depth) const {
  auto it = lists.find(name);
  for (const auto& item : it->second.items) {
    if (depth < 16 && item != name && lists.count(item)) {
      if (!expand_list(item, out, depth + 1)) return false;
    } else {
      if (out.size() >= kMaxListItems) return false;
      out.push_back(item);
    }
  }
  return true;
}

Result<NodePtr> Compiler::compile_macro(const std::string& name, MacroDef& m) {
  if (m.state == 2) return m.node;
  m.state = 1;
  ++compiling;
  Parser p(*this, m.cond, fmt::format("macro '{}'", name));
  auto r = p.parse();
  --compiling;
  if (!r) return r;
  if ((*r)->weight > kMaxConditionNodes) {
    auto [loc, col] = m.cond.locate(0);
    return make_error(fmt::format(
        "{}: condition of macro '{}' expands to more than {} nodes (each use of a macro counts "
        "its nodes again)",
        loc, name, kMaxConditionNodes));
  }
  m.depth = 1 + p.macro_depth();
  m.node = *r;
  m.state = 2;
  return m.node;
}

namespace {

// An and/or/not node's weight and text flag, from its kids'.
void sum_up(Node& n) {
  uint64_t w = 1;
  for (const auto& k : n.kids) {
    w += k->weight;
    if (w > kMaxConditionNodes + 1) w = kMaxConditionNodes + 1;  // (saturated)
    n.text = n.text || k->text;
  }
  n.weight = w;
}

}  // namespace

Result<Token> Parser::next() {
  const std::string& s = src_.text;
  while (i_ < s.size() && (s[i_] == ' ' || s[i_] == '\t' || s[i_] == '\n' || s[i_] == '\r')) ++i_;
  Token t;
  t.pos = i_;
  if (i_ >= s.size()) return t;
  char c = s[i_];
  if (c == '(' || c == ')' || c == ',') {
    t.kind = c == '(' ? Tok::kLParen : c == ')' ? Tok::kRParen : Tok::kComma;
    t.text = std::string(1, c);
    ++i_;
    return t;
  }
  if (c == '\'' || c == '"') {
    size_t j = i_ + 1;
    std::string v;
    while (j < s.size() && s[j] != c) {
      if (s[j] == '\\' && j + 1 < s.size() && (s[j + 1] == c || s[j + 1] == '\\')) ++j;
      v += s[j++];
    }
    if (j >= s.size()) return fail(i_, "unterminated string");
    t.kind = Tok::kString;
    t.text = std::move(v);
    i_ = j + 1;
    return t;
  }
  if (c == '=' || c == '!' || c == '<' || c == '>') {
    size_t j = i_ + 1;
    if (j < s.size() && s[j] == '=') ++j;
    t.kind = Tok::kOp;
    t.text = s.substr(i_, j - i_);
    if (t.text == "!") return fail(i_, "unexpected '!'");
    i_ = j;
    return t;
  }
  size_t j = i_;
  while (j < s.size() && is_word_char(s[j])) ++j;
  t.kind = Tok::kWord;
  t.text = s.substr(i_, j - i_);
  i_ = j;
  return t;
}

Result<NodePtr> Parser::parse() {
  auto r = parse_or();
  if (!r) return r;
  auto t = next();
  if (!t) return t.error();
  if (t->kind != Tok::kEnd) return fail(t->pos, fmt::format("unexpected {}", describe(*t)));
  return r;
}

Result<NodePtr> Parser::parse_or() {
  auto first = parse_and();
  if (!first) return first;
  std::vector<NodePtr> kids{*first};
  for (;;) {
    auto t = peek();
    if (!t) return t.error();
    if (t->kind != Tok::kWord || t->text != "or") break;
    (void)next();
    auto k = parse_and();
    if (!k) return k;
    kids.push_back(*k);
  }
  if (kids.size() == 1) return kids[0];
  auto n = std::make_shared<Node>();
  n->op = Op::kOr;
  n->kids = std::move(kids);
  sum_up(*n);
  return NodePtr(n);
}

Result<NodePtr> Parser::parse_and() {
  auto first = parse_not();
  if (!first) return first;
  std::vector<NodePtr> kids{*first};
  for (;;) {
    auto t = peek();
    if (!t) return t.error();
    if (t->kind != Tok::kWord || t->text != "and") break;
    (void)next();
    auto k = parse_not();
    if (!k) return k;
    kids.push_back(*k);
  }
  if (kids.size() == 1) return kids[0];
  auto n = std::make_shared<Node>();
  n->op = Op::kAnd;
  n->kids = std::move(kids);
  sum_up(*n);
  return NodePtr(n);
}

Result<NodePtr> Parser::parse_not() {
  auto t = peek();
  if (!t) return t.error();
  if (t->kind == Tok::kWord && t->text == "not") {
    (void)next();
    if (++depth_ > kMaxDepth) return fail(t->pos, "condition nested too deeply");
    auto k = parse_not();
    --depth_;
    if (!k) return k;
    auto n = std::make_shared<Node>();
    n->op = Op::kNot;
    n->kids = {*k};
    sum_up(*n);
    return NodePtr(n);
  }
  return parse_primary();
}

Result<NodePtr> Parser::parse_primary() {
  auto t = next();
  if (!t) return t.error();
  if (t->kind == Tok::kLParen) {
    if (++depth_ > kMaxDepth) return fail(t->pos, "condition nested too deeply");
    auto e = parse_or();
    if (!e) return e;
    --depth_;
    auto close = next();
    if (!close) return close.error();
    if (close->kind != Tok::kRParen)
      return fail(close->pos, fmt::format("expected ')' but found {}", describe(*close)));
    return e;
  }
  if (t->kind != Tok::kWord || is_keyword(t->text))
    return fail(t->pos, fmt::format("expected a field, macro or '(' but found {}", describe(*t)));
  if (const FieldInfo* f = find_field(t->text)) return parse_comparison(*f, *t);
  if (auto m = c_.macros.find(t->text); m != c_.macros.end()) {
    if (m->second.state == 1)
      return fail(t->pos, fmt::format("macro '{}' refers to itself", t->text));
    // A chain of macros: each may use macros kMaxMacroDepth deep (and the stack stays small).
    if ((m->second.state == 0 && c_.compiling >= kMaxMacroDepth) ||
        (m->second.state == 2 && m->second.depth >= kMaxMacroDepth && what_.starts_with("macro ")))
      return fail(t->pos, fmt::format("macros nested more than {} deep (macro '{}')",
                                      kMaxMacroDepth, t->text));
    auto r = c_.compile_macro(m->first, m->second);
    if (r) macro_depth_ = std::max(macro_depth_, m->second.depth);
    return r;
  }
  if (t->text.find('.') != std::string::npos)
    return fail(t->pos, fmt::format("unknown field '{}'", t->text));
  return fail(t->pos, fmt::format("unknown macro '{}'", t->text));
}

Result<NodePtr> Parser::parse_comparison(const FieldInfo& f, const Token& ftok) {
  auto n = std::make_shared<Node>();
  n->field = f.id;
  n->numeric = f.numeric;
  n->text = reads_text(f.id);
  auto opt = next();
  if (!opt) return opt.error();
  const Token& op = *opt;
  static const std::map<std::string, Op, std::less<>> kOps = {
      {"=", Op::kEq},
      {"!=", Op::kNe},
      {"<", Op::kLt},
      {">", Op::kGt},
      {"<=", Op::kLe},
      {">=", Op::kGe},
      {"in", Op::kIn},
      {"contains", Op::kContains},
      {"icontains", Op::kIContains},
      {"startswith", Op::kStartsWith},
      {"endswith", Op::kEndsWith},
      {"glob", Op::kGlob},
      {"regex", Op::kRegex},
      {"exists", Op::kExists},
  };
  auto it = (op.kind == Tok::kOp || op.kind == Tok::kWord) ? kOps.find(op.text) : kOps.end();
  if (it == kOps.end())
    return fail(op.pos, fmt::format("expected an operator after field '{}' but found {}", ftok.text,
                                    describe(op)));
  n->op = it->second;
  bool ordering = n->op == Op::kLt || n->op == Op::kGt || n->op == Op::kLe || n->op == Op::kGe;
  bool string_only = n->op == Op::kContains || n->op == Op::kIContains ||
                     n->op == Op::kStartsWith || n->op == Op::kEndsWith || n->op == Op::kGlob ||
                     n->op == Op::kRegex;
  if (ordering && !f.numeric)
    return fail(op.pos,
                fmt::format("operator '{}' needs a numeric field, not '{}'", op.text, ftok.text));
  if (string_only && f.numeric)
    return fail(op.pos,
                fmt::format("operator '{}' needs a string field, not '{}'", op.text, ftok.text));
  if (n->op == Op::kExists) return NodePtr(n);

  auto value_tok = [&](Token& out) -> Result<void> {
    auto v = next();
    if (!v) return v.error();
    if (v->kind != Tok::kWord && v->kind != Tok::kString)
      return fail(v->pos, fmt::format("expected a value but found {}", describe(*v)));
    out = *v;
    return {};
  };
  auto number = [&](const Token& v) -> Result<int64_t> {
    auto i = to_int(v.text);
    if (!i)
      return fail(
          v.pos, fmt::format("expected a number for field '{}' but found '{}'", ftok.text, v.text));
    return *i;
  };

  if (n->op == Op::kIn) {
    auto lp = next();
    if (!lp) return lp.error();
    if (lp->kind != Tok::kLParen)
      return fail(lp->pos, fmt::format("expected '(' after 'in' but found {}", describe(*lp)));
    std::vector<std::pair<std::string, size_t>> values;
    for (;;) {
      Token v;
      auto r = value_tok(v);
      if (!r) return r.error();
      if (v.kind == Tok::kWord && c_.lists.count(v.text)) {
        std::vector<std::string> items;
        if (!c_.expand_list(v.text, items, 0))
          return fail(
              v.pos, fmt::format("list '{}' expands to more than {} items", v.text, kMaxListItems));
        for (auto& i : items) values.emplace_back(std::move(i), v.pos);
      } else {
        values.emplace_back(v.text, v.pos);
      }
      if (values.size() > kMaxListItems)
        return fail(v.pos, fmt::format("'in' has more than {} values", kMaxListItems));
      auto sep = next();
      if (!sep) return sep.error();
      if (sep->kind == Tok::kRParen) break;
      if (sep->kind != Tok::kComma)
        return fail(sep->pos, fmt::format("expected ',' or ')' but found {}", describe(*sep)));
    }
    for (auto& [s, pos] : values) {
      if (f.numeric) {
        auto i = to_int(s);
        if (!i)
          return fail(pos,
                      fmt::format("expected a number for field '{}' but found '{}'", ftok.text, s));
        n->nums.push_back(*i);
      } else {
        n->strs.push_back(std::move(s));
      }
    }
    std::sort(n->nums.begin(), n->nums.end());
    std::sort(n->strs.begin(), n->strs.end());
    return NodePtr(n);
  }

  Token v;
  auto r = value_tok(v);
  if (!r) return r.error();
  if (f.numeric) {
    auto i = number(v);
    if (!i) return i.error();
    n->num = *i;
    return NodePtr(n);
  }
  n->str = v.text;
  if (n->op == Op::kIContains)
    for (auto& ch : n->str) ch = lower(ch);
  if (n->op == Op::kRegex) {
    re2::RE2::Options o;
    o.set_log_errors(false);
    auto re = std::make_shared<const re2::RE2>(n->str, o);
    if (!re->ok()) return fail(v.pos, fmt::format("bad regex '{}': {}", v.text, re->error()));
    n->re = std::move(re);
  }
  return NodePtr(n);
}

}  // namespace shaudit::rules::detail
