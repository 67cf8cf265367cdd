// SPDX-License-Identifier: Apache-2.0
// The redaction table: every secret form in testdata/redact_secrets.tsv is redacted to its
// exact expected text, and every line of testdata/redact_ordinary.txt comes out byte for byte
// unchanged; both through Redactor::line and, split into words as the shell would pass them,
// through Redactor::argv.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "shaudit/redact.h"

namespace {

using shaudit::Redactor;

std::vector<std::string> lines_of(const std::string& name) {
  std::ifstream in(std::string(SHAUDIT_REDACT_TESTDATA) + "/" + name);
  EXPECT_TRUE(in) << name;
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty() && l[0] != '#') out.push_back(l);
  return out;
}

std::vector<std::string> split_tabs(const std::string& l) {
  std::vector<std::string> f;
  size_t b = 0;
  for (size_t t; (t = l.find('\t', b)) != std::string::npos; b = t + 1)
    f.push_back(l.substr(b, t - b));
  f.push_back(l.substr(b));
  return f;
}

// The argv a shell passes for a line that is one simple command without expansions; nullopt
// for anything else (operators, redirections, $ expansions, globs).
std::optional<std::vector<std::string>> argv_of(const std::string& s) {
  std::vector<std::string> words;
  std::string w;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(w), w.clear(), in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      size_t q = s.find('\'', i + 1);
      if (q == std::string::npos) return std::nullopt;
      w.append(s, i + 1, q - i - 1);
      i = q;
    } else if (c == '$' && i + 1 < s.size() && s[i + 1] == '\'') {
      for (i += 2; i < s.size() && s[i] != '\''; ++i) {
        if (s[i] != '\\' || i + 1 >= s.size()) {
          w += s[i];
        } else if (s[i + 1] == 'x' && i + 3 < s.size()) {
          w += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
          i += 3;
        } else {
          w += s[++i];
        }
      }
      if (i >= s.size()) return std::nullopt;
    } else if (c == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '$' || s[i] == '`') return std::nullopt;
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        w += s[i];
      }
      if (i >= s.size()) return std::nullopt;
    } else if (c == '\\' && i + 1 < s.size()) {
      w += s[++i];
    } else if (std::string_view(";|&<>()`$*?[{}~!#").find(c) != std::string_view::npos) {
      return std::nullopt;
    } else {
      w += c;
    }
  }
  if (in_word) words.push_back(w);
  if (words.empty()) return std::nullopt;
  return words;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " | ") + x;
  return s;
}

TEST(RedactTable, EverySecretFormIsRedacted) {
  Redactor r;
  auto rows = lines_of("redact_secrets.tsv");
  EXPECT_GE(rows.size(), 60u);
  size_t argv_checked = 0;
  for (const auto& row : rows) {
    auto f = split_tabs(row);
    ASSERT_EQ(f.size(), 3u) << row;
    const std::string &in = f[0], &want = f[1], &secret = f[2];
    std::string text = in;
    auto found = r.line(text);
    EXPECT_EQ(text, want) << in;
    EXPECT_FALSE(found.empty()) << in;
    EXPECT_EQ(text.find(secret), std::string::npos) << in;
    if (auto argv = argv_of(in)) {
      ++argv_checked;
      auto before = *argv;
      auto af = r.argv(*argv);
      EXPECT_FALSE(af.empty()) << in << " as argv " << joined(before);
      for (const auto& a : *argv)
        EXPECT_EQ(a.find(secret), std::string::npos) << in << " as argv: " << joined(*argv);
    }
  }
  EXPECT_GE(argv_checked, 50u);
}

TEST(RedactTable, OrdinaryLinesAreLeftAlone) {
  Redactor r;
  auto rows = lines_of("redact_ordinary.txt");
  EXPECT_GE(rows.size(), 300u);
  size_t argv_checked = 0;
  for (const auto& in : rows) {
    std::string text = in;
    auto found = r.line(text);
    EXPECT_EQ(text, in);
    EXPECT_TRUE(found.empty()) << in << ": " << found[0].kind << "@" << found[0].offset;
    if (auto argv = argv_of(in)) {
      ++argv_checked;
      auto before = *argv;
      auto af = r.argv(*argv);
      EXPECT_EQ(*argv, before) << in;
      EXPECT_TRUE(af.empty()) << in << " as argv: " << af[0].kind << " in element "
                              << af[0].element;
    }
  }
  EXPECT_GE(argv_checked, 200u);
}

}  // namespace
