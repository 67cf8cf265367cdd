// SPDX-License-Identifier: Apache-2.0
// Applies the loaded rules to every record the writer takes: each match becomes a signed
// `alert` record right after the record it matched (ref_seq). Command lines are also matched
// as the joined logical command (continuation lines and here-documents put together), so
// splitting `curl ... \` and `| sh` across lines does not evade a rule; a continuation line
// runs only the rules that read the command's text. cmd.words and cmd.line see the variables
// the session's earlier commands assigned. What is kept per session is bounded (below), so
// one session's flood never evicts another's state, and is forgotten at its session_end.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/result.h"
#include "shaudit/rules.h"
#include "shaudit/shell_words.h"

namespace shaudit::daemon {

class Alerter {
 public:
  // Bounds on what is kept per session between records.
  static constexpr size_t kMaxJoined = 128 * 1024;  // a command's joined text: its last bytes
  static constexpr size_t kMaxOpenCommands = 64;    // commands per session (oldest goes)
  static constexpr size_t kMaxVars = 256;           // shell variables per session
  static constexpr size_t kMaxSessions = 65536;     // sessions never ended (one goes)

  explicit Alerter(std::string hostname) : hostname_(std::move(hostname)) {}

  // Loads the files (in order); on failure the running set stays and the error is returned.
  Result<size_t> load(const std::vector<std::string>& paths);
  // The alert records (without ref_seq) for one record about to be written.
  std::vector<json::Object> evaluate(const json::Object& record);

 private:
  struct Session {
    bool has_container = false;
    json::Object container;  // from its session_start, for container.* and k8s.* fields
    // command id -> its lines so far, joined by newlines; oldest first
    std::vector<std::pair<std::string, std::string>> commands;
    shell::Vars vars;  // plain values assigned by its earlier commands (cmd.words, cmd.line)
  };

  std::string hostname_;
  std::mutex mu_;         // guards rules_ (replaced by SIGHUP in the main thread)
  rules::RuleSet rules_;  // a shared handle: copying it is cheap
  // session id ("" for records of none) -> what is kept for it, forgotten at its end
  std::unordered_map<std::string, Session> sessions_;
};

}  // namespace shaudit::daemon
