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

// The runtime of a container found under a state root, with the bundle its state names:
// "containerd" when the bundle is one of containerd's shims' (STATE/io.containerd.runtime.v2.task/
// NAMESPACE/ID, or v1's io.containerd.runtime.v1.linux), wherever its runc state is kept
// (runc options' Root, `ctr run --runc-root`); else runtime_of_state_root(root).
std::string runtime_of_container(std::string_view root, std::string_view bundle);

// The bundle directory a runtime's state.json names: runc keeps it in config.labels as
// "bundle=PATH". "" when there is none.
std::string bundle_of_state(const json::Object& state);

// A running container as a runtime's state directory describes it (STATE_ROOT/[NS/]ID/
// state.json, written by the runtime as root).
struct RunningContainer {
  std::string id, runtime;
  pid_t pid = 0;           // its first process (init_process_pid), a host pid
  uint64_t start = 0;      // init_process_start (clock ticks since boot)
  json::Object container;  // as records name it (container_object)
  bool prepared = false;   // shaudit-oci-runtime bound the host socket in already
  // Its bundle's shaudit.io/audit and shaudit.io/reason annotations ("" when absent).
  std::string audit_annotation, reason_annotation;
};
std::vector<RunningContainer> running_containers(const std::vector<std::string>& state_roots);

// A process's pid inside its own pid namespace and that namespace's depth, from the NSpid
// line of a /proc/PID/status text ("NSpid:\t4711\t7" -> {7, 1}); {0, 0} when absent.
struct NsPid {
  pid_t pid = 0;
  unsigned level = 0;
};
NsPid ns_pid_of_status(std::string_view status);

class ContainerLookup {
 public:
  explicit ContainerLookup(std::vector<std::string> state_roots)
      : state_roots_(std::move(state_roots)) {}
  // The container of pid, or nullopt when its cgroup names none (a host process).
  std::optional<json::Object> of_pid(pid_t pid);
  // The same from a cgroup text (tests; of_pid reads /proc/PID/cgroup).
  std::optional<json::Object> of_cgroup(std::string_view cgroup);
  // Whether pid was started in its container by the container runtime from outside (what
  // `runc exec` does for `kubectl exec` and `docker exec`): it runs in a container, its parent
  // (ppid) does not run in that container, and it is not the container's first process (pid 1
  // of its pid namespace). All three are kernel facts read from /proc.
  static bool started_by_runtime(pid_t pid, pid_t ppid);
  // The container whose first process runs in the pid namespace with inode pidns_ino (the
  // kernel's exec event names it: the process itself may be gone by the time it is read).
  std::optional<json::Object> of_pid_namespace(uint64_t pidns_ino);

 private:
  std::vector<std::string> state_roots_;
  std::unordered_map<std::string, json::Object> cache_;  // id -> object (bounded)
  std::unordered_map<uint64_t, json::Object> by_pidns_;  // pid namespace inode -> object
};

}  // namespace shaudit::daemon
