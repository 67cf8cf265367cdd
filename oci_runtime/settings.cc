// SPDX-License-Identifier: Apache-2.0
#include "settings.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "internal/yaml_where.h"
#include "shaudit/config.h"
#include "shaudit/wire.h"

namespace shaudit::oci {
namespace {

using internal::yaml_where;

std::string absolute_path(const std::string& s, std::string& field) {
  if (s.empty() || s[0] != '/') return fmt::format("expected an absolute path, got '{}'", s);
  field = s;
  return {};
}

// A key's setter: sets the field, or says what is wrong with the value (empty: nothing).
using Setter = std::function<std::string(const YAML::Node&, Settings&)>;

Setter path_key(std::string Settings::*field, bool nullable = false) {
  return [=](const YAML::Node& v, Settings& s) -> std::string {
    if (nullable && v.IsNull()) {
      (s.*field).clear();
      return {};
    }
    if (!v.IsScalar()) return "expected an absolute path";
    return absolute_path(v.Scalar(), s.*field);
  };
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> m = {
      {"runtime", path_key(&Settings::runtime)},
      {"socket", path_key(&Settings::socket)},
      {"preload", path_key(&Settings::preload)},
      {"preload_musl", path_key(&Settings::preload_musl, /*nullable=*/true)},
      {"state_dir", path_key(&Settings::state_dir)},
      {"mode",
       [](const YAML::Node& v, Settings& s) -> std::string {
         std::string m = v.IsScalar() ? v.Scalar() : "";
         if (m == "all")
           s.mode = Mode::kAll;
         else if (m == "opt-in")
           s.mode = Mode::kOptIn;
         else
           return fmt::format("expected all or opt-in, got '{}'", m);
         return {};
       }},
  };
  return m;
}

std::string known_keys() {
  std::string out;
  for (const auto& [k, _] : setters()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(fmt::format("cannot read {}", path));
  return ss.str();
}

}  // namespace

Settings default_settings() {
  Settings s;
  s.socket = SHAUDIT_DEFAULT_SOCKET;
  s.preload = kDefaultInterposer;
  s.state_dir = "/run/shaudit-oci";
  return s;
}

Result<Settings> parse_settings(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("{}: {}", yaml_where(source, e.mark), e.msg));
  }
  if (!root.IsMap())
    return make_error(fmt::format("{}: expected a mapping of settings (runtime: ..., ...)",
                                  yaml_where(source, root.Mark())));
  Settings s = default_settings();
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      auto it = setters().find(key);
      if (it == setters().end())
        return make_error(fmt::format("{}: unknown key '{}' (known: {})",
                                      yaml_where(source, kv.first.Mark()), key, known_keys()));
      if (std::string err = it->second(kv.second, s); !err.empty())
        return make_error(
            fmt::format("{}: key '{}': {}", yaml_where(source, kv.second.Mark()), key, err));
    }
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("{}: {}", yaml_where(source, e.mark), e.msg));
  }
  if (s.runtime.empty())
    return make_error(
        fmt::format("{}: key 'runtime' (the real runtime, e.g. /usr/sbin/runc) "
                    "is not set",
                    source));
  return s;
}

Result<Settings> load_settings(const std::string& path) {
  auto text = read_text(path);
  if (!text) return text.error();
  return parse_settings(*text, path);
}

std::string runtime_of_broken_settings(const std::string& path) {
  auto text = read_text(path);
  if (!text) return {};
  try {
    YAML::Node root = YAML::Load(*text);
    if (!root.IsMap() || !root["runtime"] || !root["runtime"].IsScalar()) return {};
    std::string r = root["runtime"].Scalar();
    return !r.empty() && r[0] == '/' ? r : std::string();
  } catch (const YAML::Exception&) {
    return {};
  }
}

}  // namespace shaudit::oci
