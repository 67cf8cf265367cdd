// SPDX-License-Identifier: Apache-2.0
#include "bundle.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <vector>

#include "files.h"
#include "image.h"
#include "json_text.h"
#include "rootfs.h"
#include "shaudit/json.h"

namespace shaudit::oci {
namespace {

constexpr size_t kMaxConfig = 16 << 20;       // config.json (containerd's are a few KiB)
constexpr size_t kMaxPreloadList = 64 << 10;  // an image's own /etc/ld.so.preload
constexpr const char* kPreloadList = "/etc/ld.so.preload";

// Go's strconv.ParseBool, which Kubernetes tools use for annotations like this one.
std::optional<bool> parse_bool(std::string_view s) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"})
    if (s == t) return true;
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"})
    if (s == f) return false;
  return std::nullopt;
}

struct Mount {
  std::string destination;  // clean
  std::string source, type;
  std::vector<std::string> options;
  bool has_option(std::string_view o) const {
    return std::find(options.begin(), options.end(), o) != options.end();
  }
};

// A string field of an object: "" when absent or null.
Result<std::string> string_field(const JsonNode& object, std::string_view key) {
  auto m = struct_field(object, key);
  if (!m) return m.error();
  if (!*m || (*m)->value.is_null()) return std::string();
  if (!(*m)->value.is_string()) return make_error(fmt::format("\"{}\" is not a string", key));
  return (*m)->value.string;
}

// The value of an object's field when it is of the type wanted: nullptr when absent or null,
// an error when it is of another type.
Result<const JsonNode*> typed_field(const JsonNode& object, std::string_view key,
                                    JsonNode::Type type, std::string_view type_name) {
  auto m = struct_field(object, key);
  if (!m) return m.error();
  if (!*m || (*m)->value.is_null()) return static_cast<const JsonNode*>(nullptr);
  if ((*m)->value.type != type) return make_error(fmt::format("\"{}\" is not {}", key, type_name));
  return &(*m)->value;
}

Result<std::vector<std::string>> string_items(const JsonNode* array, std::string_view what) {
  std::vector<std::string> out;
  if (!array) return out;
  for (const auto& it : array->items) {
    if (!it.is_string()) return make_error(fmt::format("an item of {} is not a string", what));
    out.push_back(it.string);
  }
  return out;
}

Result<std::vector<Mount>> read_mounts(const JsonNode* mounts) {
  std::vector<Mount> out;
  if (!mounts) return out;
  for (const auto& m : mounts->items) {
    if (!m.is_object()) return make_error("an item of \"mounts\" is not an object");
    Mount mt;
    auto dest = string_field(m, "destination");
    auto source = string_field(m, "source");
    auto type = string_field(m, "type");
    auto options = typed_field(m, "options", JsonNode::Type::kArray, "an array");
    if (!dest || !source || !type || !options)
      return make_error(fmt::format("a mount: {}", !dest     ? dest.message()
                                                   : !source ? source.message()
                                                   : !type   ? type.message()
                                                             : options.message()));
    auto opts = string_items(*options, "a mount's \"options\"");
    if (!opts) return opts.error();
    mt.destination = clean_path(*dest);
    mt.source = *source;
    mt.type = *type;
    mt.options = std::move(*opts);
    out.push_back(std::move(mt));
  }
  return out;
}

// A mount we add.
struct OurMount {
  std::string destination, source;
  bool directory;
};

std::string mount_json(const OurMount& m) {
  return fmt::format(
      R"({{"destination":{},"type":"bind","source":{},"options":["rbind","ro","nosuid","nodev"]}})",
      json_string(m.destination), json_string(m.source));
}

// Whether runc can make the mount point of `m` in this container: the mount that will hold it
// (the deepest of config.json's mounts above it, else the image) has a directory at each
// level that exists, and at the destination nothing or what is mounted there (a file onto a
// file, a directory onto a directory). runc cannot create a mount point in a read-only mount
// and fails the container when the kinds differ.
Result<void> check_mount_point(const RootFs& root, const std::vector<Mount>& mounts,
                               const OurMount& m) {
  const Mount* holder = nullptr;
  for (const auto& mt : mounts)
    if (is_proper_ancestor(mt.destination, m.destination) &&
        (!holder || mt.destination.size() > holder->destination.size()))
      holder = &mt;
  if (holder) {
    if (holder->has_option("ro"))
      return make_error(fmt::format("{} would have to be made in the read-only mount at {}",
                                    m.destination, holder->destination));
    return {};  // runc makes it in that mount; the image's files there are hidden
  }
  for (size_t j = m.destination.find('/', 1);; j = m.destination.find('/', j + 1)) {
    std::string prefix = m.destination.substr(0, j);
    const bool last = j == std::string::npos;
    auto e = root.lookup(prefix);
    if (!e) return e.error();
    if (!*e) return {};  // runc creates the rest
    const mode_t mode = (*e)->st.st_mode;
    if (!last && !S_ISDIR(mode))
      return make_error(fmt::format("{} in the image is not a directory, so {} cannot be mounted",
                                    prefix, m.destination));
    if (last && (m.directory ? !S_ISDIR(mode) : !S_ISREG(mode)))
      return make_error(fmt::format("{} in the image is not a {}, so a {} cannot be mounted on it",
                                    m.destination, m.directory ? "directory" : "regular file",
                                    m.directory ? "directory" : "file"));
    if (last) return {};
  }
}

size_t depth(std::string_view clean) {
  return clean == "/" ? 0 : static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

// shauditd's socket directory is mounted into every container as it is, with whatever else
// is in it: it must be a directory of its own (never /, /run, /tmp: their other sockets,
// containerd's among them, would be reachable from every container), not writable by all,
// owned by root or the caller. Created (0755) when missing, so that containers created
// before shauditd starts reach it once it does.
Result<std::string> socket_directory(const std::string& socket) {
  const std::string dir = clean_path(dir_name(socket));
  auto own_dir_error = [&](std::string_view d) {
    return make_error(fmt::format(
        "the socket's directory {} is mounted into every container, so it must be a directory "
        "of shauditd's own (like /run/shaudit), not {}",
        dir, d));
  };
  if (depth(dir) < 2) return own_dir_error(dir);
  if (auto r = make_dirs(dir, 0755); !r) return r.error();
  char real[PATH_MAX];
  if (!::realpath(dir.c_str(), real))
    return make_error(fmt::format("cannot resolve {}: {}", dir, std::strerror(errno)));
  if (depth(real) < 2) return own_dir_error(real);
  struct stat st;
  if (::stat(real, &st) != 0)
    return make_error(fmt::format("cannot stat {}: {}", real, std::strerror(errno)));
  if (st.st_mode & S_IWOTH)
    return make_error(fmt::format("the socket's directory {} is writable by everyone", real));
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return make_error(fmt::format("the socket's directory {} is owned by uid {}", real, st.st_uid));
  return dir;
}

// The preload list the container would have without us: a mount at /etc/ld.so.preload in
// config.json (the last one; one we added before is not theirs), else the image's file.
Result<std::string> their_preload_list(const RootFs& root, const std::vector<Mount>& mounts,
                                       const std::string& state_dir) {
  const Mount* at = nullptr;
  for (const auto& m : mounts)
    if (m.destination == kPreloadList &&
        !is_proper_ancestor(clean_path(state_dir), clean_path(m.source)))
      at = &m;
  if (at) {
    if (at->type != "bind" && !at->has_option("bind") && !at->has_option("rbind"))
      return make_error(fmt::format("config.json mounts a {} at {}: its list cannot be read",
                                    at->type.empty() ? "non-bind" : at->type, kPreloadList));
    return read_small_file(at->source, kMaxPreloadList);
  }
  auto f = root.read_file(kPreloadList, kMaxPreloadList);
  if (!f) return f.error();
  return f->value_or("");
}

bool has_entries(std::string_view list) {
  return list.find_first_not_of(" \t\n:") != std::string_view::npos;  // glibc's separators
}

std::string object_json(const std::vector<JsonEdits::MemberChange>& members) {
  std::string out = "{";
  for (const auto& m : members) {
    if (!m.json) continue;
    if (out.size() > 1) out += ',';
    out += json_string(m.key) + ':' + *m.json;
  }
  return out + "}";
}

std::string array_json(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? "," : "") + i;
  return out + "]";
}

// Whether a preload list names path (glibc and musl split on whitespace and ':').
bool lists(std::string_view list, std::string_view path) {
  size_t i = 0;
  while (i < list.size()) {
    size_t j = list.find_first_of(" \t\n:", i);
    if (j == std::string_view::npos) j = list.size();
    if (list.substr(i, j - i) == path) return true;
    i = j + 1;
  }
  return false;
}

// The last NAME=value entry of an environment, or env.rend().
std::vector<std::string>::const_reverse_iterator env_entry(const std::vector<std::string>& env,
                                                           std::string_view name) {
  return std::find_if(env.rbegin(), env.rend(), [&](const std::string& e) {
    return e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=';
  });
}

// Adds to the "env" of a process object (config.json's "process", or the file of `runc exec
// --process`): socket_env (SHAUDIT_SOCKET=...) unless the process sets SHAUDIT_SOCKET or
// socket_env is empty, and with `preload` the interposer at the front of $LD_PRELOAD. Whether
// anything is edited.
Result<bool> edit_env(JsonEdits& edits, const JsonNode& process, const std::string& socket_env,
                      bool preload) {
  auto env_node = typed_field(process, "env", JsonNode::Type::kArray, "an array");
  if (!env_node) return env_node.error();
  auto env = string_items(*env_node, "\"env\"");
  if (!env) return env.error();
  std::vector<std::string> add;
  bool replaced = false;
  if (!socket_env.empty() && env_entry(*env, "SHAUDIT_SOCKET") == env->rend())
    add.push_back(json_string(socket_env));
  // $LD_PRELOAD as well as /etc/ld.so.preload: musl reads only the variable.
  if (preload) {
    auto it = env_entry(*env, "LD_PRELOAD");  // the last one is what the process gets
    std::string value = it == env->rend() ? "" : it->substr(sizeof("LD_PRELOAD=") - 1);
    if (!lists(value, kInterposerInContainer)) {
      std::string e =
          std::string("LD_PRELOAD=") + kInterposerInContainer + (value.empty() ? "" : ":" + value);
      if (it == env->rend()) {
        add.push_back(json_string(e));
      } else {
        edits.replace_value((*env_node)->items[static_cast<size_t>(env->rend() - it) - 1],
                            json_string(e));
        replaced = true;
      }
    }
  }
  if (*env_node)
    edits.append_items(**env_node, add);
  else if (!add.empty())
    edits.update_object(process, {{"env", array_json(add)}});
  return replaced || !add.empty();
}

// A JSON file of at most kMaxConfig bytes, scanned; errors name the file.
struct JsonFile {
  std::string text;
  JsonNode doc;
};
Result<JsonFile> read_json_object(const std::string& path) {
  auto text = read_small_file(path, kMaxConfig);
  if (!text) return text.error();
  auto doc = scan_json(*text);
  if (!doc) return make_error(path + ": " + doc.message());
  if (!doc->is_object()) return make_error(path + ": not a JSON object");
  return JsonFile{std::move(*text), std::move(*doc)};
}

// The bundle runc's state ROOT/ID/state.json names: its config's label "bundle=PATH".
std::optional<std::string> bundle_of_runc_state(const std::string& root, const std::string& id) {
  auto state = read_json_object(root + "/" + id + "/state.json");
  if (!state) return std::nullopt;
  auto config = typed_field(state->doc, "config", JsonNode::Type::kObject, "an object");
  if (!config || !*config) return std::nullopt;
  auto labels = typed_field(**config, "labels", JsonNode::Type::kArray, "an array");
  if (!labels || !*labels) return std::nullopt;
  for (const auto& l : (*labels)->items)
    if (l.is_string() && l.string.rfind("bundle=/", 0) == 0) return l.string.substr(7);
  return std::nullopt;
}

}  // namespace

Result<bool> prepare_exec(const std::string& runc_root, const std::string& id,
                          const std::string& process_file) {
  if (!valid_container_id(id)) return false;  // runc refuses it
  auto bundle = bundle_of_runc_state(runc_root, id);
  if (!bundle) return false;  // not a container of runc's (runc says what is wrong)
  auto cfg = read_json_object(*bundle + "/config.json");
  if (!cfg) return false;
  // Only a container prepare_bundle prepared: its annotation, and what it gave the container's
  // process.
  auto annotations = typed_field(cfg->doc, "annotations", JsonNode::Type::kObject, "an object");
  if (!annotations || !*annotations) return false;
  auto note = map_entry(**annotations, kInterposerAnnotation);
  if (!note || !*note || !(*note)->value.is_string()) return false;
  const std::string& libc = (*note)->value.string;
  if (libc != "glibc" && libc != "musl" && libc != "none") return false;
  std::string socket_env;  // the one the container's process has (prepare_bundle's, or its own)
  auto cfg_process = typed_field(cfg->doc, "process", JsonNode::Type::kObject, "an object");
  if (cfg_process && *cfg_process) {
    auto env_node = typed_field(**cfg_process, "env", JsonNode::Type::kArray, "an array");
    if (env_node) {
      if (auto env = string_items(*env_node, "\"env\""); env) {
        auto it = env_entry(*env, "SHAUDIT_SOCKET");
        if (it != env->rend()) socket_env = *it;
      }
    }
  }

  struct stat st;
  if (::stat(process_file.c_str(), &st) != 0)
    return make_error(fmt::format("cannot stat {}: {}", process_file, std::strerror(errno)));
  auto process = read_json_object(process_file);
  if (!process) return process.error();
  JsonEdits edits(process->text);
  auto changed = edit_env(edits, process->doc, socket_env, libc != "none");
  if (!changed) return make_error(process_file + ": " + changed.message());
  if (!*changed) return false;
  auto edited = edits.apply();
  if (!edited) return edited.error();
  if (auto check = scan_json(*edited); !check)
    return make_error(fmt::format("internal error: the edited {} does not parse: {}", process_file,
                                  check.message()));
  std::optional<Owner> owner;
  if (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) owner = Owner{st.st_uid, st.st_gid};
  if (auto r = write_file_atomic(process_file, *edited, st.st_mode & 07777, owner); !r)
    return r.error();
  return true;
}

bool valid_container_id(std::string_view id) {
  if (id.empty() || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+' || c == '-' || c == '.';
  });
}

std::string container_preload_file(const Settings& s, const std::string& id) {
  return s.state_dir + "/" + id + ".ld.so.preload";
}

Result<Outcome> prepare_bundle(const Settings& s, const std::string& bundle,
                               const std::string& id) {
  if (!valid_container_id(id))
    return make_error(fmt::format("'{}' is not a container id runc accepts", id));
  const std::string config_path = bundle + "/config.json";
  struct stat config_st;
  if (::stat(config_path.c_str(), &config_st) != 0)
    return make_error(fmt::format("cannot stat {}: {}", config_path, std::strerror(errno)));
  auto text = read_small_file(config_path, kMaxConfig);
  if (!text) return text.error();
  auto where = [&](const Error& e) { return make_error(config_path + ": " + e.message); };
  auto doc = scan_json(*text);
  if (!doc) return where(doc.error());
  if (!doc->is_object()) return where(make_error("not a JSON object"));

  // Opt-out and opt-in.
  auto annotations = typed_field(*doc, "annotations", JsonNode::Type::kObject, "an object");
  if (!annotations) return where(annotations.error());
  std::optional<bool> audit;
  if (*annotations) {
    auto a = map_entry(**annotations, kAuditAnnotation);
    if (!a) return where(a.error());
    if (*a) {
      if (!(*a)->value.is_string())
        return where(make_error(fmt::format("annotation {} is not a string", kAuditAnnotation)));
      audit = parse_bool((*a)->value.string);
    }
  }
  if (audit == false)
    return Outcome{Outcome::Kind::kUntouched,
                   fmt::format("container {} is annotated {}: \"false\": it runs unaudited "
                               "(config.json untouched)",
                               id, kAuditAnnotation)};
  if (s.mode == Mode::kOptIn && audit != true)
    return Outcome{Outcome::Kind::kUntouched,
                   fmt::format("mode opt-in and container {} is not annotated {}: \"true\": "
                               "it runs unaudited (config.json untouched)",
                               id, kAuditAnnotation)};

  // The root filesystem and what its programs load.
  auto root_obj = typed_field(*doc, "root", JsonNode::Type::kObject, "an object");
  if (!root_obj) return where(root_obj.error());
  if (!*root_obj) return where(make_error("no \"root\""));
  auto root_path = string_field(**root_obj, "path");
  if (!root_path) return where(root_path.error());
  if (root_path->empty()) return where(make_error("no \"root\": {\"path\"}"));
  auto root = RootFs::open((*root_path)[0] == '/' ? *root_path : bundle + "/" + *root_path);
  if (!root) return root.error();
  auto mounts_node = typed_field(*doc, "mounts", JsonNode::Type::kArray, "an array");
  if (!mounts_node) return where(mounts_node.error());
  auto mounts = read_mounts(*mounts_node);
  if (!mounts) return where(mounts.error());

  auto loader = find_loader(*root);
  if (!loader) return loader.error();
  std::string interposer, reason;
  if (loader->libc == Libc::kNone) {
    reason = "no dynamic loader in the image (statically linked programs only)";
  } else if (loader->libc == Libc::kMusl && s.preload_musl.empty()) {
    reason = "a musl image, and the setting preload_musl is not set";
  } else {
    interposer = loader->libc == Libc::kMusl ? s.preload_musl : s.preload;
    auto problem = preload_problem(*root, *loader, interposer);
    if (!problem) return problem.error();
    reason = *problem;
  }
  const bool preload = reason.empty();
  const Libc libc = preload ? loader->libc : Libc::kNone;

  // What is mounted.
  auto socket_dir = socket_directory(s.socket);
  if (!socket_dir) return socket_dir.error();
  std::vector<OurMount> ours;
  std::string list_file, list;
  if (preload) ours.push_back({kInterposerInContainer, interposer, false});
  if (libc == Libc::kGlibc) {
    auto theirs = their_preload_list(*root, *mounts, s.state_dir);
    if (!theirs) return theirs.error();
    list = std::string(kInterposerInContainer) + "\n";
    if (has_entries(*theirs)) {
      list += *theirs;
      if (list.back() != '\n') list += '\n';
      list_file = container_preload_file(s, id);
    } else {
      list_file = s.state_dir + "/ld.so.preload";
    }
    ours.push_back({kPreloadList, list_file, false});
  }
  ours.push_back({kSocketDirInContainer, *socket_dir, true});
  for (const auto& m : ours) {
    if (!json::is_valid_utf8(m.source))
      return make_error(fmt::format("{} is not valid UTF-8", m.source));
    if (auto r = check_mount_point(*root, *mounts, m); !r) return r.error();
  }
  const std::string socket_env =
      std::string("SHAUDIT_SOCKET=") + kSocketDirInContainer + "/" + base_name(s.socket);
  if (!json::is_valid_utf8(socket_env))
    return make_error(fmt::format("{} is not valid UTF-8", s.socket));

  // The edits.
  JsonEdits edits(*text);
  std::vector<JsonEdits::MemberChange> root_changes;
  std::vector<JsonEdits::MemberChange> notes = {
      {kInterposerAnnotation, json_string(libc_name(libc))},
      {kReasonAnnotation, preload ? std::nullopt : std::optional(json_string(reason))}};
  if (*annotations)
    edits.update_object(**annotations, notes);
  else
    root_changes.push_back({"annotations", object_json(notes)});

  std::vector<std::string> new_mounts;
  for (const auto& m : ours) {
    bool there = std::any_of(mounts->begin(), mounts->end(), [&](const Mount& mt) {
      return mt.destination == m.destination && mt.source == m.source;
    });
    if (!there) new_mounts.push_back(mount_json(m));
  }
  if (*mounts_node)
    edits.append_items(**mounts_node, new_mounts);
  else if (!new_mounts.empty())
    root_changes.push_back({"mounts", array_json(new_mounts)});

  auto process = typed_field(*doc, "process", JsonNode::Type::kObject, "an object");
  if (!process) return where(process.error());
  if (*process)  // without one runc refuses the container anyway
    if (auto r = edit_env(edits, **process, socket_env, preload); !r) return where(r.error());
  if (!root_changes.empty()) edits.update_object(*doc, root_changes);
  auto edited = edits.apply();
  if (!edited) return edited.error();
  if (auto check = scan_json(*edited); !check)
    return make_error(
        fmt::format("internal error: the edited config.json does not parse: {}", check.message()));

  // Written: the preload list first, config.json last (atomically: runc reads it next).
  if (!list_file.empty()) {
    if (auto r = make_dirs(s.state_dir, 0755); !r) return r.error();
    auto current = read_small_file(list_file, kMaxPreloadList + 4096);
    if (!current || *current != list)
      if (auto r = write_file_atomic(list_file, list, 0644); !r) return r.error();
  }
  std::optional<Owner> owner;
  if (config_st.st_uid != ::geteuid() || config_st.st_gid != ::getegid())
    owner = Owner{config_st.st_uid, config_st.st_gid};
  if (auto r = write_file_atomic(config_path, *edited, config_st.st_mode & 07777, owner); !r)
    return r.error();

  if (preload) return Outcome{Outcome::Kind::kPreloaded, {}};
  return Outcome{Outcome::Kind::kNotPreloaded,
                 fmt::format("container {}: {}: the interposer is not preloaded, it runs "
                             "unaudited ({}: none; shauditd's socket is mounted)",
                             id, reason, kInterposerAnnotation)};
}

}  // namespace shaudit::oci
