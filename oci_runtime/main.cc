// SPDX-License-Identifier: Apache-2.0
// shaudit-oci-runtime: an OCI runtime with runc's command line that makes the interposer
// active in every container it creates, then runs the real runtime with the same arguments.
// It never stops a container from starting: whatever goes wrong, it says so in one line on
// stderr and runs the real runtime on the bundle as it was. Only create and run write to
// stderr (but when no runtime at all can be run, or exec's process file could not be edited).
// `exec --process FILE` (containerd's shim) gets the environment create gave the container.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bundle.h"
#include "cli/text.h"
#include "cmdline.h"
#include "settings.h"

using namespace shaudit;
using namespace shaudit::oci;

namespace {

// The runtimes tried when the settings name none that can be run.
constexpr const char* kFallbackRuntimes[] = {"/usr/sbin/runc", "/usr/bin/runc"};

void say(const std::string& line) {
  std::fprintf(stderr, "shaudit-oci-runtime: %s\n", cli::visible(line).c_str());
}

bool is_this_program(const std::string& path) {
  struct stat self, other;
  return ::stat("/proc/self/exe", &self) == 0 && ::stat(path.c_str(), &other) == 0 &&
         self.st_dev == other.st_dev && self.st_ino == other.st_ino;
}

// Runs the real runtime with our arguments: the configured one, else the first fallback that
// can be run (never this program itself, which would run itself forever). `speak`: say on
// stderr what went wrong on the way.
[[noreturn]] void run_runtime(const std::string& configured, char** argv, bool speak) {
  std::vector<std::string> candidates;
  if (!configured.empty()) candidates.push_back(configured);
  for (const char* f : kFallbackRuntimes)
    if (f != configured) candidates.emplace_back(f);
  std::string failures;
  for (const auto& c : candidates) {
    if (is_this_program(c)) {
      failures +=
          fmt::format("{}{} is shaudit-oci-runtime itself", failures.empty() ? "" : "; ", c);
      continue;
    }
    if (!failures.empty() && speak) say(fmt::format("{}; running {}", failures, c));
    argv[0] = const_cast<char*>(c.c_str());
    ::execv(c.c_str(), argv);
    failures +=
        fmt::format("{}cannot run {}: {}", failures.empty() ? "" : "; ", c, std::strerror(errno));
  }
  say(fmt::format("{}; no runtime to run", failures));
  std::exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  const CommandLine cl = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  const char* env = std::getenv("SHAUDIT_OCI_CONFIG");
  const std::string settings_path = env && *env ? env : kDefaultSettingsPath;
  const auto settings = load_settings(settings_path);
  const std::string runtime =
      settings ? settings->runtime : runtime_of_broken_settings(settings_path);

  if (creates_container(cl)) {
    const std::string id = cl.id.empty() ? "(no id)" : cl.id;
    if (!settings) {
      say(fmt::format("{}; container {} runs unaudited", settings.message(), id));
    } else if (auto r = prepare_bundle(*settings, cl.bundle, cl.id); !r) {
      say(fmt::format("{}; container {} runs unaudited (config.json unchanged)", r.message(), id));
    } else if (!r->note.empty()) {
      say(r->note);
    }
  } else if (execs_process_file(cl)) {
    // containerd's shim: the process comes from a file written from containerd's copy of the
    // spec, which lacks the environment create gave the container's process (whatever the
    // settings say now: what the container was given is in its bundle).
    if (auto r = prepare_exec(cl.root.empty() ? kRuncDefaultRoot : cl.root, cl.id, cl.process); !r)
      say(
          fmt::format("{}; the process exec starts in container {} gets no $SHAUDIT_SOCKET or "
                      "$LD_PRELOAD from the wrapper ({} unchanged)",
                      r.message(), cl.id, cl.process));
  } else if (settings && cl.subcommand == "delete" && valid_container_id(cl.id)) {
    // The container's own generated ld.so.preload, if it had one: it is mounted already
    // (runc create set the mounts up), and nothing reads it again.
    ::unlink(container_preload_file(*settings, cl.id).c_str());
  }
  // Every other command is passed on without a word (exec, but when its file could not be
  // edited): containerd reads the combined stdout and stderr of `runc state` and `runc ps` as
  // JSON.
  run_runtime(runtime, argv, creates_container(cl));
}
