// SPDX-License-Identifier: Apache-2.0
// runc's command line, as far as the wrapper needs it: the subcommand and, for `create` and
// `run`, the bundle and the container id. runc reads it with urfave/cli v1 on Go's flag
// package: an option is -name or --name, its value the next argument or after '=' (`--root
// DIR`, `--root=DIR`); a boolean option takes a value only after '=' (`--debug=false`); `--`
// ends the options; and urfave/cli moves a subcommand's options that follow the container id
// before it (`create ID --bundle DIR` works), but for `exec` (SkipArgReorder: what follows the
// id is the command to run).
#pragma once

#include <string>
#include <vector>

namespace shaudit::oci {

struct CommandLine {
  std::string subcommand;    // the first operand after the global options; empty when none
  std::string id;            // the subcommand's first operand (create, run, delete: the container)
  std::string bundle = ".";  // create, run: --bundle/-b, else the current directory
  std::string root;          // the global --root; empty when not given
  std::string process;       // exec: --process/-p (the process's JSON file); empty when none
  bool help = false;         // -h/--help or -v/--version anywhere before the operands
};

// args: argv[1..].
CommandLine parse_command_line(const std::vector<std::string>& args);

// Whether the wrapper edits the bundle before this subcommand (create and run).
bool creates_container(const CommandLine& c);

// Whether the wrapper edits the process file before this subcommand (exec --process FILE).
bool execs_process_file(const CommandLine& c);

}  // namespace shaudit::oci
