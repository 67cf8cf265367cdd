// SPDX-License-Identifier: Apache-2.0
// Reaching into containers whose image carries the interposer (the base layer in
// installer/container/) but that were not started through shaudit-oci-runtime, so no host
// socket was bound into them: shauditd looks at the runtimes' state directories once a second
// and, for each new running container, binds a listening socket at /run/shaudit/shaudit.sock
// inside it (through /proc/PID/root). A pathname socket works across network namespaces, and
// the kernel gives shauditd the sender's host pid and credentials on it, so a report through
// it is no different from one through the host socket.
//
// The container's files are hostile ground: every path inside is resolved with openat2's
// RESOLVE_IN_ROOT (a symlink there cannot lead onto the host), the socket is bound through
// /proc/self/fd/N of the directory opened that way, and a process whose start time differs
// from the runtime's record (its pid reused) or whose root is shauditd's own is left alone.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "containers.h"
#include "shaudit/json.h"
#include "shaudit/result.h"

namespace shaudit::daemon {

class ContainerSockets {
 public:
  // A container found running, as the runtime's state says.
  explicit ContainerSockets(std::vector<std::string> state_roots, std::string socket_name)
      : state_roots_(std::move(state_roots)), socket_name_(std::move(socket_name)) {}
  ~ContainerSockets();
  ContainerSockets(const ContainerSockets&) = delete;
  ContainerSockets& operator=(const ContainerSockets&) = delete;

  // One look at the state directories. For each new container, on_listen(fd) receives the
  // listening socket bound inside it, or on_unreachable(container, reason) says why none can
  // be (once per container). Containers that are gone have their sockets closed
  // (on_closed(fd) first).
  // on_new(container) sees each running container once (prepared by the wrapper or not).
  void scan(const std::function<void(int, const RunningContainer&)>& on_listen,
            const std::function<void(const json::Object&, const std::string&)>& on_unreachable,
            const std::function<void(int)>& on_closed,
            const std::function<void(const RunningContainer&)>& on_new = {});
  bool is_listener(int fd) const { return by_fd_.count(fd) != 0; }
  // The interposer copy inside pid's root (/usr/lib/shaudit/libshaudit_preload.so, opened
  // within that root) when its bytes are `genuine` (the configured interposer file's whole
  // content): its (st_dev, st_ino), for the eBPF collector. nullopt otherwise.
  static std::optional<std::pair<uint64_t, uint64_t>> interposer_copy(pid_t pid,
                                                                      const std::string& genuine);
  size_t size() const { return by_fd_.size(); }

  // Binds `name` inside the root filesystem of pid (the helper of scan; tests call it); -1
  // when a live socket already answers there.
  static Result<int> bind_inside(pid_t pid, uint64_t start, const std::string& name);

 private:
  std::vector<std::string> state_roots_;
  std::set<std::string> seen_;  // running containers on_new was called for
  std::string socket_name_;
  std::map<std::string, int> by_id_;  // container id -> listening fd (-1: unreachable, noted)
  std::map<int, std::string> by_fd_;
};

}  // namespace shaudit::daemon
