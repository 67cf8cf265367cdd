// SPDX-License-Identifier: Apache-2.0
// `shaudit sessions` and `shaudit show --session ID --tree`.
#pragma once

#include <string>
#include <vector>

namespace shaudit::cli {

int cmd_sessions(const std::vector<std::string>& args);
// Prints one session as a tree: each typed command, its continuation lines, the execs it
// caused beneath it and its exit status. Returns the process exit code.
int print_session_tree(const std::vector<std::string>& logs, const std::string& session);

}  // namespace shaudit::cli
