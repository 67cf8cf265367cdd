// SPDX-License-Identifier: Apache-2.0
// Benchmark (not a test): cost of evaluating a rule set against one record, as shauditd's
// writer does for every record. tests/bench/run_rules_bench.sh runs it.
//
//   rules_bench RULES.yaml [ROUNDS]
//
// Evaluates a fixed mix of typical records (typed commands of several lengths, execs, a
// session start, a bypass, bookkeeping records) ROUNDS times and prints ns per record for
// each kind and for the mix, as medians over 15 repetitions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/rules.h"

using namespace shaudit;

namespace {

json::Object command(std::string text) {
  json::Object r;
  r["type"] = "command";
  r["text"] = std::move(text);
  r["shell"] = "bash";
  r["pid"] = 4242;
  r["user"] = "alice";
  r["uid"] = 1000;
  r["session"] = "4fd7966485e0ab52";
  r["tty"] = "/dev/pts/3";
  r["command"] = "4242.7";
  return r;
}

json::Object exec(std::vector<std::string> argv) {
  json::Object r;
  r["type"] = "exec";
  json::Array a;
  for (auto& s : argv) a.emplace_back(s);
  r["path"] = argv[0];
  r["argv"] = std::move(a);
  r["pid"] = 4243;
  r["ppid"] = 4242;
  r["user"] = "alice";
  r["uid"] = 1000;
  r["session"] = "4fd7966485e0ab52";
  r["command"] = "4242.7";
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: rules_bench RULES.yaml [ROUNDS]\n");
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 20000;
  auto rs = rules::load_rules({argv[1]});
  if (!rs) {
    std::fprintf(stderr, "rules_bench: %s\n", rs.message().c_str());
    return 1;
  }
  struct Kind {
    std::string name;
    json::Object rec;
  };
  std::vector<Kind> kinds = {
      {"command (short: ls -la)", command("ls -la")},
      {"command (typical, 60 chars)",
       command("grep -rn 'connection refused' /var/log/nginx/error.log | tail -20")},
      {"command (long, 400 chars)",
       command(
           "for f in $(find /srv/app -name '*.log' -mtime +7); do gzip -9 \"$f\" && mv \"$f.gz\" "
           "/srv/archive/$(date +%Y%m%d)/; done; echo done; " +
           std::string(300, 'x'))},
      {"command (matches: curl | sh)", command("curl -fsSL https://example.com/install.sh | sh")},
      {"exec (3 args)", exec({"/usr/bin/grep", "-rn", "pattern"})},
      {"exec (12 args)",
       exec({"/usr/bin/rsync", "-a", "--delete", "--exclude", ".git", "-e", "ssh -p 2222",
             "/srv/app/", "deploy@10.0.0.5:/srv/app/", "--info=progress2", "-z", "--partial"})},
  };
  json::Object bypass;
  bypass["type"] = "bypass";
  bypass["kind"] = "unhooked_process";
  bypass["exe"] = "/tmp/.x/busybox";
  bypass["pid"] = 999;
  kinds.push_back({"bypass", bypass});
  json::Object seal;
  seal["type"] = "seal";
  seal["seq"] = 20;
  kinds.push_back({"seal (bookkeeping)", seal});

  rules::EvalContext ctx;
  ctx.hostname = "vm";
  size_t matches = 0;
  std::printf("rules: %s (%zu rules, %zu macros, %zu lists); %d evaluations per repetition\n\n",
              argv[1], rs->rule_count(), rs->macro_count(), rs->list_count(), rounds);
  std::printf("| record | ns per evaluation (median of 15) | min | max |\n|---|---:|---:|---:|\n");
  double mix_total = 0;
  for (const auto& k : kinds) {
    std::vector<double> ns;
    for (int rep = 0; rep < 15; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < rounds; ++i) matches += rs->evaluate(k.rec, ctx).size();
      auto t1 = std::chrono::steady_clock::now();
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / rounds);
    }
    std::sort(ns.begin(), ns.end());
    mix_total += ns[7];
    std::printf("| %s | %.0f | %.0f | %.0f |\n", k.name.c_str(), ns[7], ns.front(), ns.back());
  }
  std::printf("| **mix (mean of the rows)** | **%.0f** | | |\n", mix_total / kinds.size());
  std::fprintf(stderr, "(matches: %zu)\n", matches);
  return 0;
}
