// SPDX-License-Identifier: Apache-2.0
#include "containers.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace shaudit::daemon {

namespace {

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string read_file_head(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string s(limit, '\0');
  in.read(s.data(), static_cast<std::streamsize>(limit));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

std::string runtime_of_state_root(std::string_view root) {
  if (root.find("containerd") != std::string_view::npos) return "containerd";
  if (root.find("crio") != std::string_view::npos) return "cri-o";
  return "runc";
}

std::string runtime_of_container(std::string_view root, std::string_view bundle) {
  for (std::string_view dir :
       {"/io.containerd.runtime.v2.task/", "/io.containerd.runtime.v1.linux/"})
    if (bundle.find(dir) != std::string_view::npos) return "containerd";
  return runtime_of_state_root(root);
}

namespace {

const std::string* annotation(const json::Object& ann, std::string_view key) {
  return json::get_string(ann, key);
}

}  // namespace

std::string container_id_from_cgroup(std::string_view cgroup) {
  while (!cgroup.empty()) {
    size_t nl = cgroup.find('\n');
    std::string_view line = cgroup.substr(0, nl);
    cgroup = nl == std::string_view::npos ? std::string_view{} : cgroup.substr(nl + 1);
    // "hierarchy:controllers:path"
    size_t c2 = line.find(':', line.find(':') + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view path = line.substr(c2 + 1);
    size_t slash = path.rfind('/');
    std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
    if (last.size() > 6 && last.substr(last.size() - 6) == ".scope") last.remove_suffix(6);
    for (std::string_view prefix : {"docker-", "cri-containerd-", "crio-", "libpod-"}) {
      if (last.substr(0, prefix.size()) == prefix) {
        last.remove_prefix(prefix.size());
        break;
      }
    }
    if (is_hex64(last)) return std::string(last);
  }
  return {};
}

json::Object container_object(std::string_view id, std::string_view runtime,
                              std::string_view config_json) {
  json::Object c;
  c["id"] = std::string(id);
  c["runtime"] = std::string(runtime);
  auto cfg = json::parse(config_json);
  if (!cfg || !cfg->is_object()) return c;
  auto it = cfg->as_object().find(std::string_view("annotations"));
  if (it == cfg->as_object().end() || !it->second.is_object()) return c;
  const json::Object& ann = it->second.as_object();
  struct Pick {
    const char* field;
    const char* keys[2];
  };
  static constexpr Pick kPicks[] = {
      {"pod", {"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}},
      {"namespace", {"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}},
      {"name", {"io.kubernetes.cri.container-name", "io.kubernetes.container.name"}},
      {"image", {"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName"}},
      {"interposer", {"shaudit.io/interposer", nullptr}},
  };
  for (const auto& p : kPicks) {
    for (const char* k : p.keys) {
      if (!k) continue;
      if (auto v = annotation(ann, k); v && !v->empty()) {
        c[p.field] = json::to_valid_utf8(*v);
        break;
      }
    }
  }
  return c;
}

std::string bundle_of_state(const json::Object& state) {
  auto cfg = state.find(std::string_view("config"));
  if (cfg == state.end() || !cfg->second.is_object()) return {};
  auto labels = cfg->second.as_object().find(std::string_view("labels"));
  if (labels == cfg->second.as_object().end() || !labels->second.is_array()) return {};
  for (const auto& l : labels->second.as_array()) {
    if (!l.is_string()) continue;
    const std::string& s = l.as_string();
    if (s.rfind("bundle=", 0) == 0 && s.size() > 8 && s[7] == '/') return s.substr(7);
  }
  return {};
}

std::vector<RunningContainer> running_containers(const std::vector<std::string>& state_roots) {
  namespace fs = std::filesystem;
  std::vector<RunningContainer> out;
  for (const auto& root : state_roots) {
    std::vector<fs::path> states;
    std::error_code ec;
    for (fs::directory_iterator d(root, ec), end; !ec && d != end; d.increment(ec)) {
      states.push_back(d->path() / "state.json");
      std::error_code ec2;
      for (fs::directory_iterator n(d->path(), ec2); !ec2 && n != end; n.increment(ec2))
        states.push_back(n->path() / "state.json");
    }
    for (const auto& st : states) {
      std::string text = read_file_head(st.string());
      if (text.empty()) continue;
      auto v = json::parse(text);
      if (!v || !v->is_object()) continue;
      const json::Object& o = v->as_object();
      const std::string* id = json::get_string(o, "id");
      const int64_t* pid = json::get_int(o, "init_process_pid");
      const int64_t* start = json::get_int(o, "init_process_start");
      std::string bundle = bundle_of_state(o);
      if (!id || !pid || *pid <= 0 || bundle.empty()) continue;
      RunningContainer f;
      f.id = *id;
      f.runtime = runtime_of_container(root, bundle);
      f.pid = static_cast<pid_t>(*pid);
      f.start = start && *start > 0 ? static_cast<uint64_t>(*start) : 0;
      // Named as the records name it; shaudit-oci-runtime's annotation (`interposer`) says it
      // prepared the container (the host's socket directory is bound in already).
      std::string config = read_file_head(bundle + "/config.json", 4 << 20);
      f.container = container_object(f.id, f.runtime, config);
      f.prepared = f.container.count("interposer") != 0;
      if (auto cfg = json::parse(config); cfg && cfg->is_object()) {
        auto a = cfg->as_object().find(std::string_view("annotations"));
        if (a != cfg->as_object().end() && a->second.is_object()) {
          const json::Object& ann = a->second.as_object();
          if (auto v = json::get_string(ann, "shaudit.io/audit")) f.audit_annotation = *v;
          if (auto v = json::get_string(ann, "shaudit.io/reason")) f.reason_annotation = *v;
        }
      }
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::optional<json::Object> ContainerLookup::of_pid_namespace(uint64_t pidns_ino) {
  if (!pidns_ino) return std::nullopt;
  if (auto it = by_pidns_.find(pidns_ino); it != by_pidns_.end()) return it->second;
  for (RunningContainer& c : running_containers(state_roots_)) {
    struct stat st;
    if (::stat(("/proc/" + std::to_string(c.pid) + "/ns/pid").c_str(), &st) != 0 ||
        static_cast<uint64_t>(st.st_ino) != pidns_ino)
      continue;
    if (by_pidns_.size() >= 4096) by_pidns_.clear();
    by_pidns_.emplace(pidns_ino, c.container);
    return std::move(c.container);
  }
  return std::nullopt;
}

NsPid ns_pid_of_status(std::string_view status) {
  NsPid r;
  size_t at = status.find("\nNSpid:");
  if (at == std::string_view::npos) return r;
  std::string_view line = status.substr(at + 7);
  line = line.substr(0, line.find('\n'));
  unsigned fields = 0;
  pid_t last = 0;
  while (!line.empty()) {
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos) break;
    line.remove_prefix(b);
    size_t e = line.find_first_of(" \t");
    std::string_view num = line.substr(0, e);
    line = e == std::string_view::npos ? std::string_view{} : line.substr(e);
    pid_t v = 0;
    for (char ch : num) {
      if (ch < '0' || ch > '9' || v > 100000000) return NsPid{};
      v = v * 10 + (ch - '0');
    }
    if (num.empty()) return NsPid{};
    last = v;
    ++fields;
  }
  if (fields == 0) return r;
  r.pid = last;
  r.level = fields - 1;
  return r;
}

bool ContainerLookup::started_by_runtime(pid_t pid, pid_t ppid) {
  if (pid <= 0 || ppid <= 0) return false;
  std::string own = container_id_from_cgroup(
      read_file_head("/proc/" + std::to_string(pid) + "/cgroup", 64 << 10));
  if (own.empty()) return false;
  NsPid ns = ns_pid_of_status(read_file_head("/proc/" + std::to_string(pid) + "/status", 64 << 10));
  if (ns.pid == 0 || ns.pid == 1) return false;  // unknown, or the container's init
  std::string parent = container_id_from_cgroup(
      read_file_head("/proc/" + std::to_string(ppid) + "/cgroup", 64 << 10));
  return parent != own;
}

std::optional<json::Object> ContainerLookup::of_pid(pid_t pid) {
  std::string cg = read_file_head("/proc/" + std::to_string(pid) + "/cgroup", 64 << 10);
  if (cg.empty()) return std::nullopt;
  return of_cgroup(cg);
}

std::optional<json::Object> ContainerLookup::of_cgroup(std::string_view cgroup) {
  std::string id = container_id_from_cgroup(cgroup);
  if (id.empty()) return std::nullopt;
  if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  // The runtime's state: ROOT/ID/state.json (runc, CRI-O) or ROOT/NAMESPACE/ID/state.json
  // (containerd's runc shim).
  namespace fs = std::filesystem;
  std::string runtime = "unknown", config;
  for (const auto& root : state_roots_) {
    std::vector<fs::path> candidates{fs::path(root) / id / "state.json"};
    std::error_code ec;
    for (fs::directory_iterator d(root, ec), end; !ec && d != end; d.increment(ec))
      candidates.push_back(d->path() / id / "state.json");
    for (const auto& st : candidates) {
      std::string text = read_file_head(st.string());
      if (text.empty()) continue;
      auto state = json::parse(text);
      if (!state || !state->is_object()) continue;
      std::string bundle = bundle_of_state(state->as_object());
      if (bundle.empty()) continue;
      runtime = runtime_of_container(root, bundle);
      config = read_file_head(bundle + "/config.json", 4 << 20);
      break;
    }
    if (!config.empty()) break;
  }
  json::Object c = container_object(id, runtime, config);
  if (!config.empty()) {  // a runtime that has not written its state yet is asked again
    if (cache_.size() >= 4096) cache_.clear();
    cache_.emplace(id, c);
  }
  return c;
}

}  // namespace shaudit::daemon
