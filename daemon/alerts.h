// SPDX-License-Identifier: Apache-2.0
// Applies the loaded rules to every record the writer takes: each match becomes a signed
// `alert` record right after the record it matched (ref_seq). Command lines are also matched
// as the joined logical command (continuation lines and here-documents put together), so
// splitting `curl ... \` and `| sh` across lines does not evade a rule.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/result.h"
#include "shaudit/rules.h"

namespace shaudit::daemon {

class Alerter {
 public:
  explicit Alerter(std::string hostname) : hostname_(std::move(hostname)) {}

  // Loads the files (in order); on failure the running set stays and the error is returned.
  Result<size_t> load(const std::vector<std::string>& paths);
  // The alert records (without ref_seq) for one record about to be written.
  std::vector<json::Object> evaluate(const json::Object& record);

 private:
  std::string hostname_;
  std::mutex mu_;         // guards rules_ (replaced by SIGHUP in the main thread)
  rules::RuleSet rules_;  // a shared handle: copying it is cheap
  std::unordered_map<std::string, std::string> joined_;  // command id -> lines so far
  // session id -> its container (from its session_start), for container.* and k8s.* fields
  std::unordered_map<std::string, json::Object> containers_;
};

}  // namespace shaudit::daemon
