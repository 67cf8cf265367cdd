// SPDX-License-Identifier: Apache-2.0
// shauditd: receives reports, signs and writes the record log.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "pipeline.h"
#include "sd_notify.h"
#include "shaudit/config.h"
#include "shaudit/crypto.h"

using namespace shaudit;
using namespace shaudit::daemon;

namespace {

constexpr const char* kUsage =
    "usage: shauditd [--config FILE] [--check-config] [--print-default-config] [--version]\n"
    "Without --config, shauditd runs on its compiled-in default configuration.\n";

void notify(const char* state) {
  if (int rc = sd_notify_state(state); rc < 0)
    std::fprintf(stderr, "shauditd: cannot notify the service manager (%s): %s\n", state,
                 std::strerror(-rc));
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check-config") {
      check_only = true;
    } else if (a == "--print-default-config") {
      std::fputs(kDefaultConfigYaml, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("shauditd %s\n", SHAUDIT_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "shauditd: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  auto cfg_r = config_path.empty() ? parse_config(kDefaultConfigYaml, "<built-in default>")
                                   : load_config(config_path);
  if (!cfg_r) {
    std::fprintf(stderr, "shauditd: %s\n", cfg_r.message().c_str());
    return 1;
  }
  Config cfg = std::move(*cfg_r);
  if (check_only) {
    if (auto r = SealingKey::check(cfg); !r) {
      std::fprintf(stderr, "shauditd: %s\n", r.message().c_str());
      return 1;
    }
    std::printf("shauditd: configuration OK\n");
    return 0;
  }
  auto key = SealingKey::load(cfg);
  if (!key) {
    std::fprintf(stderr, "shauditd: %s\n", key.message().c_str());
    return 1;
  }

  // Signals are taken synchronously by the main thread; every other thread blocks them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Pipeline pipeline(std::move(cfg), *key);
  if (int rc = pipeline.start(); rc != 0) return rc;
  // Ready: the sockets accept and (with eBPF) the probes are attached. Under systemd
  // (Type=notify) this is what lets ssh.service start after us.
  notify("READY=1");
  int sig = 0;
  while (true) {
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      notify("RELOADING=1");
      pipeline.reload(config_path);
      notify("READY=1");
      continue;
    }
    break;
  }
  notify("STOPPING=1");
  return pipeline.stop(sig);
}
