// SPDX-License-Identifier: Apache-2.0
#include "sessions.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/record.h"
#include "text.h"

namespace shaudit::cli {
namespace {

// Reads every record of the given logs (oldest first); lines that are not records are
// reported on stderr and skipped. Returns false when a file cannot be read.
bool load(const std::vector<std::string>& logs, std::vector<json::Object>& out) {
  for (const auto& path : logs) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "shaudit: %s: cannot open\n", path.c_str());
      return false;
    }
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      auto v = json::parse(line);
      if (!v || !v->is_object()) {
        std::fprintf(stderr, "shaudit: %s line %zu: not a record\n", path.c_str(), n);
        continue;
      }
      out.push_back(std::move(v->as_object()));
    }
  }
  return true;
}

std::string str(const json::Object& o, const char* k, const char* dflt = "") {
  auto s = json::get_string(o, k);
  return s ? *s : dflt;
}

int64_t num(const json::Object& o, const char* k, int64_t dflt = 0) {
  auto v = json::get_int(o, k);
  return v ? *v : dflt;
}

std::string duration(int64_t ns) {
  int64_t s = ns / 1000000000;
  if (ns < 1000000000) return fmt::format("{}ms", ns / 1000000);
  if (s < 60) return fmt::format("{}.{:01}s", s, (ns / 100000000) % 10);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

struct SessionRow {
  json::Object start;
  std::optional<json::Object> end;
  int64_t commands = 0;
  std::map<int64_t, int64_t> statuses;  // exit status -> count
};

}  // namespace

int cmd_sessions(const std::vector<std::string>& args) {
  std::vector<std::string> logs;
  std::string user;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--user" && i + 1 < args.size())
      user = args[++i];
    else if (args[i].rfind("--", 0) == 0) {
      std::fprintf(stderr, "shaudit: sessions: unknown option '%s'\n", args[i].c_str());
      return 2;
    } else
      logs.push_back(args[i]);
  }
  if (logs.empty()) {
    std::fprintf(stderr, "shaudit: sessions needs a LOG\n");
    return 2;
  }
  std::vector<json::Object> recs;
  if (!load(logs, recs)) return 1;
  std::vector<std::string> order;
  std::map<std::string, SessionRow> rows;
  for (auto& r : recs) {
    std::string type = str(r, "type"), id = str(r, "session");
    if (id.empty()) continue;
    if (type == "session_start") {
      order.push_back(id);
      rows[id].start = r;
    } else if (!rows.count(id)) {
      continue;  // began before these logs
    } else if (type == "session_end") {
      rows[id].end = r;
    } else if (type == "command" && !json::get_int(r, "line_index")) {
      ++rows[id].commands;
    } else if (type == "command_status") {
      ++rows[id].statuses[num(r, "exit_status")];
    }
  }
  std::printf("%-16s  %-12s  %-10s  %-22s  %-30s  %-9s  %8s  %s\n", "SESSION", "USER", "SERVICE",
              "FROM", "START", "DURATION", "COMMANDS", "EXIT STATUSES");
  for (const auto& id : order) {
    const SessionRow& s = rows[id];
    if (!user.empty() && str(s.start, "user") != user) continue;
    std::string from = str(s.start, "remote_host");
    if (from.empty()) from = str(s.start, "tty", "-");
    std::string dur = s.end ? duration(num(*s.end, "duration_ns")) : std::string("open");
    std::string st;
    for (const auto& [code, n] : s.statuses)
      st += fmt::format("{}{}x{}", st.empty() ? "" : " ", code, n);
    if (st.empty()) st = "-";
    std::string service = str(s.start, "service");
    if (auto p = json::get_string(s.start, "parent_session"))
      service += " (in " + p->substr(0, 8) + ")";
    print_line(fmt::format("{:<16}  {:<12}  {:<10}  {:<22}  {:<30}  {:<9}  {:>8}  {}", id,
                           str(s.start, "user", "?"), service, from, str(s.start, "time"), dur,
                           s.commands, st));
  }
  return 0;
}

int print_session_tree(const std::vector<std::string>& logs, const std::string& session) {
  std::vector<json::Object> recs;
  if (!load(logs, recs)) return 1;
  const json::Object* start = nullptr;
  const json::Object* end = nullptr;
  std::vector<std::string> commands;  // in typed order
  std::map<std::string, std::vector<const json::Object*>> lines, execs;
  std::map<std::string, const json::Object*> status;
  std::vector<const json::Object*> loose;  // execs/bypasses linked to no command
  for (const auto& r : recs) {
    if (str(r, "session") != session) continue;
    std::string type = str(r, "type"), cmd = str(r, "command");
    if (type == "session_start") start = &r;
    if (type == "session_end") end = &r;
    if (type == "command") {
      if (!lines.count(cmd)) commands.push_back(cmd);
      lines[cmd].push_back(&r);
    } else if (type == "exec" && str(r, "source") == "bpf") {
      continue;  // the kernel's view behind a bypass: the bypass line says it
    } else if (type == "exec" || type == "bypass") {
      if (cmd.empty() || !lines.count(cmd))
        loose.push_back(&r);
      else
        execs[cmd].push_back(&r);
    } else if (type == "command_status") {
      status[cmd] = &r;
    } else if (type == "loss" || type == "noncmd_input" || type == "alert") {
      loose.push_back(&r);
    }
  }
  if (!start && commands.empty()) {
    std::fprintf(stderr, "shaudit: no records of session %s\n", session.c_str());
    return 1;
  }
  if (start)
    print_line(fmt::format("session {}  {} (uid {})  {}{}{}  {}", session, str(*start, "user", "?"),
                           num(*start, "uid", -1), str(*start, "service"),
                           str(*start, "remote_host").empty() ? "" : " from ",
                           str(*start, "remote_host"), str(*start, "time")));
  auto exec_line = [](const json::Object& e) {
    std::string argv;
    for (const auto& a : record::get_argv(e)) argv += (argv.empty() ? "" : " ") + shell_quote(a);
    if (argv.empty()) argv = str(e, "text");  // unreported_input: the line the kernel saw
    std::string mark =
        str(e, "type") == "bypass" ? fmt::format("!! BYPASS [{}] ", str(e, "kind")) : "";
    return fmt::format("{}[{}] {}", mark, num(e, "pid"), argv);
  };
  for (const auto& cmd : commands) {
    const auto& ls = lines[cmd];
    std::string st;
    if (auto it = status.find(cmd); it != status.end())
      st = fmt::format("  => exit {} in {}", num(*it->second, "exit_status"),
                       duration(num(*it->second, "duration_ns")));
    // A readline program's line (python3, gdb, ...) is shown after that program's name.
    std::string prompt = str(*ls[0], "kind") == "repl" ? str(*ls[0], "shell") + ">" : "$";
    print_line(fmt::format("├─ {} {}{}", prompt, str(*ls[0], "text"), ls.size() == 1 ? st : ""));
    for (size_t i = 1; i < ls.size(); ++i)
      print_line(fmt::format("│  > {}{}", str(*ls[i], "text"), i + 1 == ls.size() ? st : ""));
    for (const auto* e : execs[cmd]) print_line(fmt::format("│    └─ {}", exec_line(*e)));
  }
  for (const auto* r : loose) {
    std::string type = str(*r, "type");
    if (type == "exec" || type == "bypass")
      print_line(fmt::format("├─ (no typed command) {}", exec_line(*r)));
    else if (type == "loss")
      std::printf("├─ !! %lld report(s) lost from pid %lld\n",
                  static_cast<long long>(num(*r, "missing")),
                  static_cast<long long>(num(*r, "pid")));
    else if (type == "noncmd_input")
      print_line(
          fmt::format("├─ ({} input, {} bytes, not recorded)", str(*r, "kind"), num(*r, "length")));
  }
  if (end)
    print_line(fmt::format("└─ ended ({}) after {}: {} commands, {} failed", str(*end, "reason"),
                           duration(num(*end, "duration_ns")), num(*end, "commands"),
                           num(*end, "failed_commands")));
  else
    std::printf("└─ (still open)\n");
  return 0;
}

}  // namespace shaudit::cli
