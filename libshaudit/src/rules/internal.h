// SPDX-License-Identifier: Apache-2.0
// What the parts of the rules engine (fields.cc, evaluator.cc, parser.cc, loader.cc) share:
// fields, condition trees, condition sources, the condition parser and compiler, RuleSet::Impl.
#pragma once

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "internal/yaml_where.h"
#include "shaudit/result.h"
#include "shaudit/rules.h"

namespace shaudit::rules {

namespace detail {

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
  kContainerName,
  kContainerImage,
  kContainerImageRepository,
  kK8sNs,
  kK8sPod,
  kBypassKind,
  kEvtType,
  kEvtText,
  kCmdWords,
  kCmdLine,
  kCmdObfuscated,
};

// The fields that read the command's text (a continuation line re-runs only the rules that
// read one of them, against the joined command).
bool reads_text(Field f);

struct FieldInfo {
  std::string_view name;
  Field id;
  bool numeric;
};

const FieldInfo* find_field(std::string_view name);

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
  // The nodes this one stands for, macros counted each time they are used (saturating).
  uint64_t weight = 1;
  bool text = false;  // this node or one below it reads a command-text field
};
using NodePtr = std::shared_ptr<const Node>;

// ASCII lower case (for icontains and priority names).
char lower(char c);

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

// Limits at load (see rules.h).
constexpr int kMaxMacroDepth = 32;
constexpr uint64_t kMaxConditionNodes = 100000;
constexpr size_t kMaxListItems = 10000;

struct MacroDef {
  CondSource cond;
  size_t order = 0;
  int state = 0;  // 0 not compiled, 1 compiling, 2 done
  int depth = 0;  // 1 + the depth of the deepest macro it uses
  NodePtr node;
};

struct OutputPart {
  std::string literal;
  const FieldInfo* field = nullptr;  // when set, the part is this field's value
};

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
  int macro_depth() const { return macro_depth_; }  // of the deepest macro used

 private:
  Error fail(size_t pos, const std::string& msg) const;
  Result<Token> next();
  Result<Token> peek();
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
  int macro_depth_ = 0;
};

class Compiler {
 public:
  std::map<std::string, ListDef> lists;
  std::map<std::string, MacroDef> macros;
  int compiling = 0;  // macros being compiled, one inside another

  // Appends the items of list name to out, expanding lists named among its items; false
  // (out unfinished) when out would pass kMaxListItems.
  bool expand_list(const std::string& name, std::vector<std::string>& out, int depth) const;
  Result<NodePtr> compile_macro(const std::string& name, MacroDef& m);
};

}  // namespace detail

struct RuleSet::Impl {
  struct Rule {
    std::string name;
    detail::NodePtr cond;
    std::vector<detail::OutputPart> output;
    Priority priority;
    std::vector<std::string> tags;
    bool enabled;
    bool reads_text;  // the condition reads cmd.text, cmd.words, cmd.line, ... (see reads_text)
  };
  std::vector<Rule> rules;
  size_t macros = 0;
  size_t lists = 0;
};

}  // namespace shaudit::rules
