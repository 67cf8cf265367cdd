// SPDX-License-Identifier: Apache-2.0
#include "shaudit/redact.h"

#include <gtest/gtest.h>

namespace {

using shaudit::Redactor;

struct Case {
  std::string in, out, kind;
};

std::string kinds(const std::vector<shaudit::Redaction>& r) {
  std::string s;
  for (const auto& x : r) s += (s.empty() ? "" : ",") + x.kind + "@" + std::to_string(x.offset);
  return s;
}

std::string run(const Redactor& r, std::string text, std::string* found = nullptr) {
  auto f = r.line(text);
  if (found) *found = kinds(f);
  return text;
}

TEST(Redact, DefaultPatternsRedactAndSayWhere) {
  Redactor r;
  std::string found;
  EXPECT_EQ(run(r, "mysql -u root -pS3cret db", &found), "mysql -u root -p*** db");
  EXPECT_EQ(found, "mysql_password@16");
  EXPECT_EQ(run(r, "/usr/bin/mariadb-dump -phunter2 x", &found), "/usr/bin/mariadb-dump -p*** x");
  EXPECT_EQ(found, "mysql_password@24");
  EXPECT_EQ(run(r, "psql --password=abc host", &found), "psql --password=*** host");
  EXPECT_EQ(found, "password_option@16");
  EXPECT_EQ(run(r, "git clone https://bob:pa55@git.example/r.git", &found),
            "git clone https://bob:***@git.example/r.git");
  EXPECT_EQ(found, "url_credentials@22");
  EXPECT_EQ(run(r, "export GITHUB_TOKEN=ghp_abc123", &found), "export GITHUB_TOKEN=***");
  EXPECT_EQ(found, "secret_variable@20");
  EXPECT_EQ(run(r, "DB_PASSWORD='a b c' ./run", &found), "DB_PASSWORD=*** ./run");
  EXPECT_EQ(found, "secret_variable@12");
  EXPECT_EQ(run(r, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG aws s3 ls", &found),
            "AWS_SECRET_ACCESS_KEY=*** aws s3 ls");
  EXPECT_EQ(found, "secret_variable@22");
  EXPECT_EQ(run(r, "aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE", &found),
            "aws configure set aws_access_key_id ***");
  EXPECT_EQ(found, "aws_access_key@36");
  EXPECT_EQ(run(r, "curl -H 'Authorization: Bearer eyJhbGciOi.x.y' https://api", &found),
            "curl -H 'Authorization: Bearer ***' https://api");
  EXPECT_EQ(found, "authorization@31");
  EXPECT_EQ(run(r, "sh -c 'mysql -pX1 db; true --password=Y2'", &found),
            "sh -c 'mysql -p*** db; true --password=***'");
  EXPECT_EQ(found, "mysql_password@15,password_option@38");
}

TEST(Redact, LookAlikesAreLeftAlone) {
  Redactor r;
  for (std::string s :
       {"mkdir -p dir", "ssh -p 2222 host", "grep -pattern file", "mysql -p", "echo --password",
        "git clone https://git.example/r.git", "echo user@host:path", "echo MY_TOKENS_DIR=/tmp",
        "echo TOKENIZER=x", "echo AKIA1234", "echo notAKIAIOSFODNN7EXAMPLE2",
        "grep Authorization file", "ps -p 1", "tar -cpf a.tar dir"}) {
    std::string found;
    EXPECT_EQ(run(r, s, &found), s) << s;
    EXPECT_EQ(found, "") << s;
  }
}

TEST(Redact, ArgvIsBoundToTheProgram) {
  Redactor r;
  std::vector<std::string> a = {"mysql", "-uroot", "-pS3cret"};
  auto f = r.argv(a);
  EXPECT_EQ(a, (std::vector<std::string>{"mysql", "-uroot", "-p***"}));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "mysql_password");
  EXPECT_EQ(f[0].element, 2u);
  EXPECT_EQ(f[0].offset, 2u);
  std::vector<std::string> p = {"psql", "--password=abc"};
  f = r.argv(p);
  EXPECT_EQ(p[1], "--password=***");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "password_option");
  EXPECT_EQ(f[0].offset, 11u);
  std::vector<std::string> m = {"mkdir", "-pdir"};
  EXPECT_TRUE(r.argv(m).empty());
  EXPECT_EQ(m[1], "-pdir");
  std::vector<std::string> sh = {"sh", "-c", "mysql -psecret && echo ok"};
  f = r.argv(sh);
  EXPECT_EQ(sh[2], "mysql -p*** && echo ok");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "mysql_password");
  EXPECT_EQ(f[0].element, 2u);
  EXPECT_EQ(f[0].offset, 8u);
}

TEST(Redact, UserPatterns) {
  auto r = Redactor::make({"pin=(\\d+)", "[a-z]+@corp\\.example"});
  ASSERT_TRUE(r.ok()) << r.message();
  std::string found;
  EXPECT_EQ(run(*r, "login pin=1234 mail bob@corp.example", &found), "login pin=*** mail ***");
  EXPECT_EQ(found, "custom@10,custom@20");
  std::vector<std::string> a = {"login", "pin=99", "--password=x"};
  auto f = r->argv(a);
  EXPECT_EQ(a, (std::vector<std::string>{"login", "pin=***", "--password=***"}));
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].kind, "custom");
  EXPECT_EQ(f[0].element, 1u);
  EXPECT_EQ(f[0].offset, 4u);
  EXPECT_EQ(f[1].kind, "password_option");
  auto bad = Redactor::make({"(unclosed"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("redact pattern '(unclosed'"), std::string::npos);
}

}  // namespace
