// SPDX-License-Identifier: Apache-2.0
// Which container a process runs in, from what the kernel and the container runtime say:
// the container id from the process's cgroup path (/proc/PID/cgroup), then the runtime's own
// state (STATE_ROOT/[NAMESPACE/]ID/state.json, written by runc as root) for the OCI bundle,
// and the bundle's config.json annotations that CRI runtimes write (pod, namespace,
// container name, image). Nothing here comes from a reporter, and the API server is never
// asked.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shaudit/json.h"

namespace shaudit::daemon {

// The 64-hex container id in a /proc/PID/cgroup text ("...:/kubepods/besteffort/podU/ID",
// ".../docker-ID.scope", ".../cri-containerd-ID.scope", ".../crio-ID.scope"), or "".
std::string container_id_from_cgroup(std::string_view cgroup);

// The `container` object of a record from a bundle's config.json: id, runtime, and from
// the annotations pod, namespace, name, image (CRI: io.kubernetes.cri.*; CRI-O:
// io.kubernetes.pod.name/namespace, io.kubernetes.container.name), plus `interposer` when
// shaudit-oci-runtime prepared it (shaudit.io/interposer). A config.json that does not parse
// gives just id and runtime.
json::Object container_object(std::string_view id, std::string_view runtime,
                              std::string_view config_json);

// Up to limit bytes of a file ("" when it cannot be read).
std::string read_file_head(const std::string& path, size_t limit = 1 << 20);

// The runtime that keeps its state under root: "containerd", "cri-o" or "runc".
std::string runtime_of_state_root(std::string_view root);

// The bundle directory a runtime's state.json names: runc keeps it in config.labels as
// "bundle=PATH". "" when there is none.
std::string bundle_of_state(const json::Object& state);

class ContainerLookup {
 public:
  explicit ContainerLookup(std::vector<std::string> state_roots)
      : state_roots_(std::move(state_roots)) {}
  // The container of pid, or nullopt when its cgroup names none (a host process).
  std::optional<json::Object> of_pid(pid_t pid);
  // The same from a cgroup text (tests; of_pid reads /proc/PID/cgroup).
  std::optional<json::Object> of_cgroup(std::string_view cgroup);

 private:
  std::vector<std::string> state_roots_;
  std::unordered_map<std::string, json::Object> cache_;  // id -> object (bounded)
};

}  // namespace shaudit::daemon
