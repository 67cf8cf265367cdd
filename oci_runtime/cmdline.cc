// SPDX-License-Identifier: Apache-2.0
#include "cmdline.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace shaudit::oci {
namespace {

// runc's global options that take a value (main.go); the boolean ones (--debug,
// --systemd-cgroup, --help, --version) need no list: an unknown option is taken as boolean.
constexpr std::array<std::string_view, 5> kGlobalValueOptions = {"root", "log", "log-format",
                                                                 "criu", "rootless"};
// create's and run's options that take a value (create.go, run.go).
constexpr std::array<std::string_view, 6> kCreateValueOptions = {
    "bundle", "b", "console-socket", "pidfd-socket", "pid-file", "preserve-fds"};

// exec's options that take a value (exec.go).
constexpr std::array<std::string_view, 18> kExecValueOptions = {
    "console-socket",
    "pidfd-socket",
    "cwd",
    "env",
    "e",
    "user",
    "u",
    "additional-gids",
    "g",
    "process",
    "p",
    "pid-file",
    "process-label",
    "apparmor",
    "cap",
    "c",
    "preserve-fds",
    "cgroup",
};

template <size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// One argument as Go's flag package sees it.
struct Option {
  bool is_option = false;  // -name or --name[=value]
  std::string_view name;
  bool has_value = false;  // the value came after '='
  std::string_view value;
};

Option classify(std::string_view a) {
  Option o;
  if (a.size() < 2 || a[0] != '-' || a == "--") return o;  // "-", operands and "--"
  std::string_view body = a.substr(a[1] == '-' ? 2 : 1);
  if (body.empty() || body[0] == '-' || body[0] == '=') return o;  // Go: bad flag syntax
  o.is_option = true;
  if (auto eq = body.find('='); eq != std::string_view::npos) {
    o.name = body.substr(0, eq);
    o.has_value = true;
    o.value = body.substr(eq + 1);
  } else {
    o.name = body;
  }
  return o;
}

bool is_help(std::string_view name) {
  return name == "help" || name == "h" || name == "version" || name == "v";
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine c;
  size_t i = 0;
  // Global options, up to the subcommand.
  for (; i < args.size(); ++i) {
    if (args[i] == "--") {
      ++i;
      break;
    }
    Option o = classify(args[i]);
    if (!o.is_option) break;
    if (is_help(o.name)) c.help = true;
    std::string_view value = o.value;
    if (!o.has_value && contains(kGlobalValueOptions, o.name)) {
      if (++i >= args.size()) break;  // runc: "flag needs an argument"
      value = args[i];
    }
    if (o.name == "root") c.root = std::string(value);
  }
  if (i >= args.size()) return c;
  c.subcommand = args[i++];
  // The subcommand's options and operands; options may follow the first operand, but exec's.
  const bool exec = c.subcommand == "exec";
  bool operands_only = false;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    Option o = operands_only ? Option{} : classify(a);
    if (!operands_only && a == "--") {
      operands_only = true;
      continue;
    }
    if (!o.is_option) {
      if (c.id.empty()) c.id = a;
      if (exec) break;  // the rest is the command to run
      continue;
    }
    if (o.name == "help" || o.name == "h") c.help = true;
    if (!(exec ? contains(kExecValueOptions, o.name) : contains(kCreateValueOptions, o.name)))
      continue;  // boolean or another's option
    std::string_view value = o.value;
    if (!o.has_value) {
      if (i + 1 >= args.size()) break;  // runc: "flag needs an argument"
      value = args[++i];
    }
    if (exec) {
      if (o.name == "process" || o.name == "p") c.process = std::string(value);
      continue;
    }
    // runc changes into a non-empty bundle; an empty one is the current directory.
    if (o.name == "bundle" || o.name == "b") c.bundle = value.empty() ? "." : std::string(value);
  }
  return c;
}

bool creates_container(const CommandLine& c) {
  return !c.help && (c.subcommand == "create" || c.subcommand == "run");
}

bool execs_process_file(const CommandLine& c) {
  return !c.help && c.subcommand == "exec" && !c.process.empty();
}

}  // namespace shaudit::oci
