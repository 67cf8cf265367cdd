// SPDX-License-Identifier: Apache-2.0
#include "shaudit/rules.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "internal/yaml_where.h"

namespace shaudit::rules {

namespace {

enum class Field {
  kCmdText,
  kCmdShell,
  kProcArgv,
  kProcCmdline,
  kProcExe,
  kProcPid,
  kUserName,
  kUserUid,
  kSessionId,
  kSessionService,
  kSessionRemoteHost,
  kSessionTty,
  kHostName,
  kContainerId,
  kK8sNs,
  kK8sPod,
  kBypassKind,
  kEvtType,
};

struct FieldInfo {
  std::string_view name;
  Field id;
  bool numeric;
};

constexpr FieldInfo kFields[] = {
    {"cmd.text", Field::kCmdText, false},
    {"cmd.shell", Field::kCmdShell, false},
    {"proc.argv", Field::kProcArgv, false},
    {"proc.cmdline", Field::kProcCmdline, false},
    {"proc.exe", Field::kProcExe, false},
    {"proc.pid", Field::kProcPid, true},
    {"user.name", Field::kUserName, false},
    {"user.uid", Field::kUserUid, true},
    {"session.id", Field::kSessionId, false},
    {"session.service", Field::kSessionService, false},
    {"session.remote_host", Field::kSessionRemoteHost, false},
    {"session.tty", Field::kSessionTty, false},
    {"host.name", Field::kHostName, false},
    {"container.id", Field::kContainerId, false},
    {"k8s.ns.name", Field::kK8sNs, false},
    {"k8s.pod.name", Field::kK8sPod, false},
    {"bypass.kind", Field::kBypassKind, false},
    {"evt.type", Field::kEvtType, false},
};

const FieldInfo* find_field(std::string_view name) {
  for (const auto& f : kFields)
    if (f.name == name) return &f;
  return nullptr;
}

enum class Op {
  kAnd,
  kOr,
  kNot,
  kEq,
  kNe,
  kLt,
  kGt,
  kLe,
  kGe,
  kIn,
  kContains,
  kIContains,
  kStartsWith,
  kEndsWith,
  kGlob,
  kRegex,
  kExists,
};

struct Node {
  Op op = Op::kAnd;
  std::vector<std::shared_ptr<const Node>> kids;  // and, or, not
  Field field = Field::kCmdText;
  bool numeric = false;
  std::string str;                     // string operand (lowercased for icontains)
  int64_t num = 0;                     // numeric operand
  std::vector<std::string> strs;       // in: sorted
  std::vector<int64_t> nums;           // in: sorted
  std::shared_ptr<const re2::RE2> re;  // regex: RE2 syntax, as Falco's
};
using NodePtr = std::shared_ptr<const Node>;

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
      case Field::kContainerId:
        return str("container_id");
      case Field::kK8sNs:
        return str("k8s_ns");
      case Field::kK8sPod:
        return str("k8s_pod");
      case Field::kBypassKind:
        return str("kind");
      case Field::kEvtType:
        return str("type");
    }
    return {};
  }

  bool eval(const Node& n);

 private:
  FieldValue str(std::string_view key) const {
    auto s = json::get_string(rec_, key);
    return s ? FieldValue{true, 0, *s, true} : FieldValue{};
  }
  FieldValue num(std::string_view key) const {
    auto i = json::get_int(rec_, key);
    return i ? FieldValue{true, *i, {}} : FieldValue{};
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
};

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

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

// --- loading ---------------------------------------------------------------------------

// One piece of a (possibly appended) condition string and where it came from.
struct Segment {
  size_t offset = 0;  // in the combined text
  size_t len = 0;
  std::string file;
  YAML::Mark mark;  // of the condition scalar
};

struct CondSource {
  std::string text;
  std::vector<Segment> segs;

  void set(std::string t, const std::string& file, const YAML::Mark& m) {
    segs = {Segment{0, t.size(), file, m}};
    text = std::move(t);
  }
  void append(const std::string& t, const std::string& file, const YAML::Mark& m) {
    for (auto& s : segs) s.offset += 1;
    std::string combined = "(" + text + ") ";
    segs.push_back(Segment{combined.size(), t.size(), file, m});
    text = combined + t;
  }
  // "FILE:LINE:COL" of the condition and the column within it for offset pos.
  std::pair<std::string, size_t> locate(size_t pos) const {
    const Segment* best = &segs.front();
    for (const auto& s : segs)
      if (s.offset <= pos) best = &s;
    size_t col = pos >= best->offset ? pos - best->offset : 0;
    if (col > best->len) col = best->len;
    return {internal::yaml_where(best->file, best->mark), col + 1};
  }
};

struct ListDef {
  std::vector<std::string> items;
};

struct MacroDef {
  CondSource cond;
  size_t order = 0;
  int state = 0;  // 0 not compiled, 1 compiling, 2 done
  NodePtr node;
};

struct OutputPart {
  std::string literal;
  const FieldInfo* field = nullptr;  // when set, the part is this field's value
};

struct RuleDef {
  std::string name;
  CondSource cond;
  std::string output;
  std::string output_where;
  Priority priority = Priority::kDebug;
  std::vector<std::string> tags;
  bool enabled = true;
};

}  // namespace

struct RuleSet::Impl {
  struct Rule {
    std::string name;
    NodePtr cond;
    std::vector<OutputPart> output;
    Priority priority;
    std::vector<std::string> tags;
    bool enabled;
  };
  std::vector<Rule> rules;
  size_t macros = 0;
  size_t lists = 0;
};

namespace {

// --- condition parser ------------------------------------------------------------------

enum class Tok { kEnd, kLParen, kRParen, kComma, kWord, kString, kOp };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  size_t pos = 0;
};

class Compiler;

class Parser {
 public:
  Parser(Compiler& c, const CondSource& src, std::string what)
      : c_(c), src_(src), what_(std::move(what)) {}

  Result<NodePtr> parse();

 private:
  Error fail(size_t pos, const std::string& msg) const {
    auto [loc, col] = src_.locate(pos);
    return make_error(fmt::format("{}: {} in condition of {} at column {}", loc, msg, what_, col));
  }
  Result<Token> next();
  Result<Token> peek() {
    size_t save = i_;
    auto t = next();
    i_ = save;
    return t;
  }
  Result<NodePtr> parse_or();
  Result<NodePtr> parse_and();
  Result<NodePtr> parse_not();
  Result<NodePtr> parse_primary();
  Result<NodePtr> parse_comparison(const FieldInfo& f, const Token& ftok);

  Compiler& c_;
  const CondSource& src_;
  std::string what_;
  size_t i_ = 0;
  int depth_ = 0;  // nesting of parentheses and 'not', bounded to keep the stack small
};

constexpr int kMaxDepth = 100;

class Compiler {
 public:
  std::map<std::string, ListDef> lists;
  std::map<std::string, MacroDef> macros;

  // Appends the items of list name to out, expanding lists named among its items.
  void expand_list(const std::string& name, std::vector<std::string>& out, int depth) const {
    auto it = lists.find(name);
    for (const auto& item : it->second.items) {
      if (depth < 16 && item != name && lists.count(item))
        expand_list(item, out, depth + 1);
      else
        out.push_back(item);
    }
  }
  Result<NodePtr> compile_macro(const std::string& name, MacroDef& m) {
    if (m.state == 2) return m.node;
    m.state = 1;
    Parser p(*this, m.cond, fmt::format("macro '{}'", name));
    auto r = p.parse();
    if (!r) return r;
    m.node = *r;
    m.state = 2;
    return m.node;
  }
};

bool is_word_char(char c) {
  return !(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == ',' ||
           c == '\'' || c == '"' || c == '=' || c == '!' || c == '<' || c == '>');
}

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

std::string describe(const Token& t) {
  if (t.kind == Tok::kEnd) return "end of condition";
  return fmt::format("'{}'", t.text);
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
    return NodePtr(n);
  }
  return parse_primary();
}

bool is_keyword(const std::string& w) {
  return w == "and" || w == "or" || w == "not" || w == "in" || w == "exists" || w == "contains" ||
         w == "icontains" || w == "startswith" || w == "endswith" || w == "glob" || w == "regex";
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
    return c_.compile_macro(m->first, m->second);
  }
  if (t->text.find('.') != std::string::npos)
    return fail(t->pos, fmt::format("unknown field '{}'", t->text));
  return fail(t->pos, fmt::format("unknown macro '{}'", t->text));
}

std::optional<int64_t> to_int(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

Result<NodePtr> Parser::parse_comparison(const FieldInfo& f, const Token& ftok) {
  auto n = std::make_shared<Node>();
  n->field = f.id;
  n->numeric = f.numeric;
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
        c_.expand_list(v.text, items, 0);
        for (auto& i : items) values.emplace_back(std::move(i), v.pos);
      } else {
        values.emplace_back(v.text, v.pos);
      }
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
  for (char c : s) l += lower(c);
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

std::vector<Match> RuleSet::evaluate(const json::Object& record, const EvalContext& ctx) const {
  std::vector<Match> out;
  if (!impl_) return out;
  Evaluator ev(record, ctx);
  for (const auto& r : impl_->rules) {
    if (!r.enabled || !ev.eval(*r.cond)) continue;
    Match m;
    m.rule = r.name;
    m.priority = r.priority;
    m.tags = r.tags;
    for (const auto& part : r.output) {
      if (!part.field) {
        m.output += part.literal;
        continue;
      }
      FieldValue v = ev.get(part.field->id);
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

Result<RuleSet> load_rules_from_strings(
    const std::vector<std::pair<std::string, std::string>>& sources) {
  Loader l;
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
    Parser p(l.c, d.cond, fmt::format("rule '{}'", d.name));
    auto cond = p.parse();
    if (!cond) return cond.error();
    auto out = compile_output(d.output, d.output_where, d.name);
    if (!out) return out.error();
    impl->rules.push_back(RuleSet::Impl::Rule{d.name, *cond, std::move(*out), d.priority,
                                              std::move(d.tags), d.enabled});
  }
  return RuleSet(std::shared_ptr<const RuleSet::Impl>(std::move(impl)));
}

Result<RuleSet> load_rules(const std::vector<std::string>& paths) {
  std::vector<std::pair<std::string, std::string>> sources;
  for (const auto& p : paths) {
    std::ifstream in(p);
    if (!in) return make_error(fmt::format("{}: cannot open: {}", p, std::strerror(errno)));
    std::stringstream ss;
    ss << in.rdbuf();
    sources.emplace_back(p, ss.str());
  }
  return load_rules_from_strings(sources);
}

}  // namespace shaudit::rules
