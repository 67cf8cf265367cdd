// SPDX-License-Identifier: Apache-2.0
// shell::normalise: a command line as the shell will see it (see shell_words.h).
#include "shaudit/shell_words.h"

#include <algorithm>
#include <cstdint>

namespace shaudit::shell {

namespace {

// What produced each character of a word (for brace lists and for obfuscated names).
enum : char {
  kLit = 'l',   // unquoted, typed as is (a brace or comma here may form a brace list)
  kQuot = 'q',  // quoted or escaped
  kExp = 'x',   // from an expansion ($x, ${x}, or an unknown one kept as typed)
};

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
  return is_name(c) && c != '_';
}
bool is_meta(char c) {  // ends an unquoted word
  return is_blank(c) || c == '\n' || c == '|' || c == '&' || c == ';' || c == '(' || c == ')' ||
         c == '<' || c == '>' || c == '`';
}
bool is_plain(char c) {  // typed as is inside a word
  return !is_meta(c) && c != '\\' && c != '\'' && c != '"' && c != '$';
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// What the line last received: a word, an operator, a separator or a body line.
enum class Tok { kNone, kWord, kOp, kSep, kRaw };

bool is_wrapper(std::string_view w) {  // the next word is still a command name
  static constexpr std::string_view kWords[] = {
      "!",    "{",    "if",   "then",    "else",    "elif", "do",    "while", "until",
      "time", "sudo", "exec", "command", "builtin", "env",  "nohup", "nice",  "xargs"};
  return std::find(std::begin(kWords), std::end(kWords), w) != std::end(kWords);
}
bool is_shell(std::string_view w) {
  static constexpr std::string_view kShells[] = {"sh",  "bash", "dash", "zsh",    "ksh",
                                                 "ash", "mksh", "yash", "busybox"};
  return std::find(std::begin(kShells), std::end(kShells), w) != std::end(kShells);
}
std::string_view base_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}
bool is_declaration(std::string_view w) {
  return w == "export" || w == "declare" || w == "typeset" || w == "local" || w == "readonly";
}

class Lexer {
 public:
  Lexer(std::string_view s, const Vars* vars, const Lexer* parent, size_t* budget)
      : s_(s), vars_(vars), parent_(parent), heredocs_(parent == nullptr), budget_(budget) {}

  Normalised run();

 private:
  // --- the word being built -------------------------------------------------------------
  void put(char c, char how) {
    w_ += c;
    mask_ += how;
    in_word_ = true;
  }
  void put(std::string_view v, char how) {
    w_ += v;
    mask_.append(v.size(), how);
    in_word_ = true;
  }
  void edge() {  // a quote, escape or expansion starts or ends here
    edges_.push_back(w_.size());
    in_word_ = true;
  }
  bool spend(size_t n) {  // bytes an expansion adds beyond the text
    if (n > *budget_) return false;
    *budget_ -= n;
    return true;
  }

  void end_word();
  void end_command(bool commit);
  void emit(Tok k, std::string_view text);
  std::vector<std::string> braces(const std::string& w, const std::string& m, int depth);
  const std::string* lookup(std::string_view name) const;

  void dollar(bool quoted);
  void ansi_c();
  void double_quoted();
  void operator_at();
  void heredoc_bodies();

  std::string_view s_;
  size_t i_ = 0;
  const Vars* vars_;
  const Lexer* parent_;  // a here-document body's command, whose variables it sees
  bool heredocs_;
  size_t* budget_;
  Vars local_;  // assignments made earlier in this text

  std::string w_, mask_;
  bool in_word_ = false;
  std::vector<size_t> edges_;
  bool numeric_escape_ = false;

  bool space_ = false;    // blanks since the last token
  bool newline_ = false;  // an unquoted newline (between commands) since the last token
  bool cmd_pos_ = true;   // the next word is a command name
  bool have_cmd_ = false;
  bool decl_ = false;          // the command is export and its kin
  bool redir_target_ = false;  // the next word follows a redirection
  bool want_delim_ = false;
  bool delim_strip_ = false;
  std::string cmd_name_;            // of the current command
  int shell_arg_ = 0;               // the command is a shell (1), its -c was seen (2)
  std::vector<std::string> inner_;  // the COMMANDS of sh -c COMMANDS
  struct Doc {
    std::string delim;
    bool strip;  // <<-: leading tabs
    bool shell;  // fed to a shell: its lines are commands
  };
  std::vector<Doc> pending_docs_;
  std::vector<std::pair<std::string, std::string>> pending_assign_;
  Tok last_ = Tok::kNone;
  bool last_close_ = false;  // the last operator was ')'
  Normalised out_;
};

const std::string* Lexer::lookup(std::string_view name) const {
  if (auto it = local_.find(name); it != local_.end()) return &it->second;
  if (parent_) return parent_->lookup(name);
  if (vars_)
    if (auto it = vars_->find(name); it != vars_->end()) return &it->second;
  return nullptr;
}

void Lexer::emit(Tok k, std::string_view text) {
  std::string& line = out_.line;
  if (newline_ && (last_ == Tok::kWord || last_ == Tok::kRaw || last_close_)) line += ';';
  if ((space_ || newline_ || k == Tok::kRaw) && !line.empty()) line += ' ';
  space_ = newline_ = false;
  size_t at = line.size();
  line += text;
  if (k == Tok::kWord)  // a word's own tabs and newlines read as spaces
    for (size_t i = at; i < line.size(); ++i)
      if (line[i] == '\n' || line[i] == '\t' || line[i] == '\r') line[i] = ' ';
  last_ = k;
  last_close_ = text == ")";
}

void Lexer::end_command(bool commit) {
  if (commit && !have_cmd_) {
    for (auto& [n, v] : pending_assign_) {
      local_[n] = v;
      out_.assignments.emplace_back(n, std::move(v));
    }
  }
  pending_assign_.clear();
  have_cmd_ = decl_ = redir_target_ = false;
  cmd_pos_ = true;
  cmd_name_.clear();
  shell_arg_ = 0;
}

// The words a brace list stands for ({a,b}c -> ac bc); nested lists and several lists in a
// word too. Only unquoted, typed braces and commas count.
std::vector<std::string> Lexer::braces(const std::string& w, const std::string& m, int depth) {
  std::vector<std::string> out;
  size_t open = std::string::npos, close = 0;
  std::vector<size_t> commas;
  if (depth < 8) {
    // Match braces in one pass; the first outermost list with a comma at its own level wins,
    // else the first inner one.
    std::vector<std::pair<size_t, std::vector<size_t>>> stack;
    size_t in_open = std::string::npos, in_close = 0;
    std::vector<size_t> in_commas;
    for (size_t i = 0; i < w.size() && open == std::string::npos; ++i) {
      if (m[i] != kLit) continue;
      if (w[i] == '{') {
        stack.push_back({i, {}});
      } else if (w[i] == ',' && !stack.empty()) {
        stack.back().second.push_back(i);
      } else if (w[i] == '}' && !stack.empty()) {
        auto top = std::move(stack.back());
        stack.pop_back();
        if (!top.second.empty() && stack.empty()) {
          open = top.first;
          close = i;
          commas = std::move(top.second);
        } else if (!top.second.empty() && in_open == std::string::npos) {
          in_open = top.first;
          in_close = i;
          in_commas = std::move(top.second);
        }
      }
    }
    if (open == std::string::npos && in_open != std::string::npos) {
      open = in_open;
      close = in_close;
      commas = std::move(in_commas);
    }
  }
  if (open == std::string::npos) {
    out.push_back(w);
    return out;
  }
  std::string pre = w.substr(0, open), pre_m = m.substr(0, open);
  std::string post = w.substr(close + 1), post_m = m.substr(close + 1);
  commas.push_back(close);
  size_t from = open + 1;
  size_t extra = 0;
  for (size_t c : commas) extra += pre.size() + post.size() + (c - from) + 1;
  if (!spend(extra)) {
    out.push_back(w);
    return out;
  }
  for (size_t c : commas) {
    std::string alt = pre + w.substr(from, c - from) + post;
    std::string alt_m = pre_m + m.substr(from, c - from) + post_m;
    for (auto& x : braces(alt, alt_m, depth + 1)) out.push_back(std::move(x));
    from = c + 1;
  }
  return out;
}

void Lexer::end_word() {
  if (!in_word_) return;
  in_word_ = false;
  std::string w = std::move(w_), m = std::move(mask_);
  std::vector<size_t> edges = std::move(edges_);
  bool numeric = numeric_escape_;
  w_.clear();
  mask_.clear();
  edges_.clear();
  numeric_escape_ = false;

  if (want_delim_) {
    want_delim_ = false;
    redir_target_ = false;
    if (heredocs_) pending_docs_.push_back({w, delim_strip_, is_shell(base_name(cmd_name_))});
    emit(Tok::kWord, w);
    out_.words.push_back(std::move(w));
    return;
  }
  bool named = false, target = redir_target_;
  if (redir_target_) {
    redir_target_ = false;
  } else if (cmd_pos_ || decl_) {
    // NAME=value: the name and '=' typed unquoted.
    size_t eq = w.find('=');
    bool assign = eq != std::string::npos && eq > 0 && is_name_start(w[0]);
    for (size_t k = 0; assign && k <= eq; ++k) assign = m[k] == kLit && (k == eq || is_name(w[k]));
    if (assign) {
      std::string name = w.substr(0, eq), value = w.substr(eq + 1);
      if (value.size() <= kMaxVarValue) {
        if (decl_) {
          local_[name] = value;
          out_.assignments.emplace_back(std::move(name), std::move(value));
        } else {
          pending_assign_.emplace_back(std::move(name), std::move(value));
        }
      }
      emit(Tok::kWord, w);
      out_.words.push_back(std::move(w));
      return;
    }
    if (cmd_pos_ && !decl_) {
      // A command name: is it built from pieces?
      bool obf = numeric;
      for (size_t e : edges) {
        if (obf || e == 0 || e >= w.size()) continue;
        bool lx = m[e - 1] == kExp, rx = m[e] == kExp;
        if (lx && rx)
          obf = true;
        else if (lx || rx)
          obf = is_alnum(lx ? w[e] : w[e - 1]);
        else
          obf = is_alnum(w[e - 1]) && is_alnum(w[e]);
      }
      if (obf && out_.obfuscated.empty()) out_.obfuscated = w;
      have_cmd_ = true;
      cmd_name_ = w;
      if (is_declaration(w)) decl_ = true;
      cmd_pos_ = is_wrapper(w);
      shell_arg_ = !cmd_pos_ && is_shell(base_name(w)) ? 1 : 0;
      named = true;
    }
  }
  // sh -c 'COMMANDS': the string is normalised as a command line too (after the line).
  if (!named && !target) {
    if (shell_arg_ == 1 && w.size() > 1 && w[0] == '-' && w[1] != '-') {
      if (w.find('c') != std::string::npos) shell_arg_ = 2;
    } else if (shell_arg_ == 2) {
      if (!parent_) inner_.push_back(w);
      shell_arg_ = 0;
    }
  }
  bool list = false;  // a typed '{' (most words have none)
  for (size_t k = 0; k < w.size() && !list; ++k) list = w[k] == '{' && m[k] == kLit;
  if (!list) {
    emit(Tok::kWord, w);
    out_.words.push_back(std::move(w));
    return;
  }
  std::vector<std::string> ws = braces(w, m, 0);
  std::string joined;
  for (auto& x : ws) {
    if (!joined.empty()) joined += ' ';
    joined += x;
    out_.words.push_back(std::move(x));
  }
  emit(Tok::kWord, joined);
}

// At '$' (s_[i_]); appends the expansion (resolved or as typed) to the word.
void Lexer::dollar(bool quoted) {
  size_t start = i_;
  char n = i_ + 1 < s_.size() ? s_[i_ + 1] : '\0';
  if (is_name_start(n) || n == '{') {
    std::string_view name;
    bool braced = n == '{';
    size_t j = i_ + 1;
    if (braced) {
      size_t k = j + 1;
      while (k < s_.size() && is_name(s_[k])) ++k;
      if (k < s_.size() && s_[k] == '}' && k > j + 1 && is_name_start(s_[j + 1])) {
        name = s_.substr(j + 1, k - j - 1);
        j = k + 1;
      } else {  // ${x:-y}, ${#x}, ...: kept as typed, to its closing brace
        int depth = 0;
        for (k = j; k < s_.size(); ++k) {
          if (s_[k] == '{') ++depth;
          if (s_[k] == '}' && --depth == 0) break;
        }
        j = k < s_.size() ? k + 1 : s_.size();
        edge();
        put(s_.substr(start, j - start), kExp);
        edge();
        i_ = j;
        return;
      }
    } else {
      while (j < s_.size() && is_name(s_[j])) ++j;
      name = s_.substr(i_ + 1, j - i_ - 1);
    }
    i_ = j;
    edge();
    const std::string* v = lookup(name);
    if (v && spend(v->size())) {
      put(*v, kExp);
    } else if (!braced && i_ < s_.size() && (s_[i_] == '"' || s_[i_] == '\'' || s_[i_] == '\\')) {
      // Text may follow directly once the quotes are gone: keep the name apart.
      put("${", kExp);
      put(name, kExp);
      put('}', kExp);
    } else {
      put(s_.substr(start, i_ - start), kExp);
    }
    edge();
    return;
  }
  if (!quoted && n == '\'') {
    ansi_c();
    return;
  }
  if (!quoted && n == '"') {  // $"..." (a translated string) reads as "..."
    ++i_;
    double_quoted();
    return;
  }
  if ((n >= '0' && n <= '9') || n == '?' || n == '$' || n == '#' || n == '@' || n == '*' ||
      n == '-' || n == '!') {
    edge();
    put(s_.substr(i_, 2), kExp);
    edge();
    i_ += 2;
    return;
  }
  put('$', quoted ? kQuot : kLit);
  ++i_;
}

// At "$'": decodes ANSI-C quoting to the closing quote (or the end).
void Lexer::ansi_c() {
  i_ += 2;
  edge();
  while (i_ < s_.size() && s_[i_] != '\'') {
    char c = s_[i_++];
    if (c != '\\' || i_ >= s_.size()) {
      put(c, kQuot);
      continue;
    }
    char e = s_[i_++];
    switch (e) {
      case 'a':
        put('\a', kQuot);
        break;
      case 'b':
        put('\b', kQuot);
        break;
      case 'e':
      case 'E':
        put('\x1b', kQuot);
        break;
      case 'f':
        put('\f', kQuot);
        break;
      case 'n':
        put('\n', kQuot);
        break;
      case 'r':
        put('\r', kQuot);
        break;
      case 't':
        put('\t', kQuot);
        break;
      case 'v':
        put('\v', kQuot);
        break;
      case 'c':
        if (i_ < s_.size()) put(static_cast<char>(s_[i_++] & 0x1f), kQuot);
        numeric_escape_ = true;
        break;
      case 'x': {
        int v = 0, k = 0;
        for (; k < 2 && i_ < s_.size() && hex_value(s_[i_]) >= 0; ++k)
          v = v * 16 + hex_value(s_[i_++]);
        if (k == 0) {
          put("\\x", kQuot);
        } else {
          put(static_cast<char>(v), kQuot);
          numeric_escape_ = true;
        }
        break;
      }
      case 'u':
      case 'U': {
        uint32_t v = 0;
        int k = 0, max = e == 'u' ? 4 : 8;
        for (; k < max && i_ < s_.size() && hex_value(s_[i_]) >= 0; ++k)
          v = v * 16 + static_cast<uint32_t>(hex_value(s_[i_++]));
        if (k == 0) {
          put('\\', kQuot);
          put(e, kQuot);
        } else {
          std::string u;
          put_utf8(u, v);
          put(u, kQuot);
          numeric_escape_ = true;
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int k = 1; k < 3 && i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '7'; ++k)
            v = v * 8 + (s_[i_++] - '0');
          put(static_cast<char>(v & 0xff), kQuot);
          numeric_escape_ = true;
        } else if (e == '\\' || e == '\'' || e == '"' || e == '?') {
          put(e, kQuot);
        } else {
          put('\\', kQuot);
          put(e, kQuot);
        }
    }
  }
  if (i_ < s_.size()) ++i_;  // the closing quote
  edge();
}

// At '"': to the closing quote (or the end).
void Lexer::double_quoted() {
  ++i_;
  edge();
  while (i_ < s_.size() && s_[i_] != '"') {
    char c = s_[i_];
    if (c == '\\' && i_ + 1 < s_.size()) {
      char e = s_[i_ + 1];
      if (e == '\n') {
        i_ += 2;
        continue;
      }
      if (e == '$' || e == '`' || e == '"' || e == '\\') {
        put(e, kQuot);
        i_ += 2;
        continue;
      }
      put(c, kQuot);
      ++i_;
      continue;
    }
    if (c == '$') {
      dollar(true);
      continue;
    }
    put(c, kQuot);
    ++i_;
  }
  if (i_ < s_.size()) ++i_;
  edge();
}

// At an unquoted operator character.
void Lexer::operator_at() {
  static constexpr std::string_view kOps[] = {"&>>", "<<<", "<<-", ";;&", "&&", "||", "|&", ";;",
                                              ";&",  "<<",  ">>",  ">&",  "<&", "&>", ">|", "<>",
                                              "|",   "&",   ";",   "(",   ")",  "<",  ">",  "`"};
  std::string_view rest = s_.substr(i_);
  std::string_view op = rest.substr(0, 1);
  for (auto o : kOps)
    if (rest.starts_with(o)) {
      op = o;
      break;
    }
  // 2>file, 10>&1: a word of digits right before < or > is the descriptor.
  std::string fd;
  if ((op[0] == '<' || op[0] == '>') && in_word_ && !w_.empty() &&
      std::all_of(w_.begin(), w_.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      std::all_of(mask_.begin(), mask_.end(), [](char c) { return c == kLit; })) {
    fd = w_;
    w_.clear();
    mask_.clear();
    edges_.clear();
    in_word_ = false;
  }
  end_word();
  i_ += op.size();
  bool redir = op[0] == '<' || op[0] == '>' || op == "&>" || op == "&>>";
  emit(Tok::kOp, fd + std::string(op));
  if (redir) {
    redir_target_ = true;
    if (op == "<<" || op == "<<-") {
      want_delim_ = true;
      delim_strip_ = op == "<<-";
    }
    return;
  }
  // Pipes and background: a new command, its assignments only for itself (a subshell).
  end_command(op == ";" || op == "&&" || op == "||" || op == "(" || op == ")" || op == ";;");
}

void Lexer::heredoc_bodies() {
  auto docs = std::move(pending_docs_);
  pending_docs_.clear();
  for (const auto& [delim, strip, feeds_shell] : docs) {
    while (i_ < s_.size()) {
      size_t eol = s_.find('\n', i_);
      if (eol == std::string_view::npos) eol = s_.size();
      std::string_view line = s_.substr(i_, eol - i_);
      i_ = eol < s_.size() ? eol + 1 : eol;
      std::string_view cmp = line;
      if (strip)
        while (!cmp.empty() && cmp[0] == '\t') cmp.remove_prefix(1);
      if (cmp == delim) break;
      if (!feeds_shell) continue;  // data, not commands
      // The body line as if typed, with this text's variables so far.
      Lexer body(line, nullptr, this, budget_);
      Normalised n = body.run();
      if (n.line.empty()) continue;
      out_.line += ';';
      last_ = Tok::kSep;
      emit(Tok::kRaw, n.line);
      for (auto& w : n.words) out_.words.push_back(std::move(w));
    }
  }
}

Normalised Lexer::run() {
  out_.line.reserve(s_.size() + 16);
  while (i_ < s_.size()) {
    char c = s_[i_];
    if (c == '\\') {
      if (i_ + 1 >= s_.size()) {
        ++i_;
        continue;
      }
      if (s_[i_ + 1] == '\n') {  // a line continuation
        i_ += 2;
        continue;
      }
      edge();  // (only before: \ls is no name built from pieces)
      put(s_[i_ + 1], kQuot);
      i_ += 2;
      continue;
    }
    if (c == '\n') {
      end_word();
      ++i_;
      if (!pending_docs_.empty()) heredoc_bodies();
      newline_ = true;
      want_delim_ = false;
      end_command(true);
      continue;
    }
    if (is_blank(c)) {
      end_word();
      space_ = true;
      ++i_;
      continue;
    }
    if (c == '#' && !in_word_) {
      while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      continue;
    }
    if (c == '\'') {
      size_t end = s_.find('\'', i_ + 1);
      if (end == std::string_view::npos) end = s_.size();
      edge();
      put(s_.substr(i_ + 1, end - i_ - 1), kQuot);
      edge();
      i_ = end < s_.size() ? end + 1 : end;
      continue;
    }
    if (c == '"') {
      double_quoted();
      continue;
    }
    if (c == '$' && i_ + 1 < s_.size() && s_[i_ + 1] == '(') {
      end_word();
      i_ += 2;
      emit(Tok::kOp, "$(");
      end_command(false);
      continue;
    }
    if (c == '$') {
      dollar(false);
      continue;
    }
    if (is_meta(c)) {
      operator_at();
      continue;
    }
    size_t j = i_ + 1;  // a run of plain characters at once
    while (j < s_.size() && is_plain(s_[j])) ++j;
    put(s_.substr(i_, j - i_), kLit);
    i_ = j;
  }
  end_word();
  end_command(true);
  if (heredocs_ && !pending_docs_.empty()) heredoc_bodies();  // a body without its newline
  for (const auto& text : inner_) {  // one level: an inner sh -c stays a word
    Lexer inner(text, nullptr, this, budget_);
    Normalised n = inner.run();
    if (out_.obfuscated.empty()) out_.obfuscated = std::move(n.obfuscated);
    if (n.line.empty()) continue;
    out_.line += ';';
    last_ = Tok::kSep;
    emit(Tok::kRaw, n.line);
    for (auto& w : n.words) out_.words.push_back(std::move(w));
  }
  return std::move(out_);
}

}  // namespace

Normalised normalise(std::string_view text, const Vars* vars) {
  size_t budget = std::max<size_t>(64 * 1024, text.size());
  Lexer l(text, vars, nullptr, &budget);
  return l.run();
}

}  // namespace shaudit::shell
