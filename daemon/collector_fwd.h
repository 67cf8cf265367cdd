// SPDX-License-Identifier: Apache-2.0
// The eBPF collector when this build has it (bpf/), else a stand-in that never starts.
#pragma once

#ifdef SHAUDIT_HAVE_BPF
#include "proc_collector.h"
#else
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace shaudit::bpf {
class Collector {
 public:
  int epoll_fd() const { return -1; }
  int consume() { return 0; }
  void track(pid_t, uint64_t) {}
  void untrack(pid_t, uint64_t) {}
  bool probe_if_bash(const std::string&) { return false; }
  uint64_t dropped() const { return 0; }
  bool interposer_initialised(pid_t) const { return false; }
  void allow_interposer(uint64_t, uint64_t) {}
  void refresh_protected() {}
  void heartbeat() {}
  const std::string& pin_dir() const {
    static const std::string none;
    return none;
  }
  void protect_file(const std::string&, uint32_t) {}
  std::string protected_path(uint64_t, uint64_t) const { return {}; }
};
}  // namespace shaudit::bpf
#endif
