// SPDX-License-Identifier: Apache-2.0
// shaudit: the operator's command-line tool.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sessions.h"
#include "shaudit/config.h"
#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/record.h"
#include "shaudit/rules.h"
#include "shaudit/shaudit.h"
#include "shaudit/verify.h"
#include "text.h"

using namespace shaudit;
using namespace shaudit::cli;

namespace {

constexpr const char* kUsage = R"(usage: shaudit COMMAND [ARGS]

commands:
  keygen --out KEY               write an Ed25519 signing key to KEY (0600) and KEY.pub
  verify LOG... --pubkey KEY.pub [--pubkey OLD.pub] [--allow-open] [--remote-seals FILE]...
                                 check the chain and seals of a log (a rotated set oldest
                                 first); exit 0 when intact. --remote-seals: seal records
                                 shipped off the host (file output lines, webhook bodies)
                                 must be in the log byte for byte
  show LOG... [--session ID] [--user NAME] [--type T[,T]] [--since TIME] [--until TIME]
              [--json] [--follow]
                                 print records as a table (or JSON lines with --json)
  show LOG... --session ID --tree
                                 a session as a tree: typed commands, the execs they caused
  sessions LOG... [--user NAME]  one line per session: who, from where, when, commands,
                                 exit statuses
  stats [--control PATH] [--json]
                                 counters from a running shauditd (root only)
  emit [--socket PATH] line TEXT [--shell NAME]
  emit [--socket PATH] exec ARG...
                                 report a typed line or an exec through the C API
  rules check FILE...            load rule files in order; exit 0 when they are valid
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "shaudit: %s\n%s", msg.c_str(), kUsage);
  return 2;
}

int cmd_keygen(const std::vector<std::string>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size())
      out = args[++i];
    else
      return usage_error(fmt::format("keygen: unknown argument '{}'", args[i]));
  }
  if (out.empty()) return usage_error("keygen needs --out KEY");
  auto key = crypto::SigningKey::generate();
  if (!key) {
    std::fprintf(stderr, "shaudit: %s\n", key.message().c_str());
    return 1;
  }
  auto r = key->save(out);
  if (!r) {
    std::fprintf(stderr, "shaudit: keygen: %s\n", r.message().c_str());
    return 1;
  }
  std::printf("wrote %s (private, mode 0600) and %s.pub; key id %s\n", out.c_str(), out.c_str(),
              key->key_id().c_str());
  return 0;
}

int cmd_verify(const std::vector<std::string>& args) {
  std::vector<std::string> logs;
  VerifyOptions opts;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--pubkey" && i + 1 < args.size()) {
      auto k = crypto::VerifyKey::load(args[++i]);
      if (!k) {
        std::fprintf(stderr, "shaudit: verify: %s\n", k.message().c_str());
        return 2;
      }
      opts.keys.push_back(std::move(*k));
    } else if (args[i] == "--allow-open") {
      opts.allow_open = true;
    } else if (args[i] == "--remote-seals") {
      if (i + 1 >= args.size()) return usage_error("verify: --remote-seals needs a FILE");
      opts.remote_seals.push_back(args[++i]);
    } else if (args[i].rfind("--", 0) == 0) {
      return usage_error(fmt::format("verify: unknown option '{}'", args[i]));
    } else {
      logs.push_back(args[i]);
    }
  }
  if (logs.empty()) return usage_error("verify needs a LOG");
  if (opts.keys.empty()) return usage_error("verify needs --pubkey KEY.pub");
  auto rep = verify_logs(logs, opts);
  // (Notes and errors may quote what a log holds: made visible.)
  for (const auto& n : rep.notes) print_line("note: " + n);
  if (!rep.ok) {
    if (rep.bad_seq)
      print_line(fmt::format("FAILED at seq {}: {}", *rep.bad_seq, rep.error));
    else
      print_line("FAILED: " + rep.error);
    // (stderr: stdout keeps its one result line)
    if (rep.bad_epoch)
      std::fprintf(stderr, "key epoch of the failure: %llu\n",
                   static_cast<unsigned long long>(*rep.bad_epoch));
    return 1;
  }
  if (opts.allow_open && rep.unsealed > 0)
    std::printf(
        "OK: %llu records, %llu seals; chain intact; %llu records after the last seal are "
        "not yet sealed\n",
        static_cast<unsigned long long>(rep.records), static_cast<unsigned long long>(rep.seals),
        static_cast<unsigned long long>(rep.unsealed));
  else
    std::printf("OK: %llu records, %llu seals; chain intact%s\n",
                static_cast<unsigned long long>(rep.records),
                static_cast<unsigned long long>(rep.seals),
                opts.allow_open && rep.unsealed == 0 ? "; all records sealed"
                                                     : "; ends with a closing seal");
  if (rep.last_epoch)
    std::fprintf(stderr,
                 "key chain: epochs %llu to %llu, each key certified by the one before it\n",
                 static_cast<unsigned long long>(rep.first_epoch.value_or(0)),
                 static_cast<unsigned long long>(*rep.last_epoch));
  if (!opts.remote_seals.empty()) {
    if (rep.remote_latest_seq)
      print_line(fmt::format("{} remote seal(s) match the log (latest: seq {} at {})",
                             rep.remote_matched, *rep.remote_latest_seq, rep.remote_latest_time));
    else
      std::printf("%llu remote seal(s) match the log\n",
                  static_cast<unsigned long long>(rep.remote_matched));
  }
  return 0;
}

std::string detail(const json::Object& o, const std::string& type) {
  auto str = [&](const char* k) {
    auto s = json::get_string(o, k);
    return s ? *s : std::string();
  };
  auto num = [&](const char* k) {
    auto v = json::get_int(o, k);
    return v ? std::to_string(*v) : std::string("?");
  };
  if (type == "command") return str("text") + (o.count("truncated") ? " [cut]" : "");
  if (type == "exec" || type == "bypass") {
    std::string out;
    for (const auto& a : record::get_argv(o)) out += (out.empty() ? "" : " ") + shell_quote(a);
    if (type == "bypass" && out.empty()) out = str("text");  // unreported_input: the line
    if (type == "bypass") out = fmt::format("[{}] {}", str("kind"), out);
    if (type == "exec" && str("source") == "bpf") out = "(kernel) " + out;
    return out;
  }
  if (type == "start")
    return fmt::format("shauditd {} started on {} (previous run: {}, key {})", str("version"),
                       str("host"), str("previous_run"), str("key_id"));
  if (type == "seal")
    return fmt::format("seal ({}) over {} records from seq {}, key {}", str("reason"),
                       num("records"), num("first_seq"), str("key_id"));
  if (type == "rotate")
    return fmt::format("continues the chain from seq {} of the previous file", num("prev_seq"));
  if (type == "loss")
    return fmt::format("{} report(s) lost from pid {} ({})", num("missing"), num("pid"),
                       str("cause"));
  if (type == "key_change")
    return fmt::format("signing key {} -> {}", str("old_key_id"), str("new_key_id"));
  if (type == "log_error")
    return fmt::format("log write failed from {}: {}", str("since"), str("error"));
  if (type == "alert") return fmt::format("[{}] {}", str("rule"), str("output"));
  return {};
}

struct ShowFilter {
  std::optional<std::string> session, user;
  std::set<std::string> types;
  std::optional<int64_t> since, until;
  bool json = false;

  bool match(const json::Object& o) const {
    auto get = [&](const char* k) {
      auto s = json::get_string(o, k);
      return s ? *s : std::string();
    };
    if (session && get("session") != *session) return false;
    if (user && get("user") != *user) return false;
    if (!types.empty() && !types.count(get("type"))) return false;
    if (since || until) {
      auto t = record::parse_time(get("time"));
      if (!t) return false;
      if (since && *t < *since) return false;
      if (until && *t > *until) return false;
    }
    return true;
  }
};

void show_line(const std::string& line, const ShowFilter& f, const std::string& path,
               size_t lineno) {
  auto v = json::parse(line);
  if (!v || !v->is_object()) {
    std::fprintf(stderr, "shaudit: %s line %zu: not a record: %s\n", path.c_str(), lineno,
                 v ? "not an object" : v.message().c_str());
    return;
  }
  const auto& o = v->as_object();
  if (!f.match(o)) return;
  if (f.json) {
    std::printf("%s\n", line.c_str());
    return;
  }
  auto get = [&](const char* k) {
    auto s = json::get_string(o, k);
    return s ? *s : std::string("-");
  };
  std::string type = get("type");
  std::string user = get("user");
  if (auto pid = json::get_int(o, "pid"); pid && user != "-") user += fmt::format("[{}]", *pid);
  // Bypass records stand out: the kernel saw something the interposer did not report.
  if (type == "bypass") type = "!! BYPASS";
  // Every field may come from a reporter or a user: the whole line is made visible.
  print_line(fmt::format("{:<30}  {:<12}  {:<16}  {:<13}  {}", get("time"), get("session"), user,
                         type, detail(o, get("type"))));
}

int cmd_show(const std::vector<std::string>& args) {
  ShowFilter f;
  bool follow = false, tree = false;
  std::vector<std::string> logs;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    bool has = i + 1 < args.size();
    if (a == "--session" && has) {
      f.session = args[++i];
    } else if (a == "--user" && has) {
      f.user = args[++i];
    } else if (a == "--type" && has) {
      std::string t = args[++i];
      size_t s = 0;
      while (s <= t.size()) {
        size_t c = t.find(',', s);
        if (c == std::string::npos) c = t.size();
        if (c > s) f.types.insert(t.substr(s, c - s));
        s = c + 1;
      }
    } else if ((a == "--since" || a == "--until") && has) {
      auto t = record::parse_time(args[++i]);
      if (!t) return usage_error(fmt::format("show {}: {}", a, t.message()));
      (a == "--since" ? f.since : f.until) = *t;
    } else if (a == "--json") {
      f.json = true;
    } else if (a == "--follow" || a == "-f") {
      follow = true;
    } else if (a == "--tree") {
      tree = true;
    } else if (a.rfind("--", 0) == 0) {
      return usage_error(fmt::format("show: unknown option '{}'", a));
    } else {
      logs.push_back(a);
    }
  }
  if (logs.empty()) return usage_error("show needs a LOG");
  if (tree) {
    if (!f.session) return usage_error("show --tree needs --session ID");
    return print_session_tree(logs, *f.session);
  }
  if (follow && logs.size() != 1) return usage_error("show --follow takes one LOG");
  if (!f.json)
    std::printf("%-30s  %-12s  %-16s  %-13s  %s\n", "TIME", "SESSION", "USER[PID]", "TYPE",
                "TEXT / ARGV");
  for (const auto& path : logs) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "shaudit: %s: %s\n", path.c_str(), std::strerror(errno));
      return 1;
    }
    std::string pending;
    size_t lineno = 0;
    ino_t ino = 0;
    struct stat st;
    if (::fstat(fd, &st) == 0) ino = st.st_ino;
    char buf[1 << 16];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        std::fprintf(stderr, "shaudit: %s: %s\n", path.c_str(), std::strerror(errno));
        ::close(fd);
        return 1;
      }
      if (n == 0) {
        if (!follow) break;
        std::fflush(stdout);
        // Rotation: the path now names a new file; finish the old one, then switch.
        struct stat now;
        if (::stat(path.c_str(), &now) == 0 && now.st_ino != ino) {
          int nfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (nfd >= 0) {
            ::close(fd);
            fd = nfd;
            ino = now.st_ino;
            continue;
          }
        }
        ::poll(nullptr, 0, 200);
        continue;
      }
      pending.append(buf, static_cast<size_t>(n));
      size_t start = 0, nl;
      while ((nl = pending.find('\n', start)) != std::string::npos) {
        show_line(pending.substr(start, nl - start), f, path, ++lineno);
        start = nl + 1;
      }
      pending.erase(0, start);
    }
    if (!pending.empty())
      std::fprintf(stderr, "shaudit: %s: the last line is incomplete (%zu bytes)\n", path.c_str(),
                   pending.size());
    ::close(fd);
  }
  return 0;
}

int cmd_stats(const std::vector<std::string>& args) {
  std::string path = Config{}.control_socket;
  bool raw = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--control" && i + 1 < args.size()) {
      path = args[++i];
    } else if (args[i] == "--config" && i + 1 < args.size()) {
      auto c = load_config(args[++i]);
      if (!c) {
        std::fprintf(stderr, "shaudit: %s\n", c.message().c_str());
        return 1;
      }
      path = c->control_socket;
    } else if (args[i] == "--json") {
      raw = true;
    } else {
      return usage_error(fmt::format("stats: unknown argument '{}'", args[i]));
    }
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "shaudit: stats: cannot reach shauditd at %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  timeval tv{5, 0};  // a daemon that accepts but never answers must not hang the tool
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const char req[] = "stats\n";
  // The daemon answers a refused (non-root) peer without reading its request and closes, so
  // the send may fail with EPIPE while the refusal already waits to be read: read it anyway.
  int send_errno = 0;
  if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) < 0) send_errno = errno;
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  int recv_errno = n < 0 ? errno : 0;
  ::close(fd);
  if (reply.empty() && recv_errno == EAGAIN) {
    std::fprintf(stderr, "shaudit: stats: shauditd at %s did not answer within 5 s\n",
                 path.c_str());
    return 1;
  }
  if (reply.empty() && send_errno != 0) {
    std::fprintf(stderr, "shaudit: stats: %s\n", std::strerror(send_errno));
    return 1;
  }
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  auto v = json::parse(reply);
  if (!v || !v->is_object()) {
    std::fprintf(stderr, "shaudit: stats: unexpected reply: %s\n", reply.c_str());
    return 1;
  }
  if (auto e = json::get_string(v->as_object(), "error")) {
    std::fprintf(stderr, "shaudit: stats: %s\n", e->c_str());
    return 1;
  }
  if (raw) {
    std::printf("%s\n", reply.c_str());
    return 0;
  }
  const json::Array* outputs = nullptr;  // printed last, one line each
  for (const auto& [k, val] : v->as_object()) {
    if (k == "outputs" && val.is_array()) {
      outputs = &val.as_array();
      continue;
    }
    std::printf("%-22s %s\n", (k + ":").c_str(),
                val.is_string() ? val.as_string().c_str() : json::encode(val).c_str());
  }
  // One line per output: what it delivered, holds, gave up on.
  if (outputs) {
    for (const auto& o : *outputs) {
      if (!o.is_object()) continue;
      const auto& m = o.as_object();
      auto num = [&](const char* key) {
        const int64_t* x = json::get_int(m, key);
        return static_cast<long long>(x ? *x : 0);
      };
      const std::string* name = json::get_string(m, "name");
      const std::string* type = json::get_string(m, "type");
      const std::string* err = json::get_string(m, "last_error");
      std::printf(
          "output %s (%s): delivered %lld, pending %lld, failed %lld, retries %lld, overflowed "
          "%lld%s%s\n",
          name ? name->c_str() : "?", type ? type->c_str() : "?", num("delivered"), num("pending"),
          num("failed"), num("retries"), num("overflowed"),
          err && !err->empty() ? "; last error: " : "", err ? err->c_str() : "");
    }
  }
  return 0;
}

int cmd_emit(const std::vector<std::string>& args) {
  const char* socket = nullptr;
  size_t i = 0;
  if (i + 1 < args.size() && args[i] == "--socket") {
    socket = args[i + 1].c_str();
    i += 2;
  }
  if (i >= args.size()) return usage_error("emit needs 'line TEXT' or 'exec ARG...'");
  std::string what = args[i++];
  shaudit_client* c = shaudit_client_open(socket);
  if (!c) {
    std::fprintf(stderr, "shaudit: emit: cannot reach shauditd: %s\n", std::strerror(errno));
    return 1;
  }
  shaudit_client_set_timeout_ms(c, 2000);
  int rc;
  if (what == "line") {
    if (i >= args.size()) return usage_error("emit line needs TEXT");
    std::string text = args[i++];
    std::string shell = "shaudit-emit";
    if (i + 1 < args.size() && args[i] == "--shell") shell = args[i + 1];
    rc = shaudit_client_report_line(c, shell.c_str(), text.data(), text.size());
  } else if (what == "exec") {
    std::vector<const char*> argv;
    for (; i < args.size(); ++i) argv.push_back(args[i].c_str());
    if (argv.empty()) return usage_error("emit exec needs ARG...");
    argv.push_back(nullptr);
    rc = shaudit_client_report_exec(c, argv[0], argv.data());
  } else {
    shaudit_client_close(c);
    return usage_error(fmt::format("emit: unknown report '{}'", what));
  }
  shaudit_client_close(c);
  if (rc != 0) {
    std::fprintf(stderr, "shaudit: emit: %s\n", std::strerror(-rc));
    return 1;
  }
  return 0;
}

int cmd_rules(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "check") return usage_error("rules needs 'check FILE...'");
  std::vector<std::string> files(args.begin() + 1, args.end());
  if (files.empty()) return usage_error("rules check needs FILE...");
  auto rs = rules::load_rules(files);
  if (!rs) {
    std::fprintf(stderr, "%s\n", rs.message().c_str());
    return 1;
  }
  std::printf("OK: %zu rules, %zu macros, %zu lists\n", rs->rule_count(), rs->macro_count(),
              rs->list_count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("missing command");
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "keygen") return cmd_keygen(args);
  if (cmd == "verify") return cmd_verify(args);
  if (cmd == "show") return cmd_show(args);
  if (cmd == "stats") return cmd_stats(args);
  if (cmd == "sessions") return cmd_sessions(args);
  if (cmd == "emit") return cmd_emit(args);
  if (cmd == "rules") return cmd_rules(args);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("shaudit %s\n", shaudit_version());
    return 0;
  }
  return usage_error(fmt::format("unknown command '{}'", cmd));
}
