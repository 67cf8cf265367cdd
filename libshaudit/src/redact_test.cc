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
  EXPECT_EQ(bad.message(), "redact pattern '(unclosed': missing ): (unclosed");
  // RE2 syntax: no back-references (std::regex took them).
  bad = Redactor::make({"(a)\\1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "redact pattern '(a)\\1': invalid escape sequence: \\1");
}

TEST(Redact, UserPatternsRunInLinearTime) {
  // (a+)+$ against 30000 a's and a '!': exponential for a backtracking engine (std::regex
  // never finished), linear for RE2.
  auto r = Redactor::make({"(a+)+$"});
  ASSERT_TRUE(r.ok()) << r.message();
  std::string text(30000, 'a');
  text += '!';
  std::string want = text;
  EXPECT_TRUE(r->line(text).empty());
  EXPECT_EQ(text, want);
  std::vector<std::string> a = {"echo", want};
  EXPECT_TRUE(r->argv(a).empty());
}

TEST(Redact, UserPatternMatchesEveryOccurrenceOnce) {
  auto r = Redactor::make({"x*", "id=([0-9]+)?"});
  ASSERT_TRUE(r.ok()) << r.message();
  std::string found;
  // Empty matches redact nothing; an unmatched group redacts the whole match.
  EXPECT_EQ(run(*r, "axxb id=7 id=", &found), "a***b id=*** ***");
  EXPECT_EQ(found, "custom@1,custom@8,custom@10");
}

TEST(Redact, NewKindsSayWhere) {
  Redactor r;
  std::string found;
  EXPECT_EQ(run(r, "curl -u bob:pw https://x", &found), "curl -u bob:*** https://x");
  EXPECT_EQ(found, "basic_auth@12");
  EXPECT_EQ(run(r, "curl -H 'X-Api-Key: k1' https://x", &found),
            "curl -H 'X-Api-Key: ***' https://x");
  EXPECT_EQ(found, "secret_header@20");
  EXPECT_EQ(run(r, "sshpass -p s1 ssh h", &found), "sshpass -p *** ssh h");
  EXPECT_EQ(found, "secret_option@11");
  EXPECT_EQ(run(r, "PGPASSWORD=p1 psql; curl -u a:b x", &found),
            "PGPASSWORD=*** psql; curl -u a:*** x");
  EXPECT_EQ(found, "secret_variable@11,basic_auth@30");
  // The offset is where the secret's raw bytes began: its opening quote when the mask took it.
  EXPECT_EQ(run(r, "mysql -p'a b' db", &found), "mysql -p*** db");
  EXPECT_EQ(found, "mysql_password@8");
  EXPECT_EQ(run(r, "docker login -p=x", &found), "docker login -p***");
  EXPECT_EQ(found, "secret_option@15");
}

TEST(Redact, QuotesStayBalanced) {
  Redactor r;
  // A value across quoted parts: the mask closes the part the option opened.
  EXPECT_EQ(run(r, "mysql '-pab'\"cd\" x"), "mysql '-p***' x");
  // and reopens a part the value ends inside of (helm --set: values end at a comma).
  EXPECT_EQ(run(r, "helm install x c --set a.password='p'\"q,b=c\""),
            "helm install x c --set a.password=***\",b=c\"");
  EXPECT_EQ(run(r, "openssl rsa -passin 'pass:a b' -in k"), "openssl rsa -passin 'pass:***' -in k");
  EXPECT_EQ(run(r, "export A_TOKEN=\"x\"'y'"), "export A_TOKEN=***");
  // An escaped blank is part of the word.
  EXPECT_EQ(run(r, "mysql -pa\\ b db"), "mysql -p*** db");
}

TEST(Redact, AuthorizationKeepsTheQuoting) {
  Redactor r;
  std::string found;
  EXPECT_EQ(run(r, "curl -H \"Authorization: Bearer a\\\"b\" x", &found),
            "curl -H \"Authorization: Bearer ***\" x");
  EXPECT_EQ(found, "authorization@31");
  // Not a word of its own (typed into a program reading a request): the raw scan.
  EXPECT_EQ(run(r, "GET / HTTP/1.1 Authorization: Basic dXNlcg==", &found),
            "GET / HTTP/1.1 Authorization: Basic ***");
  EXPECT_EQ(found, "authorization@36");
  // An escaped quote is never taken into the mask without its backslash.
  EXPECT_EQ(run(r, "echo x\\\"Authorization: Bearer t1\\\" y"),
            "echo x\\\"Authorization: Bearer ***\\\" y");
}

TEST(Redact, AnEmptyValueIsTheValue) {
  Redactor r;
  // sshpass -p '' takes the empty word as the password: the program after it is no secret.
  EXPECT_EQ(run(r, "sshpass -p '' ssh host"), "sshpass -p '' ssh host");
  EXPECT_EQ(run(r, "htpasswd -b f '' pw1"), "htpasswd -b f '' ***");
}

TEST(Redact, ContinuationLinesUseTheirCommand) {
  Redactor r;
  std::string text = "-pS3cret db";
  EXPECT_TRUE(r.line(text).empty());  // alone, -p is no secret
  auto f = r.line(text, "mysql -u root \\");
  EXPECT_EQ(text, "-p*** db");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "mysql_password");
  EXPECT_EQ(f[0].offset, 2u);
  // Three lines: the context is all the command's earlier lines.
  text = "  -pX9 app";
  f = r.line(text, "sudo -n \\\nmysqldump \\");
  EXPECT_EQ(text, "  -p*** app");
  // A quote left open on an earlier line: the value goes on.
  text = "b c' db";
  f = r.line(text, "mysql -p'a");
  EXPECT_EQ(text, "*** db");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].offset, 0u);
  // A value whose option ended the previous line.
  text = "Tk1 get pods";
  f = r.line(text, "kubectl --token \\");
  EXPECT_EQ(text, "*** get pods");
  // Nothing of the earlier lines is changed or reported, even when they hold a secret.
  text = "-h db";
  EXPECT_TRUE(r.line(text, "mysql -pS1 \\").empty());
  EXPECT_EQ(text, "-h db");
  // After a line that ended without a backslash, a line is a command of its own (a loop's
  // body; a here-document's line too, which errs on the side of redacting).
  text = "mkdir -p dir";
  EXPECT_TRUE(r.line(text, "for i in 1 2\ndo mysql -u root").empty());
  EXPECT_EQ(text, "mkdir -p dir");
  text = "PGPASSWORD=x1";
  EXPECT_EQ(r.line(text, "cat <<EOF").size(), 1u);
  EXPECT_EQ(text, "PGPASSWORD=***");
  // User patterns see only the line itself.
  auto u = Redactor::make({"pin=(\\d+)"});
  ASSERT_TRUE(u.ok());
  text = "pin=42";
  f = u->line(text, "echo pin=1 \\");
  EXPECT_EQ(text, "pin=***");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].offset, 4u);
}

TEST(Redact, LineContinues) {
  using shaudit::line_continues;
  EXPECT_TRUE(line_continues("mysql -u root \\"));
  EXPECT_TRUE(line_continues("mysql -p'open"));
  EXPECT_TRUE(line_continues("echo \"a\nb"));
  EXPECT_TRUE(line_continues("echo $'it\\'s"));
  EXPECT_TRUE(line_continues("a \\\nb \\"));
  EXPECT_FALSE(line_continues("echo done"));
  EXPECT_FALSE(line_continues("echo \\\\"));        // an escaped backslash
  EXPECT_FALSE(line_continues("echo 'a\\'"));       // no escapes in '...'
  EXPECT_FALSE(line_continues("echo \"a\\\"b\""));  // an escaped quote in "..."
  EXPECT_FALSE(line_continues("mysql -p'a\nb' db"));
  EXPECT_FALSE(line_continues(""));
}

TEST(Redact, ArgvFollowsWrappersAndRunners) {
  Redactor r;
  std::vector<std::string> a = {"sudo", "-u", "mysql", "mysql", "-pS1"};
  auto f = r.argv(a);
  EXPECT_EQ(a[4], "-p***");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].element, 4u);
  EXPECT_EQ(f[0].offset, 2u);
  std::vector<std::string> k = {"kubectl", "exec", "-it", "db-0", "--", "mysql", "-pS2"};
  f = r.argv(k);
  EXPECT_EQ(k[6], "-p***");
  std::vector<std::string> c = {"curl", "-H", "Private-Token: t1", "--user", "u:p2", "https://x"};
  f = r.argv(c);
  EXPECT_EQ(c, (std::vector<std::string>{"curl", "-H", "Private-Token: ***", "--user", "u:***",
                                         "https://x"}));
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].kind, "secret_header");
  EXPECT_EQ(f[0].element, 2u);
  EXPECT_EQ(f[0].offset, 15u);
  EXPECT_EQ(f[1].kind, "basic_auth");
  EXPECT_EQ(f[1].element, 4u);
  EXPECT_EQ(f[1].offset, 2u);
  std::vector<std::string> d = {"docker", "run", "-p", "3306:3306", "mysql:8"};
  EXPECT_TRUE(r.argv(d).empty());
}

}  // namespace
