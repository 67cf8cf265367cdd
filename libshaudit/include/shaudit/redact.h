// SPDX-License-Identifier: Apache-2.0
// Secret redaction, applied to typed lines and argv before a record is signed or leaves the
// daemon. Each finding replaces the secret with "***" and is reported by kind and position,
// never by content.
//
// Default patterns, each bound to what it belongs to:
//   mysql_password   -pSECRET / --password=SECRET of mysql, mariadb and their tools only
//                    (`mkdir -p dir` is not a secret)
//   password_option  --password=SECRET of any program
//   url_credentials  scheme://user:SECRET@host
//   secret_variable  NAME_TOKEN=, NAME_SECRET...=, NAME_PASSWORD= assignments (and export)
//   aws_access_key   AKIA... / ASIA... access key ids
//   authorization    Authorization: <scheme> SECRET (HTTP headers on command lines)
//   custom           a user pattern from the configuration (ECMAScript regex; the whole
//                    match, or its first capture group when it has one, is redacted)
#pragma once

#include <cstddef>
#include <regex>
#include <string>
#include <vector>

#include "shaudit/result.h"

namespace shaudit {

struct Redaction {
  std::string kind;
  size_t offset;  // byte offset of the secret in the original string
};

class Redactor {
 public:
  // user_patterns: extra regexes (config key redact_patterns).
  static Result<Redactor> make(const std::vector<std::string>& user_patterns);
  Redactor() = default;

  // Redacts a shell line in place; returns what was found.
  std::vector<Redaction> line(std::string& text) const;
  // Redacts an argv in place (argv[0] decides whether mysql rules apply); offsets are per
  // element, in `element`.
  struct ArgRedaction {
    std::string kind;
    size_t element;
    size_t offset;
  };
  std::vector<ArgRedaction> argv(std::vector<std::string>& args) const;

 private:
  std::vector<std::regex> user_;
};

}  // namespace shaudit
