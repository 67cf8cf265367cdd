// SPDX-License-Identifier: Apache-2.0
#include "shaudit/redact.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <string_view>
#include <unordered_map>

namespace shaudit {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kMask = "***";
constexpr int kMaxDepth = 3;  // quoted words scanned as command lines (sh -c '...'), nested

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}
char upper(char c) {
  return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
}
bool is_ident(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}
bool starts_with(std::string_view s, std::string_view pre) {
  return s.substr(0, pre.size()) == pre;
}
template <size_t N>
bool one_of(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}
std::string lowered(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = lower(c);
  return o;
}

// A finding in raw coordinates of the scanned string. `tail` follows the mask when the
// secret ended inside one quoted part and began in another (keeps the quotes balanced).
struct Span {
  size_t begin, end;
  const char* kind;
  std::string tail;
};

// ---------------------------------------------------------------------------------------
// The lexer: shell words with their unquoted ("cooked") text, each cooked byte mapped back to
// the raw bytes it came from, and the quoted parts ('...', "...", $'...') of each word.

struct Part {
  uint32_t open, cb, ce, close;  // opener, content begin/end, end after closer (raw)
  bool quoted;
};

// A plain word (no quotes, no backslash: most words) is its raw bytes, with no per-byte map.
struct Tok {
  enum Kind : uint8_t { kWord, kSep, kRedir } kind;
  bool plain = false;
  uint32_t b = 0, e = 0;  // plain: raw range; else cooked range (in Lexed::cooked)
};

struct Lexed {
  std::string_view raw;
  std::string cooked;
  std::vector<uint32_t> rb;  // per cooked byte of the current word: where its raw bytes begin
  std::vector<Part> parts;   // of the current word only

  // The part cooked byte i came from (parts are in raw order).
  size_t part_of(size_t i) const {
    auto it = std::upper_bound(parts.begin(), parts.end(), rb[i],
                               [](uint32_t r, const Part& p) { return r < p.open; });
    return static_cast<size_t>(it - parts.begin()) - 1;
  }
  // Where the raw bytes of cooked byte i end: where the next one's begin, within a part.
  size_t raw_end(size_t i, size_t part) const {
    if (i + 1 < rb.size() && part_of(i + 1) == part) return rb[i + 1];
    return parts[part].ce;
  }

  std::string_view word(const Tok& t) const {
    return (t.plain ? raw : std::string_view(cooked)).substr(t.b, t.e - t.b);
  }
};

// Bytes the lexer acts on outside quotes; any other byte just goes on a word.
constexpr std::array<bool, 256> kSpecial = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view(" \t\r\n\\'\"$<>&;|()`")) t[c] = true;
  return t;
}();
bool special(char c) {
  return kSpecial[static_cast<unsigned char>(c)];
}

class Lexer {
 public:
  Lexer(std::string_view s, Lexed& out) : s_(s), o_(out) { o_.raw = s; }

  // Hands each token to sink.token() as it ends (a word's cooked bytes live until then).
  template <class Sink>
  void run(Sink& sink) {
    emit_ = [](void* k, const Tok& t) { static_cast<Sink*>(k)->token(t); };
    sink_ = &sink;
    size_t n = s_.size(), i = 0;
    while (i < n) {
      char c = s_[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        end_word(i);
        ++i;
      } else if (c == '\n') {
        end_word(i);
        emit({Tok::kSep});
        ++i;
      } else if (c == '\\') {
        if (i + 1 < n && s_[i + 1] == '\n') {
          i += 2;  // a line continuation: nothing, not even a word break
        } else if (i + 1 >= n) {
          ++i;  // the trailing backslash of a continued physical line
        } else {
          begin_word(i);
          cook(i);
          unquoted(s_[i + 1], i, i + 2);
          i += 2;
        }
      } else if (c == '\'') {
        i = single_quoted(i, 1);
      } else if (c == '$' && i + 1 < n && s_[i + 1] == '\'') {
        i = ansi_c(i);
      } else if (c == '"') {
        i = double_quoted(i);
      } else if (c == '<' || c == '>' || (c == '&' && i + 1 < n && s_[i + 1] == '>')) {
        // A redirection: a word of digits just before it is its file descriptor.
        if (in_word_ && all_digits(i)) drop_word();
        end_word(i);
        while (i < n && (s_[i] == '<' || s_[i] == '>' || s_[i] == '&' || s_[i] == '|')) ++i;
        if (i > 0 && s_[i - 1] == '&')
          while (i < n && (std::isdigit(static_cast<unsigned char>(s_[i])) || s_[i] == '-')) ++i;
        emit({Tok::kRedir});
      } else if (c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '`') {
        end_word(i);
        emit({Tok::kSep});
        ++i;
      } else {
        begin_word(i);
        if (!plain_) {
          unquoted(c, i, i + 1);
          ++i;
        } else {
          // The rest of an unquoted run at once: only a special byte changes anything.
          for (++i; i < n && !special(s_[i]); ++i) {
          }
        }
      }
    }
    end_word(n);
  }

 private:
  void begin_word(size_t at) {
    if (in_word_) return;
    in_word_ = true;
    plain_ = true;
    word_b_ = at;
    unq_part_ = SIZE_MAX;
  }
  // The word has quotes or escapes: from here on its bytes are cooked and mapped.
  void cook(size_t at) {
    if (!plain_) return;
    plain_ = false;
    cb_ = o_.cooked.size();
    for (size_t k = word_b_; k < at; ++k) unquoted(s_[k], k, k + 1);
  }
  void end_word(size_t at) {
    if (!in_word_) return;
    in_word_ = false;
    if (plain_) {
      emit({Tok::kWord, true, static_cast<uint32_t>(word_b_), static_cast<uint32_t>(at)});
      return;
    }
    emit({Tok::kWord, false, static_cast<uint32_t>(cb_), static_cast<uint32_t>(o_.cooked.size())});
    forget();
  }
  void forget() {
    o_.cooked.clear();
    o_.rb.clear();
    o_.parts.clear();
  }
  void emit(const Tok& t) { emit_(sink_, t); }
  bool all_digits(size_t at) const {
    std::string_view w =
        plain_ ? s_.substr(word_b_, at - word_b_) : std::string_view(o_.cooked).substr(cb_);
    return std::all_of(w.begin(), w.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  }
  void drop_word() {
    in_word_ = false;
    forget();
  }
  void push(char c, size_t rb) {
    o_.cooked.push_back(c);
    o_.rb.push_back(static_cast<uint32_t>(rb));
  }
  void unquoted(char c, size_t rb, size_t re) {
    if (unq_part_ != o_.parts.size() - 1 || unq_part_ == SIZE_MAX) {
      o_.parts.push_back({static_cast<uint32_t>(rb), static_cast<uint32_t>(rb), 0, 0, false});
      unq_part_ = o_.parts.size() - 1;
    }
    push(c, rb);
    o_.parts.back().ce = o_.parts.back().close = static_cast<uint32_t>(re);
  }
  size_t open_part(size_t open, size_t opener_len) {
    begin_word(open);
    cook(open);
    unq_part_ = SIZE_MAX;
    auto o = static_cast<uint32_t>(open), cb = static_cast<uint32_t>(open + opener_len);
    o_.parts.push_back({o, cb, cb, cb, true});
    return o_.parts.size() - 1;
  }
  void close_part(size_t p, size_t ce, size_t close) {
    o_.parts[p].ce = static_cast<uint32_t>(ce);
    o_.parts[p].close = static_cast<uint32_t>(close);
  }
  size_t single_quoted(size_t i, size_t opener) {
    size_t p = open_part(i, opener), j = i + opener;
    for (; j < s_.size() && s_[j] != '\''; ++j) push(s_[j], j);
    close_part(p, j, j < s_.size() ? j + 1 : j);
    return j < s_.size() ? j + 1 : j;
  }
  size_t ansi_c(size_t i) {
    size_t p = open_part(i, 2), j = i + 2;
    while (j < s_.size() && s_[j] != '\'') {
      if (s_[j] != '\\' || j + 1 >= s_.size()) {
        push(s_[j], j);
        ++j;
        continue;
      }
      char e = s_[j + 1];
      size_t k = j + 2;
      char v = e;
      if (e == 'x') {
        int val = 0, d = 0;
        for (; d < 2 && k < s_.size() && std::isxdigit(static_cast<unsigned char>(s_[k])); ++d, ++k)
          val = val * 16 + (std::isdigit(static_cast<unsigned char>(s_[k]))
                                ? s_[k] - '0'
                                : lower(s_[k]) - 'a' + 10);
        v = static_cast<char>(val);
      } else if (e >= '0' && e <= '7') {
        int val = e - '0', d = 1;
        for (; d < 3 && k < s_.size() && s_[k] >= '0' && s_[k] <= '7'; ++d, ++k)
          val = val * 8 + (s_[k] - '0');
        v = static_cast<char>(val);
      } else {
        static constexpr std::string_view from = "ntrabefv", to = "\n\t\r\a\b\x1b\f\v";
        if (auto f = from.find(e); f != std::string_view::npos) v = to[f];
      }
      push(v, j);
      j = k;
    }
    close_part(p, j, j < s_.size() ? j + 1 : j);
    return j < s_.size() ? j + 1 : j;
  }
  size_t double_quoted(size_t i) {
    size_t p = open_part(i, 1), j = i + 1;
    while (j < s_.size() && s_[j] != '"') {
      char nx = j + 1 < s_.size() ? s_[j + 1] : 0;
      if (s_[j] == '\\' && (nx == '$' || nx == '`' || nx == '"' || nx == '\\' || nx == '\n')) {
        if (s_[j + 1] != '\n') push(s_[j + 1], j);
        j += 2;
      } else {
        push(s_[j], j);
        ++j;
      }
    }
    close_part(p, j, j < s_.size() ? j + 1 : j);
    return j < s_.size() ? j + 1 : j;
  }

  std::string_view s_;
  Lexed& o_;
  bool in_word_ = false;
  bool plain_ = false;
  size_t word_b_ = 0, cb_ = 0;
  void (*emit_)(void*, const Tok&) = nullptr;
  void* sink_ = nullptr;
  size_t unq_part_ = SIZE_MAX;
};

// The raw span of a word's bytes [b, e). A secret that fills a quoted part takes its quotes
// with it (-p'S' -> -p***); one inside a quoted part leaves them ('pass:S' -> 'pass:***').
Span raw_span(const Lexed& lx, const Tok& t, size_t b, size_t e, const char* kind) {
  if (t.plain) return Span{t.b + b, t.b + e, kind, {}};
  std::string_view raw = lx.raw;
  b += t.b;
  e += t.b;
  size_t pa = lx.part_of(b), pb = lx.part_of(e - 1);
  size_t rb = lx.rb[b], re = lx.raw_end(e - 1, pb);
  const Part &A = lx.parts[pa], &B = lx.parts[pb];
  bool ext_a = A.quoted && rb == A.cb && (pa != pb || re == A.ce);
  bool ext_b = B.quoted && re == B.ce && (pa != pb || ext_a);
  Span sp{ext_a ? A.open : rb, ext_b ? B.close : re, kind, {}};
  if (pa != pb) {
    if (A.quoted && !ext_a) sp.tail += raw[A.close - 1];  // the mask closes what A opened
    if (B.quoted && !ext_b) sp.tail += raw.substr(B.open, B.cb - B.open);  // and reopens B
  }
  return sp;
}

// ---------------------------------------------------------------------------------------
// What a word is, by name.

std::string_view base_name(std::string_view w) {
  auto slash = w.rfind('/');
  return slash == std::string_view::npos ? w : w.substr(slash + 1);
}

// A variable whose name says it holds a secret. KEY_FILE, SSH_KEY_PATH, PASSWORD_FILE,
// SECRET_NAME and the like name where a secret is, or which: not secrets.
bool secret_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = upper(c);
  for (std::string_view not_secret :
       {"_FILE"sv, "_PATH"sv, "_DIR"sv, "_FILES"sv, "_NAME"sv, "_ID"sv, "_TTL"sv, "_URL"sv,
        "_LENGTH"sv, "_TYPE"sv, "_ENABLED"sv, "_REQUIRED"sv})
    if (ends_with(n, not_secret)) return false;
  if (n == "PWD" || n == "OLDPWD") return false;  // the working directory
  static constexpr std::array<std::string_view, 6> exact = {"PASS",   "TOKEN",   "SECRET",
                                                            "APIKEY", "SSHPASS", "REDISCLI_AUTH"};
  if (one_of(n, exact)) return true;
  for (std::string_view suf : {"PASSWORD"sv, "PASSWD"sv, "_PASS"sv, "_PWD"sv, "_TOKEN"sv,
                               "_SECRET"sv, "_KEY"sv, "APIKEY"sv, "_AUTH"sv, "_CREDENTIAL"sv})
    if (ends_with(n, suf)) return true;
  return starts_with(n, "SECRET_") || n.find("_SECRET_") != std::string::npos;
}

bool is_key_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = upper(c);
  return ends_with(n, "_KEY") && !ends_with(n, "API_KEY") && !ends_with(n, "SECRET_KEY");
}

bool looks_like_path(std::string_view v) {
  return starts_with(v, "/") || starts_with(v, "~") || starts_with(v, "./") ||
         starts_with(v, "../");
}

enum class Tool : uint8_t {
  kNone,
  kMysql,
  kSshpass,
  kRedis,
  kHtpasswd,
  kOpenssl,
  kRegistry,
  kHelm,
  kCurl,
  kHttpie,
  kWget,
  kMongo,
  kLdap,
  kLdappasswd,
  kSmb,
  kZip,
  kUnzip,
  kSevenZ,
  kIpmi,
  kKeytool,
  kAz,
  kOc,
  kSqlcmd,
  kMosquitto,
  kAws,
  kSkopeo,
  kKubectl,
  kPasswordTaker,
  kRunner,
};

Tool tool_of(std::string_view word) {
  // One hash lookup per word (a runner's every argument is looked up).
  static const std::unordered_map<std::string_view, Tool> tools = [] {
    std::unordered_map<std::string_view, Tool> m;
    for (std::string_view n :
         {"mysql"sv,         "mariadb"sv,        "mysqldump"sv,     "mysqladmin"sv,
          "mysqlimport"sv,   "mysqlcheck"sv,     "mysqlshow"sv,     "mysqlslap"sv,
          "mysqlpump"sv,     "mysqlbinlog"sv,    "mysqlsh"sv,       "mariadb-dump"sv,
          "mariadb-admin"sv, "mariadb-import"sv, "mariadb-check"sv, "mariadb-show"sv,
          "mariadb-slap"sv,  "mariadb-binlog"sv, "mysql_upgrade"sv, "mariadb-upgrade"sv})
      m[n] = Tool::kMysql;
    for (std::string_view n : {"mongo"sv, "mongosh"sv, "mongodump"sv, "mongorestore"sv,
                               "mongoexport"sv, "mongoimport"sv, "mongostat"sv, "mongotop"sv})
      m[n] = Tool::kMongo;
    for (std::string_view n : {"ldapsearch"sv, "ldapadd"sv, "ldapmodify"sv, "ldapdelete"sv,
                               "ldapwhoami"sv, "ldapmodrdn"sv, "ldapcompare"sv, "ldapexop"sv})
      m[n] = Tool::kLdap;
    for (std::string_view n :
         {"ssh"sv, "crictl"sv, "lxc"sv, "incus"sv, "nsenter"sv, "systemd-run"sv})
      m[n] = Tool::kRunner;
    for (std::string_view n : {"docker"sv, "podman"sv, "nerdctl"sv, "buildah"sv})
      m[n] = Tool::kRegistry;
    for (std::string_view n : {"influx"sv, "rabbitmqadmin"sv, "svn"sv, "twine"sv, "argocd"sv})
      m[n] = Tool::kPasswordTaker;
    const std::pair<std::string_view, Tool> one[] = {{"sshpass", Tool::kSshpass},
                                                     {"redis-cli", Tool::kRedis},
                                                     {"valkey-cli", Tool::kRedis},
                                                     {"keydb-cli", Tool::kRedis},
                                                     {"htpasswd", Tool::kHtpasswd},
                                                     {"openssl", Tool::kOpenssl},
                                                     {"helm", Tool::kHelm},
                                                     {"curl", Tool::kCurl},
                                                     {"http", Tool::kHttpie},
                                                     {"https", Tool::kHttpie},
                                                     {"xh", Tool::kHttpie},
                                                     {"wget", Tool::kWget},
                                                     {"ldappasswd", Tool::kLdappasswd},
                                                     {"smbclient", Tool::kSmb},
                                                     {"zip", Tool::kZip},
                                                     {"unzip", Tool::kUnzip},
                                                     {"7z", Tool::kSevenZ},
                                                     {"7za", Tool::kSevenZ},
                                                     {"7zr", Tool::kSevenZ},
                                                     {"ipmitool", Tool::kIpmi},
                                                     {"keytool", Tool::kKeytool},
                                                     {"jarsigner", Tool::kKeytool},
                                                     {"az", Tool::kAz},
                                                     {"sqlcmd", Tool::kSqlcmd},
                                                     {"bcp", Tool::kSqlcmd},
                                                     {"mosquitto_pub", Tool::kMosquitto},
                                                     {"mosquitto_sub", Tool::kMosquitto},
                                                     {"aws", Tool::kAws},
                                                     {"skopeo", Tool::kSkopeo},
                                                     {"oc", Tool::kOc},
                                                     {"kubectl", Tool::kKubectl}};
    for (const auto& [n, t] : one) m[n] = t;
    return m;
  }();
  std::string_view w = base_name(word);
  if (w.size() > 16) return Tool::kNone;
  auto it = tools.find(w);
  return it == tools.end() ? Tool::kNone : it->second;
}

// Programs that run another command: skipped (with their options) to find the command word.
struct Wrapper {
  std::string_view name;
  std::string_view arg_options;  // short options that take a value, e.g. "ugphCDrtUT"
  int positionals;               // leading operands before the command (timeout DURATION)
};
const Wrapper* wrapper_of(std::string_view w) {
  static constexpr std::array<Wrapper, 21> table = {{
      {"sudo", "ugphCDrtUT", 0}, {"doas", "uC", 0},        {"env", "uSC", 0},
      {"nice", "n", 0},          {"ionice", "cnp", 0},     {"nohup", "", 0},
      {"stdbuf", "ioe", 0},      {"timeout", "sk", 1},     {"xargs", "EeIiLlnPsd", 0},
      {"watch", "nd", 0},        {"chroot", "", 1},        {"runuser", "ugl", 0},
      {"setsid", "", 0},         {"unbuffer", "", 0},      {"flock", "wEn", 1},
      {"strace", "eopsuS", 0},   {"ltrace", "eopsu", 0},   {"torsocks", "", 0},
      {"proxychains", "f", 0},   {"proxychains4", "f", 0}, {"chrt", "", 1},
  }};
  w = base_name(w);
  for (const auto& x : table)
    if (x.name == w) return &x;
  return nullptr;
}

bool keyword_before_command(std::string_view w) {
  static constexpr std::array<std::string_view, 17> kw = {
      "!",     "{",    "}",    "then",    "do",      "else",   "elif",   "if",       "while",
      "until", "time", "exec", "command", "builtin", "coproc", "noglob", "nocorrect"};
  return one_of(w, kw);
}

// Long options (the name after --) whose value is a secret.
bool secret_long_option(std::string_view name) {
  static constexpr std::array<std::string_view, 9> exact = {
      "password", "passwd",        "pass",   "token",       "api-key",
      "apikey",   "oauth2-bearer", "bearer", "access-token"};
  if (one_of(name, exact)) return true;
  for (std::string_view ex :
       {"no-"sv, "ask-"sv, "with-"sv, "use-"sv, "prompt-"sv, "skip-"sv, "show-"sv, "print-"sv,
        "generate-"sv, "random-"sv, "reset-"sv, "expire-"sv, "change-"sv})
    if (starts_with(name, ex)) return false;
  for (std::string_view suf : {"-password"sv, "-passwd"sv, "-token"sv, "-secret"sv, "-api-key"sv,
                               "-apikey"sv, "-secret-key"sv, "-auth-token"sv})
    if (ends_with(name, suf)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// The scanner of simple commands.

enum class Take : uint8_t { kAll, kAfterColon, kAfterPercent, kAfterEquals, kPassPrefix, kSetList };

struct ShortOption {
  Tool tool;
  std::string_view opt;
  bool attached, separate;
  Take take;
  const char* kind;
};
constexpr std::array<ShortOption, 25> kShort = {{
    {Tool::kMysql, "-p", true, false, Take::kAll, "mysql_password"},
    {Tool::kSshpass, "-p", true, true, Take::kAll, "secret_option"},
    {Tool::kRedis, "-a", true, true, Take::kAll, "secret_option"},
    {Tool::kRegistry, "-p", true, true, Take::kAll, "secret_option"},  // `login` only
    {Tool::kHelm, "-p", true, true, Take::kAll, "secret_option"},      // `login` only
    {Tool::kSkopeo, "-p", true, true, Take::kAll, "secret_option"},    // `login` only
    {Tool::kAz, "-p", true, true, Take::kAll, "secret_option"},
    {Tool::kOc, "-p", true, true, Take::kAll, "secret_option"},
    {Tool::kMongo, "-p", false, true, Take::kAll, "secret_option"},
    {Tool::kCurl, "-u", true, true, Take::kAfterColon, "basic_auth"},
    {Tool::kCurl, "-U", true, true, Take::kAfterColon, "basic_auth"},
    {Tool::kHttpie, "-a", true, true, Take::kAfterColon, "basic_auth"},
    {Tool::kSmb, "-U", true, true, Take::kAfterPercent, "basic_auth"},
    {Tool::kLdap, "-w", true, true, Take::kAll, "secret_option"},
    {Tool::kLdappasswd, "-w", true, true, Take::kAll, "secret_option"},
    {Tool::kLdappasswd, "-s", true, true, Take::kAll, "secret_option"},
    {Tool::kLdappasswd, "-a", true, true, Take::kAll, "secret_option"},
    {Tool::kZip, "-P", false, true, Take::kAll, "secret_option"},
    {Tool::kUnzip, "-P", false, true, Take::kAll, "secret_option"},
    {Tool::kSevenZ, "-p", true, false, Take::kAll, "secret_option"},
    {Tool::kIpmi, "-P", true, true, Take::kAll, "secret_option"},
    {Tool::kSqlcmd, "-P", true, true, Take::kAll, "secret_option"},
    {Tool::kMosquitto, "-P", false, true, Take::kAll, "secret_option"},
    {Tool::kOpenssl, "-k", false, true, Take::kAll, "secret_option"},
    {Tool::kOpenssl, "-K", false, true, Take::kAll, "secret_option"},
}};

class Scanner {
 public:
  // literal: the words are an argv, expanded already (a '$' in one is just a byte).
  Scanner(const Lexed& lx, std::vector<Span>& out, int depth, bool literal = false)
      : lx_(lx), out_(out), depth_(depth), literal_(literal) {
    reset();
  }

  void token(const Tok& t) {
    if (t.kind == Tok::kSep) {
      reset();
    } else if (t.kind == Tok::kRedir) {
      redirect_target_ = true;
    } else if (redirect_target_) {
      redirect_target_ = false;
    } else {
      word(t);
    }
  }

 private:
  enum class State : uint8_t { kCommand, kWrapper, kArgs, kNone };

  void reset() {
    state_ = State::kCommand;
    tool_ = Tool::kNone;
    pending_ = nullptr;
    pending_take_ = Take::kAll;
    login_ = secret_ = false;
    htpasswd_batch_ = htpasswd_stdout_ = false;
    positionals_ = 0;
    set_name_ = false;
    redirect_target_ = false;
    wrapper_ = nullptr;
  }

  // The value at byte vb of the word begins with an expansion ($NAME, ${...}, $(...), not
  // '$...' in single quotes): what it stands for is not on the line, so there is nothing to
  // hide (PGPASSWORD=$PW, API_KEY=$(cat /run/secrets/key)).
  bool expansion(const Tok& t, size_t vb) const {
    std::string_view w = lx_.word(t);
    if (literal_ || vb >= w.size() || w[vb] != '$') return false;
    if (t.plain) return true;
    const Part& p = lx_.parts[lx_.part_of(t.b + vb)];
    return !p.quoted || lx_.raw[p.open] == '"';
  }

  void add(const Tok& t, size_t vb, size_t ve, const char* kind) {
    if (vb >= ve) return;
    out_.push_back(raw_span(lx_, t, vb, ve, kind));
  }

  // A value (bytes [vb, end) of the word) taken as `take` says.
  void value(const Tok& t, size_t vb, Take take, const char* kind) {
    std::string_view w = lx_.word(t);
    std::string_view v = w.substr(vb);
    if (expansion(t, vb)) return;
    switch (take) {
      case Take::kAll:
        add(t, vb, w.size(), kind);
        break;
      case Take::kAfterColon:
      case Take::kAfterPercent:
      case Take::kAfterEquals: {
        auto c = v.find(take == Take::kAfterColon ? ':' : take == Take::kAfterPercent ? '%' : '=');
        if (c != std::string_view::npos && !expansion(t, vb + c + 1))
          add(t, vb + c + 1, w.size(), kind);
        break;
      }
      case Take::kPassPrefix:
        if (starts_with(v, "pass:")) add(t, vb + 5, w.size(), kind);
        break;
      case Take::kSetList:  // key=value,key=value (helm --set)
        for (size_t b = vb; b < w.size();) {
          size_t comma = w.find(',', b);
          if (comma == std::string_view::npos) comma = w.size();
          std::string_view item = w.substr(b, comma - b);
          auto eq = item.find('=');
          if (eq != std::string_view::npos) {
            std::string_view key = item.substr(0, eq);
            auto dot = key.rfind('.');
            std::string_view last = dot == std::string_view::npos ? key : key.substr(dot + 1);
            std::string flat;
            for (char c : last)
              if (is_ident(c)) flat += c;
            // rootPassword / db.password / apiKey: the key's last part names a secret.
            std::string up = flat;
            for (auto& c : up) c = upper(c);
            bool secret = secret_name(flat) || secret_name("X_" + flat) ||
                          ends_with(up, "PASSWORD") || ends_with(up, "TOKEN") ||
                          ends_with(up, "SECRET") || ends_with(up, "APIKEY");
            if (secret && !expansion(t, b + eq + 1)) add(t, b + eq + 1, comma, kind);
          }
          b = comma + 1;
        }
        break;
    }
  }

  // NAME=value anywhere on the line: env, export, declare, docker -e, key=value arguments.
  bool assignment(const Tok& t, std::string_view word, size_t from = 0) {
    std::string_view w = word.substr(from);
    auto eq = w.find('=');
    if (eq == std::string_view::npos || eq == 0 ||
        !std::all_of(w.begin(), w.begin() + static_cast<long>(eq), is_ident) ||
        std::isdigit(static_cast<unsigned char>(w[0])))
      return false;
    std::string_view name = w.substr(0, eq), v = w.substr(eq + 1);
    eq += from;
    if (secret_name(name) && !expansion(t, eq + 1) && !(is_key_name(name) && looks_like_path(v)))
      add(t, eq + 1, word.size(), "secret_variable");
    return true;
  }

  // NAME: value, where NAME is a header that carries a credential (X-Api-Key:, Private-Token:,
  // X-Auth-Token:, Cookie:, ...), and Authorization: / Proxy-Authorization: <scheme> SECRET.
  void header(const Tok& t, std::string_view w) {
    auto colon = w.find(':');
    if (colon == std::string_view::npos || colon == 0) return;
    size_t nb = 0;
    if (auto eq = w.substr(0, colon).rfind('='); eq != std::string_view::npos) nb = eq + 1;
    std::string_view name = w.substr(nb, colon - nb);
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return is_ident(c) || c == '-'; }))
      return;
    std::string n = lowered(name);
    if (n == "authorization" || n == "proxy-authorization") {
      // Authorization: <scheme> SECRET; without a scheme the whole value is the credential.
      size_t q = colon + 1;
      while (q < w.size() && (w[q] == ' ' || w[q] == '\t')) ++q;
      size_t scheme_end = q;
      while (scheme_end < w.size() && std::isalpha(static_cast<unsigned char>(w[scheme_end])))
        ++scheme_end;
      size_t b = scheme_end;
      while (b < w.size() && (w[b] == ' ' || w[b] == '\t')) ++b;
      if (b == scheme_end) b = q;
      size_t e = w.size();
      while (e > b && (w[e - 1] == ' ' || w[e - 1] == '\t')) --e;
      if (e > b && !expansion(t, b)) add(t, b, e, "authorization");
      return;
    }
    bool secret = n == "cookie" || ends_with(n, "api-key") || ends_with(n, "apikey") ||
                  ends_with(n, "-secret-key") || ends_with(n, "-auth-key") ||
                  ends_with(n, "subscription-key") || ends_with(n, "functions-key") ||
                  ends_with(n, "-app-key") || ends_with(n, "-master-key") ||
                  ends_with(n, "-token") || n == "private-token" || ends_with(n, "-secret") ||
                  ends_with(n, "-password") || ends_with(n, "-passwd");
    if (!secret) return;
    size_t vb = colon + 1;
    while (vb < w.size() && (w[vb] == ' ' || w[vb] == '\t')) ++vb;
    if (vb < w.size() && !expansion(t, vb)) add(t, vb, w.size(), "secret_header");
  }

  // A quoted word with blanks in it may be a command line of its own (sh -c '...').
  void nested(const Tok& t, std::string_view w) {
    if (depth_ >= kMaxDepth ||
        std::none_of(w.begin(), w.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n'; }))
      return;
    Lexed inner;
    std::vector<Span> found;
    Scanner sc(inner, found, depth_ + 1);
    Lexer(w, inner).run(sc);
    for (const auto& sp : found) {
      out_.push_back(raw_span(lx_, t, sp.begin, sp.end, sp.kind));
    }
  }

  void word(const Tok& t) {
    std::string_view w = lx_.word(t);
    if (w.empty()) {  // '' or "": an empty value, or an empty operand
      pending_ = nullptr;
      if (state_ == State::kArgs) ++positionals_;
      return;
    }
    nested(t, w);
    if (pending_) {
      const char* kind = pending_;
      pending_ = nullptr;
      if (!(w[0] == '-' && w.size() > 1)) {
        value(t, 0, pending_take_, kind);
        if (state_ == State::kArgs) return;
      }
    }
    bool is_assignment = assignment(t, w);
    header(t, w);
    switch (state_) {
      case State::kNone:
        return;
      case State::kCommand:
        if (is_assignment || keyword_before_command(w)) return;
        command_word(w);
        return;
      case State::kWrapper:
        wrapper_word(t, w, is_assignment);
        return;
      case State::kArgs:
        argument(t, w);
        return;
    }
  }

  void command_word(std::string_view w) {
    if (w == "for" || w == "case" || w == "select" || w == "function" || w == "[[" || w == "[") {
      state_ = State::kNone;
      return;
    }
    if ((wrapper_ = wrapper_of(w))) {
      state_ = State::kWrapper;
      positionals_ = wrapper_->positionals;
      return;
    }
    tool_ = tool_of(w);
    state_ = State::kArgs;
  }

  void wrapper_word(const Tok& t, std::string_view w, bool is_assignment) {
    if (skip_next_) {
      skip_next_ = false;
      return;
    }
    if (w == "--") {
      state_ = State::kCommand;
      return;
    }
    if (w[0] == '-' && w.size() > 1) {
      // -u user / -n 10: the option's value is the next word unless attached.
      if (w[1] != '-' && w.size() == 2 &&
          wrapper_->arg_options.find(w[1]) != std::string_view::npos)
        skip_next_ = true;
      else if (starts_with(w, "--") && w.find('=') == std::string_view::npos &&
               (w == "--user" || w == "--group" || w == "--signal" || w == "--kill-after" ||
                w == "--unset" || w == "--chdir" || w == "--adjustment"))
        skip_next_ = true;
      return;
    }
    if (is_assignment) return;  // env NAME=value
    if (positionals_ > 0) {
      --positionals_;
      return;
    }
    state_ = State::kCommand;
    word(t);
  }

  void argument(const Tok& t, std::string_view w) {
    // A runner (docker exec, kubectl exec, ssh) runs a command of its own: a known tool's name
    // later in the line starts that tool's rules.
    if (tool_ == Tool::kRunner || tool_ == Tool::kRegistry || tool_ == Tool::kKubectl ||
        tool_ == Tool::kOc) {
      if (Tool inner = tool_of(w); inner != Tool::kNone && inner != Tool::kRunner &&
                                   inner != Tool::kRegistry && inner != Tool::kKubectl &&
                                   inner != Tool::kOc && w.find('/') == std::string_view::npos) {
        tool_ = inner;
        login_ = false;
        positionals_ = 0;
        return;
      }
    }
    if (w == "login") login_ = true;
    if (w == "secret") secret_ = true;  // kubectl create secret
    bool dash = w[0] == '-' && w.size() > 1;
    if (starts_with(w, "--") && w.size() > 2) {
      long_option(t, w);
      return;
    }
    if (dash) {
      for (const auto& so : kShort) {
        if (so.tool != tool_ || !starts_with(w, so.opt)) continue;
        if ((so.tool == Tool::kRegistry || so.tool == Tool::kHelm || so.tool == Tool::kSkopeo) &&
            !login_)
          continue;
        if (w.size() == so.opt.size()) {
          if (so.separate) pending(so.kind, so.take);
        } else if (so.attached) {
          value(t, so.opt.size(), so.take, so.kind);
        }
        return;
      }
      if (tool_ == Tool::kOpenssl) {
        if (w == "-pass" || w == "-passin" || w == "-passout" || w == "-password")
          pending("secret_option", Take::kPassPrefix);
      } else if (tool_ == Tool::kKeytool) {
        static constexpr std::array<std::string_view, 6> pass = {"-storepass",    "-keypass",
                                                                 "-srcstorepass", "-deststorepass",
                                                                 "-srckeypass",   "-destkeypass"};
        if (one_of(w, pass)) pending("secret_option", Take::kAll);
      } else if (tool_ == Tool::kHtpasswd && w[1] != '-') {
        if (w.find('b') != std::string_view::npos) htpasswd_batch_ = true;
        if (w.find('n') != std::string_view::npos) htpasswd_stdout_ = true;
      }
      return;
    }
    // Operands.
    ++positionals_;
    if (tool_ == Tool::kHtpasswd && htpasswd_batch_ && positionals_ == (htpasswd_stdout_ ? 2 : 3))
      value(t, 0, Take::kAll, "secret_option");
    else if (tool_ == Tool::kMysql && w == "password")  // mysqladmin password NEW
      pending("mysql_password", Take::kAll);
    else if (tool_ == Tool::kAws && w == "set")
      set_name_ = true;
    else if (tool_ == Tool::kAws && set_name_) {
      set_name_ = false;  // aws configure set aws_secret_access_key S
      if (secret_name(w)) pending("secret_option", Take::kAll);
    }
  }

  void long_option(const Tok& t, std::string_view w) {
    auto eq = w.find('=');
    std::string name =
        lowered(w.substr(2, eq == std::string_view::npos ? std::string_view::npos : eq - 2));
    const char* kind = nullptr;
    Take take = Take::kAll;
    bool separate = false;
    if (name == "from-literal" && secret_) {  // kubectl create secret ... --from-literal=key=S
      kind = "secret_option";
      take = Take::kAfterEquals;
      separate = true;
    } else if (eq != std::string_view::npos && w.find('=', eq + 1) != std::string_view::npos &&
               name.find("file") == std::string::npos && assignment(t, w, eq + 1)) {
      return;  // --env=DB_PASSWORD=S, --build-arg=NPM_TOKEN=S: an assignment as the value
    } else if (name == "password" || name == "passwd" || name == "pass") {
      kind = tool_ == Tool::kMysql ? "mysql_password" : "password_option";
      // `--password S`: only where the program takes it so (mysql, psql: a prompt).
      separate = tool_ == Tool::kRegistry || tool_ == Tool::kHelm || tool_ == Tool::kWget ||
                 tool_ == Tool::kMongo || tool_ == Tool::kAz || tool_ == Tool::kOc ||
                 tool_ == Tool::kKubectl || tool_ == Tool::kZip || tool_ == Tool::kSkopeo ||
                 tool_ == Tool::kPasswordTaker || (tool_ == Tool::kRedis && name == "pass");
    } else if (secret_long_option(name)) {
      kind = "secret_option";
      separate = true;
    } else if (tool_ == Tool::kCurl && (name == "user" || name == "proxy-user")) {
      kind = "basic_auth";
      take = Take::kAfterColon;
      separate = true;
    } else if (tool_ == Tool::kHttpie && name == "auth") {
      kind = "basic_auth";
      take = Take::kAfterColon;
      separate = true;
    } else if (tool_ == Tool::kSkopeo &&
               (name == "creds" || name == "src-creds" || name == "dest-creds")) {
      kind = "basic_auth";
      take = Take::kAfterColon;
      separate = true;
    } else if (tool_ == Tool::kHelm && (name == "set" || name == "set-string")) {
      kind = "secret_variable";
      take = Take::kSetList;
      separate = true;
    }
    if (!kind) return;
    if (eq != std::string_view::npos)
      value(t, eq + 1, take, kind);
    else if (separate)
      pending(kind, take);
  }

  void pending(const char* kind, Take take) {
    pending_ = kind;
    pending_take_ = take;
  }

  const Lexed& lx_;
  std::vector<Span>& out_;
  int depth_;
  bool literal_;
  State state_ = State::kCommand;
  Tool tool_ = Tool::kNone;
  const Wrapper* wrapper_ = nullptr;
  const char* pending_ = nullptr;
  Take pending_take_ = Take::kAll;
  bool login_ = false, secret_ = false, htpasswd_batch_ = false, htpasswd_stdout_ = false,
       set_name_ = false;
  bool redirect_target_ = false, skip_next_ = false;
  int positionals_ = 0;
};

// ---------------------------------------------------------------------------------------
// Scans over the raw bytes: URLs with credentials, AWS key ids, Authorization headers.

void raw_scans(std::string_view s, std::vector<Span>& out) {
  // scheme://user:SECRET@host
  for (size_t p = s.find("://"); p != std::string::npos; p = s.find("://", p + 3)) {
    size_t b = p + 3, at = b;
    while (at < s.size() && s[at] != ' ' && s[at] != '\t' && s[at] != '\n' && s[at] != '/' &&
           s[at] != '@' && s[at] != '\'' && s[at] != '"')
      ++at;
    if (at < s.size() && s[at] == '@') {
      size_t colon = s.find(':', b);
      if (colon != std::string::npos && colon < at && colon + 1 < at)
        out.push_back({colon + 1, at, "url_credentials", {}});
    }
  }
  // AWS access key ids: AKIA/ASIA + 16 upper-case letters or digits, as a whole word.
  // (Character tests, not a compare call per position: a 128 KiB line costs ~0.1 ms.)
  for (size_t p = 0; p + 20 <= s.size(); ++p) {
    if (s[p] == 'A' && (s[p + 1] == 'K' || s[p + 1] == 'S') && s[p + 2] == 'I' && s[p + 3] == 'A' &&
        (p == 0 || !std::isalnum(static_cast<unsigned char>(s[p - 1])))) {
      size_t q = p + 4;
      while (q < s.size() && (std::isupper(static_cast<unsigned char>(s[q])) ||
                              std::isdigit(static_cast<unsigned char>(s[q]))))
        ++q;
      if (q - p == 20 && (q == s.size() || !std::isalnum(static_cast<unsigned char>(s[q])))) {
        out.push_back({p, q, "aws_access_key", {}});
        p = q;
      }
    }
  }
  // Authorization: <scheme> SECRET anywhere, also outside a word of its own (an HTTP request
  // typed into a program). The word scan covers quoted values; here the value stops before
  // any byte that quotes or escapes (' " \ $'), so the mask never changes the quoting.
  for (size_t p = 0; p < s.size();) {
    size_t a = s.find("uthorization:", p);
    if (a == std::string::npos || a == 0) break;
    if (s[a - 1] != 'A' && s[a - 1] != 'a') {
      p = a + 1;
      continue;
    }
    size_t q = a + 13;
    while (q < s.size() && s[q] == ' ') ++q;
    size_t scheme_end = q;
    while (scheme_end < s.size() && std::isalpha(static_cast<unsigned char>(s[scheme_end])))
      ++scheme_end;
    size_t b = scheme_end;
    while (b < s.size() && s[b] == ' ') ++b;
    if (b == scheme_end) b = q;  // no scheme: the whole value is the credential
    size_t e = b;
    while (e < s.size() && s[e] != '\'' && s[e] != '"' && s[e] != '\n' && s[e] != '\\' &&
           !(s[e] == '$' && e + 1 < s.size() && s[e + 1] == '\''))
      ++e;
    while (e > b && s[e - 1] == ' ') --e;
    if (e > b) out.push_back({b, e, "authorization", {}});
    p = e + 1;
  }
}

// Spans the user patterns find in s: the first capture group, or the whole match.
void custom(const std::vector<std::shared_ptr<const re2::RE2>>& patterns, std::string_view s,
            std::vector<Span>& out) {
  for (const auto& re : patterns) {
    std::array<re2::StringPiece, 2> m;
    int groups = std::min(re->NumberOfCapturingGroups(), 1) + 1;
    for (size_t pos = 0; pos <= s.size();) {
      if (!re->Match(s, pos, s.size(), re2::RE2::UNANCHORED, m.data(), groups)) break;
      const auto& g = groups > 1 && m[1].data() ? m[1] : m[0];
      size_t b = static_cast<size_t>(g.data() - s.data());
      if (!g.empty()) out.push_back({b, b + g.size(), "custom", {}});
      size_t end = static_cast<size_t>(m[0].data() - s.data()) + m[0].size();
      pos = m[0].empty() ? end + 1 : end;
    }
  }
}

void scan_line(std::string_view s, std::vector<Span>& out) {
  Lexed lx;
  Scanner sc(lx, out, 0);
  Lexer(s, lx).run(sc);
  raw_scans(s, out);
}

// The argv of one exec: each element one word, no quoting; argv[0] is the command word.
void scan_argv(const std::vector<std::string>& args, std::vector<std::vector<Span>>& out) {
  Lexed lx;
  std::string joined;
  std::vector<size_t> starts;
  for (const auto& a : args) {
    starts.push_back(joined.size());
    joined += a;
  }
  lx.raw = joined;
  std::vector<Span> found;
  Scanner sc(lx, found, 0, true);
  for (size_t i = 0; i < args.size(); ++i)
    sc.token({Tok::kWord, true, static_cast<uint32_t>(starts[i]),
              static_cast<uint32_t>(starts[i] + args[i].size())});
  out.assign(args.size(), {});
  for (auto& sp : found) {
    size_t e = static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), sp.begin) -
                                   starts.begin()) -
               1;
    sp.begin -= starts[e];
    sp.end -= starts[e];
    out[e].push_back(std::move(sp));
  }
  for (size_t i = 0; i < args.size(); ++i) raw_scans(args[i], out[i]);
}

std::vector<Redaction> apply(std::string& s, std::vector<Span> spans, size_t from = 0) {
  // At one place, the longest finding wins (a value and a word inside it, sh -c 'a=b c').
  std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  std::vector<Redaction> found;
  std::string out(s, 0, from);
  size_t pos = from;
  for (const auto& sp : spans) {
    if (sp.begin < pos || sp.end <= sp.begin) continue;  // overlaps an earlier finding
    out.append(s, pos, sp.begin - pos);
    out.append(kMask);
    out.append(sp.tail);
    found.push_back({sp.kind, sp.begin - from});
    pos = sp.end;
  }
  if (found.empty()) return found;
  out.append(s, pos, std::string::npos);
  s = std::move(out);
  return found;
}

}  // namespace

bool line_continues(std::string_view s) {
  enum { kNone, kSingle, kDouble, kAnsi } q = kNone;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    switch (q) {
      case kNone:
        if (c == '\\') {
          if (i + 1 == s.size()) return true;
          ++i;
        } else if (c == '\'') {
          q = kSingle;
        } else if (c == '"') {
          q = kDouble;
        } else if (c == '$' && i + 1 < s.size() && s[i + 1] == '\'') {
          q = kAnsi;
          ++i;
        }
        break;
      case kSingle:
        if (c == '\'') q = kNone;
        break;
      case kDouble:
      case kAnsi:
        if (c == '\\')
          ++i;
        else if (c == (q == kDouble ? '"' : '\''))
          q = kNone;
        break;
    }
  }
  return q != kNone;
}

Result<Redactor> Redactor::make(const std::vector<std::string>& user_patterns) {
  Redactor r;
  for (const auto& p : user_patterns) {
    re2::RE2::Options o;
    o.set_log_errors(false);
    auto re = std::make_shared<const re2::RE2>(p, o);
    if (!re->ok()) return make_error(fmt::format("redact pattern '{}': {}", p, re->error()));
    r.user_.push_back(std::move(re));
  }
  return r;
}

std::vector<Redaction> Redactor::line(std::string& text, std::string_view before) const {
  std::vector<Span> spans;
  if (before.empty()) {
    scan_line(text, spans);
    custom(user_, text, spans);
    return apply(text, std::move(spans));
  }
  // A continuation line: scanned after its command's earlier lines (which say what the
  // command is and whether a quote is open); only what falls on this line is redacted.
  std::string all;
  all.reserve(before.size() + 1 + text.size());
  all.append(before).append(1, '\n').append(text);
  size_t from = before.size() + 1;
  scan_line(all, spans);
  std::vector<Span> mine;
  for (auto& sp : spans) {
    if (sp.end <= from) continue;
    if (sp.begin < from) sp.begin = from, sp.tail.clear();
    mine.push_back(std::move(sp));
  }
  std::vector<Span> user;
  custom(user_, text, user);
  for (auto& sp : user) mine.push_back({sp.begin + from, sp.end + from, sp.kind, {}});
  auto found = apply(all, std::move(mine), from);
  if (!found.empty()) text = all.substr(from);
  return found;
}

std::vector<Redactor::ArgRedaction> Redactor::argv(std::vector<std::string>& args) const {
  std::vector<ArgRedaction> out;
  std::vector<std::vector<Span>> spans;
  scan_argv(args, spans);
  for (size_t i = 0; i < args.size(); ++i) {
    custom(user_, args[i], spans[i]);
    for (auto& r : apply(args[i], std::move(spans[i]))) out.push_back({r.kind, i, r.offset});
  }
  return out;
}

}  // namespace shaudit
